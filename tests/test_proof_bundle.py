"""Proof bundles: a batch's inclusion proofs (or those of listed events and leaves) in one request, one checkpoint.

The sequencer here waits a minute between passes, so each test decides when the queue enters the log
(``integrate``) and can see events still waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests import rfc9162_verifier as rfc
from tests.conftest import World, new_id
from tests.test_log import check_proof, public_key, record
from tests.test_verify import tamper
from traceability.config import Settings
from traceability.domain import tracecode
from traceability.http.keys import DATABASE, LOG
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle
from traceability.ledger import proofs as ledger_proofs
from traceability.services import transparency


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"TRACE_SEQUENCER_INTERVAL_MS": "60000"}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )


async def integrate(client: Any) -> None:
    app = client.server.app
    while await transparency.integrate(app[DATABASE], app[LOG]):
        pass


async def get(client: Any, path: str, status: int = 200) -> dict[str, Any]:
    resp = await client.get(path)
    body = dict(await resp.json())
    assert resp.status == status, body
    return body


def check_bundle(bundle: dict[str, Any], key: str) -> None:
    """Every proof in the bundle verifies, independently, against the bundle's one signed checkpoint."""
    cp = notes.verify_checkpoint(bundle["checkpoint"], notes.parse_verifier_key(key))
    assert cp.size == bundle["tree_size"]
    for proof in bundle["proofs"]:
        check_proof({**proof, "tree_size": bundle["tree_size"], "checkpoint": bundle["checkpoint"]}, key)


async def test_one_request_proves_every_event_of_a_batch(world: World, client: Any) -> None:
    code, ids = await record(world, 4)
    await record(world, 2)  # another batch's leaves come after this one's
    await integrate(client)
    key = await public_key(client)
    bundle = await get(client, f"/api/v1/batches/{code}/proofs")
    assert bundle["trace_code"] == code and bundle["next"] is None and bundle["pending"] == []
    assert bundle["log_id"] == hashlib.sha256(b"trace.test/log").hexdigest()
    assert [p["seq"] for p in bundle["proofs"]] == [1, 2, 3, 4, 5]
    assert [p["event_id"] for p in bundle["proofs"]][1:] == ids
    check_bundle(bundle, key)
    assert len({p["leaf_index"] for p in bundle["proofs"]}) == 5
    # the single-event route gives the same path against the same checkpoint
    single = await get(client, f"/api/v1/events/{ids[2]}/proof")
    assert single["tree_size"] == bundle["tree_size"]
    assert single["audit_path"] == bundle["proofs"][3]["audit_path"]
    check_proof(single, key)


async def test_a_long_batch_comes_page_by_page(world: World, client: Any) -> None:
    code, _ = await record(world, 5)
    await integrate(client)
    key = await public_key(client)
    page = await get(client, f"/api/v1/batches/{code}/proofs?limit=2")
    seqs = []
    while True:
        check_bundle(page, key)
        seqs += [p["seq"] for p in page["proofs"]]
        if page["next"] is None:
            break
        assert page["next"].startswith(f"/api/v1/batches/{code}/proofs?after=")
        page = await get(client, page["next"])
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert (await get(client, f"/api/v1/batches/{code}/proofs?after=6"))["proofs"] == []


