"""The scale path's driver: cut the load into parts and generate, build and write them, here or in workers.

A load is cut into parts, each a seeded stream of lives of its own (:mod:`traceability.demo.lives`):
first parts of :data:`LIVES_PER_PART` lives, as many as surely hold fewer events than asked for, then,
once their events are counted, parts of about :data:`TAIL_EVENTS` events up to the total. Each part
gets its trace-code serials and batch ids from the database in part order, so the same seed gives the
same records however the work is spread (a part of lives takes exactly its lives' serials; a part of
the tail takes as many as it could need, :data:`~traceability.demo.lives.FEWEST_EVENTS` events a life,
and leaves the rest unused). A part is then generated, built
(:func:`traceability.demo.bulk.build`: validation, custody, sealing, chaining) and written in one
transaction (:func:`traceability.demo.bulk.write`).

Generating and building are pure Python and take most of the time, so with ``workers`` the parts go to
that many worker processes, each with its own connection, which generate, build and write them: a
part travels as a few numbers (:class:`Part`), and the lives are made where they are built. At most
two parts per worker are in flight, so memory stays flat however many events are asked for. Parts
commit in whatever order the workers finish; each is whole batches (every batch with its events,
head and custody), so a reader never sees half a batch. With no workers everything runs here, in
order (the tests' small loads).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import util

from traceability import errors
from traceability.demo import bulk
from traceability.demo.city import City
from traceability.demo.lives import EVENTS_PER_DAY, FEWEST_EVENTS, Life, Lives
from traceability.storage import bulk_repo
from traceability.storage.database import Connection, Database, connect, translating

LIVES_PER_PART = 1_100
"""Lives per part of a load's body (about 19,000 events; fewer, larger transactions, two per worker in flight)."""
AVERAGE_PER_LIFE = 17.6
"""Events a life holds on average (as measured): where a part's lives start in the load's days."""
MOST_PER_LIFE = 19
"""The average rounded up well: the body's parts hold fewer events than this says, so they never overshoot the
total, and the tail makes it up."""
TAIL_EVENTS = 20_000
"""Events per part of a load's tail (and of a small load, which is all tail)."""
PER_WORKER = 2
COLLECT_EVERY = 100_000
"""Allocations between the cyclic garbage collector's passes in a worker (Python's default is 700)."""


def default_workers(total: int) -> int:
    """One worker per core (at most four) for a load of many parts; none for a small one."""
    return 0 if total < 4 * TAIL_EVENTS else min(os.cpu_count() or 1, 4)


@dataclass(frozen=True, slots=True)
class Stream:
    """What every part of a load shares: the seed, and the days and events its lives spread over."""

    seed: str
    anchor: datetime
    window: int
    total: int


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a load: ``lives`` lives, or (when 0) lives until they hold at least ``events`` events.

    ``first`` lives and ``before`` events come before it in the load (numbering and times of its lives)."""

    index: int
    first: int
    before: int
    lives: int = 0
    events: int = 0

    @property
    def most_lives(self) -> int:
        """How many lives it may hold: the serials and batch ids it takes."""
        return self.lives or self.events // FEWEST_EVENTS + 1


def generate(city: City, stream: Stream, part: Part) -> list[Life]:
    """A part's lives: its own seeded stream (part 0's is the load's seed itself)."""
    seed = stream.seed if part.index == 0 else f"{stream.seed}/{part.index}"
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    lives = iter(Lives(city, rng, stream.anchor, stream.window, stream.total, first=part.first, generated=part.before))
    if part.lives:
        return [next(lives) for _ in range(part.lives)]
    todo: list[Life] = []
    n = 0
    while n < part.events:
        life = next(lives)
        todo.append(life)
        n += len(life)
    return todo


def body(total: int) -> list[Part]:
    """The parts of lives that surely hold fewer than ``total`` events."""
    count = total // (LIVES_PER_PART * MOST_PER_LIFE)
    return [
        Part(k, k * LIVES_PER_PART, round(k * LIVES_PER_PART * AVERAGE_PER_LIFE), lives=LIVES_PER_PART)
        for k in range(count)
    ]


def tail(total: int, after: list[Part], written: int) -> list[Part]:
    """Parts of about :data:`TAIL_EVENTS` events from ``written`` (what the parts ``after`` held) up to ``total``."""
    parts: list[Part] = []
    index, first, before = len(after), sum(p.most_lives for p in after), written
    while before < total:
        part = Part(index, first, before, events=min(TAIL_EVENTS, total - before))
        parts.append(part)
        index, first, before = index + 1, first + part.most_lives, before + part.events
    return parts


