"""Batches, their external identifiers and their chain heads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from traceability.storage.database import Connection, Record, fetch_one

NEXT_SERIAL = "SELECT nextval('trace_serial_seq')"


async def next_serial(conn: Connection) -> int:
    """A serial never handed out before (sequences are not rolled back: gaps are fine, reuse is not)."""
    value: int = await conn.fetchval(NEXT_SERIAL)
    return value


INSERT_BATCH = """
INSERT INTO batches (trace_code, product_id, node_id, device_id, open_event_id, open_digest,
                     quantity, uom, produced_on, expires_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, created_at
"""


async def insert_batch(
    conn: Connection,
    *,
    trace_code: str,
    product_id: int,
    node_id: int,
    device_id: int | None,
    open_event_id: str,
    open_digest: bytes,
    quantity: Decimal,
    uom: str,
    produced_on: date | None,
    expires_on: date | None,
) -> Record:
    """Insert a batch row. An ``open_event_id`` or trace code already taken is a raced opening (a
    Contention, see ``database.RACED_KEYS``): the caller's next attempt finds the batch."""
    return await fetch_one(
        conn,
        INSERT_BATCH,
        trace_code,
        product_id,
        node_id,
        device_id,
        open_event_id,
        open_digest,
        quantity,
        uom,
        produced_on,
        expires_on,
    )


async def insert_head(
    conn: Connection, batch_id: int, seq: int, head_hash: bytes, opened_at: datetime | None = None
) -> None:
    """A new batch's chain head; ``opened_at``: the event time of its first event (seq 1) when that event is
    written with it, else None (the capture statement then reads it from the event, see events_repo)."""
    await conn.execute(
        "INSERT INTO batch_heads (batch_id, seq, head_hash, opened_at) VALUES ($1, $2, $3, $4)",
        batch_id,
        seq,
        head_hash,
        opened_at,
    )


INSERT_IDENTIFIERS = """
INSERT INTO batch_identifiers (scheme, value, batch_id)
SELECT s, v, $3 FROM unnest($1::text[], $2::text[]) AS u(s, v)
"""


async def insert_identifiers(conn: Connection, batch_id: int, pairs: Sequence[tuple[str, str]]) -> None:
    """Attach external identifiers; one that already names another batch is AlreadyExists
    (``database.TAKEN_KEYS``)."""
    if pairs:
        await conn.execute(INSERT_IDENTIFIERS, [p[0] for p in pairs], [p[1] for p in pairs], batch_id)


async def find_identifier_owner(conn: Connection, scheme: str, value: str) -> str | None:
    code: str | None = await conn.fetchval(
        "SELECT b.trace_code FROM batch_identifiers i JOIN batches b ON b.id = i.batch_id "
        "WHERE i.scheme = $1 AND i.value = $2",
        scheme,
        value,
    )
    return code


FIND_OPENED = """
SELECT b.trace_code, b.open_digest, e.seq, e.hash, e.prev_hash, e.recorded_at
FROM batches b JOIN events e ON e.batch_id = b.id AND e.seq = 1
WHERE b.open_event_id = $1
"""


async def find_opened(conn: Connection, open_event_id: str) -> Record | None:
    """The batch a given opening event created, with its first event's receipt."""
    return await conn.fetchrow(FIND_OPENED, open_event_id)


# Row locks on the heads serialise appends per batch. Ordered by id so two requests that touch
# the same batches always lock them in the same order and cannot deadlock.
# The opening time is the one kept on the head (schema 0027), else read from the first event.
LOCK_HEADS = """
SELECT b.id, b.trace_code, b.node_id, h.seq, h.head_hash, h.status, h.status_since, p.category,
       coalesce(h.opened_at, (SELECT o.event_time FROM events o WHERE o.batch_id = b.id AND o.seq = 1)) AS opened_at
FROM batches b JOIN batch_heads h ON h.batch_id = b.id JOIN products p ON p.id = b.product_id
WHERE b.trace_code = ANY($1::text[])
ORDER BY b.id
FOR UPDATE OF h
"""


async def lock_heads(conn: Connection, trace_codes: Sequence[str]) -> list[Record]:
    """Lock and return the chain heads of the given batches (unknown codes are simply absent), with the time
    each batch's opening states (``opened_at``; None for a batch an EPCIS capture opened in this very
    transaction, whose first event is still to be written)."""
    return list(await conn.fetch(LOCK_HEADS, list(trace_codes)))


UPDATE_HEADS = """
UPDATE batch_heads h SET seq = u.seq, head_hash = u.head_hash
FROM unnest($1::bigint[], $2::int[], $3::bytea[]) AS u(batch_id, seq, head_hash)
WHERE h.batch_id = u.batch_id
"""


async def update_heads(conn: Connection, heads: Sequence[tuple[int, int, bytes]]) -> None:
    await conn.execute(UPDATE_HEADS, [h[0] for h in heads], [h[1] for h in heads], [h[2] for h in heads])


SELECT_HEADS = """
SELECT b.trace_code, h.seq, h.head_hash
FROM batches b JOIN batch_heads h ON h.batch_id = b.id
WHERE b.trace_code = ANY($1::text[])
"""


async def find_head(conn: Connection, trace_code: str) -> Record | None:
    """The chain head (seq, head_hash) of the batch ``trace_code`` names, if any."""
    return await conn.fetchrow(SELECT_HEADS, [trace_code])


async def find_heads(conn: Connection, trace_codes: Sequence[str]) -> dict[str, Record]:
    """The chain heads (seq, head_hash) of those of ``trace_codes`` that name a batch, by trace code."""
    return {r["trace_code"]: r for r in await conn.fetch(SELECT_HEADS, trace_codes)}


SELECT_BATCH_VIEW = """
SELECT b.id, b.trace_code, b.quantity, b.uom, b.produced_on, b.expires_on, b.created_at,
       p.category, p.goods_code, p.gtin, p.name_zh AS product_name, p.name_en AS product_name_en,
       n.code AS node_code, n.name_zh AS node_name, n.name_en AS node_name_en, n.node_type,
       n.area_code, en.uscc AS enterprise_uscc, en.name AS enterprise_name,
       h.seq AS head_seq, h.head_hash,
       coalesce((SELECT array_agg(i.scheme || ':' || i.value ORDER BY i.scheme, i.value)
                 FROM batch_identifiers i WHERE i.batch_id = b.id), '{}') AS identifiers
FROM batches b
JOIN products p ON p.id = b.product_id
JOIN nodes n ON n.id = b.node_id
JOIN enterprises en ON en.id = n.enterprise_id
JOIN batch_heads h ON h.batch_id = b.id
WHERE b.trace_code = $1
"""


async def find_batch_view(conn: Connection, trace_code: str) -> Record | None:
    return await conn.fetchrow(SELECT_BATCH_VIEW, trace_code)