async def test_a_page_bundle_is_one_multiproof_of_its_records(world: World, client: Any) -> None:
    """?form=compact: each record's seq and leaf, and one multiproof: every hash once, none the reader can compute."""
    await record(world, 2)  # leaves before, between and after this batch's
    code, _ = await record(world, 3)
    await record(world, 1)
    for step in ("storing", "retail_selling"):
        await world.post("/api/v1/events", world.event(code, step), world.devices["slaughter"], expect=201)
    await record(world, 2)
    await integrate(client)
    key = await public_key(client)
    full = await get(client, f"/api/v1/batches/{code}/proofs")
    page = await get(client, f"/api/v1/batches/{code}/proofs?form=compact")
    assert {k: v for k, v in page.items() if k not in ("nodes", "proofs")} == {
        k: v for k, v in full.items() if k != "proofs"
    }
    assert page["proofs"] == [{"seq": p["seq"], "leaf_index": p["leaf_index"]} for p in full["proofs"]]
    cp = notes.verify_checkpoint(page["checkpoint"], notes.parse_verifier_key(key))
    assert cp.size == page["tree_size"]
    # The reader's leaves: from the chain hashes it recomputes (here, the full form's).
    leaves = {p["leaf_index"]: merkle.leaf_hash(bytes.fromhex(p["event_hash"])) for p in full["proofs"]}
    nodes = [bytes.fromhex(h) for h in page["nodes"]]
    ledger_proofs.verify_multiproof(leaves, page["tree_size"], nodes, cp.root)
    on_paths = {h for p in full["proofs"] for h in p["audit_path"]}
    assert set(page["nodes"]) <= on_paths and len(set(page["nodes"])) == len(page["nodes"]) < len(on_paths)
    # None of the page's own subtrees is sent: no node is the root of a range holding one of its leaves.
    computable = set()
    for p in full["proofs"]:
        hashed = merkle.leaf_hash(bytes.fromhex(p["event_hash"]))
        for i, sibling in enumerate(bytes.fromhex(h) for h in p["audit_path"]):
            computable.add(hashed.hex())
            right = ledger_proofs._path_ranges(p["leaf_index"], page["tree_size"])[i][0] > p["leaf_index"]
            hashed = merkle.node_hash(hashed, sibling) if right else merkle.node_hash(sibling, hashed)
    assert not computable & set(page["nodes"])
    # Another record's hash, or a hash bent or left out: the page fails.
    for bad_leaves, bad_nodes in (
        ({**leaves, min(leaves): leaves[max(leaves)]}, nodes),
        (leaves, [*nodes[:-1], bytes(32)]),
        (leaves, nodes[1:]),
    ):
        with pytest.raises(merkle.InvalidProofError):
            ledger_proofs.verify_multiproof(bad_leaves, page["tree_size"], bad_nodes, cp.root)
    page2 = await get(client, f"/api/v1/batches/{code}/proofs?form=compact&limit=2")
    assert page2["next"].endswith("&form=compact") and len(page2["proofs"]) == 2


async def test_a_batch_bundle_also_proves_the_named_records_of_other_batches(world: World, client: Any) -> None:
    """?event=: the last record a page shows of each batch it came from, in the first page's one multiproof, named
    by event id; the batch's own records by seq; an unknown id missing; a later page without them."""
    _, before_ids = await record(world, 3)
    code, _ = await record(world, 2)
    await record(world, 1)
    await integrate(client)
    key = await public_key(client)
    unknown = new_id()
    also = f"event={before_ids[1]}&event={unknown}&event={before_ids[1]}"
    full = await get(client, f"/api/v1/batches/{code}/proofs?{also}")
    check_bundle(full, key)
    assert [p.get("also", False) for p in full["proofs"]] == [False, False, False, True]
    assert full["proofs"][-1]["event_id"] == before_ids[1] and full["missing"] == [unknown]
    page = await get(client, f"/api/v1/batches/{code}/proofs?form=compact&{also}")
    assert page["proofs"] == [
        *({"seq": p["seq"], "leaf_index": p["leaf_index"]} for p in full["proofs"][:3]),
        {"event_id": before_ids[1], "leaf_index": full["proofs"][3]["leaf_index"]},
    ]
    cp = notes.verify_checkpoint(page["checkpoint"], notes.parse_verifier_key(key))
    leaves = {p["leaf_index"]: merkle.leaf_hash(bytes.fromhex(p["event_hash"])) for p in full["proofs"]}
    ledger_proofs.verify_multiproof(leaves, page["tree_size"], [bytes.fromhex(h) for h in page["nodes"]], cp.root)
    # An event of the batch itself is proved once, as its own; later pages carry none of the others.
    own = full["proofs"][0]["event_id"]
    assert [p["seq"] for p in (await get(client, f"/api/v1/batches/{code}/proofs?event={own}"))["proofs"]] == [1, 2, 3]
    later = await get(client, f"/api/v1/batches/{code}/proofs?after=1&{also}")
    assert [p["seq"] for p in later["proofs"]] == [2, 3] and "missing" not in later
    # Bounded: at most proofs.MAX_ALSO of them, each a UUID.
    many = "&".join(f"event={new_id()}" for _ in range(65))
    for query in (many, "event=not-a-uuid"):
        body = await get(client, f"/api/v1/batches/{code}/proofs?{query}", status=422)
        assert body["error"]["field"] == "event"


