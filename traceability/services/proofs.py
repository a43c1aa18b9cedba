"""Inclusion proofs: one event's, or a bundle of many (a batch's events, listed events or leaves) against one
checkpoint.

Every proof carries the bytes that were hashed (the event's canonical bytes and the previous chain hash),
so whoever checks it recomputes the chain hash, the leaf hash and the path up to the signed root.

Tiles: each leaf's group of 16 hashes in its level-0 tile and the tile's upper rows (stored with it once
it is full) are read in the same query as the leaf; the tiles above it, shared by 65,536 leaves or more,
and the part of the path above the level-0 tile, shared by its 256 leaves, come from the log's
:class:`~traceability.services.transparency.TileCache`, with their node hashes computed once. A full
tile whose upper rows are not stored yet (completed before they were) is read whole and they are computed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from traceability import errors
from traceability.ledger import merkle, tile_levels
from traceability.services.transparency import Log
from traceability.storage import batches_repo, log_repo
from traceability.storage.database import Connection, Database, Record

MAX_BUNDLE = 256
"""Proofs of a batch's events in one bundle at most (a batch with more is read page by page)."""
MAX_LISTED = 100
"""Events and leaves named in one request at most."""
MAX_ALSO = 64
"""Other batches' events whose proofs a batch's bundle carries at most (one for each batch a page's batch came
from: ``views.consumer.MAX_ANCESTORS``)."""


TileReader = Callable[[set[merkle.TileKey]], Awaitable[dict[merkle.TileKey, bytes]]]


def _full(tile: int, size: int) -> bool:
    return (tile + 1) * merkle.TILE_WIDTH <= size


async def _paths(lg: Log, rows: Sequence[Record], size: int, read: TileReader) -> list[list[str]]:
    """The rows' audit paths in the tree of ``size``, hex-encoded.

    A leaf in a full level-0 tile: the path inside the tile comes from its group's 16 hashes and the
    tile's upper rows (both with the row; where the rows are not stored yet, kept by the log's cache,
    else computed once from the tile, read for that); the part above the tile, shared by its 256
    leaves, from the cache or the upper tiles.
    A leaf in the right-edge tile: from the right-edge tiles, which every recent leaf shares.
    """
    uppers: dict[int, bytes | None] = {}
    shared: dict[int, list[bytes] | None] = {}
    needed: set[merkle.TileKey] = set()
    for row in rows:
        index = row["leaf_index"]
        tile = index // merkle.TILE_WIDTH
        if not _full(tile, size):  # the right edge: the whole path depends on the index
            needed |= merkle.tiles_for_inclusion(index, size)
            continue
        if tile not in uppers and uppers.setdefault(tile, row["tile_upper"] or lg.tiles.upper(lg.id, tile)) is None:
            needed.add((0, tile))
        if tile not in shared and shared.setdefault(tile, lg.tiles.above(lg.id, size, tile)) is None:
            needed |= merkle.tiles_for_inclusion_above(tile, size)
    tiles = await _tiles(lg, needed, size, read) if needed else {}
    paths = []
    for row in rows:
        index = row["leaf_index"]
        tile = index // merkle.TILE_WIDTH
        if tile not in uppers:
            path = merkle.inclusion_proof(index, size, tiles)
        else:
            if (upper := uppers[tile]) is None:
                upper = uppers[tile] = lg.tiles.keep_upper(lg.id, tile, tiles[(0, tile)])
            if (above := shared[tile]) is None:
                above = shared[tile] = merkle.inclusion_proof_above(tile, size, tiles, lg.tiles.ranges(lg.id))
                lg.tiles.keep_above(lg.id, size, tile, above)
            path = tile_levels.path_within(index % merkle.TILE_WIDTH, row["leaf_group"], upper) + above
        paths.append([h.hex() for h in path])
    return paths


async def _tiles(lg: Log, needed: set[merkle.TileKey], size: int, read: TileReader) -> dict[merkle.TileKey, bytes]:
    """The ``needed`` tiles of the tree of ``size``: from the log's cache, else ``read`` from storage and
    cached with the node hashes computed from them; except full level-0 tiles, read only to compute
    their upper rows once (those are kept instead)."""
    tiles = lg.tiles.get(lg.id, needed, size)
    missing = needed - tiles.keys()
    if missing:
        came = await read(missing)
        tiles.update(came)
        tiles.update(lg.tiles.put(lg.id, {k: t for k, t in came.items() if k[0] or not _full(k[1], size)}))
    return tiles


def _logged(lg: Log, row: Record) -> bool:
    return row["leaf_index"] is not None and row["log_id"] == lg.id


