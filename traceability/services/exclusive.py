"""Background work that exactly one server process does at a time (the log sequencer, the analyzer).

Leadership is a PostgreSQL session advisory lock held on a dedicated connection: when the leading
process dies its connection closes, the lock is released, and another process takes over within a
few polling intervals. The work itself must stay safe if two leaders ever overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from traceability.logging import get_logger
from traceability.storage import locks_repo
from traceability.storage.database import Connection, Database

log = get_logger(__name__)

Busy = Callable[[], bool]
"""Whether the process is busy with work that comes first (see :func:`run_exclusive`)."""
SHARE_WHILE_BUSY = 0.2
"""The share of the time work that gives way (``give_way``) does while its process is busy."""


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
    give_way: Busy | None = None,
) -> None:
    """Run ``step(conn)`` while holding ``lock`` on ``conn``; it returns whether more work is waiting right now.

    Waits for the lock while another process holds it; a failure (the database restarting, a lost
    race) is logged and retried after a pause. ``give_way``: whether the process is busy with work that
    comes first (requests); then each step is followed by a pause, so that this work takes at most
    :data:`SHARE_WHILE_BUSY` of the time. It falls behind under heavy load and catches up when it eases.
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
                        started = time.monotonic()
                        more = await step(conn)
                        if give_way is not None and give_way():
                            await sleep_until(stop, (time.monotonic() - started) * (1 / SHARE_WHILE_BUSY - 1))
                        if not more:
                            await sleep_until(stop, interval)
                finally:
                    with contextlib.suppress(Exception):
                        await locks_repo.unlock(conn, lock)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{name}.failed", error=type(exc).__name__, detail=str(exc)[:200])
            await sleep_until(stop, interval * 5)