async def test_listed_events_and_leaves(world: World, client: Any) -> None:
    _, ids = await record(world, 3)
    await integrate(client)
    key = await public_key(client)
    unknown = new_id()
    bundle = await get(client, f"/api/v1/log/proofs?event={ids[0]}&event={unknown}&event={ids[2]}&leaf=0&leaf=99999")
    check_bundle(bundle, key)
    assert [p["event_id"] for p in bundle["proofs"]][:2] == [ids[0], ids[2]]
    assert 0 in {p["leaf_index"] for p in bundle["proofs"]}
    assert bundle["missing"] == [unknown, 99999]
    again = await get(client, f"/api/v1/log/proofs?event={ids[0]}&leaf={bundle['proofs'][0]['leaf_index']}")
    assert len(again["proofs"]) == 1  # the same event asked for twice is proved once


async def test_events_still_waiting_are_named_and_retried(world: World, client: Any) -> None:
    code, ids = await record(world, 2)
    resp = await client.get(f"/api/v1/batches/{code}/proofs")
    assert resp.status == 200 and resp.headers["Retry-After"] == "1"
    waiting = await resp.json()
    assert waiting["proofs"] == [] and waiting["pending"][1:] == ids
    listed = await get(client, f"/api/v1/log/proofs?event={ids[0]}")
    assert listed["pending"] == [ids[0]] and listed["missing"] == []
    await integrate(client)
    resp = await client.get(f"/api/v1/batches/{code}/proofs")
    assert "Retry-After" not in resp.headers
    bundle = await resp.json()
    assert bundle["pending"] == [] and len(bundle["proofs"]) == 3
    check_bundle(bundle, await public_key(client))


async def test_a_changed_byte_fails_its_proof_and_only_its_proof(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    code, ids = await record(world, 3)
    await integrate(client)
    key = await public_key(client)
    await tamper(
        superuser,
        "UPDATE events SET canonical = convert_to(replace(convert_from(canonical, 'UTF8'),"
        " 'receiving', 'receivinG'), 'UTF8') WHERE event_id = $1",
        ids[2],
    )
    bundle = await get(client, f"/api/v1/batches/{code}/proofs")
    tampered = [p for p in bundle["proofs"] if p["event_id"] == ids[2]]
    assert len(tampered) == 1 and "receivinG" in tampered[0]["canonical"]
    with pytest.raises(AssertionError):
        check_bundle({**bundle, "proofs": tampered}, key)
    check_bundle({**bundle, "proofs": [p for p in bundle["proofs"] if p["event_id"] != ids[2]]}, key)
    # a flipped bit anywhere in a path fails too
    proof = bundle["proofs"][0]
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    cp = notes.verify_checkpoint(bundle["checkpoint"], notes.parse_verifier_key(key))
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert rfc.verify_inclusion(leaf, proof["leaf_index"], bundle["tree_size"], path, cp.root)
    for i in range(len(path)):
        bent = [*path[:i], bytes([path[i][0] ^ 1]) + path[i][1:], *path[i + 1 :]]
        assert not rfc.verify_inclusion(leaf, proof["leaf_index"], bundle["tree_size"], bent, cp.root)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=257",
        "limit=x",
        "after=-1",
        "after=2147483648",
    ],
)
async def test_batch_bundle_inputs_are_bounded(world: World, client: Any, query: str) -> None:
    code, _ = await record(world, 1)
    body = await get(client, f"/api/v1/batches/{code}/proofs?{query}", status=422)
    assert body["error"]["code"] == "invalid_field" and body["error"]["field"] in ("limit", "after")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "event"),
        ("event=not-a-uuid", "event"),
        ("leaf=-1", "leaf"),
        ("leaf=9223372036854775808", "leaf"),
        ("&".join(f"leaf={i}" for i in range(101)), "event"),
    ],
)
async def test_listed_bundle_inputs_are_bounded(client: Any, query: str, field: str) -> None:
    body = await get(client, f"/api/v1/log/proofs?{query}", status=422)
    assert body["error"]["code"] == "invalid_field" and body["error"]["field"] == field


