"""Custody: which nodes hold a batch, or are the destination of a shipment of it in transit.

Read and written only by the shared write path, after it has locked the batches' chain heads
(``batches_repo.lock_heads``, ``FOR UPDATE``): that row lock serialises every writer of one
batch's custody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from traceability.storage.database import Connection, Record

SELECT_RELATIONS = """
SELECT batch_id, node_id, relation, in_transit
FROM batch_custody
WHERE batch_id = ANY($1::bigint[]) AND node_id = ANY($2::bigint[])
"""


async def relations(conn: Connection, batch_ids: Sequence[int], node_ids: Sequence[int]) -> list[Record]:
    """The custody rows of the given batches at the given nodes (call with the batches' heads locked)."""
    if not batch_ids or not node_ids:
        return []
    return list(await conn.fetch(SELECT_RELATIONS, list(batch_ids), list(node_ids)))


UPSERT = """
INSERT INTO batch_custody (batch_id, node_id, relation, in_transit, since)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::numeric[], $5::timestamptz[])
ON CONFLICT (batch_id, node_id) DO UPDATE
SET relation = EXCLUDED.relation, in_transit = EXCLUDED.in_transit,
    since = CASE WHEN batch_custody.relation = EXCLUDED.relation THEN batch_custody.since ELSE EXCLUDED.since END
"""


async def write(conn: Connection, rows: Sequence[tuple[int, int, str, Decimal, datetime]]) -> None:
    """Write (batch, node, relation, in transit, since) rows, replacing what the same pair had."""
    if rows:
        await conn.execute(
            UPSERT,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
        )


COLUMNS = ("batch_id", "node_id", "relation", "in_transit", "since")


async def copy_rows(conn: Connection, rows: Sequence[tuple[int, int, str, Decimal, datetime]]) -> None:
    """Write the custody of batches created in this very transaction (the bulk loader) with COPY."""
    if rows:
        await conn.copy_records_to_table("batch_custody", records=rows, columns=COLUMNS)


SELECT_NODES = "SELECT id, code, node_type FROM nodes WHERE id = ANY($1::bigint[]) OR code = ANY($2::text[])"


async def nodes(conn: Connection, ids: Sequence[int], codes: Sequence[str]) -> list[Record]:
    """The recording nodes (by id) and the registered nodes among ``codes`` (shipments' destinations)."""
    return list(await conn.fetch(SELECT_NODES, list(ids), list(codes)))


async def has_operator(conn: Connection, node_id: int, code: str) -> bool:
    """Whether ``code`` is an operator (a stall) registered at the node."""
    found = await conn.fetchval("SELECT 1 FROM operators WHERE node_id = $1 AND code = $2", node_id, code)
    return found is not None
