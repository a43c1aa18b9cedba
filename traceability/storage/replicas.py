"""Read replicas: public reads served by PostgreSQL streaming replicas while they keep up with the primary.

``TRACE_DATABASE_READ_URLS`` names hot standbys of the primary. :class:`Reads` keeps a pool for each and,
every :data:`CHECK_EVERY` seconds (never per request), measures how far each is behind:

- on the primary, ``pg_current_wal_lsn()``, kept with the time it was read (:data:`HISTORY` samples);
- on the replica, ``pg_last_wal_replay_lsn()``: everything up to that position is visible there.

A replica that has replayed the position the primary had at time *t* shows everything committed by *t*,
so it is at most ``now - t`` behind, with *t* the newest sample it has reached (0 when it reached the one
just taken). Unlike ``now() - pg_last_xact_replay_timestamp()`` this stays right on an idle primary. A
replica at most ``TRACE_READ_MAX_LAG_MS`` behind is *fresh*; :meth:`Reads.pick` spreads reads over the
fresh ones and falls back to the primary when there is none. A replica that errors, that cannot give a
connection, or that is no longer in recovery (promoted: it no longer follows this primary) is skipped
until a check finds it fresh again.

Only public read-only answers go through :meth:`Reads.pick` (``traceability.http.reads``); writes,
custody checks and anything that must read its own writes use the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from traceability import errors
from traceability.config import Settings
from traceability.logging import get_logger
from traceability.storage.database import (
    DRIVER_ERRORS,
    Database,
    PooledConnection,
    describe,
    init_connection,
)

log = get_logger(__name__)

CHECK_EVERY = 0.5
"""Seconds between measurements of the replicas' lag (at most a quarter of the lag bound)."""
CHECK_TIMEOUT = 2.0
"""Seconds a replica has to answer a measurement before it is skipped."""
ACQUIRE_TIMEOUT = 5.0
"""Seconds a read waits for a replica's connection (a replica that cannot give one is skipped at once)."""
HISTORY = 2400
"""Primary positions kept: a replica behind the oldest of them is too far behind to measure."""

PRIMARY_POSITION = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
REPLICA_POSITION = """
SELECT pg_is_in_recovery() AS in_recovery,
       coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn AS replayed
"""


@dataclass(slots=True)
class Replica:
    """One read replica as the chooser last saw it; ``name`` (``replica-1``…) is what logs and metrics show."""

    name: str
    db: Database
    fresh: bool = False
    lag_seconds: float | None = None
    """How far behind the primary it was at the last check (an upper bound); None when unknown."""
    lag_bytes: int | None = None
    """WAL bytes the primary had written that it had not replayed, at the last check."""
    problem: str | None = None
    """Why it was skipped at the last check (an error's class name), if it was."""

    def lost(self) -> None:
        """A read found it without a connection to give: skip it until a check finds it fresh again."""
        if self.fresh:
            log.warning("replica.skipped", replica=self.name, reason="no connection")
        self.fresh = False
        self.problem = "unavailable"


class Reads:
    """Where public reads go: a fresh replica, in turn, else the primary."""

    def __init__(self, primary: Database, replicas: list[Replica], max_lag_ms: int) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag = max_lag_ms / 1000
        self.check_every = min(CHECK_EVERY, max(self.max_lag / 4, 0.05))
        self.positions: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        """The primary's WAL positions with the (monotonic) time each was read, oldest first."""
        self._turn = itertools.count()

    def pick(self) -> tuple[str, Database]:
        """(name, database) to answer one public read: ``("primary", …)`` or ``("replica-N", …)``."""
        if self.replicas:
            fresh = [r for r in self.replicas if r.fresh]
            if fresh:
                r = fresh[next(self._turn) % len(fresh)]
                return r.name, r.db
        return "primary", self.primary

    async def check(self) -> None:
        """Measure every replica against the primary's WAL position now."""
        try:
            async with self.primary.connection() as conn:
                position = int(await asyncio.wait_for(conn.fetchval(PRIMARY_POSITION), CHECK_TIMEOUT))
        except (errors.TraceError, TimeoutError):
            return  # the primary does not answer: keep the replicas as they were, writes fail anyway
        now = time.monotonic()
        self.positions.append((now, position))
        await asyncio.gather(*(self._measure(r, now, position) for r in self.replicas))

    def behind(self, replayed: int, now: float) -> float | None:
        """At most how many seconds behind the primary a replica that replayed up to ``replayed`` is."""
        for at, position in reversed(self.positions):
            if position <= replayed:
                return now - at
        return None  # behind every position kept

    async def _measure(self, r: Replica, now: float, primary: int) -> None:
        was = r.fresh
        try:
            async with r.db.connection() as conn:
                row = await asyncio.wait_for(conn.fetchrow(REPLICA_POSITION), CHECK_TIMEOUT)
        except (errors.TraceError, TimeoutError) as exc:
            r.fresh, r.lag_seconds, r.lag_bytes, r.problem = False, None, None, type(exc).__name__
        else:
            assert row is not None
            replayed = int(row["replayed"])
            r.lag_bytes = max(0, primary - replayed)
            r.lag_seconds = self.behind(replayed, now)
            r.problem = None if row["in_recovery"] else "not_in_recovery"
            r.fresh = r.problem is None and r.lag_seconds is not None and r.lag_seconds <= self.max_lag
        if r.fresh != was:
            log.info("replica.chosen" if r.fresh else "replica.skipped", replica=r.name, reason=r.problem)

    async def watch(self, stop: asyncio.Event) -> None:
        """Check every replica every :attr:`check_every` seconds until ``stop``."""
        while not stop.is_set():
            try:
                await self.check()
            except Exception as exc:  # never let the chooser die: the replicas would stay as last seen
                log.warning("replica.check_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.check_every)


async def _replica(settings: Settings, primary: Database, name: str, url: str) -> Replica:
    server_settings = {"application_name": "traceability-read"}
    if primary.role:  # a physical replica has the primary's roles
        server_settings["role"] = primary.role
    pool: asyncpg.Pool[asyncpg.Record] = asyncpg.create_pool(
        url,
        min_size=0,  # a replica that is down at start is skipped, never in the way of starting
        max_size=settings.pool_size,
        init=init_connection,
        server_settings=server_settings,
        statement_cache_size=256,
        connection_class=PooledConnection,
    )
    await pool
    replica = Replica(name, Database(pool=pool, url=url, role=primary.role, acquire_timeout=ACQUIRE_TIMEOUT))
    replica.db.lost = replica.lost
    return replica


@contextlib.asynccontextmanager
async def open_reads(settings: Settings, primary: Database) -> AsyncIterator[Reads]:
    """The chooser over ``settings.database_read_urls`` (none: every read goes to the primary), with its pools."""
    replicas: list[Replica] = []
    try:
        for n, url in enumerate(settings.database_read_urls, 1):
            replicas.append(await _replica(settings, primary, f"replica-{n}", url))
            log.info("replica.opened", replica=f"replica-{n}", database=describe(url))
        reads = Reads(primary, replicas, settings.read_max_lag_ms)
        if replicas:
            await reads.check()
        yield reads
    finally:
        for r in replicas:
            with contextlib.suppress(*DRIVER_ERRORS):
                await r.db.pool.close()
