"""The demo city: what it holds, that a seed gives the same ledger, that the scale path writes what the API would."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, cloned_database, new_id, settled
from tests.test_verify import cli
from traceability import errors
from traceability.config import Settings
from traceability.demo import bulk, lives, scale
from traceability.demo.city import City, Product
from traceability.demo.loader import DemoResult, load_demo
from traceability.domain.events import parse_event
from traceability.ledger import canonical, sealed
from traceability.services import capture, principals
from traceability.services.verify import verify_chains, verify_log
from traceability.storage.database import open_database

TODAY = date(2026, 1, 20)
SERVER_FIELDS = ("recordedAt", "sealed", "device")

# Every event a server appends itself (holds, recalls) has no device, a fresh id and the server's time.
SELECT_EVENTS = """
SELECT b.trace_code, e.seq, e.canonical, e.private, e.device_id IS NULL AS appended
FROM events e JOIN batches b ON b.id = e.batch_id ORDER BY b.trace_code, e.seq
"""


async def load(db_url: str, **options: Any) -> DemoResult:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        return await load_demo(db, public_url="http://trace.test", today=TODAY, **options)


async def regulator_token(db_url: str) -> str:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        token, _ = await principals.create_token(db, "regulator", "test regulator")
    return token


async def anomalies(client: Any, token: str, kind: str) -> list[dict[str, Any]]:
    resp = await client.get(
        "/api/v1/anomalies", params={"kind": kind, "limit": "100"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    return list((await resp.json())["anomalies"])


async def wait_for_kind(client: Any, token: str, kind: str) -> list[dict[str, Any]]:
    """The ``kind`` anomalies, once the analyzer has looked at every event recorded so far."""
    await settled(client)
    found = await anomalies(client, token, kind)
    assert found, f"no {kind} anomaly"
    return found


def codes(result: DemoResult) -> dict[str, str]:
    found = {key: code for key, _, code in result.highlights}
    assert list(found) == [
        "receipt",
        "pork",
        "recall",
        "failed",
        "drug",
        "expired",
        "paper",
        "farm",
        "withdrawal",
        "dairy",
    ]
    return found


@pytest.fixture
async def second_db_url(server_url: str, template: str) -> AsyncIterator[str]:
    async with cloned_database(server_url, template) as url:
        yield url


async def test_the_city_tells_its_story(client: Any, db_url: str, superuser: asyncpg.Connection) -> None:
    result = await load(db_url, seed=7, days=6)
    c = result.counts
    assert (
        c["farm"],
        c["slaughterhouse"],
        c["wholesale_market"],
        c["wet_market"],
        c["supermarket"],
        c["canteen"],
        c["drug_manufacturer"],
        c["drug_distributor"],
        c["pharmacy"],
        c["pasture"],
        c["milk_station"],
        c["dairy_plant"],
    ) == (22, 3, 2, 10, 3, 2, 1, 2, 5, 1, 1, 1)
    assert c["stalls"] == 60 and c["scanners"] == 113
    assert result.story_events > 800
    code = codes(result)

    # Every sale at a stall's scale or a shop's till printed a receipt: a batch of its own, a child of the
    # batch it was cut from. None is without its source.
    receipts = await superuser.fetch(RECEIPTS)
    assert len(receipts) > 100 and all(r["sources"] == 1 for r in receipts)

    # The failed pesticide test held the cabbage lot, the crates repacked from it and the receipts cut from them.
    held = await superuser.fetch(
        "SELECT b.trace_code, h.status, e.canonical LIKE '%soldFrom%' AS receipt FROM batches b "
        "JOIN batch_heads h ON h.batch_id = b.id JOIN events e ON e.batch_id = b.id AND e.seq = 1 "
        "WHERE b.trace_code = $1 OR b.id IN (SELECT child_id FROM batch_links l JOIN batches p ON p.id = l.parent_id "
        "WHERE p.trace_code = $1)",
        code["failed"],
    )
    assert len([r for r in held if not r["receipt"]]) == 4 and {r["status"] for r in held} == {"on_hold"}
    view = await (await client.get(f"/api/v1/batches/{code['failed']}")).json()
    assert any(e.get("attributes", {}).get("result") == "fail" for e in view["events"])

    # The regulator's recall reached every carcass and joint made from the pigs.
    recalls = (await (await client.get("/api/v1/recalls")).json())["recalls"]
    assert [r["trace_code"] for r in recalls] == [code["recall"]]
    reached = await superuser.fetchval(RECEIPTS_OF, code["recall"])
    # The pigs, two carcasses, four joints and the receipts sold from them; all but the one a stall's offline
    # scale synced after the recall, whose receipt was recalled as it arrived.
    assert reached > 1 and recalls[0]["affected"] == 7 + reached - 1
    assert reached == await superuser.fetchval(RECEIPTS_OF_IN_STATE, code["recall"], "recalled")

    # The receipt worth opening leads back to the farm, with the certificates, the stall and the weight.
    page = await (await client.get(f"/t/{code['receipt']}?format=json")).json()
    assert page["journey"][0]["kind"] == "origin" and page["journey"][0]["name"]
    assert [s["type"] for s in page["journey"][1:]] == ["farm", "slaughterhouse", "wholesale_market", "wet_market"]
    assert {"quarantine_certificate", "meat_inspection_certificate"} <= {c["type"] for c in page["certificates"]}
    assert page["vendor"]["stall_no"] and page["sale"]["quantity"]["uom"] == "KGM"
    view = await (await client.get(f"/api/v1/batches/{code['pork']}")).json()
    assert view["events"][-1]["bizStep"] == "retail_selling"
    assert "commercial" not in view["events"][-1]  # prices are sealed from the public

    # The analyzer, following the log the server's sequencer builds, finds the anomalies the story planted.
    token = await regulator_token(db_url)
    synced = await wait_for_kind(client, token, "sale_synced_after_recall")  # the very last event
    assert len(synced) == 1
    expired = await wait_for_kind(client, token, "sold_after_expiry")
    assert [a["trace_code"] for a in expired] == [code["expired"]]
    twice = await wait_for_kind(client, token, "drug_serial_dispensed_twice")
    assert [a["trace_code"] for a in twice] == [code["drug"]]
    # Custody: the supermarket's receipt was refused until the farm recorded the shipment naming it.
    paper = await (await client.get(f"/api/v1/batches/{code['paper']}")).json()
    assert [e["bizStep"] for e in paper["events"][:3]] == ["commissioning", "shipping", "receiving"]
    planted = {
        "sale_synced_after_recall",
        "sold_after_expiry",
        "drug_serial_dispensed_twice",
        "out_of_time_order",
        "opened_inside_interval",
        "received_inside_interval",
    }
    kinds = {a["kind"] for a in await anomalies(client, token, "")}
    assert kinds <= planted, kinds - planted
    assert await anomalies(client, token, "missing_certificate") == []  # receipts carry their sources' certificates
    out_of_order = await anomalies(client, token, "out_of_time_order")
    assert [a["event_id"] for a in out_of_order] == [synced[0]["event_id"]]

    # The pig farm's pen inside enrofloxacin's withdrawal period: refused, then insisted, flagged at the farm
    # and at the slaughterhouse, and held by the slaughterhouse's residue test.
    insisted = await wait_for_kind(client, token, "opened_inside_interval")
    assert [a["trace_code"] for a in insisted] == [code["withdrawal"]]
    received = await wait_for_kind(client, token, "received_inside_interval")
    assert [(a["trace_code"], a["node_name"]) for a in received] == [(code["withdrawal"], "徐州彭城肉类联合加工厂")]
    assert (
        await superuser.fetchval(
            "SELECT h.status FROM batch_heads h JOIN batches b ON b.id = h.batch_id WHERE b.trace_code = $1",
            code["withdrawal"],
        )
        == "on_hold"
    )
    assert (
        await superuser.fetchval(
            "SELECT count(*) FROM batches b JOIN nodes n ON n.id = b.node_id WHERE n.name_zh = '睢宁县魏集生猪养殖场'"
        )
        == 1
    )  # the refused opening left nothing
    # The spinach's page lists its plot's inputs; the milk's page its heat treatment and raw-milk test.
    page = await (await client.get(f"/t/{code['farm']}?format=json")).json()
    (plot,) = page["farm_inputs"]
    assert plot["unit"] == "A-2" and [i["verdict"] for i in plot["inputs"]] == ["over", "none"]
    page = await (await client.get(f"/t/{code['dairy']}?format=json")).json()
    assert [s["type"] for s in page["journey"][1:]] == ["pasture", "milk_station", "dairy_plant", "supermarket"]
    assert {m["name"] for i in page["inspections"] for m in i["measures"]} >= {"protein", "melamine", "antibiotics"}
    assert page["batch"]["events"][0]["attributes"]["heat_treatment"] == "pasteurised"

    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        assert (await verify_chains(db)).ok
        assert (await verify_log(db)).ok
        with pytest.raises(errors.Conflict, match="already loaded"):
            await load_demo(db, today=TODAY)


async def content(db_url: str) -> list[tuple[str, int, dict[str, Any]]]:
    """Every event's content, commercial details unsealed, without what only the server decides."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(SELECT_EVENTS)
    finally:
        await conn.close()
    out = []
    for r in rows:
        c = canonical.decode(r["canonical"])
        for key in SERVER_FIELDS:
            c.pop(key, None)
        if r["private"] is not None:
            c.update(canonical.decode(sealed.private_bytes(r["private"])))
        if r["appended"]:
            c.pop("eventID")
            c.pop("eventTime")
        out.append((r["trace_code"], r["seq"], c))
    return out


