"""Retail sales with receipt codes: the source batch a sale is cut from, what has been taken from it, and
the events that say where a batch's quantity went (for forward traces and recalls)."""

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


# Every event a device recorded on these batches, with the node it was recorded at, in chain order.
SELECT_MOVEMENTS = """
SELECT e.batch_id, e.seq, e.biz_step, n.code AS node, e.canonical
FROM events e JOIN nodes n ON n.id = e.node_id
WHERE e.batch_id = ANY($1::bigint[]) AND e.device_id IS NOT NULL
ORDER BY e.batch_id, e.seq
"""


async def movements(conn: Connection, batch_ids: Sequence[int]) -> list[Record]:
    """The events that move quantity in or out of batches at nodes (and the rest: the caller sorts them out)."""
    return list(await conn.fetch(SELECT_MOVEMENTS, list(batch_ids)))