async def prove_inclusion(db: Database, lg: Log, event_id: str) -> dict[str, Any]:
    """An event's inclusion proof against the latest checkpoint, with that checkpoint.

    Concurrent requests share their reads: the events asked for while one read is under way are read
    together in the next (one query), and the checkpoint and upper tiles come from the log's caches.
    """

    async def read(event_ids: list[str]) -> dict[str, Record]:
        async with db.connection() as conn:
            rows = await log_repo.find_events_proofs(conn, event_ids, merkle.TILE_WIDTH)
        return {r["event_id"]: r for r in rows}

    row = await lg.leaves.get(event_id, read)
    if row is None:
        raise errors.NotFound(f"no event {event_id}")
    covering = None
    if _logged(lg, row):
        covering = lg.latest.cached(row["leaf_index"]) or await lg.latest.refresh(db, lg.id, row["leaf_index"])
    if covering is None:
        raise errors.NotFound(f"event {event_id} is recorded and waiting to enter the log; retry in a second")
    size, note = covering

    async def read_tiles(keys: set[merkle.TileKey]) -> dict[merkle.TileKey, bytes]:
        async with db.connection() as conn:
            return await log_repo.fetch_tiles(conn, lg.id, keys)

    (path,) = await _paths(lg, [row], size, read_tiles)
    return {
        "log_id": lg.log_id,
        "event_id": event_id,
        "event_hash": row["event_hash"].hex(),
        "prev_hash": row["prev_hash"].hex(),
        "canonical": row["canonical"].decode("utf-8"),
        "leaf_index": row["leaf_index"],
        "tree_size": size,
        "leaf_hash": log_repo.leaf_hash(row).hex(),
        "audit_path": path,
        "checkpoint": note,
    }


async def _bundle(conn: Connection, lg: Log, rows: Sequence[Record]) -> dict[str, Any]:
    """The proofs of the logged rows against one checkpoint (the newest), and the ids still waiting."""
    logged = [r for r in rows if _logged(lg, r)]
    covering = await lg.latest.covering(conn, lg.id, max((r["leaf_index"] for r in logged), default=-1))
    if covering is None:  # no checkpoint yet, or none covering the newest leaf
        logged = []
    size, note = covering if covering is not None else (0, None)
    paths = await _paths(lg, logged, size, lambda keys: log_repo.fetch_tiles(conn, lg.id, keys)) if logged else []
    seen = {r["event_id"] for r in logged}
    return {
        "log_id": lg.log_id,
        "tree_size": size,
        "checkpoint": note,
        "proofs": [
            {
                "event_id": r["event_id"],
                "seq": r["seq"],
                "event_hash": r["event_hash"].hex(),
                "prev_hash": r["prev_hash"].hex(),
                "canonical": r["canonical"].decode("utf-8"),
                "leaf_index": r["leaf_index"],
                "leaf_hash": log_repo.leaf_hash(r).hex(),
                "audit_path": path,
            }
            for r, path in zip(logged, paths, strict=True)
        ],
        "pending": [r["event_id"] for r in rows if r["event_id"] not in seen],
    }


async def prove_batch(
    db: Database, lg: Log, code: str, after_seq: int, limit: int, also: Sequence[str] = ()
) -> dict[str, Any]:
    """The proofs of a batch's events after ``after_seq`` (at most ``limit``, in chain order), one checkpoint;
    in the first page (``after_seq`` 0), also those of the events ``also`` names (other batches' records a
    page shows beside the batch's own; each such proof says ``also``).

    ``next`` is the URL of the next page when the batch has more events; ``missing`` lists the events of
    ``also`` that name nothing recorded.
    """
    also = list(dict.fromkeys(also)) if after_seq == 0 else []
    async with db.connection() as conn:
        rows = await log_repo.find_batch_proofs(conn, code, after_seq, limit + 1, merkle.TILE_WIDTH)
        if not rows and await batches_repo.find_head(conn, code) is None:
            raise errors.NotFound(f"no batch has trace code {code}")
        own = {r["event_id"] for r in rows[:limit]}
        named = await log_repo.find_events_proofs(conn, also, merkle.TILE_WIDTH) if also else []
        extra = [r for r in named if r["event_id"] not in own]
        bundle = await _bundle(conn, lg, [*rows[:limit], *extra] if also else rows[:limit])
    if also:
        asked = {r["event_id"] for r in extra}
        for p in bundle["proofs"]:
            if p["event_id"] in asked:
                p["also"] = True
        found = own | asked
        bundle["missing"] = [e for e in also if e not in found]
    more = len(rows) > limit
    nxt = f"/api/v1/batches/{code}/proofs?after={rows[limit - 1]['seq']}&limit={limit}" if more else None
    return {"trace_code": code, **bundle, "next": nxt}


async def prove_events(db: Database, lg: Log, event_ids: Sequence[str], leaves: Sequence[int]) -> dict[str, Any]:
    """The proofs of the named events and of the events at the named leaf indexes, against one checkpoint.

    ``missing`` lists the event ids and leaf indexes that name nothing recorded.
    """
    async with db.connection() as conn:
        rows = await log_repo.find_events_proofs(conn, event_ids, merkle.TILE_WIDTH) if event_ids else []
        by_leaf = await log_repo.find_leaves_proofs(conn, lg.id, leaves, merkle.TILE_WIDTH) if leaves else []
        found = {r["event_id"] for r in rows}
        unique = {r["event_id"]: r for r in [*rows, *by_leaf]}
        bundle = await _bundle(conn, lg, list(unique.values()))
    at = {r["leaf_index"] for r in by_leaf}
    missing: list[str | int] = [e for e in event_ids if e not in found]
    missing += [i for i in leaves if i not in at]
    return {**bundle, "missing": missing}
