"""The transparency log: heads, the integration queue, leaves, tiles, checkpoints and witnesses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from traceability.ledger.tile_levels import GROUP_BYTES, GROUP_HEIGHT, HASH_SIZE
from traceability.storage.database import Connection, Record, by_key, conflicts_as, fetch_one

# -- logs and heads -------------------------------------------------------------------------------


async def list_logs(conn: Connection) -> list[Record]:
    """Every log this database holds: id, origin and the public key it was created with."""
    return list(await conn.fetch("SELECT id, origin, public_key FROM logs ORDER BY id"))


INSERT_LOG = """
INSERT INTO logs (id, origin, log_id, public_key)
VALUES ((SELECT coalesce(max(id), 0) + 1 FROM logs), $1, $2, $3)
ON CONFLICT (origin) DO NOTHING
"""
INSERT_HEAD = """
INSERT INTO log_heads (log_id, size, root)
SELECT id, 0, $2 FROM logs WHERE origin = $1
ON CONFLICT (log_id) DO NOTHING
"""
SELECT_LOG = "SELECT id, origin, log_id, public_key FROM logs WHERE origin = $1"
SELECT_FIRST_LOG = "SELECT id, origin, log_id, public_key FROM logs ORDER BY id LIMIT 1"


async def ensure_log(conn: Connection, origin: str, log_id: str, public_key: str, empty_root: bytes) -> Record:
    """Register the log if it is new; return its row (whose public key may differ: the caller checks)."""
    async with conn.transaction():
        await conn.execute(INSERT_LOG, origin, log_id, public_key)
        await conn.execute(INSERT_HEAD, origin, empty_root)
        return await fetch_one(conn, SELECT_LOG, origin)


async def first_log(conn: Connection) -> Record | None:
    return await conn.fetchrow(SELECT_FIRST_LOG)


async def lock_head(conn: Connection, log: int) -> Record:
    """The head, row-locked: sequencers that race are serialised here (call inside a transaction)."""
    return await fetch_one(conn, "SELECT size, root FROM log_heads WHERE log_id = $1 FOR UPDATE", log)


async def get_head(conn: Connection, log: int) -> Record:
    return await fetch_one(conn, "SELECT size, root, updated_at FROM log_heads WHERE log_id = $1", log)


ADVANCE_HEAD = """
UPDATE log_heads SET size = $3, root = $4, updated_at = now() WHERE log_id = $1 AND size = $2
"""


async def advance_head(conn: Connection, log: int, old_size: int, new_size: int, root: bytes) -> bool:
    """Compare-and-set: move the head only if it is still where we read it."""
    status: str = await conn.execute(ADVANCE_HEAD, log, old_size, new_size, root)
    return status == "UPDATE 1"


# -- the queue and the leaves ---------------------------------------------------------------------

SELECT_QUEUE = "SELECT event_pk, hash FROM log_queue ORDER BY event_pk LIMIT $1"


async def read_queue(conn: Connection, limit: int) -> list[Record]:
    """Committed events not yet in the log, oldest first."""
    return list(await conn.fetch(SELECT_QUEUE, limit))


async def delete_queued(conn: Connection, event_pks: Sequence[int]) -> None:
    """Take integrated events off the queue (in a transaction), each found by its key: the queue is near
    empty whenever its statistics are sampled, and a plan that trusts them scans it whole, dead rows and all,
    while it holds the tens of thousands of rows a heavy load of writes leaves (0.7 s a delete was seen)."""
    async with by_key(conn):
        await conn.execute("DELETE FROM log_queue WHERE event_pk = ANY($1::bigint[])", list(event_pks))


# Only leaves of a registered log that name a recorded event are written: the statement checks both, in place
# of the two foreign keys that ran two row triggers for each leaf (a query each, and a row lock with its WAL
# record on every event). The event is looked up by its key for each leaf (LATERAL ... LIMIT 1): as a
# semi-join the planner may hash every event instead.
INSERT_LEAVES = """
INSERT INTO log_leaves (log_id, leaf_index, event_pk, leaf_hash)
SELECT g.id, $2 + n - 1, u.pk, u.h
FROM logs g CROSS JOIN unnest($3::bigint[], $4::bytea[]) WITH ORDINALITY AS u(pk, h, n)
     JOIN LATERAL (SELECT 1 FROM events e WHERE e.id = u.pk LIMIT 1) recorded ON true
