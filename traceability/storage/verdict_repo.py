"""What a verdict reads besides the batch view: the state of the batches it came from, the inspection a
hold points at, the lot a drug package code belongs to (and whether that package was dispensed), and the
list of recalled, held and stocked batches a station keeps for its offline days."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record

SELECT_ANCESTORS = """
WITH RECURSIVE up(id, depth) AS (
    SELECT $1::bigint, 0
    UNION
    SELECT l.parent_id, up.depth + 1 FROM batch_links l JOIN up ON l.child_id = up.id WHERE up.depth < 64
)
SELECT b.trace_code, b.expires_on, h.status, h.status_since, min(up.depth) AS depth
FROM up JOIN batches b ON b.id = up.id JOIN batch_heads h ON h.batch_id = b.id
WHERE up.depth > 0
GROUP BY b.trace_code, b.expires_on, h.status, h.status_since
ORDER BY depth, b.trace_code
LIMIT 500
"""


async def ancestors(conn: Connection, trace_code: str) -> list[Record]:
    """The batches a batch was made, cut or sold from (nearest first), each with its expiry and status."""
    batch = await conn.fetchval("SELECT id FROM batches WHERE trace_code = $1", trace_code)
    if batch is None:
        return []
    return list(await conn.fetch(SELECT_ANCESTORS, batch))


SELECT_EVENT = """
SELECT e.canonical, e.event_time, b.trace_code, n.name_zh AS node, n.name_en AS node_en
FROM events e JOIN batches b ON b.id = e.batch_id JOIN nodes n ON n.id = e.node_id
WHERE e.event_id = $1::uuid
"""


async def event(conn: Connection, event_id: str) -> Record | None:
    """One event's canonical bytes with its batch and node (the inspection a hold points at)."""
    row: Record | None = await conn.fetchrow(SELECT_EVENT, event_id)
    return row


# -- drug package codes ----------------------------------------------------------------------------

SELECT_PACKAGE = "SELECT b.trace_code FROM packages p JOIN batches b ON b.id = p.batch_id WHERE p.code = $1"
SELECT_IDENTIFIER = (
    "SELECT b.trace_code FROM batch_identifiers i JOIN batches b ON b.id = i.batch_id "
    "WHERE i.scheme = 'drug_code' AND i.value = $1"
)
SELECT_DISPENSED_SERIAL = (
    "SELECT b.trace_code FROM drug_serials d JOIN batches b ON b.id = d.batch_id WHERE serial = $1"
)
# Lots of the same drug (the first digits of a code name the drug): their openings, which may declare the
# range of box codes the lot was printed with (attributes.boxes_from … boxes_to).
SELECT_LOTS_OF_DRUG = """
SELECT b.trace_code, e.canonical
FROM batch_identifiers i JOIN batches b ON b.id = i.batch_id JOIN events e ON e.batch_id = b.id AND e.seq = 1
WHERE i.scheme = 'drug_code' AND i.value >= $1 AND i.value < $2
ORDER BY b.id DESC
LIMIT 200
"""
SELECT_DISPENSINGS = """
SELECT e.canonical, e.event_time, n.name_zh AS node, n.name_en AS node_en
FROM events e JOIN batches b ON b.id = e.batch_id JOIN nodes n ON n.id = e.node_id
WHERE b.trace_code = $1 AND e.biz_step IN ('dispensing', 'retail_selling')
ORDER BY e.seq
LIMIT 20000
"""


async def package_lot(conn: Connection, code: str) -> str | None:
    """The lot a package code was recorded for: packed (AggregationEvent), opened with it, or dispensed."""
    for query in (SELECT_PACKAGE, SELECT_IDENTIFIER, SELECT_DISPENSED_SERIAL):
        found: str | None = await conn.fetchval(query, code)
        if found is not None:
            return found
    return None


async def lots_of_drug(conn: Connection, low: str, high: str) -> list[Record]:
    """Lots whose drug code lies in [low, high), with their opening's canonical bytes."""
    return list(await conn.fetch(SELECT_LOTS_OF_DRUG, low, high))


async def dispensings(conn: Connection, trace_code: str) -> list[Record]:
    """A lot's dispensing and retail sale events (their attributes name the package serials)."""
    return list(await conn.fetch(SELECT_DISPENSINGS, trace_code))