async def test_the_same_seed_gives_the_same_ledger(db_url: str, second_db_url: str) -> None:
    first = await load(db_url, seed=3, days=6)
    second = await load(second_db_url, seed=3, days=6)
    assert first.highlights == second.highlights
    a, b = await content(db_url), await content(second_db_url)
    assert len(a) == first.total_events and a == b


async def test_the_scale_path_gives_the_same_ledger_however_the_work_is_spread(db_url: str, second_db_url: str) -> None:
    # Enough events for parts of whole lives and then a tail made up to the total: both kinds of part.
    total = 2 * scale.LIVES_PER_PART * scale.MOST_PER_LIFE + 3_000
    assert len(scale.body(total)) == 2
    here = await load(db_url, seed=7, days=6, events=total, workers=0)
    spread = await load(second_db_url, seed=7, days=6, events=total, workers=2)
    assert here.total_events >= total and here.total_events < total + 200  # whole lives: a few more
    assert (here.bulk_events, here.bulk_batches) == (spread.bulk_events, spread.bulk_batches)
    a, b = await content(db_url), await content(second_db_url)
    assert len(a) == here.total_events and a == b
    # Each part numbers its lives after the parts before it: a meat batch's quarantine certificate names no day
    # (the story's carcasses share theirs; the scale path's batches come after the story's, in serial order).
    openings = sorted((code[6:19], c) for code, seq, c in a if seq == 1)[-here.bulk_batches :]
    numbers = [
        d["number"] for _, c in openings for d in c.get("documents", ()) if d["type"] == "quarantine_certificate"
    ]
    assert len(numbers) > 500 and len(set(numbers)) == len(numbers)


