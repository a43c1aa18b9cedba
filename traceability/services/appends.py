"""Single events that arrive together are written together (group commit).

Under load many scanners each send one event at the same moment. Written one by one, each costs a
round trip and a commit of its own. Here an event that arrives while a write is under way waits for
the next write, and that write appends every event waiting, in one statement and one commit
(``events_repo.append_single``). Each request is answered only once the statement that wrote its
event has committed, so an acknowledged event is as durable as before.

Events of the same batch go in separate writes, one after the other in the order they arrived (a
statement links each event to its batch's head as it was before the statement). A write never waits
for a chain head another transaction holds: that event goes the general path, which does
(``events_repo.append_single``). When a write fails, its events are written again one by one, so that
one event's failure is its own and no other's (unless the database is unavailable: then every event of
the write is answered so at once).
"""

from __future__ import annotations

import asyncio

from traceability import errors
from traceability.domain import bounds
from traceability.ledger import chain
from traceability.storage import events_repo
from traceability.storage.database import Database, Record

MOST = 256
"""Events in one statement at most."""
WRITERS = 2
"""Writes under way at once: one fills while the other waits on the database."""

Waiting = tuple[events_repo.Single, "asyncio.Future[Record | None]"]


async def append_now(db: Database, events: list[events_repo.Single]) -> dict[str, Record]:
    """Write ``events`` (each on another batch) in one statement; the rows written by event id."""
    async with db.connection() as conn:
        return await events_repo.append_single(conn, events, chain.CHAIN_TAG, bounds.OPENING_TOLERANCE)


async def append_together(db: Database, events: list[events_repo.Single]) -> dict[str, Record]:
    """Write the events of one request (one device's, recorded at one time, each on another batch) in one
    statement, every one of them or none (``events_repo.APPEND_ALL``): the rows written by event id, empty
    when the general path must decide."""
    async with db.connection() as conn:
        return await events_repo.append_single(
            conn, events, chain.CHAIN_TAG, bounds.OPENING_TOLERANCE, all_or_none=True
        )


class SingleAppends:
    """The events waiting for the next write, and the writes under way (one per process and pool)."""

    def __init__(self, db: Database, most: int = MOST, writers: int = WRITERS) -> None:
        self.db = db
        self.most = most
        self.writers = writers
        self._waiting: list[Waiting] = []
        self._busy: set[str] = set()  # the batches of the writes under way
        self._writing = 0  # writes under way or about to start
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(self, event: events_repo.Single) -> Record | None:
        """Write one event with whatever else is waiting; its row (seq, prev_hash, hash) once committed,
        or None when the general path must decide (see ``events_repo.append_single``)."""
        done: asyncio.Future[Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        if self._writing < self.writers:
            self._writing += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    def _next_group(self) -> list[Waiting]:
        """Up to :attr:`most` waiting events, at most one per batch and none of a batch being written;
        the rest keep their order."""
        group: list[Waiting] = []
        later: list[Waiting] = []
        for item in self._waiting:
            code = item[0].trace_code
            if len(group) < self.most and code not in self._busy:
                self._busy.add(code)
                group.append(item)
            else:
                later.append(item)
        self._waiting = later
        return group

    async def _drain(self) -> None:
        # Ends when nothing is waiting, or only events of batches another write has under way: that
        # write's own loop takes them next. The count drops in the same step as the last look.
        try:
            while group := self._next_group():
                try:
                    await self._write(group)
                finally:
                    self._busy.difference_update(event.trace_code for event, _ in group)
        finally:
            self._writing -= 1

    async def _write(self, group: list[Waiting]) -> None:
        try:
            written = await append_now(self.db, [event for event, _ in group])
        except errors.StorageUnavailable as exc:  # nothing gets through now: all of them are told at once
            for _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        except Exception as exc:
            if len(group) > 1:
                for item in group:  # one by one: each event's failure is its own
                    await self._write([item])
                return
            if not group[0][1].done():
                group[0][1].set_exception(exc)
            return
        for event, done in group:
            if not done.done():
                done.set_result(written.get(event.event_id))