# -- a station's list for its offline days -----------------------------------------------------------

SELECT_STOCK = """
WITH here AS (
    SELECT DISTINCT e.batch_id FROM events e WHERE e.node_id = $1 AND e.event_time > $2
)
SELECT b.trace_code, p.goods_code, p.name_zh AS product_name, p.name_en AS product_name_en, p.category,
       b.expires_on, h.status, h.status_since
FROM here JOIN batches b ON b.id = here.batch_id JOIN batch_heads h ON h.batch_id = b.id
JOIN products p ON p.id = b.product_id
ORDER BY b.id DESC
LIMIT $3
"""
SELECT_STOPPED = """
SELECT b.trace_code, p.goods_code, p.name_zh AS product_name, p.name_en AS product_name_en, p.category,
       b.expires_on, h.status, h.status_since
FROM batch_heads h JOIN batches b ON b.id = h.batch_id JOIN products p ON p.id = b.product_id
WHERE h.status IN ('recalled', 'on_hold') AND h.status_since > $1
ORDER BY h.status_since DESC
LIMIT $2
"""


async def node_stock(conn: Connection, node_id: int, since: datetime, limit: int) -> list[Record]:
    """Batches with an event at this node since ``since`` (what it holds or held), newest first."""
    return list(await conn.fetch(SELECT_STOCK, node_id, since, limit))


async def stopped(conn: Connection, since: datetime, limit: int) -> list[Record]:
    """Batches recalled or put on hold since ``since``, anywhere (recalls and failed tests are published)."""
    return list(await conn.fetch(SELECT_STOPPED, since, limit))


SELECT_STATE = """
SELECT b.trace_code, b.expires_on, h.status, h.status_since, 1 AS depth
FROM batches b JOIN batch_heads h ON h.batch_id = b.id WHERE b.trace_code = $1
"""


async def batch_state(conn: Connection, trace_code: str) -> Record | None:
    """One batch's expiry and status (the shape :func:`ancestors` returns, at depth 1)."""
    row: Record | None = await conn.fetchrow(SELECT_STATE, trace_code)
    return row


# -- what a consumer page depends on -----------------------------------------------------------------

# The batch, every batch it came from (links), and the batch its opening names as sold from (a receipt
# printed before sales were linked): the batches a consumer page draws on.
SELECT_PAGE_SOURCES = """
WITH RECURSIVE me AS (
    SELECT b.id,
           (SELECT convert_from(e.canonical, 'UTF8')::jsonb #>> '{attributes,soldFrom}'
            FROM events e WHERE e.batch_id = b.id AND e.seq = 1) AS sold_from
    FROM batches b WHERE b.trace_code = $1
), up(id, depth) AS (
    SELECT id, 0 FROM me
    UNION
    SELECT l.parent_id, up.depth + 1 FROM batch_links l JOIN up ON l.child_id = up.id WHERE up.depth < 64
)
SELECT id FROM up
UNION
SELECT b.id FROM me JOIN batches b ON b.trace_code = me.sold_from
LIMIT 500
"""
# Each one's chain head and status, and how many links name it as the child: a page built from these rows
# stays true while they are unchanged (histories only grow, so a new event anywhere moves a head; a new link
# into any of them changes a count, and the batches drawn on are read again).
SELECT_PAGE_HEADS = """
SELECT h.batch_id, b.trace_code, h.head_hash, h.status,
       (SELECT count(*) FROM batch_links l WHERE l.child_id = h.batch_id) AS links
FROM batch_heads h JOIN batches b ON b.id = h.batch_id
WHERE h.batch_id = ANY($1::bigint[])
"""


async def page_sources(conn: Connection, trace_code: str) -> list[int]:
    """The ids of a batch and of every batch its consumer page draws on (none: no such batch)."""
    return [r["id"] for r in await conn.fetch(SELECT_PAGE_SOURCES, trace_code)]


async def page_heads(conn: Connection, batch_ids: list[int]) -> list[Record]:
    """The chain head and status of each of these batches, and the count of links into each."""
    return list(await conn.fetch(SELECT_PAGE_HEADS, batch_ids))
