"""Capturing events: chaining, receipts, idempotent retries, all-or-nothing lists, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

import asyncpg

from tests.conftest import World, new_id
from traceability.domain.fields import utc_ms
from traceability.ledger import canonical, chain


async def count_events(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events"))


async def test_receipts_chain_from_the_trace_code(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    first = await superuser.fetchrow("SELECT prev_hash, hash, canonical FROM events WHERE seq = 1")
    genesis = hashlib.sha256(b"trace/genesis/v1\x00" + code.encode()).digest()
    assert first["prev_hash"] == genesis
    assert first["hash"] == hashlib.sha256(b"trace/chain/v1\x00" + genesis + first["canonical"]).digest()
    sent = world.event(code, "shipping")
    receipt = await world.post("/api/v1/events", sent, world.devices["slaughter"], expect=201)
    assert receipt["seq"] == 2
    assert receipt["prevHash"] == first["hash"].hex()
    stored = await superuser.fetchrow("SELECT hash, canonical FROM events WHERE seq = 2")
    assert receipt["hash"] == stored["hash"].hex() == chain.link(first["hash"], stored["canonical"]).hex()
    content = canonical.decode(stored["canonical"])
    assert content["node"] == world.nodes["slaughter"]
    assert content["traceCode"] == code and content["bizStep"] == "shipping"
    assert content["eventTime"] == utc_ms(datetime.fromisoformat(sent["eventTime"]))
    assert content["eventTimeZoneOffset"] == "+08:00"
    assert canonical.is_canonical(stored["canonical"])
    assert set(receipt) == {"eventID", "traceCode", "seq", "hash", "prevHash", "recordedAt", "replayed"}


async def test_same_id_same_content_returns_the_original_receipt(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    event = world.event(code, quantity={"value": "12.50", "uom": "KGM"})
    first = await world.post("/api/v1/events", event, world.devices["slaughter"], expect=201)
    # The same content spelled differently (a number instead of a string) is the same event.
    again = dict(event, quantity={"value": 12.5, "uom": "KGM"})
    second = await world.post("/api/v1/events", again, world.devices["slaughter"], expect=200)
    assert second["replayed"] is True
    assert {k: v for k, v in second.items() if k != "replayed"} == {k: v for k, v in first.items() if k != "replayed"}
    assert await count_events(superuser) == 2


async def test_same_id_other_content_is_a_conflict(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    event = world.event(code)
    await world.post("/api/v1/events", event, world.devices["slaughter"], expect=201)
    data = await world.post("/api/v1/events", dict(event, bizStep="storing"), world.devices["slaughter"], expect=409)
    assert data["error"]["code"] == "event_conflict"
    assert event["eventID"] in data["error"]["message"]
    assert await count_events(superuser) == 2


async def test_a_list_is_all_or_nothing(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    events = [world.event(code) for _ in range(3)]
    events[2]["quantity"] = {"value": -1, "uom": "KGM"}
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "events[2].quantity.value"
    assert "negative" in data["error"]["message"]
    assert await count_events(superuser) == 1
    events[2]["quantity"] = {"value": 1, "uom": "KGM"}
    events[1]["traceCode"] = "32030000000000999990"[:19] + "0"
    events[1]["traceCode"] = await world.open_batch()
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=201)
    seqs = [r["seq"] for r in data["receipts"]]
    assert seqs == [2, 2, 3]
    assert await count_events(superuser) == 5


async def test_a_list_with_replays_and_new_events(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    old = world.event(code)
    await world.post("/api/v1/events", old, world.devices["slaughter"], expect=201)
    new = world.event(code, "storing")
    data = await world.post("/api/v1/events", {"events": [old, new]}, world.devices["slaughter"], expect=201)
    assert [r["replayed"] for r in data["receipts"]] == [True, False]
    assert [r["seq"] for r in data["receipts"]] == [2, 3]


async def test_a_failure_mid_transaction_leaves_nothing(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    other = await world.open_batch()
    await superuser.execute("""
        CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF convert_from(NEW.canonical, 'UTF8') LIKE '%"boom"%' THEN RAISE EXCEPTION 'disk on fire'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom();
    """)
    heads_before = await superuser.fetch("SELECT * FROM batch_heads ORDER BY batch_id")
    events = [world.event(code), world.event(other), world.event(code, attributes={"note": "boom"})]
    resp = await world.client.post(
        "/api/v1/events", json={"events": events}, headers=world.auth(world.devices["slaughter"])
    )
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "internal_error"
    assert "disk on fire" not in body["error"]["message"]
    assert await count_events(superuser) == 2
    assert await superuser.fetch("SELECT * FROM batch_heads ORDER BY batch_id") == heads_before


async def test_fifty_scanners_on_one_batch(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    tokens = []
    for i in range(50):
        device = await world.post(
            "/api/v1/admin/devices", {"node": world.nodes["slaughter"], "name": f"gun {i}"}, expect=201
        )
        tokens.append(device["credential"])

    async def scan(token: str) -> Any:
        resp = await world.client.post("/api/v1/events", json=world.event(code), headers=world.auth(token))
        assert resp.status == 201, await resp.text()
        return await resp.json()

    receipts = await asyncio.gather(*(scan(t) for t in tokens))
    assert sorted(r["seq"] for r in receipts) == list(range(2, 52))
    rows = await superuser.fetch("SELECT seq, prev_hash, hash, canonical FROM events ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, 52))
    prev = chain.genesis(code)
    for r in rows:
        assert r["prev_hash"] == prev
        assert chain.link(prev, r["canonical"]) == r["hash"]
        prev = r["hash"]
    head = await superuser.fetchrow("SELECT seq, head_hash FROM batch_heads")
    assert head["seq"] == 51 and head["head_hash"] == prev


async def test_batches_do_not_wait_on_each_other(world: World, db_url: str) -> None:
    """A writer holding one batch's head does not block an append to another batch."""
    held = await world.open_batch()
    free = await world.open_batch()
    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(
            "SELECT 1 FROM batch_heads h JOIN batches b ON b.id = h.batch_id WHERE b.trace_code = $1 FOR UPDATE", held
        )
        resp = await asyncio.wait_for(
            world.client.post("/api/v1/events", json=world.event(free), headers=world.auth(world.devices["slaughter"])),
            timeout=10,
        )
        assert resp.status == 201
        blocked = asyncio.ensure_future(
            world.client.post("/api/v1/events", json=world.event(held), headers=world.auth(world.devices["slaughter"]))
        )
        await asyncio.sleep(0.3)
        assert not blocked.done()
        await tx.rollback()
        assert (await asyncio.wait_for(blocked, timeout=10)).status == 201
    finally:
        await blocker.close()


