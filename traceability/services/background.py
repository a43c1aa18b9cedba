"""The log's background work: the sequencer that integrates recorded events into the Merkle log, and
the anomaly analyzer that follows the log.

Both hold a PostgreSQL advisory lock while they work (:mod:`traceability.services.exclusive`), so one
of each runs across all processes. With several workers or ``TRACE_BACKGROUND=process``
``traceability serve`` runs them in a process of their own, at a lower CPU priority, so the processes
answering requests keep their cores for capture; :func:`run_process` is that process's work.
Otherwise (one worker, ``TRACE_BACKGROUND=inline``, the tests' in-process servers) each server process
runs them itself (:func:`run`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from traceability.config import Settings
from traceability.logging import get_logger
from traceability.services import analyzer, transparency
from traceability.services.exclusive import Busy
from traceability.storage.database import Database, open_database

log = get_logger(__name__)

POOL_SIZE = 4
"""Connections the background process needs: one locked for each loop, and one for their work."""


class Foreground:
    """When the process last took a write (a capture, a recall, anything but a read), as the background work
    running beside its requests sees it: the analyzer gives way while writes come in (the sequencer never
    does: it is what puts each record in the log within a second)."""

    RECENT = 1.0
    """Seconds after a write during which the process counts as busy taking writes."""

    def __init__(self) -> None:
        self.wrote = -self.RECENT

    def busy(self) -> bool:
        """Whether a write came in within the last :data:`RECENT` seconds."""
        return time.monotonic() - self.wrote < self.RECENT


async def run(
    db: Database, lg: transparency.Log, interval: float, stop: asyncio.Event, busy: Busy | None = None
) -> None:
    """The sequencer and the analyzer, until ``stop`` is set; ``busy``: whether the process is taking writes
    (:class:`Foreground`), for the analyzer to give way to them."""
    await asyncio.gather(
        transparency.run_sequencer(db, lg, interval, stop),
        analyzer.run_analyzer(db, interval, stop, busy),
        return_exceptions=True,  # collected, not raised: a task the shutdown cancelled has nothing left to say
    )


async def run_process(settings: Settings, stop: asyncio.Event) -> None:
    """The background process's whole life: its own small pool, the log, both loops until ``stop``."""
    async with open_database(dataclasses.replace(settings, pool_size=POOL_SIZE)) as db:
        # It serves no proofs: nothing a serving process keeps in memory for them would be used here.
        lg = dataclasses.replace(await transparency.open_log(db, settings), tiles=transparency.TileCache(0, 0, 0))
        log.info("background.started", log_id=lg.log_id)
        await run(db, lg, settings.sequencer_interval_ms / 1000, stop)
    log.info("background.stopped")
