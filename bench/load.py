"""The load generator: N concurrent clients for a fixed wall time, counting completed work.

It runs in worker processes (spawned, each with its own uvloop), never in the process that serves,
so the client never shares a server's event loop or GIL. Each run has a warm-up, whose answers are
checked but not counted, then a measured window; a request counts if it completes inside the window.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvloop

from bench import http1
from bench.workloads import HttpWorkload, SqlWorkload


@dataclass(frozen=True, slots=True)
class HttpLoad:
    base_url: str
    workload: HttpWorkload
    concurrency: int
    warmup: float
    duration: float


@dataclass(frozen=True, slots=True)
class SqlLoad:
    dsn: str
    workload: SqlWorkload
    concurrency: int  # one connection each
    warmup: float
    duration: float


@dataclass(slots=True)
class Stats:
    """What one run (or several, merged) completed."""

    units: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    def merge(self, other: Stats) -> Stats:
        self.units += other.units
        self.requests += other.requests
        self.seconds += other.seconds
        self.errors.update(other.errors)
        self.latencies.extend(other.latencies)
        return self


class _Window:
    def __init__(self, warmup: float, duration: float) -> None:
        now = time.perf_counter()
        self.start = now + warmup
        self.end = self.start + duration

    def over(self) -> bool:
        return time.perf_counter() >= self.end

    def counts(self, t: float) -> bool:
        return self.start <= t <= self.end


async def _http(spec: HttpLoad) -> Stats:
    stats = Stats(seconds=spec.duration)
    window = _Window(spec.warmup, spec.duration)

    async def client(task: int) -> None:
        conn = http1.Connection(spec.base_url)
        n = 0
        try:
            while not window.over():
                req = spec.workload.request(task, n)
                n += 1
                began = time.perf_counter()
                try:
                    async with asyncio.timeout(60):
                        resp = await conn.request(req.method, req.path, req.headers, req.body)
                except (http1.ProtocolError, OSError, TimeoutError) as exc:
                    stats.errors[type(exc).__name__] += 1
                    continue
                done = time.perf_counter()
                if resp.status not in spec.workload.expect:
                    stats.errors[f"HTTP {resp.status}: {resp.body[:200].decode(errors='replace')}"] += 1
                elif window.counts(done):
                    stats.units += req.units
                    stats.requests += 1
                    stats.latencies.append(done - began)
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(spec.concurrency)))
    return stats


async def _sql(spec: SqlLoad) -> Stats:
    stats = Stats(seconds=spec.duration)
    work = spec.workload
    conns = await asyncio.gather(
        *(
            asyncpg.connect(spec.dsn, server_settings={"synchronous_commit": "on", "application_name": "bench"})
            for _ in range(spec.concurrency)
        )
    )
    try:
        window = _Window(spec.warmup, spec.duration)

        async def client(task: int, conn: Any) -> None:
            n = 0
            while not window.over():
                rows = work.rows(task, n)
                n += 1
                began = time.perf_counter()
                try:
                    # Outside a transaction each call commits on its own (executemany is atomic).
                    if work.many:
                        await conn.executemany(work.statement, rows)
                    else:
                        await conn.execute(work.statement, *rows[0])
                except asyncpg.PostgresError as exc:
                    stats.errors[type(exc).__name__] += 1
                    continue
                done = time.perf_counter()
                if window.counts(done):
                    stats.units += len(rows)
                    stats.requests += 1
                    stats.latencies.append(done - began)

        await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    return stats


def run(spec: HttpLoad | SqlLoad) -> Stats:
    """Worker entry point: one load run on a fresh event loop."""
    coro = _http(spec) if isinstance(spec, HttpLoad) else _sql(spec)
    return uvloop.run(coro)


class Workers:
    """A warm pool of spawned load processes; ``await workers.run(spec)`` from the orchestrator."""

    def __init__(self, processes: int = 1) -> None:
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )

    async def run(self, spec: HttpLoad | SqlLoad) -> Stats:
        return await asyncio.get_running_loop().run_in_executor(self.pool, run, spec)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
