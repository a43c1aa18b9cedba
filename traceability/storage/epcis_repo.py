"""EPCIS capture: nodes by GLN, batches by identifier, what an eventID already recorded, the EPCIS index,
and capture jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from traceability import errors
from traceability.storage import events_repo
from traceability.storage.database import Connection, Record

SELECT_NODES_BY_GLN = """
SELECT n.id, n.code, n.gln, n.area_code, n.enterprise_id, e.uscc
FROM nodes n JOIN enterprises e ON e.id = n.enterprise_id
WHERE n.gln = ANY($1::text[])
"""


async def nodes_by_gln(conn: Connection, glns: Sequence[str]) -> dict[str, Record]:
    """Registered nodes by their GLN."""
    if not glns:
        return {}
    return {r["gln"]: r for r in await conn.fetch(SELECT_NODES_BY_GLN, list(glns))}


SELECT_NODES_OF_ENTERPRISE = """
SELECT n.id, n.code, n.gln, n.area_code, n.enterprise_id, e.uscc
FROM nodes n JOIN enterprises e ON e.id = n.enterprise_id
WHERE n.enterprise_id = $1
ORDER BY n.id
LIMIT 2
"""


async def nodes_of_enterprise(conn: Connection, enterprise_id: int) -> list[Record]:
    """Up to two of an enterprise's nodes (enough to tell whether it has exactly one)."""
    return list(await conn.fetch(SELECT_NODES_OF_ENTERPRISE, enterprise_id))


SELECT_BATCHES_BY_KEY = """
SELECT i.scheme, i.value, b.id, b.trace_code
FROM unnest($1::text[], $2::text[]) AS k(scheme, value)
JOIN batch_identifiers i ON i.scheme = k.scheme AND i.value = k.value
JOIN batches b ON b.id = i.batch_id
"""


async def batches_by_key(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Batches carrying any of the identifier keys, by key."""
    if not keys:
        return {}
    rows = await conn.fetch(SELECT_BATCHES_BY_KEY, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["scheme"], r["value"]): r for r in rows}


SELECT_PRODUCTS_BY_GTIN = "SELECT id, goods_code, gtin, category FROM products WHERE gtin = ANY($1::text[])"
SELECT_PRODUCTS_BY_CODE = "SELECT id, goods_code, gtin, category FROM products WHERE goods_code = ANY($1::text[])"
INSERT_PRODUCT = """
INSERT INTO products (category, goods_code, gtin, name_zh, name_en)
VALUES ('other', $1, $2, $3, $4)
ON CONFLICT DO NOTHING
"""


async def products_for(conn: Connection, wanted: Sequence[tuple[str, str | None, str, str]]) -> dict[str, Record]:
    """Products by GTIN (or by goods code when there is no GTIN), registering the missing ones.

    ``wanted`` holds (goods code, gtin, Chinese name, English name); the answer is keyed by GTIN, or by
    goods code for those without one.
    """
    gtins = sorted({w[1] for w in wanted if w[1]})
    found = {r["gtin"]: r for r in await conn.fetch(SELECT_PRODUCTS_BY_GTIN, gtins)} if gtins else {}
    codes = sorted({w[0] for w in wanted if not w[1]})
    found.update({r["goods_code"]: r for r in await conn.fetch(SELECT_PRODUCTS_BY_CODE, codes)} if codes else {})
    missing = [w for w in wanted if (w[1] or w[0]) not in found]
    if missing:
        await conn.executemany(INSERT_PRODUCT, [(w[0], w[1], w[2], w[3]) for w in missing])
        gtins = sorted({w[1] for w in missing if w[1]})
        codes = sorted({w[0] for w in missing})
        rows = list(await conn.fetch(SELECT_PRODUCTS_BY_GTIN, gtins)) if gtins else []
        rows += list(await conn.fetch(SELECT_PRODUCTS_BY_CODE, codes))
        for r in rows:
            found[r["gtin"] or r["goods_code"]] = r
            found.setdefault(r["goods_code"], r)
    return found


NEXT_SERIALS = "SELECT nextval('trace_serial_seq') AS n FROM generate_series(1, $1)"


async def next_serials(conn: Connection, count: int) -> list[int]:
    """``count`` trace-code serials never handed out before, in one round trip."""
    return [r["n"] for r in await conn.fetch(NEXT_SERIALS, count)]


INSERT_BATCHES = """
INSERT INTO batches (trace_code, product_id, node_id, device_id, open_event_id, open_digest, quantity, uom)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::uuid[], $6::bytea[], $7::numeric[],
                     $8::text[])
