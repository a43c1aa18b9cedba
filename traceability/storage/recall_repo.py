"""What the console's recall pages read beyond the genealogy: one recall by its id, and the stalls (operators)
that handled each batch at each node, with how to reach them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from traceability.storage.database import Connection, Record

SELECT_RECALL = """
SELECT r.id, b.trace_code, r.level, r.reason, r.scope, r.authority, r.issued_by, r.issued_at, r.affected
FROM recalls r JOIN batches b ON b.id = r.batch_id WHERE r.id = $1
"""


async def recall(conn: Connection, recall_id: int) -> Record | None:
    return await conn.fetchrow(SELECT_RECALL, recall_id)


SELECT_STALLS = """
SELECT DISTINCT b.trace_code, n.code AS node, o.code, o.name, o.stall_no, o.contact
FROM events e
JOIN batches b ON b.id = e.batch_id
JOIN devices d ON d.id = e.device_id
JOIN operators o ON o.id = d.operator_id
JOIN nodes n ON n.id = o.node_id
WHERE b.trace_code = ANY($1::text[])
ORDER BY n.code, o.code, b.trace_code
"""


async def stalls(conn: Connection, trace_codes: Sequence[str]) -> list[Record]:
    """Each stall whose scale or scanner recorded one of these batches, with the batch and the stall's contact."""
    return list(await conn.fetch(SELECT_STALLS, list(trace_codes)))


REACHED = """
WITH RECURSIVE reached(batch_id) AS (
    SELECT batch_id FROM recalls WHERE id = $1
    UNION
    SELECT l.child_id FROM batch_links l JOIN reached ON l.parent_id = reached.batch_id
)
"""

SELECT_ENTERPRISES = (
    REACHED
    + """
SELECT DISTINCT en.id, en.uscc, en.name, en.name_en, en.contact
FROM reached x
JOIN events e ON e.batch_id = x.batch_id
JOIN nodes n ON n.id = e.node_id
JOIN enterprises en ON en.id = n.enterprise_id
ORDER BY en.uscc
"""
)


async def reached_enterprises(conn: Connection, recall_id: int) -> list[Record]:
    """The enterprises whose nodes recorded a batch the recall reaches (the recall's source and descendants)."""
    return list(await conn.fetch(SELECT_ENTERPRISES, recall_id))


SELECT_NOTICES = """
WITH RECURSIVE reached(recall_id, batch_id) AS (
    SELECT r.id, r.batch_id FROM recalls r
    UNION
    SELECT reached.recall_id, l.child_id FROM batch_links l JOIN reached ON l.parent_id = reached.batch_id
)
SELECT r.id, b.trace_code, r.level, r.reason, r.scope, r.authority, r.issued_at, r.affected,
       a.at AS acknowledged_at
FROM recalls r
JOIN batches b ON b.id = r.batch_id
LEFT JOIN recall_acknowledgements a ON a.recall_id = r.id AND a.enterprise_id = $1
WHERE EXISTS (
    SELECT 1 FROM reached x JOIN events e ON e.batch_id = x.batch_id JOIN nodes n ON n.id = e.node_id
    WHERE x.recall_id = r.id AND n.enterprise_id = $1
)
ORDER BY r.issued_at DESC, r.id DESC
LIMIT $2 OFFSET $3
"""


async def notices(conn: Connection, enterprise_id: int, limit: int, offset: int) -> list[Record]:
    """The recalls that reach this enterprise, newest first, each with when the enterprise acknowledged it."""
    return list(await conn.fetch(SELECT_NOTICES, enterprise_id, limit, offset))


INSERT_ACK = """
INSERT INTO recall_acknowledgements (recall_id, enterprise_id, at, actor_kind, actor_id, actor_name)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (recall_id, enterprise_id) DO NOTHING
RETURNING id
"""

SELECT_ACKS = """
SELECT a.enterprise_id, en.uscc, a.at, a.actor_kind, a.actor_id, a.actor_name
FROM recall_acknowledgements a JOIN enterprises en ON en.id = a.enterprise_id
WHERE a.recall_id = $1 AND ($2::bigint IS NULL OR a.enterprise_id = $2)
ORDER BY a.id
"""


async def acknowledge(
    conn: Connection, recall_id: int, enterprise_id: int, at: datetime, kind: str, actor_id: int, actor_name: str
) -> bool:
    """Record the enterprise's acknowledgement; False when it had acknowledged before (nothing written)."""
    return await conn.fetchval(INSERT_ACK, recall_id, enterprise_id, at, kind, actor_id, actor_name) is not None


async def acknowledgements(conn: Connection, recall_id: int, enterprise_id: int | None = None) -> list[Record]:
    """Who acknowledged the recall and when (or only this enterprise's acknowledgement)."""
    return list(await conn.fetch(SELECT_ACKS, recall_id, enterprise_id))
