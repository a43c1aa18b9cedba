"""The transparency log: integration, checkpoints, proofs anyone can verify, witnesses, the full audit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests import rfc9162_verifier as rfc
from tests.conftest import SETTLE_WITHIN, World, settled
from tests.test_verify import cli, tamper
from traceability import errors
from traceability.config import ROOT, Settings
from traceability.http.keys import DATABASE, LOG
from traceability.ledger import checkpoint as notes
from traceability.services import transparency
from traceability.services.verify import verify_log
from traceability.storage.database import open_database


# A polling deadline checked between requests, not a cancellation timeout.
async def proof_of(client: Any, event_id: str, timeout: float = SETTLE_WITHIN) -> dict[str, Any]:  # noqa: ASYNC109
    """The event's inclusion proof, once the sequencer has integrated it (however long a loaded machine takes)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get(f"/api/v1/events/{event_id}/proof", headers={"Accept-Encoding": "gzip"})
        if resp.status == 200:
            # Hex hashes gain little from gzip and cost a proof several times its work: sent plain.
            assert "Content-Encoding" not in resp.headers, resp.headers
            return dict(await resp.json())
        body = await resp.json()
        assert resp.status == 404 and body["error"]["code"] == "not_yet_logged", body
        assert resp.headers["Retry-After"] == "1"
        assert time.monotonic() < deadline, "event not integrated in time"
        await asyncio.sleep(0.05)


def check_proof(proof: dict[str, Any], verifier_key: str) -> None:
    """Verify a proof the way an outside auditor would, with code written from the RFC and the docs."""
    cp = notes.verify_checkpoint(proof["checkpoint"], notes.parse_verifier_key(verifier_key))
    assert cp.size == proof["tree_size"]
    data = proof["canonical"].encode()
    event_hash = hashlib.sha256(b"trace/chain/v1\x00" + bytes.fromhex(proof["prev_hash"]) + data).digest()
    assert event_hash.hex() == proof["event_hash"]
    leaf = hashlib.sha256(b"\x00" + event_hash).digest()
    assert leaf.hex() == proof["leaf_hash"]
    ok = rfc.verify_inclusion(
        leaf, proof["leaf_index"], proof["tree_size"], [bytes.fromhex(h) for h in proof["audit_path"]], cp.root
    )
    assert ok


async def public_key(client: Any) -> str:
    return (await (await client.get("/api/v1/log/public-key")).text()).strip()


async def record(world: World, n: int = 3) -> tuple[str, list[str]]:
    code = await world.open_batch()
    ids = []
    for step in ("inspecting", "shipping", "receiving", "storing", "retail_selling")[:n]:
        ids.append(
            (await world.post("/api/v1/events", world.event(code, step), world.devices["slaughter"], expect=201))[
                "eventID"
            ]
        )
    return code, ids


async def test_events_enter_the_log_and_proofs_verify_independently(world: World, client: Any) -> None:
    code, ids = await record(world)
    key = await public_key(client)
    assert key.startswith("trace.test/log+")
    for event_id in ids:
        proof = await proof_of(client, event_id)
        assert set(proof) >= {"log_id", "leaf_index", "tree_size", "leaf_hash", "audit_path", "checkpoint"}
        assert proof["log_id"] == hashlib.sha256(b"trace.test/log").hexdigest()
        check_proof(proof, key)
    view = await (await client.get(f"/api/v1/batches/{code}")).json()
    assert view["events"][1]["proof_url"] == f"/api/v1/events/{ids[0]}/proof"


async def test_a_proof_is_found_however_its_event_id_is_written(world: World, client: Any) -> None:
    """The id as receipts write it, in upper case, or as a URN: the same event's proof; anything else a 422."""
    _, (event_id,) = await record(world, 1)
    proof = await proof_of(client, event_id)
    for written in (event_id.upper(), f"urn:uuid:{event_id}", event_id.replace("-", "")):
        resp = await client.get(f"/api/v1/events/{written}/proof")
        assert resp.status == 200, written
        assert (await resp.json())["event_id"] == event_id == proof["event_id"]
    for wrong in (event_id[:-1], event_id[:-1] + "g", f" {event_id}"):
        resp = await client.get(f"/api/v1/events/{wrong}/proof")
        assert resp.status == 422, wrong
        assert (await resp.json())["error"]["field"] == "event_id"