async def reserve(db: Database, part: Part) -> tuple[list[int], list[int]]:
    """Serials and batch ids for a part's lives."""
    n = part.most_lives
    async with db.connection() as conn:
        return await bulk_repo.reserve_serials(conn, n), await bulk_repo.reserve_batch_ids(conn, n)


async def load_bulk(
    db: Database,
    city: City,
    seed: str,
    anchor: datetime,
    days: int,
    total: int,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> tuple[int, int]:
    """Write about ``total`` events (whole lives, so a few more); returns (events, batches).

    ``workers`` processes generate, build and write the parts; with 0 this process does, one after another.
    """
    with fewer_collections():
        stream = Stream(seed, anchor, max(days, math.ceil(total / EVENTS_PER_DAY)), total)
        if workers < 1:
            return await _here(db, city, stream, progress)
        return await _in_workers(db, city, stream, progress, workers)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage every :data:`COLLECT_EVERY` allocations instead of 700, sparing what is alive now.

    Building and generating lives allocate millions of short-lived, acyclic dicts and lists; with the default
    the collector spent a tenth of the time walking them."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(COLLECT_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


class _Count:
    """Events and batches written so far, reported to ``progress`` as they come."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.events = self.batches = 0

    def __call__(self, counts: tuple[int, int]) -> None:
        self.events += counts[0]
        self.batches += counts[1]
        if self.progress is not None:
            self.progress(counts[0])


async def _here(db: Database, city: City, stream: Stream, progress: Callable[[int], None] | None) -> tuple[int, int]:
    count = _Count(progress)
    parts = body(stream.total)
    for phase in (1, 2):
        for part in parts:
            serials, ids = await reserve(db, part)
            built = _build(city, stream, part, serials, ids, datetime.now(UTC))

            async def write(conn: Connection, built: bulk.Chunk = built) -> None:
                await bulk.write(conn, built)

            await db.transaction(write)
            count((len(built.events), len(built.batches)))
        if phase == 1:
            parts = tail(stream.total, parts, count.events)
    return count.events, count.batches


async def _in_workers(
    db: Database, city: City, stream: Stream, progress: Callable[[int], None] | None, workers: int
) -> tuple[int, int]:
    count = _Count(progress)
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # no copy of this process's event loop and connections
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(city, db.url)) as pool:
        flying: set[asyncio.Future[tuple[int, int]]] = set()

        async def settle(down_to: int) -> None:
            nonlocal flying
            while len(flying) > down_to:
                finished, flying = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
                for f in finished:  # every result is taken (no "exception never retrieved"); the first error raised
                    f.exception()
                for f in finished:
                    count(f.result())

        try:
            parts = body(stream.total)
            for phase in (1, 2):
                for part in parts:
                    serials, ids = await reserve(db, part)
                    now = datetime.now(UTC)
                    flying.add(loop.run_in_executor(pool, _generate_build_write, stream, part, serials, ids, now))
                    await settle(workers * PER_WORKER - 1)
                await settle(0)  # the tail starts from what the body's parts held
                if phase == 1:
                    parts = tail(stream.total, parts, count.events)
        finally:
            for f in flying:
                f.cancel()
    return count.events, count.batches


def _build(city: City, stream: Stream, part: Part, serials: list[int], ids: list[int], now: datetime) -> bulk.Chunk:
    lives = generate(city, stream, part)
    # A part of the tail leaves some of its serials unused (never more lives than serials: zip is strict).
    n = len(lives)
    return bulk.build(lives, serials[:n], ids[:n], city, now)


# -- in a worker process ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    city: City
    loop: asyncio.AbstractEventLoop
    conn: Connection

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


_worker: list[_Worker] = []  # this worker process's city, event loop and connection, set by _start


def _start(city: City, url: str) -> None:
    gc.freeze()  # as fewer_collections() does, for the worker's life: its modules and the city are never garbage
    gc.set_threshold(COLLECT_EVERY)
    loop = asyncio.new_event_loop()
    worker = _Worker(city, loop, loop.run_until_complete(connect(url)))
    _worker.append(worker)
    util.Finalize(None, worker.close, exitpriority=10)


def _generate_build_write(
    stream: Stream, part: Part, serials: list[int], ids: list[int], now: datetime
) -> tuple[int, int]:
    worker = _worker[0]

    async def write(built: bulk.Chunk) -> None:
        with translating():
            async with worker.conn.transaction():
                await bulk.write(worker.conn, built)

    try:
        built = _build(worker.city, stream, part, serials, ids, now)
        worker.loop.run_until_complete(write(built))
    except errors.TraceError as exc:
        # Sent back to the main process pickled, where some error classes' own arguments would not come back.
        raise errors.TraceError(f"{type(exc).__name__}: {exc.message}", field=exc.field) from None
    return len(built.events), len(built.batches)
