"""Members witnessing each other: the checkpoints seen of each member (since an operator last cleared a split
view of it), this ledger's cosignatures of them, proven split views and their clearances, and how witnessing
each member went last."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from traceability.storage.database import Connection, Record

# The checkpoints that count for a member: those seen after the last split view of it an operator cleared.
SINCE_CLEARED = """
seen_at > coalesce((SELECT max(c.cleared_at) FROM split_view_clearances c
                    JOIN split_views s ON s.id = c.split_view_id WHERE s.origin = $1), '-infinity')
"""

LATEST = f"""
SELECT size, root, note, via, seen_at FROM federation_checkpoints
WHERE origin = $1 AND {SINCE_CLEARED}
ORDER BY size DESC LIMIT 1
"""


async def latest_checkpoint(conn: Connection, origin: str) -> Record | None:
    """The largest checkpoint of ``origin`` that counts (size, root, note, via, seen_at)."""
    return await conn.fetchrow(LATEST, origin)


AT_SIZE = f"""
SELECT size, root, note FROM federation_checkpoints WHERE origin = $1 AND size = $2 AND {SINCE_CLEARED}
"""


async def checkpoint_at(conn: Connection, origin: str, size: int) -> Record | None:
    """The checkpoint of ``origin`` of ``size`` leaves kept here (and counting), if there is one."""
    return await conn.fetchrow(AT_SIZE, origin, size)


async def insert_checkpoint(conn: Connection, origin: str, size: int, root: bytes, note: str, via: str) -> bool:
    """Keep a verified checkpoint of ``origin``; False when one of that size was kept already."""
    status: str = await conn.execute(
        "INSERT INTO federation_checkpoints (origin, size, root, note, via) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (origin, size) DO NOTHING",
        origin,
        size,
        root,
        note,
        via,
    )
    return status.endswith(" 1")


async def insert_cosignature(conn: Connection, origin: str, size: int, note: str) -> None:
    """Keep this ledger's cosigned note of a member's checkpoint (the first one made at a size stays)."""
    await conn.execute(
        "INSERT INTO federation_cosignatures (origin, size, note) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        origin,
        size,
        note,
    )


WITNESSED = f"""
SELECT DISTINCT ON (k.origin) k.origin, k.size, k.root, coalesce(c.note, k.note) AS note, c.signed_at
FROM federation_checkpoints k
LEFT JOIN federation_cosignatures c ON c.origin = k.origin AND c.size = k.size
WHERE k.origin = ANY($2::text[]) AND {SINCE_CLEARED.replace("$1", "k.origin")}
ORDER BY k.origin, k.size DESC
LIMIT $1
"""


async def witnessed(conn: Connection, origins: Sequence[str], limit: int) -> list[Record]:
    """For each member in ``origins``, the largest checkpoint of it that counts, cosigned here when it was."""
    return list(await conn.fetch(WITNESSED, limit, list(origins)))


async def open_split_view(conn: Connection, origin: str) -> Record | None:
    """The split view of ``origin`` no operator has cleared yet, if any."""
    return await conn.fetchrow(
        "SELECT s.id, s.reason, s.detected_at FROM split_views s WHERE s.origin = $1 "
        "AND NOT EXISTS (SELECT 1 FROM split_view_clearances c WHERE c.split_view_id = s.id) "
        "ORDER BY s.id LIMIT 1",
        origin,
    )


async def insert_split_view(
    conn: Connection, origin: str, first_note: str, second_note: str, reason: str, detail: str, via: str
) -> int | None:
    """Record a proven split view, unless one of ``origin`` is open already (None then); its id."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", origin)
    if await open_split_view(conn, origin) is not None:
        return None
    found: int = await conn.fetchval(
        "INSERT INTO split_views (origin, first_note, second_note, reason, detail, via) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        origin,
        first_note,
        second_note,
        reason,
        detail[:1000],
        via[:220],
    )
    return found


SPLIT_VIEWS = """
SELECT s.id, s.origin, s.first_note, s.second_note, s.reason, s.detail, s.via, s.detected_at,
       c.cleared_by, c.reason AS cleared_reason, c.cleared_at
FROM split_views s LEFT JOIN split_view_clearances c ON c.split_view_id = s.id
WHERE ($1::bigint IS NULL OR s.id = $1)
ORDER BY s.id DESC
LIMIT $2
"""


async def split_views(conn: Connection, limit: int, split_id: int | None = None) -> list[Record]:
    """Split views newest first, each with its clearance if it has one."""
    return list(await conn.fetch(SPLIT_VIEWS, split_id, limit))


async def clear_split_view(conn: Connection, split_id: int, cleared_by: str, reason: str) -> bool:
    """Record an operator's clearance; False when the split view was cleared already."""
    status: str = await conn.execute(
        "INSERT INTO split_view_clearances (split_view_id, cleared_by, reason) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        split_id,
        cleared_by,
        reason,
    )
    return status.endswith(" 1")


UPSERT_STATUS = """
INSERT INTO witness_status (origin, checked_at, ok_at, size, failures, problem, next_at)
VALUES ($1, $2::timestamptz, CASE WHEN $5::text IS NULL THEN $2::timestamptz END, $3, $4, $5::text, $6)
ON CONFLICT (origin) DO UPDATE SET
    checked_at = EXCLUDED.checked_at,
    ok_at = coalesce(EXCLUDED.ok_at, witness_status.ok_at),
    size = coalesce(EXCLUDED.size, witness_status.size),
    failures = EXCLUDED.failures,
    problem = EXCLUDED.problem,
    next_at = EXCLUDED.next_at
"""


async def record_status(
    conn: Connection,
    origin: str,
    checked_at: datetime,
    size: int | None,
    failures: int,
    problem: str | None,
    next_at: datetime,
) -> None:
    """How witnessing ``origin`` went just now (``problem`` None: it went well)."""
    await conn.execute(UPSERT_STATUS, origin, checked_at, size, failures, problem and problem[:500], next_at)


async def statuses(conn: Connection) -> list[Record]:
    """How witnessing each member went last, with whether a split view of it is open."""
    return list(
        await conn.fetch(
            "SELECT w.origin, w.checked_at, w.ok_at, w.size, w.failures, w.problem, w.next_at, "
            "EXISTS (SELECT 1 FROM split_views s WHERE s.origin = w.origin AND NOT EXISTS "
            "(SELECT 1 FROM split_view_clearances c WHERE c.split_view_id = s.id)) AS split "
            "FROM witness_status w ORDER BY w.origin"
        )
    )


async def forget_statuses(conn: Connection, keep: Sequence[str]) -> None:
    """Drop the status rows of ledgers no longer members."""
    await conn.execute("DELETE FROM witness_status WHERE NOT (origin = ANY($1::text[]))", list(keep))


async def open_split_counts(conn: Connection) -> list[Record]:
    """(origin, open split views) for every member with one open; for /metrics."""
    return list(
        await conn.fetch(
            "SELECT s.origin, count(*) AS n FROM split_views s WHERE NOT EXISTS "
            "(SELECT 1 FROM split_view_clearances c WHERE c.split_view_id = s.id) GROUP BY s.origin"
        )
    )


async def register_member_witness(conn: Connection, name: str, verifier_key: str) -> None:
    """Make another member a witness whose cosignatures this log takes (its name and key already taken: kept)."""
    await conn.execute(
        "INSERT INTO witnesses (name, verifier_key) VALUES ($1, $2) ON CONFLICT DO NOTHING", name, verifier_key
    )