async def test_checkpoint_text_and_listing(world: World, client: Any) -> None:
    _, ids = await record(world)
    await proof_of(client, ids[-1])
    resp = await client.get("/api/v1/log/checkpoint")
    assert resp.content_type == "text/plain"
    text = await resp.text()
    origin, size, root_b64, blank, *sigs = text.split("\n")
    assert origin == "trace.test/log" and int(size) >= 4 and len(base64.b64decode(root_b64)) == 32
    assert blank == "" and sigs[0].startswith("— trace.test/log ")
    listing = await (await client.get("/api/v1/log/checkpoints?limit=2")).json()
    sizes = [c["size"] for c in listing["checkpoints"]]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) <= 2
    if listing["next"]:
        older = await (await client.get(listing["next"])).json()
        assert all(c["size"] < sizes[-1] for c in older["checkpoints"])


async def test_consistency_proofs_verify_with_the_rfc_algorithm(world: World, client: Any) -> None:
    key = notes.parse_verifier_key(await public_key(client))
    _, ids = await record(world, 1)
    first = notes.verify_checkpoint((await proof_of(client, ids[0]))["checkpoint"], key)
    _, more = await record(world, 5)
    second = notes.verify_checkpoint((await proof_of(client, more[-1]))["checkpoint"], key)
    resp = await client.get(f"/api/v1/log/consistency?first={first.size}&second={second.size}")
    body = await resp.json()
    assert body["first"] == first.size and body["second"] == second.size
    assert rfc.verify_consistency(
        first.size, second.size, [bytes.fromhex(h) for h in body["proof"]], first.root, second.root
    )
    bad = await client.get(f"/api/v1/log/consistency?first={second.size}&second={first.size}")
    assert bad.status == 422