async def test_acknowledged_means_committed(world: World, db_url: str, client: Any) -> None:
    code = await world.open_batch()
    receipt = await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
    other = await asyncpg.connect(db_url)
    try:
        assert await other.fetchval("SELECT hash FROM events WHERE event_id = $1", receipt["eventID"]) == bytes.fromhex(
            receipt["hash"]
        )
    finally:
        await other.close()
    from traceability.http.keys import DATABASE

    async with client.server.app[DATABASE].connection() as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_open_batch_is_idempotent(world: World, superuser: asyncpg.Connection) -> None:
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 90, "uom": "KGM"}}
    first = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=201)
    again = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=200)
    assert again["traceCode"] == first["traceCode"] and again["replayed"] is True
    changed = dict(body, quantity={"value": 91, "uom": "KGM"})
    data = await world.post("/api/v1/batches", changed, world.devices["slaughter"], expect=409)
    assert data["error"]["code"] == "event_conflict"
    assert await superuser.fetchval("SELECT count(*) FROM batches") == 1


async def test_trace_code_shape(world: World) -> None:
    from traceability.domain import tracecode

    code = await world.open_batch()  # the slaughterhouse is registered in area 320311
    assert len(code) == 20 and code.isdigit() and code.startswith("320311")
    assert tracecode.validate(code) == code
    codes = {await world.open_batch() for _ in range(5)}
    assert len(codes) == 5