RETURNING id, trace_code
"""


async def insert_batches(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """New batches: (trace code, product, node, device, opening record id, opening digest, quantity, unit)."""
    result = await conn.fetch(INSERT_BATCHES, *(list(col) for col in zip(*rows, strict=True)))
    return {r["trace_code"]: r["id"] for r in result}


INSERT_IDENTIFIERS = """
INSERT INTO batch_identifiers (batch_id, scheme, value)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
"""
INSERT_HEADS = """
INSERT INTO batch_heads (batch_id, seq, head_hash)
SELECT b, 0, h FROM unnest($1::bigint[], $2::bytea[]) AS u(b, h)
"""


async def insert_identifiers_and_heads(
    conn: Connection, idents: Sequence[tuple[int, str, str]], heads: Sequence[tuple[int, bytes]]
) -> None:
    """A new batch's identifier and its empty chain head (seq 0 at the genesis value); Contention when a
    concurrent writer gave the identifier to a batch of its own meanwhile."""
    try:
        await conn.execute(INSERT_IDENTIFIERS, *(list(col) for col in zip(*idents, strict=True)))
    except asyncpg.UniqueViolationError:
        # A concurrent capture opened a batch for the same identifier first: run again, and find it.
        raise errors.Contention() from None
    await conn.execute(INSERT_HEADS, *(list(col) for col in zip(*heads, strict=True)))


SELECT_RECORDED = """
SELECT x.event_uri, x.kind, x.digest, x.declared_at, e.event_id::text AS event_id, e.seq, e.hash, e.prev_hash,
       e.canonical, e.private, e.recorded_at, b.trace_code
FROM events e
JOIN batches b ON b.id = e.batch_id
LEFT JOIN epcis_events x ON x.event_id = e.event_id
WHERE e.event_id = ANY($1::uuid[])
ORDER BY e.id
"""


async def recorded(conn: Connection, event_ids: Sequence[str]) -> list[Record]:
    """The records already holding any of these ledger event ids: EPCIS records (``kind`` 'a' or 'r') and
    native ones (``kind`` NULL)."""
    return list(await conn.fetch(SELECT_RECORDED, list(event_ids)))


INDEX_COLUMNS = (
    "event_id",
    "anchor_id",
    "kind",
    "event_uri",
    "event_type",
    "roles",
    "action",
    "disposition",
    "read_point",
    "biz_location",
    "declared_at",
    "error_reason",
    "digest",
)

IndexRow = tuple[
    str,
    str,
    str,
    str,
    str,
    list[str],
    str | None,
    str | None,
    str | None,
    str | None,
    datetime | None,
    str | None,
    bytes,
]


async def insert_index(conn: Connection, rows: Sequence[IndexRow]) -> None:
    """Index new records (in ``INDEX_COLUMNS`` order, with COPY): (event id, anchor event id, kind, eventID
    URI, type, the record's batch's roles, action, disposition, read point key, business location key,
    declaration time, error reason, digest)."""
    if rows:
        await conn.copy_records_to_table("epcis_events", records=rows, columns=INDEX_COLUMNS)


# A document's events on batches of their own, their index rows and its capture job, in one autocommitted
# statement (services.epcis_plain): events_repo.APPEND_ALL, then, when it wrote every event, an index row
# for each (the anchor record of an event naming one batch in one role) and the job. One round trip and
# one commit instead of a transaction's six: while the serving process had other requests to answer,
# each round trip of a transaction left it waiting, its row locks held.
APPEND_INDEXED = events_repo.append_all_statement(
    """, indexed AS (
    INSERT INTO epcis_events (event_id, anchor_id, kind, event_uri, event_type, roles, action, disposition,
                              read_point, biz_location, digest)
    SELECT x.event_id, x.event_id, 'a', x.uri, x.event_type, ARRAY[x.role], x.action, x.disposition,
           x.read_point, x.biz_location, x.digest
    FROM unnest($2::uuid[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
                $19::text[], $20::bytea[])
         AS x(event_id, uri, event_type, role, action, disposition, read_point, biz_location, digest)
    WHERE (SELECT count(*) FROM ins) = cardinality($1::text[])
), job AS (
    INSERT INTO epcis_capture_jobs (id, principal, behaviour, created_at, finished_at, success, event_count,
                                    captured, errors)
    SELECT $21::text, $22::text, $23::text, $24::timestamptz, $25::timestamptz, true, $26::int,
           cardinality($1::text[]), '[]'::jsonb
    WHERE $21::text IS NOT NULL AND (SELECT count(*) FROM ins) = cardinality($1::text[])
)"""
)


@dataclass(slots=True)
class Indexed:
    """The index columns of :data:`APPEND_INDEXED`, one list each, in the order of the events."""

    uri: list[str] = field(default_factory=list)
    event_type: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    action: list[str | None] = field(default_factory=list)
    disposition: list[str | None] = field(default_factory=list)
    read_point: list[str | None] = field(default_factory=list)
    biz_location: list[str | None] = field(default_factory=list)
    digest: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Job:
    """A capture job that succeeds whole, kept in its events' transaction; whoever writes it sets
    ``finished_at``."""

    id: str
    principal: str
    behaviour: str
    created_at: datetime
    event_count: int
    finished_at: datetime | None = None


async def append_indexed(
    conn: Connection,
    events: Sequence[events_repo.Single],
    index: Indexed,
    job: Job | None,
    chain_tag: bytes,
    opening_tolerance: timedelta,
) -> dict[str, Record]:
    """Write every event of ``events`` with its index row and ``job``, or nothing (see :data:`APPEND_INDEXED`);
    the rows written by event id (none when nothing was)."""
    rows = await conn.fetch(
        APPEND_INDEXED,
        *events_repo.append_args(events, chain_tag, opening_tolerance, True),
        index.uri,
        index.event_type,
        index.role,
        index.action,
        index.disposition,
        events_repo.nulls_as_null(index.read_point),
        events_repo.nulls_as_null(index.biz_location),
        index.digest,
        *(
            (None, None, None, None, None, None)
            if job is None
            else (job.id, job.principal, job.behaviour, job.created_at, job.finished_at, job.event_count)
        ),
    )
    return {r["event_id"]: r for r in rows}


INSERT_WHAT = """
INSERT INTO epcis_what (batch_id, event_id, role)
SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[])
ON CONFLICT DO NOTHING
"""


async def insert_what(conn: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """(batch id, anchor event id, role) for every batch an event names besides its anchor record's own."""
    if rows:
        await conn.execute(INSERT_WHAT, *(list(col) for col in zip(*rows, strict=True)))


