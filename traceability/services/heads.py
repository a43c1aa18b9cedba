"""Chain heads read together: the freshness check of every kept batch view.

A kept view is current while its batch's chain head is the one it was built from, so each read of a kept
view costs a read of the head. Under a crowd of consumers scanning labels these reads are many and tiny,
and one at a time each costs a pooled connection, a statement and a round trip of its own: about 270 of
the 400 µs of server CPU a lookup took on the bench. Here a read that arrives while others are under way
waits for the next one, and that one reads every code then waiting in one statement.

Every read starts after each request it answers arrived, so an answer is never older than its request:
a consumer sees every event acknowledged before they asked, as with a read of their own.
"""

from __future__ import annotations

import asyncio

from traceability.storage import batches_repo
from traceability.storage.database import Database, Record

MOST = 512
"""Codes in one statement at most."""
READERS = 2
"""Reads under way at once on one database: one fills while the other waits on it."""

Waiting = tuple[str, "asyncio.Future[Record | None]"]


class _Reads:
    """The codes waiting for the next read of one database, and the reads under way."""

    def __init__(self, db: Database, most: int, readers: int) -> None:
        self.db = db
        self.most = most
        self.readers = readers
        self._waiting: list[Waiting] = []
        self._reading = 0  # reads under way or about to start
        self._tasks: set[asyncio.Task[None]] = set()

    async def head(self, code: str) -> Record | None:
        done: asyncio.Future[Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((code, done))
        if self._reading < self.readers:
            self._reading += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[: self.most], self._waiting[self.most :]
                await self._read(group)
        finally:
            self._reading -= 1

    async def _read(self, group: list[Waiting]) -> None:
        try:
            async with self.db.connection() as conn:
                rows = await batches_repo.find_heads(conn, list({code for code, _ in group}))
        except BaseException as exc:  # every waiter hears of it, or a cancelled read would leave them waiting
            for _, done in group:
                if not done.done():
                    if isinstance(exc, Exception):
                        done.set_exception(exc)
                    else:
                        done.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        heads = {r["trace_code"]: r for r in rows}
        for code, done in group:
            if not done.done():
                done.set_result(heads.get(code))


class HeadReads:
    """Chain heads by trace code, read together with the others asked for at the same time, per database
    (the primary, or the read replica a public read was sent to)."""

    def __init__(self, most: int = MOST, readers: int = READERS) -> None:
        self.most = most
        self.readers = readers
        self._by_db: dict[int, _Reads] = {}

    async def head(self, db: Database, code: str) -> Record | None:
        """The head (seq, head_hash) of batch ``code`` as it is now, or None when no batch has that code."""
        reads = self._by_db.get(id(db))
        if reads is None or reads.db is not db:
            reads = self._by_db[id(db)] = _Reads(db, self.most, self.readers)
        return await reads.head(code)
