"""Retail sales with receipt codes: the source batch a sale is cut from, what has been taken from it, and
what was sold to consumers at each node (for forward traces and recalls)."""

from __future__ import annotations

from collections.abc import Sequence

from traceability.storage.database import Connection, Record

SELECT_SOURCE = """
SELECT b.id, b.trace_code, b.quantity, b.uom, b.produced_on, b.expires_on, b.product_id,
       p.goods_code, p.category
FROM batches b JOIN products p ON p.id = b.product_id
WHERE b.id = $1
"""


async def find_source(conn: Connection, batch_id: int) -> Record | None:
    """The batch a sale is cut from: its quantity, dates and product."""
    return await conn.fetchrow(SELECT_SOURCE, batch_id)


# A transformation links every output to an input with the input's quantity, so what a parent gave
# is counted once per transformation (or sale), not once per link.
SELECT_TAKEN = """
SELECT max(quantity) AS quantity, max(uom) AS uom
FROM batch_links WHERE parent_id = $1 AND quantity IS NOT NULL
GROUP BY transformation_id
"""


async def taken_from(conn: Connection, parent_id: int) -> list[dict[str, str]]:
    """The quantities already taken from a batch by transformations and sales, one per operation."""
    rows = await conn.fetch(SELECT_TAKEN, parent_id)
    return [{"value": format(r["quantity"].normalize(), "f"), "uom": r["uom"]} for r in rows]


# A receipt is a batch whose first event is a sale naming its source (batch_links to that source).
SELECT_SOLD = """
SELECT l.parent_id AS batch_id, c.node_id, count(*) AS receipts, sum(l.quantity) AS quantity, max(l.uom) AS uom,
       max(e.event_time) AS last_sale
FROM batch_links l
JOIN batches c ON c.id = l.child_id
JOIN events e ON e.batch_id = c.id AND e.seq = 1 AND e.biz_step = 'retail_selling'
WHERE l.parent_id = ANY($1::bigint[])
GROUP BY l.parent_id, c.node_id
"""


async def sold_by_node(conn: Connection, parent_ids: Sequence[int]) -> list[Record]:
    """Per (source batch, node): how many receipts were issued there and the quantity they carry."""
    return list(await conn.fetch(SELECT_SOLD, list(parent_ids)))


# What each node received of each batch (receiving events, plus the opening at the node that opened it).
SELECT_RECEIVED = """
SELECT e.batch_id, e.node_id, e.biz_step, e.seq, convert_from(e.canonical, 'UTF8') AS canonical
FROM events e
WHERE e.batch_id = ANY($1::bigint[]) AND e.device_id IS NOT NULL
  AND (e.seq = 1 OR e.biz_step IN ('receiving', 'shipping', 'retail_selling', 'dispensing', 'destroying'))
ORDER BY e.batch_id, e.seq
"""


async def movements(conn: Connection, batch_ids: Sequence[int]) -> list[Record]:
    """The events that move quantity in or out of a batch at a node, in chain order."""
    return list(await conn.fetch(SELECT_RECEIVED, list(batch_ids)))
