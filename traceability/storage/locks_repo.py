"""Session advisory locks: which process leads the background work (the sequencer, the analyzer)."""

from __future__ import annotations

from traceability.storage.database import Connection


async def try_lock(conn: Connection, key: int) -> bool:
    """Take the session lock ``key`` on this connection if no other session holds it."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
    return taken


async def unlock(conn: Connection, key: int) -> None:
    """Release the session lock ``key`` held by this connection."""
    await conn.execute("SELECT pg_advisory_unlock($1)", key)
