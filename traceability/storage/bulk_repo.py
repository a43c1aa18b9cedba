"""Bulk loading: reserving serials and batch ids, and writing batches, identifiers and chain heads with COPY.

Used by the demo's scale path, which builds every record with the shared write path (services/recording.py) and
writes tens of thousands per transaction. Events themselves go through ``events_repo.insert_events``,
so the statement trigger queues them for the transparency log exactly as a capture does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from traceability.storage.database import Connection

BATCH_COLUMNS = (
    "id",
    "trace_code",
    "product_id",
    "node_id",
    "device_id",
    "open_event_id",
    "open_digest",
    "quantity",
    "uom",
    "produced_on",
    "expires_on",
)
HEAD_COLUMNS = ("batch_id", "seq", "head_hash", "opened_at")
IDENTIFIER_COLUMNS = ("scheme", "value", "batch_id")

RESERVE_SERIALS = "SELECT nextval('trace_serial_seq') FROM generate_series(1, $1)"

# Batch ids come from the identity column's own sequence, so rows written with COPY (which writes the
# given ids, as INSERT ... OVERRIDING SYSTEM VALUE would) never collide with ones inserted one by one.
RESERVE_BATCH_IDS = "SELECT nextval(pg_get_serial_sequence('batches', 'id')) FROM generate_series(1, $1)"


async def reserve_serials(conn: Connection, count: int) -> list[int]:
    """``count`` trace-code serials never handed out before, in increasing order."""
    return [r[0] for r in await conn.fetch(RESERVE_SERIALS, count)]


async def reserve_batch_ids(conn: Connection, count: int) -> list[int]:
    """``count`` fresh batch ids, in increasing order."""
    return [r[0] for r in await conn.fetch(RESERVE_BATCH_IDS, count)]


async def copy_batches(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Write batch rows (in ``BATCH_COLUMNS`` order, ids reserved with :func:`reserve_batch_ids`)."""
    if rows:
        await conn.copy_records_to_table("batches", records=rows, columns=BATCH_COLUMNS)


async def copy_identifiers(conn: Connection, rows: Sequence[tuple[str, str, int]]) -> None:
    """Write (scheme, value, batch id) rows; a value that already names a batch is AlreadyExists."""
    if rows:
        await conn.copy_records_to_table("batch_identifiers", records=rows, columns=IDENTIFIER_COLUMNS)


async def copy_heads(conn: Connection, rows: Sequence[tuple[int, int, bytes, datetime]]) -> None:
    """Write the chain heads (batch id, last seq, last hash, the opening's event time) of batches written in this
    transaction."""
    if rows:
        await conn.copy_records_to_table("batch_heads", records=rows, columns=HEAD_COLUMNS)
