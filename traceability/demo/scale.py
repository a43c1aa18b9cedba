"""The scale path's driver: cut the stream of lives into chunks and build and write them, here or in workers.

One seeded stream of lives (:mod:`traceability.demo.lives`) is cut into chunks of about ``CHUNK``
events; each chunk gets its trace-code serials and batch ids from the database, in stream order, so
the same seed gives the same records however the work is spread. A chunk is then built
(:func:`traceability.demo.bulk.build`: validation, custody, sealing, chaining) and written in one
transaction (:func:`traceability.demo.bulk.write`).

Building is pure Python and takes most of the time, so with ``workers`` the chunks go to that many
worker processes, each with its own connection, which build and write them while this process cuts
the next ones: both cores busy instead of one. A chunk travels as JSON (:func:`pack`): the scanners'
events as a scanner would send them, naming their scanner and product by key, which costs a fifth of
pickling the objects. At most two chunks per worker are in flight, so memory
stays flat however many events are asked for. Chunks commit in whatever order the workers finish;
each is whole batches (every batch with its events, head and custody), so a reader never sees half a
batch. With no workers everything runs here, in order (the tests' small loads).
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

import orjson

from traceability import errors
from traceability.demo import bulk
from traceability.demo.city import City
from traceability.demo.lives import EVENTS_PER_DAY, Life, Lives
from traceability.domain.access import Principal
from traceability.storage import bulk_repo
from traceability.storage.database import Connection, Database, connect, translating

CHUNK = 10_000
WORKER_CHUNK = 20_000
"""Events per chunk a worker builds and writes (fewer, larger transactions; two per worker in flight)."""
PER_WORKER = 2
COLLECT_EVERY = 100_000
"""Allocations between the cyclic garbage collector's passes in a worker (Python's default is 700)."""


def default_workers(total: int) -> int:
    """One worker per core (at most four) for a load of many chunks; none for a small one."""
    return 0 if total < 4 * WORKER_CHUNK else min(os.cpu_count() or 1, 4)


def chunks(lives: Iterator[Life], total: int, size: int) -> Iterator[list[Life]]:
    """Whole lives, about ``size`` events at a time, until about ``total`` events (whole lives, so a few more)."""
    done = 0
    while done < total:
        todo: list[Life] = []
        n = 0
        while n < min(size, total - done):
            life = next(lives)
            todo.append(life)
            n += len(life)
        done += n
        yield todo


async def reserve(db: Database, todo: list[Life]) -> tuple[list[int], list[int]]:
    """Serials and batch ids for a chunk's lives, in stream order."""
    async with db.connection() as conn:
        return await bulk_repo.reserve_serials(conn, len(todo)), await bulk_repo.reserve_batch_ids(conn, len(todo))


async def load_bulk(
    db: Database,
    city: City,
    rng: random.Random,
    anchor: datetime,
    days: int,
    total: int,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> tuple[int, int]:
    """Write about ``total`` events (whole lives, so a few more); returns (events, batches).

    ``workers`` processes build and write the chunks; with 0 this process does, one chunk after another.
    """
    with fewer_collections():
        return await _load_bulk(db, city, rng, anchor, days, total, progress, workers)


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


async def _load_bulk(
    db: Database,
    city: City,
    rng: random.Random,
    anchor: datetime,
    days: int,
    total: int,
    progress: Callable[[int], None] | None,
    workers: int,
) -> tuple[int, int]:
    window = max(days, math.ceil(total / EVENTS_PER_DAY))
    lives = iter(Lives(city, rng, anchor, window, total))
    events = batches = 0

    def done(counts: tuple[int, int]) -> None:
        nonlocal events, batches
        events += counts[0]
        batches += counts[1]
        if progress is not None:
            progress(counts[0])

    if workers < 1:
        for todo in chunks(lives, total, CHUNK):
            serials, ids = await reserve(db, todo)
            built = bulk.build(todo, serials, ids, city, datetime.now(UTC))

            async def write(conn: Connection, built: bulk.Chunk = built) -> None:
                await bulk.write(conn, built)

            await db.transaction(write)
            done((len(built.events), len(built.batches)))
        return events, batches

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
                    done(f.result())

        try:
            for todo in chunks(lives, total, WORKER_CHUNK):
                serials, ids = await reserve(db, todo)
                flying.add(loop.run_in_executor(pool, _build_and_write, pack(todo), serials, ids, datetime.now(UTC)))
                await settle(workers * PER_WORKER - 1)
            await settle(0)
        finally:
            for f in flying:
                f.cancel()
    return events, batches


def pack(todo: list[Life]) -> bytes:
    """A chunk's lives as JSON: ``[opener id, product key, opening, [[scanner id, event], ...]]`` each."""
    return orjson.dumps(
        [[life.opener.id, life.product.key, life.opening, [[who.id, raw] for who, raw in life.events]] for life in todo]
    )


def unpack(packed: bytes, city: City, scanners: dict[int, Principal]) -> list[Life]:
    """The lives :func:`pack` wrote, with the city's own scanner and product objects."""
    return [
        Life(scanners[opener], city.products[product], opening, [(scanners[who], raw) for who, raw in events])
        for opener, product, opening, events in orjson.loads(packed)
    ]


# -- in a worker process ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    city: City
    loop: asyncio.AbstractEventLoop
    conn: Connection
    scanners: dict[int, Principal]

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


_worker: list[_Worker] = []  # this worker process's city, event loop and connection, set by _start


def _start(city: City, url: str) -> None:
    gc.freeze()  # as fewer_collections() does, for the worker's life: its modules and the city are never garbage
    gc.set_threshold(COLLECT_EVERY)
    loop = asyncio.new_event_loop()
    worker = _Worker(city, loop, loop.run_until_complete(connect(url)), city.scanners())
    _worker.append(worker)
    util.Finalize(None, worker.close, exitpriority=10)


def _build_and_write(packed: bytes, serials: list[int], ids: list[int], now: datetime) -> tuple[int, int]:
    worker = _worker[0]
    todo = unpack(packed, worker.city, worker.scanners)

    async def write(built: bulk.Chunk) -> None:
        with translating():
            async with worker.conn.transaction():
                await bulk.write(worker.conn, built)

    try:
        built = bulk.build(todo, serials, ids, worker.city, now)
        worker.loop.run_until_complete(write(built))
    except errors.TraceError as exc:
        # Sent back to the main process pickled, where some error classes' own arguments would not come back.
        raise errors.TraceError(f"{type(exc).__name__}: {exc.message}", field=exc.field) from None
    return len(built.events), len(built.batches)
