"""A full level-0 tile's upper rows, stored with it: written by the sequencer, read by proofs with their leaf,
filled in for tiles completed before they were stored, written once only, and checked by the audit."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.conftest import World
from tests.test_log import audit, check_proof, public_key
from tests.test_proof_bundle import integrate
from tests.test_proof_bundle import settings as settings  # the sequencer left to the test, as there
from tests.test_verify import tamper
from traceability.http.keys import DATABASE, LOG
from traceability.ledger import merkle, tile_levels
from traceability.services import transparency

PER_REQUEST = 100


async def two_tiles(world: World, client: Any) -> list[str]:
    """Somewhat more than two full level-0 tiles of events, in the log; their ids in leaf order."""
    ids: list[str] = []
    code = await world.open_batch()
    while len(ids) < 2 * merkle.TILE_WIDTH + 20:
        events = [world.event(code, "storing") for _ in range(PER_REQUEST)]
        body = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=201)
        ids += [r["eventID"] for r in body["receipts"]]
    await integrate(client)
    return ids


async def stored_uppers(superuser: asyncpg.Connection) -> dict[int, bytes | None]:
    rows = await superuser.fetch("SELECT idx, hashes, upper FROM log_tiles WHERE level = 0 AND width = 256")
    for r in rows:
        assert r["upper"] is None or r["upper"] == tile_levels.upper_of(r["hashes"])
    return {r["idx"]: r["upper"] for r in rows}


async def proofs(client: Any, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for event_id in ids:
        resp = await client.get(f"/api/v1/events/{event_id}/proof")
        assert resp.status == 200, await resp.text()
        out.append(await resp.json())
    return out


def fresh_caches(client: Any) -> None:
    """As a server that has never seen these tiles: nothing kept in memory."""
    lg = client.server.app[LOG]
    lg.tiles.__init__()


async def test_the_sequencer_stores_each_full_tiles_upper_rows_and_proofs_read_them(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    ids = await two_tiles(world, client)
    uppers = await stored_uppers(superuser)
    assert sorted(uppers) == [0, 1]
    assert all(u is not None and len(u) == tile_levels.UPPER_BYTES for u in uppers.values())
    # The partial tile at the right edge has none.
    assert await superuser.fetchval("SELECT count(*) FROM log_tiles WHERE upper IS NOT NULL AND width < 256") == 0
    fresh_caches(client)
    key = await public_key(client)
    sample = [ids[0], ids[17], ids[255], ids[256], ids[400], ids[-1]]
    for proof in await proofs(client, sample):
        check_proof(proof, key)
    # Read with the leaf: no level-0 tile was read whole, no upper rows were computed and kept.
    cache = client.server.app[LOG].tiles
    assert not cache._uppers
    assert not any(level == 0 and index < 2 for (_, level, index) in cache._tiles)


async def test_tiles_completed_before_the_rows_were_stored_are_filled_in(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    ids = await two_tiles(world, client)
    expected = await stored_uppers(superuser)
    await tamper(superuser, "UPDATE log_tiles SET upper = NULL")  # as a log completed before migration 0030
    fresh_caches(client)
    key = await public_key(client)
    for proof in await proofs(client, [ids[3], ids[300]]):  # computed from the tiles meanwhile
        check_proof(proof, key)
    app = client.server.app
    async with app[DATABASE].connection() as conn:
        assert await transparency.fill_uppers(conn, app[LOG], -1, limit=1) == 0  # one tile, more may be left
        assert await transparency.fill_uppers(conn, app[LOG], 0, limit=1) == 1
        assert await transparency.fill_uppers(conn, app[LOG], 1, limit=1) is None
        assert await transparency.fill_uppers(conn, app[LOG], -1) is None  # none left
    assert await stored_uppers(superuser) == expected
    fresh_caches(client)
    for proof in await proofs(client, [ids[3], ids[300]]):
        check_proof(proof, key)


async def test_upper_rows_are_written_once_and_never_changed(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    await two_tiles(world, client)
    for statement in (
        "UPDATE log_tiles SET upper = NULL WHERE upper IS NOT NULL",
        "UPDATE log_tiles SET upper = substring(upper FROM 33) || substring(upper FROM 1 FOR 32) WHERE idx = 0"
        " AND level = 0",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser.execute(statement)
    # Where the rows are missing they may be written, but only with the tile left as it was.
    await tamper(superuser, "UPDATE log_tiles SET upper = NULL WHERE idx = 1 AND level = 0")
    upper = tile_levels.upper_of(await superuser.fetchval("SELECT hashes FROM log_tiles WHERE idx = 1 AND level = 0"))
    for statement in (
        "UPDATE log_tiles SET upper = $1, idx = 7 WHERE idx = 1 AND level = 0",
        "UPDATE log_tiles SET upper = $1, hashes = substring(hashes FROM 33) || substring(hashes FROM 1 FOR 32)"
        " WHERE idx = 1 AND level = 0",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser.execute(statement, upper)
    await superuser.execute("UPDATE log_tiles SET upper = $1 WHERE idx = 1 AND level = 0", upper)
    with pytest.raises(asyncpg.CheckViolationError):  # only a full level-0 tile has them, of 30 hashes
        await superuser.execute("UPDATE log_tiles SET upper = '\\x00'::bytea WHERE width < 256")


async def test_the_audit_names_upper_rows_that_do_not_match_and_proofs_from_them_fail(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection
) -> None:
    ids = await two_tiles(world, client)
    key = await public_key(client)
    assert await audit(db_url, key) == []
    await tamper(
        superuser,
        "UPDATE log_tiles SET upper = substring(upper FROM 33) || substring(upper FROM 1 FOR 32)"
        " WHERE level = 0 AND idx = 1",
    )
    assert await audit(db_url, key) == ["tile (0, 1): upper rows do not match the leaves"]
    fresh_caches(client)
    (good, bad) = await proofs(client, [ids[5], ids[300]])
    check_proof(good, key)
    with pytest.raises(AssertionError):
        check_proof(bad, key)
