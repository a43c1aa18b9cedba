"""Small reads of one kind asked for at the same time, made in one statement.

Some reads are many and tiny: the chain head that says whether a kept batch view is current (every
consumer's lookup), the credential behind a bearer token when its cached entry has lapsed (every
scanner's, every few seconds). One at a time, each costs a pooled connection, a statement and a round
trip of its own: about 270 of the 400 µs of server CPU a public lookup took on the bench. Here a read that
arrives while others are under way waits for the next one, and that one reads every key then waiting in
one statement (:class:`ReadTogether`).

Every read starts after each request it answers arrived, so an answer is never older than its request:
what was committed before someone asked is what they get, as with a read of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from traceability.storage.database import Connection, Database

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MOST = 512
"""Keys in one statement at most."""
READERS = 2
"""Reads under way at once on one database: one fills while the other waits on it."""


class _Queue(Generic[K, V]):
    """The keys waiting for the next read of one database, and the reads under way."""

    def __init__(
        self, db: Database, read: Callable[[Connection, list[K]], Awaitable[dict[K, V]]], most: int, readers: int
    ) -> None:
        self.db = db
        self.read = read
        self.most = most
        self.readers = readers
        self.waiting: list[tuple[K, asyncio.Future[V | None]]] = []
        self.reading = 0  # reads under way or about to start
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V | None:
        done: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self.waiting.append((key, done))
        if self.reading < self.readers:
            self.reading += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _drain(self) -> None:
        try:
            while self.waiting:
                group, self.waiting = self.waiting[: self.most], self.waiting[self.most :]
                await self._read(group)
        finally:
            self.reading -= 1

    async def _read(self, group: list[tuple[K, asyncio.Future[V | None]]]) -> None:
        try:
            async with self.db.connection() as conn:
                found = await self.read(conn, list(dict.fromkeys(key for key, _ in group)))
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
        for key, done in group:
            if not done.done():
                done.set_result(found.get(key))


class ReadTogether(Generic[K, V]):
    """``await reads.get(db, key)``: what ``read(conn, keys)`` found for ``key`` (None when nothing), read in one
    statement with the other keys asked for at the same time on the same database (the primary, or the read
    replica a public read was sent to)."""

    def __init__(
        self,
        read: Callable[[Connection, list[K]], Awaitable[dict[K, V]]],
        most: int = MOST,
        readers: int = READERS,
    ) -> None:
        self.read = read
        self.most = most
        self.readers = readers
        self._queues: dict[int, _Queue[K, V]] = {}

    async def get(self, db: Database, key: K) -> V | None:
        queue = self._queues.get(id(db))
        if queue is None or queue.db is not db:
            queue = self._queues[id(db)] = _Queue(db, self.read, self.most, self.readers)
        return await queue.get(key)

    def waiting(self, db: Database) -> int:
        """Keys waiting for the next read of ``db`` (none under way)."""
        queue = self._queues.get(id(db))
        return len(queue.waiting) if queue is not None and queue.db is db else 0

    def reading(self, db: Database) -> int:
        """Reads of ``db`` under way."""
        queue = self._queues.get(id(db))
        return queue.reading if queue is not None and queue.db is db else 0
