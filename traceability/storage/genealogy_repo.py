"""Genealogy (batch links), batch status, recalls: the queries behind trace and recall."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from traceability import errors
from traceability.storage.database import Connection, Record

INSERT_LINKS = """
INSERT INTO batch_links (parent_id, child_id, transformation_id, quantity, uom)
SELECT p, c, $3, q, u FROM unnest($1::bigint[], $2::bigint[], $4::numeric[], $5::text[]) AS x(p, c, q, u)
"""


async def insert_links(
    conn: Connection, transformation_id: str, links: Sequence[tuple[int, int, Decimal | None, str | None]]
) -> None:
    """Record parent → child links; a link that would close a cycle (the batch_links_acyclic trigger
    refuses it) raises InvalidField naming the transformation's outputs."""
    try:
        await conn.execute(
            INSERT_LINKS,
            [x[0] for x in links],
            [x[1] for x in links],
            transformation_id,
            [x[2] for x in links],
            [x[3] for x in links],
        )
    except asyncpg.CheckViolationError:
        raise errors.InvalidField("outputs: this would make a batch its own ancestor", field="outputs") from None


ANCESTORS = """
WITH RECURSIVE up(id, depth) AS (
    SELECT $1::bigint, 0
    UNION
    SELECT l.parent_id, up.depth + 1 FROM batch_links l JOIN up ON l.child_id = up.id WHERE up.depth < 64
)
SELECT id, min(depth) AS depth FROM up GROUP BY id
"""
DESCENDANTS = """
WITH RECURSIVE down(id, depth) AS (
    SELECT $1::bigint, 0
    UNION
    SELECT l.child_id, down.depth + 1 FROM batch_links l JOIN down ON l.parent_id = down.id WHERE down.depth < 64
)
SELECT id, min(depth) AS depth FROM down GROUP BY id
"""


async def related(conn: Connection, batch_id: int, direction: str) -> dict[int, int]:
    """Batch ids upstream (``backward``) or downstream (``forward``) of a batch, with their depth."""
    rows = await conn.fetch(ANCESTORS if direction == "backward" else DESCENDANTS, batch_id)
    return {r["id"]: r["depth"] for r in rows}


SELECT_LINKS = """
SELECT p.trace_code AS parent, c.trace_code AS child, l.quantity, l.uom, l.transformation_id::text
FROM batch_links l JOIN batches p ON p.id = l.parent_id JOIN batches c ON c.id = l.child_id
WHERE l.parent_id = ANY($1::bigint[]) AND l.child_id = ANY($1::bigint[])
"""


async def links_among(conn: Connection, ids: Sequence[int]) -> list[Record]:
    return list(await conn.fetch(SELECT_LINKS, list(ids)))


SELECT_BATCHES = """
SELECT b.id, b.trace_code, b.quantity, b.uom, b.produced_on, b.expires_on, b.node_id,
       p.goods_code, p.name_zh AS product_name, p.name_en AS product_name_en, p.category,
       h.status, h.status_since
FROM batches b JOIN products p ON p.id = b.product_id JOIN batch_heads h ON h.batch_id = b.id
WHERE b.id = ANY($1::bigint[])
"""


async def batches_by_id(conn: Connection, ids: Sequence[int]) -> list[Record]:
    return list(await conn.fetch(SELECT_BATCHES, list(ids)))


async def batch_id(conn: Connection, trace_code: str) -> int | None:
    value: int | None = await conn.fetchval("SELECT id FROM batches WHERE trace_code = $1", trace_code)
    return value


# Where each batch went: one row per (batch, node) with the steps recorded there.
SELECT_VISITS = """
SELECT e.batch_id, n.code, n.name_zh, n.name_en, n.node_type, n.area_code, en.uscc, en.name AS enterprise,
       en.contact, min(e.event_time) AS first_seen, max(e.event_time) AS last_seen,
       array_agg(DISTINCT e.biz_step) AS steps
FROM events e JOIN nodes n ON n.id = e.node_id JOIN enterprises en ON en.id = n.enterprise_id
WHERE e.batch_id = ANY($1::bigint[]) AND e.device_id IS NOT NULL
GROUP BY e.batch_id, n.code, n.name_zh, n.name_en, n.node_type, n.area_code, en.uscc, en.name, en.contact
ORDER BY e.batch_id, first_seen
"""


