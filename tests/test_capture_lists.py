"""A list whose events each name a batch of their own is written in one statement, all of it or none: its
records are chained like any others, a resent list gets its receipts back, and one event that cannot be
written (custody, an unknown batch, a failure in the database) leaves the whole list unwritten."""

from __future__ import annotations

import asyncpg

from tests.conftest import World
from traceability.domain import tracecode
from traceability.ledger import chain


async def _heads(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM batch_heads ORDER BY batch_id"))


async def test_a_list_on_batches_of_their_own_is_chained_in_one_commit(
    world: World, superuser: asyncpg.Connection
) -> None:
    codes = [await world.open_batch() for _ in range(3)]
    events = [world.event(c, step) for c, step in zip(codes, ("receiving", "storing", "retail_selling"), strict=True)]
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=201)
    receipts = data["receipts"]
    assert [r["eventID"] for r in receipts] == [e["eventID"] for e in events]
    assert [r["traceCode"] for r in receipts] == codes
    assert [(r["seq"], r["replayed"]) for r in receipts] == [(2, False)] * 3
    rows = await superuser.fetch(
        """SELECT e.event_id::text AS event_id, e.seq, e.prev_hash, e.hash, e.canonical, e.xmin::text AS tx,
                  h.seq AS head_seq, h.head_hash, o.hash AS opening
           FROM events e JOIN batch_heads h ON h.batch_id = e.batch_id
                JOIN events o ON o.batch_id = e.batch_id AND o.seq = 1
           WHERE e.event_id = ANY($1::uuid[])""",
        [e["eventID"] for e in events],
    )
    assert len({r["tx"] for r in rows}) == 1  # one statement, one commit
    by_id = {r["event_id"]: r for r in rows}
    for receipt in receipts:
        row = by_id[receipt["eventID"]]
        assert row["prev_hash"] == row["opening"]
        assert row["hash"] == chain.link(row["prev_hash"], row["canonical"])
        assert (row["head_seq"], row["head_hash"]) == (2, row["hash"])
        assert receipt["hash"] == row["hash"].hex() and receipt["prevHash"] == row["prev_hash"].hex()


async def test_a_resent_list_gets_its_receipts_back(world: World, superuser: asyncpg.Connection) -> None:
    codes = [await world.open_batch() for _ in range(3)]
    events = [world.event(c) for c in codes]
    first = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=201)
    again = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=200)
    assert [r["replayed"] for r in again["receipts"]] == [True] * 3
    assert [dict(r, replayed=False) for r in again["receipts"]] == first["receipts"]
    # Part of it recorded already: the rest is written, the recorded part answered as it was.
    more = [world.event(c, "storing") for c in codes]
    data = await world.post("/api/v1/events", {"events": [events[0], *more[1:]]}, world.devices["slaughter"])
    assert [(r["seq"], r["replayed"]) for r in data["receipts"]] == [(2, True), (3, False), (3, False)]
    assert await superuser.fetchval("SELECT count(*) FROM events") == 3 + 3 + 2


async def test_one_refused_event_leaves_the_list_unwritten(world: World, superuser: asyncpg.Connection) -> None:
    mine = [await world.open_batch() for _ in range(2)]
    theirs = await world.open_batch("market")  # the slaughterhouse never held it
    before = await _heads(superuser)
    events = [world.event(mine[0]), world.event(theirs, "storing"), world.event(mine[1])]
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=403)
    assert data["error"]["field"] == "events[1].traceCode"
    events[1] = world.event(tracecode.make("320311", 9_999_999))  # a code no batch has
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=422)
    assert (data["error"]["code"], data["error"]["field"]) == ("unknown_reference", "events[1].traceCode")
    assert await _heads(superuser) == before
    assert await superuser.fetchval("SELECT count(*) FROM events") == 3


async def test_a_failure_in_the_database_leaves_the_list_unwritten(world: World, superuser: asyncpg.Connection) -> None:
    codes = [await world.open_batch() for _ in range(3)]
    await superuser.execute("""
        CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF convert_from(NEW.canonical, 'UTF8') LIKE '%"boom"%' THEN RAISE EXCEPTION 'disk on fire'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom();
    """)
    before = await _heads(superuser)
    events = [world.event(codes[0]), world.event(codes[1], attributes={"note": "boom"}), world.event(codes[2])]
    resp = await world.client.post(
        "/api/v1/events", json={"events": events}, headers=world.auth(world.devices["slaughter"])
    )
    assert resp.status == 500
    assert "disk on fire" not in (await resp.json())["error"]["message"]
    assert await _heads(superuser) == before
    assert await superuser.fetchval("SELECT count(*) FROM events") == 3
