"""Reading the whole ledger for ``traceability verify``: one snapshot shared by several connections,
and the tables in bounded chunks over disjoint ranges, so that readers in separate processes split
the work and none holds more than a chunk.

Every chunk is read by a plain query over a key range or after a key (never OFFSET), straight off
an index; the next chunk is asked for while the caller checks the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg

from traceability.storage.database import Connection, Record, fetch_one

CHUNK = 5000
"""Rows (or event keys) a chunk; leaves, being small, come four chunks at a time, tiles a tenth. A bundle
(one row of concatenated columns standing for many rows) holds about four chunks' worth."""
Chunks = AsyncGenerator[list[Record], None]
T = TypeVar("T")
_SNAPSHOT = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def export_snapshot(conn: Connection) -> str:
    """The id of this transaction's snapshot (call inside a repeatable-read transaction), for other readers."""
    snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
    return snapshot


@contextlib.asynccontextmanager
async def snapshot_reader(url: str, snapshot: str) -> AsyncIterator[Connection]:
    """A connection of its own inside a read-only transaction that sees exactly the exported snapshot."""
    if not _SNAPSHOT.match(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    # A plain connection: the audit reads only built-in types, so the JSON codecs (whose set-up costs the
    # server a catalog look-up on every connection) are not installed.
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET max_parallel_workers_per_gather = 0")  # the readers are the parallelism
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            yield conn
    finally:
        await conn.close()


async def _chunks(
    fetch: Callable[[Record | None], Awaitable[list[Record]]], more: Callable[[list[Record]], bool]
) -> Chunks:
    """Chunks from ``fetch(last row of the previous chunk)`` while ``more(chunk)``, each asked for before
    the previous one is handed out."""
    pending: asyncio.Future[list[Record]] | None = asyncio.ensure_future(fetch(None))
    try:
        while pending is not None:
            rows = await pending
            pending = asyncio.ensure_future(fetch(rows[-1] if rows else None)) if more(rows) else None
            await sent()
            yield rows
    finally:
        await _settled(pending)


async def sent() -> None:
    """Let a query just asked for reach the server, so that it runs while the caller works on the last one."""
    for _ in range(3):  # asyncpg writes a prepared statement's Bind/Execute within a few loop turns
        await asyncio.sleep(0)


async def prefetched(fetches: Iterator[Callable[[], Awaitable[T]]]) -> AsyncGenerator[T, None]:
    """The results of ``fetches`` in order, each one asked for before the previous one is handed out."""
    pending = next((asyncio.ensure_future(f()) for f in fetches), None)
    try:
        while pending is not None:
            result = await pending
            pending = next((asyncio.ensure_future(f()) for f in fetches), None)
            if pending is not None:
                await sent()
            yield result
    finally:
        await _settled(pending)


async def _settled(pending: asyncio.Future[Any] | None) -> None:
    """Let a query asked for ahead, whose answer is no longer wanted, end on its own. Cancelling it would
    cancel the statement in PostgreSQL, and with it the snapshot's transaction: the reader's next query
    failed as "current transaction is aborted" (the tiles after the leaves, when the read past the last
    leaf was still running). Its own failure is of no interest; the caller's cancellation still stops it."""
    if pending is not None:
        with contextlib.suppress(Exception):
            await pending


# -- chains ---------------------------------------------------------------------------------------

EVENT_BATCH_RANGE = "SELECT min(batch_id), max(batch_id) FROM events"
CHAIN_CHUNK = """
SELECT e.batch_id, e.seq, e.prev_hash, e.hash, e.canonical, e.private
FROM events e
WHERE (e.batch_id, e.seq) > ($1, $2) AND e.batch_id < $3
ORDER BY e.batch_id, e.seq
LIMIT $4
"""
HEADS_IN = """
SELECT b.id, b.trace_code, h.seq, h.head_hash, f.last_hash AS chain_start
FROM batches b
LEFT JOIN batch_heads h ON h.batch_id = b.id AND h.batch_id >= $1 AND h.batch_id < $2  -- the range off its index
LEFT JOIN foreign_batches f ON f.batch_id = b.id
WHERE b.id >= $1 AND b.id < $2
"""


# The events of batches lo <= id < hi streamed row by row in PostgreSQL's binary COPY format, in chain order (see
# :class:`traceability.services.audit_bulk.ChainWalk`): batch id, seq, hash, prev hash, node id, device id,
# canonical bytes and the sealed details' opening, each as stored. Plain columns that the server only sends:
# no expression builds a value for each row (the walker hashes the tag, prev hash and canonical bytes in
# turn, and looks the node and device up in the ids of ``KNOWN_IDS``).
CHAIN_COPY = """
SELECT batch_id, seq, hash, prev_hash, node_id, device_id, canonical, private
FROM events WHERE batch_id >= $1 AND batch_id < $2 ORDER BY batch_id, seq
"""
ESTIMATE_EVENTS = "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass"
KNOWN_IDS = """
SELECT coalesce((SELECT string_agg(int8send(id), '' ORDER BY id) FROM nodes), ''::bytea) AS nodes,
       coalesce((SELECT string_agg(int8send(id), '' ORDER BY id) FROM devices), ''::bytea) AS devices
"""


async def copy_chains(conn: Connection, lo: int, hi: int, sink: Callable[[bytes], Coroutine[Any, Any, None]]) -> None:
    """Stream the events of batches ``lo <= id < hi`` (see ``CHAIN_COPY``) to ``sink`` as binary COPY data, a
    whole number of rows at a time (the header before the first, the trailer after the last)."""
    await conn.copy_from_query(CHAIN_COPY, lo, hi, output=sink, format="binary")


async def known_ids(conn: Connection) -> tuple[bytes, bytes]:
    """The ids of every node and of every device, each in ascending order as 8-byte big-endian integers."""
    row = await fetch_one(conn, KNOWN_IDS)
    return row["nodes"], row["devices"]


async def estimate_events(conn: Connection) -> int:
    """The planner's estimate of the number of events (instant; for progress, never for a result)."""
    value: int = await conn.fetchval(ESTIMATE_EVENTS)
    return value


async def event_batch_range(conn: Connection) -> tuple[int, int] | None:
    """The smallest and largest batch id any event names (None when there are no events)."""
    row = await conn.fetchrow(EVENT_BATCH_RANGE)
    return None if row is None or row[0] is None else (row[0], row[1])


async def chain_chunks(conn: Connection, lo: int, hi: int) -> Chunks:
    """Events of batches ``lo <= id < hi`` in chain order (batch, seq): batch_id, seq, prev_hash, hash,
    canonical, private."""
    limit = CHUNK

    async def fetch(last: Record | None) -> list[Record]:
        after = (lo - 1, 2**31 - 1) if last is None else (last[0], last[1])
        return list(await conn.fetch(CHAIN_CHUNK, *after, hi, limit))

    async for rows in _chunks(fetch, lambda rows: len(rows) == limit):
        yield rows


ORPHANS_IN = """
SELECT e.event_id::text AS event_id, e.seq, e.batch_id,
       NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = e.batch_id) AS no_batch,
       NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.node_id) AS no_node,
       e.device_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = e.device_id) AS no_device
FROM events e
WHERE e.batch_id >= $1 AND e.batch_id < $2
  AND (NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = e.batch_id)
       OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.node_id)
       OR (e.device_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = e.device_id)))
ORDER BY e.batch_id, e.seq
LIMIT $3
"""


async def orphans_in(conn: Connection, lo: int, hi: int, limit: int) -> list[Record]:
    """Events of batch ids ``lo <= id < hi`` naming a batch, node or device that does not exist (the schema keeps
    no foreign keys there), at most ``limit``: event_id, seq, batch_id and which of the three is missing."""
    return list(await conn.fetch(ORPHANS_IN, lo, hi, limit))


async def heads_in(conn: Connection, lo: int, hi: int) -> list[Record]:
    """Batches ``lo <= id < hi``: id, trace code and head (seq and head_hash, NULL without a head row), and
    ``chain_start``: for a batch received from another ledger, the hash its first event here links to."""
    return list(await conn.fetch(HEADS_IN, lo, hi))


# -- leaves against events ------------------------------------------------------------------------

PK_RANGE = """
SELECT least((SELECT min(id) FROM events), (SELECT min(event_pk) FROM log_leaves)),
       greatest((SELECT max(id) FROM events), (SELECT max(event_pk) FROM log_leaves))
"""
# Both sides off their unique indexes, joined by merging: every event with its leaf, every leaf with
# its event, and what has no partner on the other side.
LEAF_EVENT_RANGE = """
SELECT e.id, e.hash, l.log_id, l.leaf_index, l.leaf_hash
FROM (SELECT id, hash FROM events WHERE id >= $1 AND id < $2) e
FULL JOIN (SELECT log_id, leaf_index, event_pk, leaf_hash FROM log_leaves WHERE event_pk >= $1 AND event_pk < $2) l
  ON l.event_pk = e.id
"""
# The same pairs as one row: how many, and (in the same order, since one aggregate step reads each pair)
# ``$3 || event hash`` and the leaf hash, concatenated; a missing side is left out, so the lengths tell.
LEAF_EVENT_BUNDLE = """
SELECT count(*) AS pairs, string_agg($3::bytea || e.hash, '') AS hashed, string_agg(l.leaf_hash, '') AS leaves
FROM (SELECT id, hash FROM events WHERE id >= $1 AND id < $2) e
FULL JOIN (SELECT event_pk, leaf_hash FROM log_leaves WHERE event_pk >= $1 AND event_pk < $2) l
  ON l.event_pk = e.id
"""
QUEUED = "SELECT event_pk FROM log_queue WHERE event_pk = ANY($1::bigint[])"
EVENTS_BY_PK = """
SELECT e.id, e.event_id::text AS event_id, e.seq, b.trace_code
FROM events e LEFT JOIN batches b ON b.id = e.batch_id
WHERE e.id = ANY($1::bigint[])
"""


async def pk_range(conn: Connection) -> tuple[int, int] | None:
    """The smallest and largest event key named by an event or a leaf (None when there are neither)."""
    row = await conn.fetchrow(PK_RANGE)
    return None if row is None or row[0] is None else (row[0], row[1])


async def leaf_event_chunks(conn: Connection, lo: int, hi: int) -> Chunks:
    """For event keys ``lo <= k < hi``, ``width`` keys a chunk: id and hash of the event (NULL when no
    event has the key), log_id, leaf_index and leaf_hash of its leaf (NULL when no leaf names it)."""
    width = CHUNK
    start = lo

    async def fetch(_last: Record | None) -> list[Record]:
        nonlocal start
        first, start = start, start + width
        return list(await conn.fetch(LEAF_EVENT_RANGE, first, min(first + width, hi)))

    async for rows in _chunks(fetch, lambda _rows: start < hi):
        yield rows


def leaf_event_bundles(
    conn: Connection, ranges: Sequence[tuple[int, int]], prefix: bytes
) -> AsyncGenerator[Record, None]:
    """For each event key range in turn, its events and leaves paired as one row (see ``LEAF_EVENT_BUNDLE``)."""

    def fetch(lo: int, hi: int) -> Callable[[], Awaitable[Record]]:
        return lambda: fetch_one(conn, LEAF_EVENT_BUNDLE, lo, hi, prefix)

    return prefetched(fetch(lo, hi) for lo, hi in ranges)


async def queued(conn: Connection, event_pks: Sequence[int]) -> set[int]:
    """Which of these events wait in the log queue."""
    return {r[0] for r in await conn.fetch(QUEUED, list(event_pks))}


async def events_by_pk(conn: Connection, event_pks: Sequence[int]) -> dict[int, Record]:
    """Event id, seq and trace code by event key (to name a fault)."""
    return {r["id"]: r for r in await conn.fetch(EVENTS_BY_PK, list(event_pks))}


# -- leaves in order ------------------------------------------------------------------------------

# The next leaves from index $2 on, as one row: how many, their indexes (8 bytes each) and their hashes,
# concatenated in index order.
LEAF_BUNDLE = """
SELECT count(*) AS leaves,
       string_agg(int8send(leaf_index), '' ORDER BY leaf_index) AS indexes,
       string_agg(leaf_hash, '' ORDER BY leaf_index) AS hashes
FROM (SELECT leaf_index, leaf_hash FROM log_leaves WHERE log_id = $1 AND leaf_index >= $2
      ORDER BY leaf_index LIMIT $3) l
"""
TILE_CHUNK = """
SELECT level, idx, hashes, upper FROM log_tiles
WHERE log_id = $1 AND (level, idx) > ($2, $3) ORDER BY level, idx LIMIT $4
"""


async def leaf_bundles(conn: Connection, log: int, width: int) -> AsyncGenerator[Record, None]:
    """A log's leaves in index order, ``width`` a bundle (see ``LEAF_BUNDLE``), up to the first bundle that is
    not full. Each next bundle is asked for from where the last one ends if its indexes have no gap; a caller
    that finds a gap stops there."""
    start = 0

    def fetch() -> Awaitable[Record]:
        nonlocal start
        start += width
        return fetch_one(conn, LEAF_BUNDLE, log, start - width, width)

    def fetches() -> Iterator[Callable[[], Awaitable[Record]]]:
        while True:
            yield fetch

    async with contextlib.aclosing(prefetched(fetches())) as bundles:
        async for bundle in bundles:
            if bundle["leaves"]:
                yield bundle
            if bundle["leaves"] < width:
                break


async def tile_chunks(conn: Connection, log: int) -> Chunks:
    """A log's stored tiles in (level, index) order: level, idx, hashes, upper (a full level-0 tile's upper rows)."""
    limit = max(CHUNK // 10, 1)

    async def fetch(last: Record | None) -> list[Record]:
        after = (-1, -1) if last is None else (last[0], last[1])
        return list(await conn.fetch(TILE_CHUNK, log, *after, limit))

    async for rows in _chunks(fetch, lambda rows: len(rows) == limit):
        yield rows
