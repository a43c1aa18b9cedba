"""Background work that exactly one server process does at a time (the log sequencer, the analyzer).

Leadership is a PostgreSQL session advisory lock held on a dedicated connection: when the leading
process dies its connection closes, the lock is released, and another process takes over within a
few polling intervals. The work itself must stay safe if two leaders ever overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from traceability.logging import get_logger
from traceability.storage import locks_repo
from traceability.storage.database import Connection, Database

log = get_logger(__name__)


async def sleep_until(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_exclusive(
    db: Database,
    name: str,
    lock: int,
    step: Callable[[Connection], Awaitable[bool]],
    interval: float,
    stop: asyncio.Event,
) -> None:
    """Run ``step(conn)`` while holding ``lock`` on ``conn``; it returns whether more work is waiting right now.

    Waits for the lock while another process holds it; a failure (the database restarting, a lost
    race) is logged and retried after a pause.
    """
    while not stop.is_set():
        try:
            async with db.connection() as conn:
                if not await locks_repo.try_lock(conn, lock):
                    await sleep_until(stop, interval * 5)
                    continue
                log.info(f"{name}.started")
                try:
                    while not stop.is_set():
                        if not await step(conn):
                            await sleep_until(stop, interval)
                finally:
                    with contextlib.suppress(Exception):
                        await locks_repo.unlock(conn, lock)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{name}.failed", error=type(exc).__name__, detail=str(exc)[:200])
            await sleep_until(stop, interval * 5)