WHERE g.id = $1
"""


async def insert_leaves(
    conn: Connection, log: int, first_index: int, event_pks: Sequence[int], leaf_hashes: Sequence[bytes]
) -> int:
    """Append leaves ``first_index, first_index + 1, ...`` (a unique event_pk stops double integration); how
    many were written: fewer than given when the log is unknown or a key names no recorded event."""
    status: str = await conn.execute(INSERT_LEAVES, log, first_index, list(event_pks), list(leaf_hashes))
    return int(status.rsplit(" ", 1)[1])


# A proof's bottom tile comes with its leaf, in the same round trip, as the one slice of it that differs
# between the tile's leaves: the 16 stored hashes of the leaf's group (tile_levels.path_within computes
# the proof inside the tile from them and the tile's upper rows, which the proof service keeps). PostgreSQL
# reads only that slice of the stored tile, and sends 512 bytes instead of 8 KB. The leaf's own hash is its
# place in that group (:func:`leaf_hash`): the leaf row is read for its log and index alone, which the unique
# index on event_pk carries (0031), so it is found without reading the table.
GROUP = f"""
substring(t.hashes FROM ((l.leaf_index % $2) / {1 << GROUP_HEIGHT} * {GROUP_BYTES} + 1)::integer FOR {GROUP_BYTES})
AS leaf_group
"""
PROOF_COLUMNS = f"""
e.event_id::text AS event_id, e.seq, e.hash AS event_hash, e.prev_hash, e.canonical,
l.log_id, l.leaf_index, {GROUP}, t.upper AS tile_upper
"""
PROOF_JOINS = """
LEFT JOIN log_leaves l ON l.event_pk = e.id
LEFT JOIN log_tiles t ON t.log_id = l.log_id AND t.level = 0 AND t.idx = l.leaf_index / $2
"""
FIND_EVENTS_PROOFS = f"""
SELECT {PROOF_COLUMNS}
FROM unnest($1::uuid[]) WITH ORDINALITY AS q(event_id, n)
JOIN events e ON e.event_id = q.event_id {PROOF_JOINS}
ORDER BY q.n
"""
FIND_LEAVES_PROOFS = f"""
SELECT {PROOF_COLUMNS} FROM unnest($1::bigint[]) WITH ORDINALITY AS q(leaf_index, n)
JOIN log_leaves k ON k.log_id = $3 AND k.leaf_index = q.leaf_index
JOIN events e ON e.id = k.event_pk {PROOF_JOINS}
ORDER BY q.n
"""
FIND_BATCH_PROOFS = f"""
SELECT {PROOF_COLUMNS} FROM batches b
JOIN events e ON e.batch_id = b.id AND e.seq > $3 {PROOF_JOINS}
WHERE b.trace_code = $1
ORDER BY e.seq LIMIT $4
"""


def leaf_hash(row: Record) -> bytes:
    """A logged proof row's leaf hash: as its level-0 tile stores it, the hash the audit path starts from."""
    group: bytes = row["leaf_group"]
    at = row["leaf_index"] % (1 << GROUP_HEIGHT) * HASH_SIZE
    return group[at : at + HASH_SIZE]


async def find_events_proofs(conn: Connection, event_ids: Sequence[str], tile_width: int) -> list[Record]:
    """Each event's hashed bytes, its leaf and its group's hashes in its level-0 tile (``leaf_group``, as many
    as the tile holds of the group's 16; leaf and group NULL while it waits), and the tile's upper rows
    (``tile_upper``: NULL until the tile is full, and for a tile completed before they were stored until
    the sequencer has filled them in); in the order asked, unknown events left out."""
    return list(await conn.fetch(FIND_EVENTS_PROOFS, list(event_ids), tile_width))


async def find_leaves_proofs(conn: Connection, log: int, indexes: Sequence[int], tile_width: int) -> list[Record]:
    """As :func:`find_events_proofs` for the events at these leaf indexes, in the order asked (absent ones left out)."""
    return list(await conn.fetch(FIND_LEAVES_PROOFS, list(indexes), tile_width, log))


async def find_batch_proofs(conn: Connection, code: str, after_seq: int, limit: int, tile_width: int) -> list[Record]:
    """As :func:`find_events_proofs` for a batch's events after ``after_seq``, in chain order, at most ``limit``."""
    return list(await conn.fetch(FIND_BATCH_PROOFS, code, tile_width, after_seq, limit))


# -- tiles ----------------------------------------------------------------------------------------

SELECT_TILES = """
SELECT t.level, t.idx, t.hashes FROM log_tiles t
JOIN unnest($2::smallint[], $3::bigint[]) AS k(level, idx) ON t.level = k.level AND t.idx = k.idx
WHERE t.log_id = $1
"""


async def fetch_tiles(conn: Connection, log: int, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The named tiles, in one query (missing ones are simply absent)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(SELECT_TILES, log, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["level"], r["idx"]): r["hashes"] for r in rows}


UPSERT_TILES = """
INSERT INTO log_tiles (log_id, level, idx, width, hashes, upper)
SELECT $1, l, i, length(h) / 32, h, u
FROM unnest($2::smallint[], $3::bigint[], $4::bytea[], $5::bytea[]) AS x(l, i, h, u)
ON CONFLICT (log_id, level, idx) DO UPDATE SET width = EXCLUDED.width, hashes = EXCLUDED.hashes, upper = EXCLUDED.upper
"""


