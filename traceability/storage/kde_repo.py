"""The critical tracking events of a product (or category) over a time range, for the key data element export.

One query: each event with its batch, product, node and enterprise, the batch's source lots, and for a
receipt the node that shipped it last (the ship-from), for a shipment the node that received it next
(the ship-to) when the shipment names no destination.
"""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record

CTE_STEPS = ("shipping", "receiving", "packing", "repackaging")

SELECT_EVENTS = """
SELECT b.trace_code, e.seq, e.event_id::text AS event_id, e.biz_step, e.event_time, e.canonical, e.private,
       p.name_zh AS product, p.name_en AS product_en, p.goods_code, p.category,
       n.code AS node_code, n.name_zh AS node, n.name_en AS node_en, n.address,
       en.name AS enterprise, en.name_en AS enterprise_en, en.uscc, en.contact,
       (SELECT array_agg(pb.trace_code ORDER BY pb.trace_code) FROM batch_links l
        JOIN batches pb ON pb.id = l.parent_id WHERE l.child_id = b.id) AS parents,
       fn.code AS from_code, tn.code AS to_code
FROM events e
JOIN batches b ON b.id = e.batch_id
JOIN products p ON p.id = b.product_id
JOIN nodes n ON n.id = e.node_id
JOIN enterprises en ON en.id = n.enterprise_id
LEFT JOIN LATERAL (
    SELECT e2.node_id FROM events e2
    WHERE e2.batch_id = e.batch_id AND e2.seq < e.seq AND e2.biz_step = 'shipping'
    ORDER BY e2.seq DESC LIMIT 1
) shipped ON e.biz_step = 'receiving'
LEFT JOIN nodes fn ON fn.id = shipped.node_id
LEFT JOIN LATERAL (
    SELECT e3.node_id FROM events e3
    WHERE e3.batch_id = e.batch_id AND e3.seq > e.seq AND e3.biz_step = 'receiving'
    ORDER BY e3.seq LIMIT 1
) received ON e.biz_step = 'shipping'
LEFT JOIN nodes tn ON tn.id = received.node_id
WHERE e.event_time >= $1 AND e.event_time < $2
  AND (e.seq = 1 OR e.biz_step = ANY($3::text[]))
  AND ($4::text IS NULL OR p.goods_code = $4 OR p.gtin = $4 OR p.name_zh ILIKE $5 OR coalesce(p.name_en, '') ILIKE $5)
  AND ($6::text IS NULL OR p.category = $6)
ORDER BY e.event_time, b.trace_code, e.seq
LIMIT $7
"""


async def critical_events(
    conn: Connection,
    *,
    since: datetime,
    until: datetime,
    product: str | None,
    product_like: str | None,
    category: str | None,
    limit: int,
) -> list[Record]:
    """The events that are critical tracking events (openings, shipments, receipts, packing), oldest first."""
    return list(await conn.fetch(SELECT_EVENTS, since, until, list(CTE_STEPS), product, product_like, category, limit))


SELECT_PLACES = """
SELECT n.code, n.name_zh AS name, n.name_en, n.address, en.uscc, en.name AS enterprise, en.name_en AS enterprise_en,
       en.contact
FROM nodes n JOIN enterprises en ON en.id = n.enterprise_id
"""


async def places(conn: Connection) -> list[Record]:
    """Every node with its enterprise and contact: the ship-from and ship-to of the export, by node code."""
    return list(await conn.fetch(SELECT_PLACES))