INSERT_LINKS = """
INSERT INTO batch_links (parent_id, child_id, transformation_id, quantity, uom)
SELECT p, c, t, q, u FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::numeric[], $5::text[]) AS x(p, c, t, q, u)
WHERE p <> c
ON CONFLICT DO NOTHING
"""


async def insert_links(conn: Connection, links: Sequence[tuple[int, int, str, Any, str | None]]) -> None:
    """Genealogy from TransformationEvents: (input batch, output batch, anchor event id, quantity, unit)."""
    if not links:
        return
    try:
        await conn.execute(INSERT_LINKS, *(list(col) for col in zip(*links, strict=True)))
    except asyncpg.CheckViolationError:
        raise errors.InvalidField(
            "outputEPCList: this TransformationEvent would make a batch its own ancestor", field="outputEPCList"
        ) from None


# -- capture jobs ---------------------------------------------------------------------------------

INSERT_JOB = """
INSERT INTO epcis_capture_jobs (id, principal, behaviour, created_at, finished_at, success, event_count, captured,
                                errors)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


async def insert_job(
    conn: Connection,
    job_id: str,
    principal: str,
    behaviour: str,
    created_at: datetime,
    finished_at: datetime,
    success: bool,
    event_count: int,
    captured: int,
    problems: list[dict[str, Any]],
) -> None:
    await conn.execute(
        INSERT_JOB, job_id, principal, behaviour, created_at, finished_at, success, event_count, captured, problems
    )


async def keep_job(conn: Connection, job: Job, finished_at: datetime, captured: int) -> None:
    """Keep a job that succeeded whole, in its events' transaction, finished at ``finished_at``."""
    job.finished_at = finished_at
    await insert_job(
        conn, job.id, job.principal, job.behaviour, job.created_at, finished_at, True, job.event_count, captured, []
    )


SELECT_JOB = "SELECT * FROM epcis_capture_jobs WHERE id = $1"
SELECT_JOBS = """
SELECT * FROM epcis_capture_jobs
WHERE principal = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
ORDER BY created_at DESC, id DESC
LIMIT $4
"""


async def find_job(conn: Connection, job_id: str) -> Record | None:
    return await conn.fetchrow(SELECT_JOB, job_id)


async def list_jobs(conn: Connection, principal: str, before: tuple[datetime, str] | None, limit: int) -> list[Record]:
    """A caller's capture jobs, newest first, after a (created_at, id) cursor."""
    return list(
        await conn.fetch(SELECT_JOBS, principal, before[0] if before else None, before[1] if before else "", limit)
    )