async def test_the_scale_path_verifies_and_writes_what_the_api_would(db_url: str, tmp_path: Path) -> None:
    result = await load(db_url, seed=5, days=6, events=20_000, workers=2)  # the worker processes' path
    assert result.bulk_events > 15_000 and result.total_events >= 20_000
    out = cli(db_url, "verify", tmp=tmp_path)
    assert out.returncode == 0 and "all verified" in out.stdout, out.stdout + out.stderr

    # Re-validating a sample of stored events with the API's parser gives back exactly what is stored.
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT e.canonical, e.private, n.code AS node FROM events e JOIN nodes n ON n.id = e.node_id "
            "WHERE e.seq > 1 AND e.device_id IS NOT NULL AND e.id % 37 = 0"
        )
        queued = await conn.fetchval("SELECT count(*) FROM log_queue")
        # Every chain head keeps its opening's time, as the API's openings do (the capture statement reads it).
        unlike = await conn.fetchval(
            "SELECT count(*) FROM batch_heads h JOIN events o ON o.batch_id = h.batch_id AND o.seq = 1 "
            "WHERE h.opened_at IS DISTINCT FROM o.event_time"
        )
    finally:
        await conn.close()
    assert queued == result.total_events  # every event waits for a sequencer to enter it in the log
    assert unlike == 0
    bulk = 0
    now = datetime.now(UTC)
    for r in rows:
        stored = canonical.decode(r["canonical"])
        stored.pop("recordedAt")
        seal = stored.pop("sealed", None)
        if seal is not None:
            assert sealed.matches(seal, r["private"])
            stored.update(canonical.decode(sealed.private_bytes(r["private"])))
        assert stored.pop("node") == r["node"]
        stored.pop("device")
        if "transformationID" in stored:
            continue  # a transformation's record on its input, written by the transformation, not an event sent
        assert parse_event(stored, "", now).content == stored
        bulk += uuid.UUID(stored["eventID"]).version == 7
    assert bulk > 200