async def test_log_tables_refuse_changes(world: World, client: Any, superuser: asyncpg.Connection) -> None:
    _, ids = await record(world, 1)
    await proof_of(client, ids[0])
    for statement in (
        "UPDATE log_leaves SET leaf_index = leaf_index + 100",
        "DELETE FROM checkpoints",
        "TRUNCATE log_leaves CASCADE",
        "DELETE FROM log_tiles",
        "UPDATE log_tiles SET hashes = substring(hashes from 33), width = width - 1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser.execute(statement)


async def audit(db_url: str, key: str) -> list[str]:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        report = await verify_log(db, key)
    return [str(f) for f in report.faults]


async def logged_world(world: World, client: Any) -> tuple[str, list[str], str]:
    code, ids = await record(world, 4)
    for event_id in ids:
        await proof_of(client, event_id)
    return code, ids, await public_key(client)


async def test_the_audit_passes_on_an_intact_log(world: World, client: Any, db_url: str) -> None:
    _, _, key = await logged_world(world, client)
    assert await audit(db_url, key) == []


async def test_tamper_one_byte_of_an_event(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection
) -> None:
    code, ids, key = await logged_world(world, client)
    await tamper(
        superuser,
        "UPDATE events SET canonical = convert_to(replace(convert_from(canonical, 'UTF8'),"
        " 'storing', 'storinG'), 'UTF8') WHERE event_id = $1",
        ids[3],
    )
    result = cli(db_url, "verify")
    assert result.returncode == 1
    assert f"FAIL chain batch {code} seq 5: hash does not match" in result.stdout
    with pytest.raises(AssertionError):
        check_proof(await proof_of(client, ids[3]), key)


async def test_tamper_delete_an_event(world: World, client: Any, db_url: str, superuser: asyncpg.Connection) -> None:
    _, ids, key = await logged_world(world, client)
    await tamper(
        superuser, "DELETE FROM log_leaves WHERE event_pk = (SELECT id FROM events WHERE event_id = $1)", ids[1]
    )
    await tamper(superuser, "DELETE FROM events WHERE event_id = $1", ids[1])
    faults = await audit(db_url, key)
    assert any(f.startswith("leaf index") and "missing" in f for f in faults), faults
    resp = await client.get(f"/api/v1/events/{ids[1]}/proof")
    assert resp.status == 404


async def test_tamper_swap_two_events(world: World, client: Any, db_url: str, superuser: asyncpg.Connection) -> None:
    _, _, key = await logged_world(world, client)
    rows = await superuser.fetch("SELECT event_pk, leaf_hash FROM log_leaves ORDER BY leaf_index")
    a, b = rows[1], rows[2]
    await tamper(superuser, "UPDATE log_leaves SET leaf_hash = $2 WHERE event_pk = $1", a["event_pk"], b["leaf_hash"])
    await tamper(superuser, "UPDATE log_leaves SET leaf_hash = $2 WHERE event_pk = $1", b["event_pk"], a["leaf_hash"])
    faults = await audit(db_url, key)
    assert "leaf index 1: does not match event" in " ".join(faults)
    assert "leaf index 2: does not match event" in " ".join(faults)


async def test_tamper_replace_a_checkpoint(
    world: World, client: Any, db_url: str, tmp_path: Path, superuser: asyncpg.Connection
) -> None:
    _, _, key = await logged_world(world, client)
    size = await superuser.fetchval("SELECT max(size) FROM checkpoints")
    forger = notes.generate_signer("trace.test/log")
    forged = notes.sign_checkpoint("trace.test/log", size, b"\x01" * 32, forger)
    await tamper(superuser, "UPDATE checkpoints SET note = $1, root = $2 WHERE size = $3", forged, b"\x01" * 32, size)
    faults = await audit(db_url, key)
    assert f"checkpoint size {size}: signature or format" in " ".join(faults)
    assert f"checkpoint size {size}: root does not match the leaves" in " ".join(faults)


async def test_tamper_append_a_forged_leaf(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection
) -> None:
    _, _, key = await logged_world(world, client)
    size = await superuser.fetchval("SELECT size FROM log_heads")
    await tamper(
        superuser,
        "INSERT INTO log_leaves (log_id, leaf_index, event_pk, leaf_hash) VALUES (1, $1, -5, $2)",
        size,
        hashlib.sha256(b"\x00" + b"\x07" * 32).digest(),
    )
    faults = await audit(db_url, key)
    assert f"leaf index {size}: names no recorded event (a forged leaf)" in faults


async def test_the_sequencer_writes_no_leaf_for_a_key_that_names_no_event(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    """log_leaves has no foreign keys (schema 0025): the sequencer's statement itself refuses a leaf for a queued
    key that names no recorded event, and the log does not grow."""
    await record(world, 2)
    await settled(client)
    size = await superuser.fetchval("SELECT size FROM log_heads")
    await superuser.execute("INSERT INTO log_queue (event_pk, hash) VALUES (-5, $1)", b"\x07" * 32)  # tampered
    app = client.server.app
    with pytest.raises(errors.Conflict, match="names no recorded event"):
        await transparency.integrate(app[DATABASE], app[LOG])
    assert await superuser.fetchval("SELECT size FROM log_heads") == size
    assert not await superuser.fetchval("SELECT EXISTS (SELECT 1 FROM log_leaves WHERE event_pk = -5)")
    await superuser.execute("DELETE FROM log_queue")


async def test_an_event_has_one_leaf_found_by_its_key_alone(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    """The unique key on log_leaves.event_pk (0031) still refuses a second leaf for an event, triggers off and all,
    and carries the leaf's log and index, so a proof finds its leaf from the index without reading the table; the
    proof's leaf hash is the one its level-0 tile stores, the one its path starts from."""
    _, ids = await record(world, 2)
    proof = await proof_of(client, ids[0])
    stored = await superuser.fetchrow(
        "SELECT l.event_pk, l.leaf_index, l.leaf_hash FROM log_leaves l JOIN events e ON e.id = l.event_pk"
        " WHERE e.event_id = $1",
        ids[0],
    )
    assert proof["leaf_index"] == stored["leaf_index"] and proof["leaf_hash"] == stored["leaf_hash"].hex()
    key = await superuser.fetchrow(
        "SELECT i.indisunique, i.indnkeyatts, i.indnatts FROM pg_constraint c"
        " JOIN pg_index i ON i.indexrelid = c.conindid WHERE c.conname = 'log_leaves_event_pk_key'"
    )
    assert dict(key) == {"indisunique": True, "indnkeyatts": 1, "indnatts": 3}
    size = await superuser.fetchval("SELECT size FROM log_heads")
    with pytest.raises(asyncpg.UniqueViolationError, match="log_leaves_event_pk_key"):
        await tamper(
            superuser,
            "INSERT INTO log_leaves (log_id, leaf_index, event_pk, leaf_hash) VALUES (1, $1, $2, $3)",
            size,
            stored["event_pk"],
            stored["leaf_hash"],
        )
    await superuser.execute("SET session_replication_role = DEFAULT")


async def test_two_servers_serve_the_same_log(world: World, db_url: str, tmp_path: Path) -> None:
    """Two processes on one database: one sequencer, identical checkpoints, proofs from either verify."""
    key_file = tmp_path / "log-signing-key"  # the in-process app's key (settings fixture: data_dir=tmp_path)
    procs, ports = [], []
    try:
        for i in range(2):
            port = 18700 + os.getpid() % 500 + i * 500
            env = {
                **os.environ,
                "TRACE_DATABASE_URL": db_url,
                "TRACE_PORT": str(port),
                "TRACE_DATA_DIR": str(tmp_path / f"p{i}"),
                "TRACE_SIGNING_KEY_FILE": str(key_file),
                "TRACE_PUBLIC_URL": "http://trace.test",
                "TRACE_LOG_LEVEL": "warning",
            }
            # Popen only starts the server; nothing waits on it here.
            server = subprocess.Popen([sys.executable, "-m", "traceability", "serve"], env=env, cwd=ROOT)  # noqa: ASYNC220
            procs.append(server)
            ports.append(port)

        import aiohttp

        async with aiohttp.ClientSession() as http:
            for port in ports:
                # A server start imports the whole project; on a loaded machine that can take well over 10 s.
                started = time.monotonic() + 90
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < started, f"the server on port {port} did not start"
                    await asyncio.sleep(0.1)
            code = await world.open_batch()
            headers = world.auth(world.devices["slaughter"])
            ids = []

            async def send(port: int, step: str) -> None:
                async with http.post(
                    f"http://127.0.0.1:{port}/api/v1/events", json=world.event(code, step), headers=headers
                ) as r:
                    assert r.status == 201, await r.text()
                    ids.append((await r.json())["eventID"])

            await asyncio.gather(*(send(ports[i % 2], "storing") for i in range(20)))
            # Wait for the condition, not a fixed time: both processes serve the checkpoint that holds all 21.
            deadline = time.monotonic() + SETTLE_WITHIN  # a sequencer process starved of CPU still gets there
            while True:
                notes_seen = []
                for port in ports:
                    async with http.get(f"http://127.0.0.1:{port}/api/v1/log/checkpoint") as r:
                        notes_seen.append(await r.text())
                sizes = [notes.parse_checkpoint(n).size for n in notes_seen]
                if sizes == [21, 21]:
                    break
                assert time.monotonic() < deadline, f"checkpoints stayed at {sizes}"
                await asyncio.sleep(0.1)
            assert notes_seen[0] == notes_seen[1]
            async with http.get(f"http://127.0.0.1:{ports[0]}/api/v1/log/public-key") as r:
                key = (await r.text()).strip()
            size = notes.parse_checkpoint(notes_seen[0]).size
            assert size == 21  # the batch opening plus 20 events; three sequencers, one log
            for i, event_id in enumerate(ids):
                async with http.get(f"http://127.0.0.1:{ports[i % 2]}/api/v1/events/{event_id}/proof") as r:
                    check_proof(await r.json(), key)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