async def test_an_unknown_or_malformed_batch(client: Any) -> None:
    unknown = tracecode.make("320302", 4_999_999_999_999)
    assert (await get(client, f"/api/v1/batches/{unknown}/proofs", status=404))["error"]["code"] == "not_found"
    body = await get(client, "/api/v1/batches/not-a-code/proofs", status=400)
    assert body["error"]["field"] == "trace_code"


async def test_concurrent_single_proofs_share_reads_and_are_each_right(world: World, client: Any) -> None:
    _, ids = await record(world, 4)
    await integrate(client)
    key = await public_key(client)
    unknown = new_id()
    asked = [*ids, *ids, unknown]
    answers = await asyncio.gather(*(client.get(f"/api/v1/events/{e}/proof") for e in asked))
    for event_id, resp in zip(asked, answers, strict=True):
        body = await resp.json()
        if event_id == unknown:
            assert resp.status == 404 and body["error"]["code"] == "not_found"
            continue
        assert resp.status == 200 and body["event_id"] == event_id
        check_proof(body, key)


async def test_lookups_asked_meanwhile_are_made_together() -> None:
    gathered = transparency.Gathered()
    calls: list[list[str]] = []

    async def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(sorted(keys))
        await asyncio.sleep(0.01)
        return {k: k.upper() for k in keys if k != "x"}

    assert await asyncio.gather(*(gathered.get(k, fetch) for k in "abcax")) == ["A", "B", "C", "A", None]
    assert calls == [["a", "b", "c", "x"]]
    first = asyncio.ensure_future(gathered.get("a", fetch))
    await asyncio.sleep(0)  # its read is under way
    later = await asyncio.gather(*(gathered.get(k, fetch) for k in "de"))
    assert (await first, later) == ("A", ["D", "E"])
    assert calls[1:] == [["a"], ["d", "e"]]

    async def broken(keys: list[str]) -> dict[str, str]:
        raise RuntimeError("the database went away")

    results = await asyncio.gather(*(gathered.get(k, broken) for k in "fg"), return_exceptions=True)
    assert [str(r) for r in results] == ["the database went away"] * 2
    assert await gathered.get("h", fetch) == "H"  # and the next lookup reads again


async def test_a_slow_lookup_does_not_hold_up_the_next() -> None:
    gathered = transparency.Gathered(in_flight=2)
    release = asyncio.Event()

    async def fetch(keys: list[str]) -> dict[str, str]:
        if "slow" in keys:
            await release.wait()
        return {k: k.upper() for k in keys}

    slow = asyncio.ensure_future(gathered.get("slow", fetch))
    await asyncio.sleep(0)  # its read is under way, and stays
    assert await asyncio.wait_for(gathered.get("quick", fetch), 5) == "QUICK"
    release.set()
    assert await slow == "SLOW"
