"""What the console's recall pages read beyond the genealogy: one recall by its id, and the stalls (operators)
that handled each batch at each node, with how to reach them."""

from __future__ import annotations

from collections.abc import Sequence

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