async def test_a_bulk_opening_is_the_api_opening(world: World, db_url: str) -> None:
    settings = Settings.from_env({}, database_url=db_url)
    body = {
        "product": "22101001",
        "quantity": {"value": 512.5, "uom": "KGM"},
        "produced_on": "2026-01-14",
        "expires_on": "2026-01-27",
        "eventTime": "2026-01-14T06:00:00+08:00",
        "origin": {"area_code": "320322", "place": "沛县", "producer": "沛县南郊蔬菜基地"},
        "documents": [{"type": "origin_certificate", "number": "CD320322001"}],
        "attributes": {"harvest_date": "2026-01-14"},
    }
    async with open_database(settings) as db:
        device = await principals.authenticate(db, world.devices["market"])
        opened = await capture.open_batch(db, device, {"eventID": new_id(), **body}, "")
        async with db.connection() as conn:
            api = await conn.fetchrow(
                "SELECT e.canonical, b.product_id, b.quantity, b.uom, b.produced_on, "
                "b.expires_on FROM events e JOIN batches b ON b.id = e.batch_id "
                "WHERE b.trace_code = $1",
                opened.trace_code,
            )
    cabbage = Product("cabbage", "vegetable", "22101001", "大白菜", "Napa cabbage", "KGM", 14, gtin="06901234567892")
    city = City({}, {"cabbage": cabbage}, {"cabbage": api["product_id"]})
    life = lives.Life(device, cabbage, {"eventID": new_id(), **body})
    built = bulk.build([life], [random.randrange(10**6, 10**7)], [10**9], city, datetime.now(UTC))
    ours, theirs = canonical.decode(built.events[0][5]), canonical.decode(api["canonical"])
    for c in (ours, theirs):
        for key in ("eventID", "traceCode", "recordedAt"):
            c.pop(key)
    assert ours == theirs
    assert built.batches[0][7:] == (api["quantity"], api["uom"], api["produced_on"], api["expires_on"])


# The ledger the demo wrote for seed 11 on TODAY (story over 6 days plus the scale path up to 4,000 events),
# before the demo moved out of services/: moving or refactoring code must not change a byte of it.
# Changed once on purpose since: the recall names the authority (issuedBy "徐州市市场监督管理局", was
# "regulator:<id> 徐州市市场监督管理局") and recalls.issued_by names the account as "token:<id> …"; with those
# two mapped back, the ledger hashes to the earlier 479f43ca…644280. And once more: sales at stalls and shops
# issue receipts (a receipt batch cut from its source, the sale naming it), which the ledger before had not
# (fa612467…29c6e4). And with custody (was c983b829…8579fe0): the tomatoes delivered on paper get the farm's
# shipment (and the voucher on the receipt) before the supermarket's receipt, one event more, so the scale
# path's lives start a few seconds later; every other event's content is unchanged. And once more (was
# ae5dd197…f751b569): two farms keep production records and a pasture's raw milk goes through a collection
# station and a dairy plant to the supermarkets (their flows draw from a generator of their own, but every later
# trace code moves).
LEDGER_FINGERPRINT = "b0d17018f858210effd830000e89977962d0c1d8fc7d0ed6307f7a810a5863d8"

