"""Read-only queries behind the web pages: batch search, the register overview, verification data."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record

SELECT_CANONICAL = """
SELECT e.seq, e.event_id::text AS event_id, e.hash, e.prev_hash, e.canonical
FROM events e JOIN batches b ON b.id = e.batch_id
WHERE b.trace_code = $1
ORDER BY e.seq
"""


async def list_canonical(conn: Connection, trace_code: str) -> list[Record]:
    """A batch's events as hashed: the canonical bytes (commercial details sealed), in chain order."""
    return list(await conn.fetch(SELECT_CANONICAL, trace_code))


SELECT_OPERATOR = """
SELECT o.code, o.name, o.stall_no, n.code AS node_code, n.name_zh AS node_name, n.name_en AS node_name_en,
       n.node_type, n.area_code, n.address, en.name AS enterprise_name, en.uscc AS enterprise_uscc
FROM operators o JOIN nodes n ON n.id = o.node_id JOIN enterprises en ON en.id = n.enterprise_id
WHERE n.code = $1 AND o.code = $2
"""


async def find_operator(conn: Connection, node_code: str, operator_code: str) -> Record | None:
    """A stall (operator) at a node, with its node and enterprise."""
    return await conn.fetchrow(SELECT_OPERATOR, node_code, operator_code)


def like_pattern(text: str) -> str:
    """A substring pattern for ILIKE with the user's own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Every filter is optional ($n IS NULL). Enterprise and node match any node the batch passed
# through, not only the one that opened it; the date range matches any of its events.
SEARCH_BATCHES = """
SELECT b.trace_code, p.goods_code, p.name_zh AS product_name, p.name_en AS product_name_en, p.category,
       b.quantity, b.uom, b.created_at, b.produced_on,
       (SELECT e.event_time FROM events e WHERE e.batch_id = b.id AND e.seq = 1) AS opened_time,
       n.code AS node_code, n.name_zh AS node_name, n.name_en AS node_name_en, h.seq AS events
FROM batches b
JOIN products p ON p.id = b.product_id
JOIN nodes n ON n.id = b.node_id
JOIN batch_heads h ON h.batch_id = b.id
WHERE ($1::text IS NULL OR p.goods_code = $1 OR p.gtin = $1
       OR p.name_zh ILIKE $2 OR coalesce(p.name_en, '') ILIKE $2)
  AND ($3::text IS NULL OR EXISTS (
        SELECT 1 FROM events e JOIN nodes en_n ON en_n.id = e.node_id
        JOIN enterprises en ON en.id = en_n.enterprise_id
        WHERE e.batch_id = b.id AND (en.uscc = $3 OR en.name ILIKE $4 OR coalesce(en.name_en, '') ILIKE $4)))
  AND ($5::text IS NULL OR EXISTS (
        SELECT 1 FROM events e JOIN nodes nn ON nn.id = e.node_id
        WHERE e.batch_id = b.id AND (nn.code = $5 OR nn.name_zh ILIKE $6 OR coalesce(nn.name_en, '') ILIKE $6)))
  AND ($7::timestamptz IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id AND e.event_time >= $7))
  AND ($8::timestamptz IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id AND e.event_time < $8))
ORDER BY b.id DESC
LIMIT $9
"""


async def search_batches(
    conn: Connection,
    *,
    product: str | None,
    enterprise: str | None,
    node: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[Record]:
    """Batches matching every given filter, newest first."""
    return list(
        await conn.fetch(
            SEARCH_BATCHES,
            product,
            like_pattern(product or ""),
            enterprise,
            like_pattern(enterprise or ""),
            node,
            like_pattern(node or ""),
            since,
            until,
            limit,
        )
    )


SELECT_REGISTER = """
SELECT en.uscc, en.name, en.name_en, en.created_at,
       (SELECT count(*) FROM nodes n WHERE n.enterprise_id = en.id) AS nodes,
       (SELECT string_agg(DISTINCT n.node_type, ',') FROM nodes n WHERE n.enterprise_id = en.id) AS node_types,
       (SELECT count(*) FROM events e JOIN nodes n ON n.id = e.node_id WHERE n.enterprise_id = en.id) AS events
FROM enterprises en
ORDER BY en.id
LIMIT $1 OFFSET $2
"""


async def list_register(conn: Connection, limit: int, offset: int) -> list[Record]:
    """Enterprises with how many nodes they run and how many events they recorded."""
    return list(await conn.fetch(SELECT_REGISTER, limit, offset))


SELECT_WITNESSES = "SELECT name, verifier_key, created_at, revoked_at FROM witnesses ORDER BY id"


async def list_witnesses(conn: Connection) -> list[Record]:
    return list(await conn.fetch(SELECT_WITNESSES))


SELECT_LOG_BACKLOG = "SELECT count(*) FROM log_queue"


async def log_backlog(conn: Connection) -> int:
    """Events recorded but not yet integrated into the Merkle log."""
    value: int = await conn.fetchval(SELECT_LOG_BACKLOG)
    return value