async def visits(conn: Connection, ids: Sequence[int]) -> list[Record]:
    return list(await conn.fetch(SELECT_VISITS, list(ids)))


# Certificates live in the events' canonical bytes; only events that carry documents are read.
SELECT_DOCUMENT_EVENTS = """
SELECT e.batch_id, e.seq, e.canonical, n.name_zh AS node
FROM events e JOIN nodes n ON n.id = e.node_id
WHERE e.batch_id = ANY($1::bigint[]) AND position('"documents":' in convert_from(e.canonical, 'UTF8')) > 0
"""


async def document_events(conn: Connection, ids: Sequence[int]) -> list[Record]:
    return list(await conn.fetch(SELECT_DOCUMENT_EVENTS, list(ids)))


LOCK_BY_ID = """
SELECT b.id, b.trace_code, b.node_id, h.seq, h.head_hash, h.status, n.code AS node_code
FROM batches b JOIN batch_heads h ON h.batch_id = b.id JOIN nodes n ON n.id = b.node_id
WHERE b.id = ANY($1::bigint[]) ORDER BY b.id FOR UPDATE OF h
"""


async def lock_heads_by_id(conn: Connection, ids: Sequence[int]) -> list[Record]:
    return list(await conn.fetch(LOCK_BY_ID, list(ids)))


SET_STATUS = """
UPDATE batch_heads h SET seq = u.seq, head_hash = u.head_hash,
    status = CASE WHEN h.status = 'recalled' THEN h.status ELSE $4 END,
    status_since = CASE WHEN h.status = 'recalled' OR h.status = $4 THEN h.status_since ELSE $5 END
FROM unnest($1::bigint[], $2::int[], $3::bytea[]) AS u(batch_id, seq, head_hash)
WHERE h.batch_id = u.batch_id
"""


async def set_heads_and_status(
    conn: Connection, heads: Sequence[tuple[int, int, bytes]], status: str, since: Any
) -> None:
    """Advance heads and set a status (recalled overrides on_hold, never the other way round)."""
    await conn.execute(SET_STATUS, [h[0] for h in heads], [h[1] for h in heads], [h[2] for h in heads], status, since)


INSERT_RECALL = """
INSERT INTO recalls (batch_id, event_id, level, reason, scope, issued_by, issued_at, affected, authority)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
"""


async def insert_recall(
    conn: Connection,
    batch: int,
    event_id: str,
    level: str,
    reason: str,
    scope: str | None,
    issued_by: str,
    issued_at: Any,
    affected: int,
    authority: str,
) -> int:
    """Index a recall; ``authority`` is what public lists name, ``issued_by`` the account (for oversight)."""
    value: int = await conn.fetchval(
        INSERT_RECALL, batch, event_id, level, reason, scope, issued_by, issued_at, affected, authority
    )
    return value


# The same recall issued again (a double submit, a retried request): found under the batch heads' locks.
SELECT_SAME_RECALL = """
SELECT id, issued_at, authority FROM recalls
WHERE batch_id = $1 AND level = $2 AND reason = $3 AND scope IS NOT DISTINCT FROM $4
ORDER BY id DESC LIMIT 1
"""


async def same_recall(conn: Connection, batch: int, level: str, reason: str, scope: str | None) -> Record | None:
    """The recall of ``batch`` with this level, reason and scope, if one was issued already."""
    row: Record | None = await conn.fetchrow(SELECT_SAME_RECALL, batch, level, reason, scope)
    return row


SELECT_RECALLS = """
SELECT r.id, b.trace_code, r.level, r.reason, r.scope, r.authority, r.issued_by, r.issued_at, r.affected,
       r.event_id::text
FROM recalls r JOIN batches b ON b.id = r.batch_id ORDER BY r.issued_at DESC LIMIT $1 OFFSET $2
"""


async def list_recalls(conn: Connection, limit: int = 100, offset: int = 0) -> list[Record]:
    return list(await conn.fetch(SELECT_RECALLS, limit, offset))