async def test_identifiers_attach_and_look_up(world: World, client: Any) -> None:
    drug = "81234560000000000011"
    code = await world.open_batch(
        identifiers=[
            {"scheme": "gs1", "gtin": "6901234567892", "lot": "PK2405"},
            {"scheme": "drug_code", "value": drug},
        ]
    )
    resp = await client.get("/api/v1/identifiers", params={"scheme": "gs1", "gtin": "06901234567892", "lot": "PK2405"})
    assert (await resp.json())["trace_code"] == code
    resp = await client.get("/api/v1/identifiers", params={"scheme": "drug_code", "value": drug})
    assert (await resp.json())["trace_code"] == code
    body = {
        "eventID": new_id(),
        "product": "21113011",
        "quantity": {"value": 1, "uom": "KGM"},
        "identifiers": [{"scheme": "drug_code", "value": drug}],
    }
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=409)
    assert data["error"]["field"] == "identifiers"
    resp = await client.get("/api/v1/identifiers", params={"scheme": "drug_code", "value": "81234560000000000012"})
    assert resp.status == 404


async def test_single_events_arriving_together_share_a_commit_and_fail_alone(
    world: World, superuser: asyncpg.Connection, db_url: str
) -> None:
    """Single events that arrive while others are being written go in one statement and one commit; an
    event that fails there is written again alone, and only it fails."""
    from traceability.http.keys import APPENDS

    appends = world.client.server.app[APPENDS]
    codes = [await world.open_batch() for _ in range(8)]
    await superuser.execute("""
        CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF convert_from(NEW.canonical, 'UTF8') LIKE '%"boom"%' THEN RAISE EXCEPTION 'disk on fire'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom();
    """)

    async def post(event: dict[str, Any]) -> Any:
        return await world.client.post("/api/v1/events", json=event, headers=world.auth(world.devices["slaughter"]))

    async def until(condition: Any, what: str) -> None:
        for _ in range(500):
            if await condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never: {what}")

    async def writes_waiting() -> int:
        return int(
            await superuser.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                " AND query LIKE '%WITH given AS%'"
            )
        )

    for failing in (False, True):
        blocker = await asyncpg.connect(db_url)
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE log_queue IN EXCLUSIVE MODE")  # each write waits to queue its events
            first = []
            for c in codes[: appends.writers]:  # one write under way each
                first.append(asyncio.ensure_future(post(world.event(c))))

                async def under_way(n: int = len(first)) -> bool:
                    return await writes_waiting() == n

                await until(under_way, "a write waiting")
            rest = [world.event(c) for c in codes[appends.writers :]]
            if failing:
                rest[-1]["attributes"] = {"note": "boom"}
            later = [asyncio.ensure_future(post(e)) for e in rest]

            async def all_waiting() -> bool:
                return len(appends._waiting) == len(rest)

            await until(all_waiting, "the other events waiting for the next write")
        finally:
            await blocker.close()  # the lock goes with the connection
        answers = await asyncio.gather(*first, *later)
        statuses = [a.status for a in answers]
        stamps = await superuser.fetch(
            "SELECT xmin::text AS tx FROM events WHERE event_id = ANY($1::uuid[])", [e["eventID"] for e in rest]
        )
        if not failing:
            assert statuses == [201] * len(codes)
            assert len({r["tx"] for r in stamps}) == 1  # one statement, one commit
        else:
            assert statuses == [201] * (len(codes) - 1) + [500]
            assert len(stamps) == len(rest) - 1
    rows = await superuser.fetch("SELECT b.trace_code, e.seq FROM events e JOIN batches b ON b.id = e.batch_id")
    assert sorted(r["seq"] for r in rows if r["trace_code"] == codes[-1]) == [1, 2]
    assert sorted(r["seq"] for r in rows if r["trace_code"] == codes[0]) == [1, 2, 3]
