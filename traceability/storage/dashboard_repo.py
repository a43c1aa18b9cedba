"""What the console's dashboard counts: events by kind over a period, anomalies by kind, recalls and how far
each has got, every node with its place and state, and the flows of goods between kinds of node."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record, fetch_one

COUNTS = """
SELECT count(*) FILTER (WHERE e.event_time >= $1) AS events_today,
       count(*) AS events_week,
       count(*) FILTER (WHERE e.seq = 1 AND e.event_time >= $1) AS batches_today,
       count(*) FILTER (WHERE e.seq = 1) AS batches_week,
       count(*) FILTER (WHERE e.biz_step IN ('retail_selling', 'dispensing') AND e.event_time >= $1) AS receipts_today,
       count(*) FILTER (WHERE e.biz_step IN ('retail_selling', 'dispensing')) AS receipts_week,
       count(*) FILTER (WHERE e.biz_step IN ('inspecting', 'sampling') AND e.event_time >= $1) AS inspections_today,
       count(*) FILTER (WHERE e.biz_step IN ('inspecting', 'sampling')) AS inspections_week
FROM events e
WHERE e.event_time >= $2 AND e.event_time < $3
"""


async def counts(conn: Connection, today: datetime, week: datetime, end: datetime) -> Record:
    """Events, new batches, receipts (retail sales and dispensing) and inspections: today and over the week."""
    return await fetch_one(conn, COUNTS, today, week, end)


ANOMALY_STATES = """
SELECT a.kind, t.severity, coalesce(t.status, 'new') AS status, count(*) AS n
FROM anomalies a
LEFT JOIN LATERAL (
    SELECT severity, status FROM anomaly_triage WHERE anomaly_id = a.id ORDER BY id DESC LIMIT 1
) t ON true
GROUP BY 1, 2, 3
"""


async def anomaly_states(conn: Connection) -> list[Record]:
    """Anomalies counted by kind, triaged severity (None: not triaged) and status."""
    return list(await conn.fetch(ANOMALY_STATES))


RECALLS = """
WITH RECURSIVE reached(recall_id, batch_id) AS (
    SELECT r.id, r.batch_id FROM recalls r
    UNION
    SELECT reached.recall_id, l.child_id FROM batch_links l JOIN reached ON l.parent_id = reached.batch_id
)
SELECT r.id, b.trace_code, r.level, r.reason, r.issued_at, r.affected,
       p.name_zh AS product, p.name_en AS product_en,
       count(DISTINCT x.batch_id) FILTER (WHERE EXISTS (
           SELECT 1 FROM events e
           WHERE e.batch_id = x.batch_id AND e.event_time >= r.issued_at
             AND (e.biz_step = 'destroying'
                  OR position('"disposition":"destroyed"' in convert_from(e.canonical, 'UTF8')) > 0
                  OR position('"disposition":"disposed"' in convert_from(e.canonical, 'UTF8')) > 0
                  OR position('"disposition":"returned"' in convert_from(e.canonical, 'UTF8')) > 0)
       )) AS closed
FROM recalls r
JOIN batches b ON b.id = r.batch_id
JOIN products p ON p.id = b.product_id
JOIN reached x ON x.recall_id = r.id
WHERE $2::bigint IS NULL OR r.id = $2
GROUP BY r.id, b.trace_code, p.name_zh, p.name_en
ORDER BY r.issued_at DESC
LIMIT $1
"""


async def recalls(conn: Connection, limit: int, recall_id: int | None = None) -> list[Record]:
    """Recalls (or one), newest first, with how many of the batches each reached were destroyed or returned since."""
    return list(await conn.fetch(RECALLS, limit, recall_id))


NODES = """
SELECT n.code, n.name_zh AS name, n.name_en, n.node_type, n.area_code, n.latitude, n.longitude,
       EXISTS (SELECT 1 FROM batch_stock s JOIN batch_heads h ON h.batch_id = s.batch_id
               WHERE s.node_id = n.id AND h.status = 'recalled' AND s.received > s.dispatched) AS recalled,
       EXISTS (SELECT 1 FROM batch_stock s JOIN batch_heads h ON h.batch_id = s.batch_id
               WHERE s.node_id = n.id AND h.status = 'on_hold' AND s.received > s.dispatched) AS on_hold,
       EXISTS (SELECT 1 FROM anomalies a WHERE a.node_id = n.id AND a.detected_at >= $1) AS anomaly,
       EXISTS (SELECT 1 FROM events e WHERE e.node_id = n.id AND e.event_time >= $1) AS active
FROM nodes n
WHERE n.latitude IS NOT NULL AND n.longitude IS NOT NULL
ORDER BY n.code
"""


async def nodes(conn: Connection, since: datetime) -> list[Record]:
    """Every node that has a place, with what it holds (recalled, on hold stock) and whether it was busy."""
    return list(await conn.fetch(NODES, since))


FLOWS = """
SELECT fn.node_type AS from_type, tn.node_type AS to_type, fn.area_code AS from_area, tn.area_code AS to_area,
       count(*) AS batches
FROM events e
JOIN nodes tn ON tn.id = e.node_id
JOIN LATERAL (
    SELECT e2.node_id FROM events e2
    WHERE e2.batch_id = e.batch_id AND e2.seq < e.seq AND e2.biz_step = 'shipping'
    ORDER BY e2.seq DESC LIMIT 1
) shipped ON true
JOIN nodes fn ON fn.id = shipped.node_id
WHERE e.biz_step = 'receiving' AND e.event_time >= $1 AND e.event_time < $2 AND fn.id <> tn.id
GROUP BY 1, 2, 3, 4
"""


async def flows(conn: Connection, since: datetime, until: datetime) -> list[Record]:
    """Receipts over a period by the kind and district of the node that shipped and the node that received."""
    return list(await conn.fetch(FLOWS, since, until))