FINGERPRINT_TABLES = (
    "SELECT b.trace_code, p.goods_code, n.code, b.device_id, b.open_event_id::text, b.open_digest, b.quantity::text, "
    "b.uom, b.produced_on::text, b.expires_on::text, h.seq, h.status "
    "FROM batches b JOIN products p ON p.id = b.product_id JOIN nodes n ON n.id = b.node_id "
    "JOIN batch_heads h ON h.batch_id = b.id ORDER BY b.trace_code",
    "SELECT b.trace_code, i.scheme, i.value FROM batch_identifiers i JOIN batches b ON b.id = i.batch_id "
    "ORDER BY i.scheme, i.value",
    "SELECT p.trace_code, c.trace_code, l.transformation_id::text, l.quantity::text, l.uom FROM batch_links l "
    "JOIN batches p ON p.id = l.parent_id JOIN batches c ON c.id = l.child_id ORDER BY 1, 2",
    "SELECT b.trace_code, r.level, r.reason, r.scope, r.issued_by, r.affected FROM recalls r "
    "JOIN batches b ON b.id = r.batch_id ORDER BY 1",
)


async def fingerprint(db_url: str) -> str:
    """SHA-256 over every event's canonical bytes in chain order, and the batches, identifiers, links and recalls.

    What the server records itself is normalised: ``recordedAt``, the salt of each seal (the seal is
    replaced by the private bytes it commits to), and the ids and times of the hold and recall events it
    appends (and the recorded time of every row).
    """
    conn = await asyncpg.connect(db_url)
    try:
        events = await conn.fetch(SELECT_LEDGER)
        tables = [await conn.fetch(q) for q in FINGERPRINT_TABLES]
    finally:
        await conn.close()
    digest = hashlib.sha256()
    appended_ids: dict[str, str] = {}
    for r in events:
        c = canonical.decode(r["canonical"])
        c["recordedAt"] = "-"
        if "sealed" in c:
            assert sealed.matches(c["sealed"], r["private"])
            c["sealed"] = canonical.decode(sealed.private_bytes(r["private"]))
        if r["appended"]:
            appended_ids[c["eventID"]] = f"appended:{len(appended_ids)}"
            c["eventID"] = appended_ids[c["eventID"]]
            c["eventTime"] = "-"
        fields = (r["trace_code"], str(r["seq"]), r["biz_step"], r["node"], str(r["device_id"]))
        digest.update("|".join(fields).encode() + b"\x00" + canonical.encode(c) + b"\x00")
        if not r["appended"]:
            digest.update(r["event_time"].isoformat().encode() + b"\x00")
    for rows in tables:
        for row in rows:
            digest.update(repr(tuple(row)).encode() + b"\x00")
    return digest.hexdigest()


# Receipts (batches a sale opened) and how many batches each was cut from.
RECEIPTS = """
SELECT b.trace_code, (SELECT count(*) FROM batch_links l WHERE l.child_id = b.id) AS sources
FROM batches b JOIN events e ON e.batch_id = b.id AND e.seq = 1
WHERE e.biz_step = 'retail_selling' OR convert_from(e.canonical, 'UTF8') LIKE '%"soldFrom"%'
"""
DESCENDANT_RECEIPTS = """
WITH RECURSIVE down(id) AS (
    SELECT id FROM batches WHERE trace_code = $1
    UNION SELECT l.child_id FROM batch_links l JOIN down ON l.parent_id = down.id
)
SELECT count(*) FROM down JOIN events e ON e.batch_id = down.id AND e.seq = 1 AND e.biz_step = 'retail_selling'
"""
RECEIPTS_OF = DESCENDANT_RECEIPTS
RECEIPTS_OF_IN_STATE = DESCENDANT_RECEIPTS.replace(
    "SELECT count(*) FROM down",
    "SELECT count(*) FROM down JOIN batch_heads h ON h.batch_id = down.id AND h.status = $2",
)

SELECT_LEDGER = """
SELECT b.trace_code, e.seq, e.canonical, e.private, e.biz_step, n.code AS node, e.device_id, e.event_time,
       e.device_id IS NULL AS appended
FROM events e JOIN batches b ON b.id = e.batch_id JOIN nodes n ON n.id = e.node_id
ORDER BY b.trace_code, e.seq
"""


async def test_the_demo_ledger_is_byte_for_byte_the_known_one(db_url: str) -> None:
    result = await load(db_url, seed=11, days=6, events=4_000)
    assert result.bulk_events > 2_000
    assert await fingerprint(db_url) == LEDGER_FINGERPRINT