async def store_tiles(
    conn: Connection, log: int, tiles: Mapping[tuple[int, int], bytes], uppers: Mapping[int, bytes]
) -> None:
    """Write new tiles and grown partial tiles (a trigger refuses anything but growth), each full level-0
    tile with its upper rows from ``uppers`` (by tile index)."""
    keys = list(tiles)
    await conn.execute(
        UPSERT_TILES,
        log,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [tiles[k] for k in keys],
        [uppers.get(k[1]) if k[0] == 0 else None for k in keys],
    )


SELECT_MISSING_UPPERS = """
SELECT idx, hashes FROM log_tiles
WHERE log_id = $1 AND level = 0 AND idx > $2 AND width = 256 AND upper IS NULL
ORDER BY idx LIMIT $3
"""
SET_UPPERS = """
UPDATE log_tiles t SET upper = x.u
FROM unnest($2::bigint[], $3::bytea[]) AS x(i, u)
WHERE t.log_id = $1 AND t.level = 0 AND t.idx = x.i AND t.upper IS NULL
"""


async def full_tiles_without_uppers(conn: Connection, log: int, after: int, limit: int) -> list[Record]:
    """Full level-0 tiles after index ``after`` whose upper rows are not stored (completed before they were)."""
    return list(await conn.fetch(SELECT_MISSING_UPPERS, log, after, limit))


async def set_uppers(conn: Connection, log: int, uppers: Mapping[int, bytes]) -> None:
    """Store the upper rows of full level-0 tiles that have none (a trigger refuses any other change)."""
    await conn.execute(SET_UPPERS, log, list(uppers), list(uppers.values()))


# -- checkpoints and witnesses --------------------------------------------------------------------

INSERT_CHECKPOINT = "INSERT INTO checkpoints (log_id, size, root, note) VALUES ($1, $2, $3, $4)"
ENSURE_CHECKPOINT = INSERT_CHECKPOINT + " ON CONFLICT (log_id, size) DO NOTHING"


async def insert_checkpoint(conn: Connection, log: int, size: int, root: bytes, note: str) -> None:
    await conn.execute(INSERT_CHECKPOINT, log, size, root, note)


async def ensure_checkpoint(conn: Connection, log: int, size: int, root: bytes, note: str) -> None:
    """Store a checkpoint unless one of that size is stored already (a sequencer may have signed it)."""
    await conn.execute(ENSURE_CHECKPOINT, log, size, root, note)


SELECT_CHECKPOINTS = """
SELECT k.size, k.root, k.note, k.created_at,
       coalesce((SELECT array_agg(c.line ORDER BY c.witness_id) FROM cosignatures c
                 WHERE c.log_id = k.log_id AND c.size = k.size), '{}') AS cosignatures
FROM checkpoints k
WHERE k.log_id = $1 AND ($2::bigint IS NULL OR k.size < $2) AND ($4::bigint IS NULL OR k.size = $4)
ORDER BY k.size DESC LIMIT $3
"""


async def list_checkpoints(
    conn: Connection, log: int, *, before: int | None = None, limit: int = 1, size: int | None = None
) -> list[Record]:
    """Checkpoints newest first, each with its witness cosignature lines."""
    return list(await conn.fetch(SELECT_CHECKPOINTS, log, before, limit, size))


async def scan_checkpoints(conn: Connection, log: int) -> list[Record]:
    return list(await conn.fetch("SELECT size, root, note FROM checkpoints WHERE log_id = $1 ORDER BY size", log))


INSERT_WITNESS = """
INSERT INTO witnesses (name, verifier_key) VALUES ($1, $2) RETURNING id, name, verifier_key, created_at
"""


async def insert_witness(conn: Connection, name: str, verifier_key: str) -> Record:
    """Register a witness; AlreadyExists when its name or key is taken."""
    with conflicts_as("a witness with that name or key is already registered", "name"):
        return await fetch_one(conn, INSERT_WITNESS, name, verifier_key)


async def list_witnesses(conn: Connection) -> list[Record]:
    return list(
        await conn.fetch(
            "SELECT id, name, verifier_key, created_at FROM witnesses WHERE revoked_at IS NULL ORDER BY id"
        )
    )


INSERT_COSIGNATURE = """
INSERT INTO cosignatures (log_id, size, witness_id, line) VALUES ($1, $2, $3, $4)
ON CONFLICT (log_id, size, witness_id) DO NOTHING
"""


async def insert_cosignature(conn: Connection, log: int, size: int, witness_id: int, line: str) -> bool:
    status: str = await conn.execute(INSERT_COSIGNATURE, log, size, witness_id, line)
    return status == "INSERT 0 1"
