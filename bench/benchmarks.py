"""The benchmarks: one function each, registered by name, run in registration order.

Each takes the :class:`Context` (the running service, a registered world, the load workers) and
returns a :class:`Result`: the service's figure beside a baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench import ledger, pages, stack
from bench.load import HttpLoad, SqlLoad, Stats, Workers
from bench.report import Result
from bench.workloads import PLAIN_EVENTS, CaptureBatched, CaptureEpcis, CaptureSingle, Get, InsertEvents, Lookup
from bench.world import World

Benchmark = Callable[["Context"], Awaitable[Result]]
BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str) -> Callable[[Benchmark], Benchmark]:
    def register(fn: Benchmark) -> Benchmark:
        BENCHMARKS[name] = fn
        return fn

    return register


@dataclass(frozen=True, slots=True)
class Timing:
    warmup: float = 0.5  # per round: new connections, pool growth (a pool of 64 opens in well under that)
    duration: float = 6.0  # measured seconds per side, split over the rounds; the whole run stays under 5 min
    rounds: int = 4  # service and baseline alternate (A B, B A, ...): drift on a shared machine hits both


@dataclass(slots=True)
class Context:
    db_url: str
    service: stack.Process
    world: World
    workers: Workers
    timing: Timing
    workdir: Path
    log: stack.Log
    resources: contextlib.AsyncExitStack
    bare_servers: dict[int, stack.Process] = field(default_factory=dict)
    _canonical: bytes | None = None
    big: ledger.Ledger | None = None
    regulator: str | None = None
    rss_after_proofs: float | None = None
    demo: Any = None  # the task setting up bench.pages.DemoCity, once begun
    wanted: frozenset[str] = frozenset()  # the benchmarks this run measures
    page_requests: Result | None = None

    @contextlib.asynccontextmanager
    async def sql(self) -> AsyncIterator[asyncpg.Connection]:
        """A direct connection to the bench database, as its owner."""
        conn = await asyncpg.connect(self.db_url)
        try:
            yield conn
        finally:
            await conn.close()

    async def plain_table(self, name: str) -> str:
        """A fresh table shaped like ``events`` but with nothing else: no FKs, no secondary indexes, no triggers."""
        async with self.sql() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
            await conn.execute(PLAIN_EVENTS.format(table=name))
        return name

    async def sample_canonical(self) -> bytes:
        """The canonical bytes of a real captured event (what the baselines insert, for equal row width)."""
        if self._canonical is None:
            device = self.world.devices[0]
            code = await self.world.open_batch(device)
            (event_id,) = await self.world.capture(device, [code], per_batch=1)
            async with self.sql() as conn:
                self._canonical = await conn.fetchval("SELECT canonical FROM events WHERE event_id = $1", event_id)
        assert self._canonical is not None
        return self._canonical

    async def bare(self, size: int) -> stack.Process:
        """The bare aiohttp handler serving ``size``-byte bodies, started once per size for the run."""
        if size not in self.bare_servers:
            argv, env, port = stack.bare(size)
            self.bare_servers[size] = await self.resources.enter_async_context(
                stack.running(f"bare handler ({size} B)", argv, env, port, self.workdir / f"bare-{size}.log")
            )
        return self.bare_servers[size]

    async def compare(
        self,
        name: str,
        service: Callable[[Timing], HttpLoad | SqlLoad],
        baseline: Callable[[Timing], HttpLoad | SqlLoad],
        server: stack.Process | None = None,
        timing: Timing | None = None,
        bare: stack.Process | None = None,
    ) -> tuple[Stats, Stats, Cores]:
        """Run service and baseline loads in alternating rounds (``timing``, else the run's); returns both, and
        the CPU the service's rounds took (the server's processes, the embedded PostgreSQL's) and, given the
        ``bare`` handler serving the baseline, the CPU its rounds took."""
        t = timing or self.timing
        server = server or self.service
        postgres = stack.postgres_pid(self.workdir)
        per_round = Timing(t.warmup, t.duration / t.rounds, 1)
        merged = {"service": Stats(), "baseline": Stats()}
        ratios = []  # each round's service rate over the baseline's in the same round
        cpu = db = wall = bare_cpu = bare_wall = 0.0
        for r in range(t.rounds):
            order = ("service", "baseline") if r % 2 == 0 else ("baseline", "service")
            rates = {}
            for side in order:
                spec = (service if side == "service" else baseline)(per_round)
                cpu0, wall0 = server.cpu_seconds(), time.monotonic()
                db0 = stack.cpu_seconds(postgres) if postgres else 0.0
                bare0 = bare.cpu_seconds() if bare else 0.0
                stats = await self.workers.run(spec)
                if side == "service":
                    cpu += server.cpu_seconds() - cpu0
                    db += stack.cpu_seconds(postgres) - db0 if postgres else 0.0
                    wall += time.monotonic() - wall0
                elif bare:
                    bare_cpu += bare.cpu_seconds() - bare0
                    bare_wall += time.monotonic() - wall0
                self.log(
                    f"{name} {side} round {r + 1}: {stats.rate:,.0f}/s"
                    + (f" errors {dict(stats.errors)}" if stats.errors else "")
                )
                merged[side].merge(stats)
                rates[side] = stats.rate
            if rates["baseline"]:
                ratios.append(rates["service"] / rates["baseline"])
        base_rate = merged["baseline"].rate
        used = Cores(
            cpu / wall if wall else 0.0,
            db / wall if wall and postgres else None,
            bare_cpu / bare_wall / base_rate if bare_wall and base_rate else None,
            tuple(ratios),
        )
        return merged["service"], merged["baseline"], used


@dataclass(frozen=True, slots=True)
class Cores:
    """CPU a load took, in cores: the server's processes, and PostgreSQL's (None when not ours to read)."""

    server: float
    database: float | None
    bare_per_request: float | None = None
    """Seconds of CPU the bare handler spent on each of its answers, when the baseline is one."""
    round_ratios: tuple[float, ...] = ()
    """Each round's ratio (the service's rate over the baseline's in that round): how far the machine moved
    the figure within the run."""

    def __str__(self) -> str:
        said = f"server processes used {self.server:.2f} cores"
        if self.database is not None:
            said += f", PostgreSQL {self.database:.2f}"
        if len(self.round_ratios) > 1:
            said += f"; the rounds' ratios {min(self.round_ratios):.3f}-{max(self.round_ratios):.3f}"
        return said

    def per(self, rate: float, unit: str) -> str:
        """CPU per unit of work at ``rate`` units/s: steadier from run to run than a ratio to a baseline whose
        own rate moves with the machine."""
        if rate <= 0:
            return ""
        one = unit.split("/")[0].removesuffix("s")
        said = f"CPU per {one}: server {self.server / rate * 1e6:.0f} us"
        if self.database is not None:
            said += f", PostgreSQL {self.database / rate * 1e6:.0f} us"
        if self.bare_per_request is not None:
            said += f"; the bare handler {self.bare_per_request * 1e6:.0f} us an answer"
        return said


def _broken(*stats: Stats) -> str:
    errors = [f"{k} x{v}" for s in stats for k, v in s.errors.most_common(3)]
    return "; ".join(errors)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _throughput(name: str, svc: Stats, base: Stats, cores: Cores, unit: str, goal: float, what: str) -> Result:
    note = (
        f"{what}; service p50/p99 {_ms(svc.quantile(0.5))}/{_ms(svc.quantile(0.99))} ms per request, "
        f"baseline {_ms(base.quantile(0.5))}/{_ms(base.quantile(0.99))} ms; {cores}; {cores.per(svc.rate, unit)}"
    )
    return Result(name, svc.rate, unit, base.rate, goal, note=note, broken=_broken(svc, base))


# -- capture ------------------------------------------------------------------------------------


@benchmark("capture_batched")
async def capture_batched(ctx: Context) -> Result:
    """100 events a request, 8 scanners, each on 125 batches of its own (1,000 in all)."""
    clients, per_request, per_client = 8, 100, 125
    by_device = await ctx.world.open_batches(dict.fromkeys(range(clients), per_client))
    devices = [ctx.world.devices[i] for i in range(clients)]
    work = CaptureBatched(
        tuple(d.token for d in devices), tuple(tuple(by_device[i]) for i in range(clients)), per_request
    )
    plain = InsertEvents(
        await ctx.plain_table("bench_plain_batched"),
        await ctx.sample_canonical(),
        tuple(range(1, clients * per_client + 1)),
        devices[0].node_id,
        devices[0].device_id,
        per_call=per_request,
    )
    svc, base, cores = await ctx.compare(
        "capture_batched",
        lambda t: HttpLoad(ctx.service.url, work, clients, t.warmup, t.duration),
        lambda t: SqlLoad(ctx.db_url, plain, clients, t.warmup, t.duration),
    )
    return _throughput(
        "capture_batched",
        svc,
        base,
        cores,
        "events/s",
        0.25,
        f"POST /api/v1/events x{per_request} vs committed asyncpg executemany x{per_request}, {clients} clients",
    )


@benchmark("log_integration_latency_p99")
async def log_integration_latency(ctx: Context) -> Result:
    """Seconds from capture to inclusion in the Merkle log, at the batched-capture load just run.

    Each leaf records when the sequencer integrated it; each event when it was accepted. Waits for
    the queue to drain first. Baseline: the sequencer's polling interval, the floor of the latency.
    """
    async with ctx.sql() as conn:
        for _ in range(600):
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM log_queue)"):
                break
            await asyncio.sleep(0.1)
        row = await conn.fetchrow("""
            SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM l.integrated_at - e.recorded_at))
                       AS p99,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM l.integrated_at - e.recorded_at))
                       AS p50,
                   count(*) AS n
            FROM log_leaves l JOIN events e ON e.id = l.event_pk
            WHERE e.seq > 1""")
    interval = 0.2
    p50 = float(row["p50"] or 0)
    return Result(
        "log_integration_latency_p99",
        float(row["p99"] or 0),
        "s",
        interval,
        1.0,
        better="lower",
        goal_on="value",
        note=f"over {row['n']:,} events captured under load; p50 {p50:.3f} s; "
        f"baseline: the sequencer's {interval}s polling interval",
    )


@benchmark("capture_single")
async def capture_single(ctx: Context) -> Result:
    """One event a request, 64 scanners, each with its own credential on its own batch."""
    clients = min(64, len(ctx.world.devices))
    by_device = await ctx.world.open_batches(dict.fromkeys(range(clients), 1))
    devices = ctx.world.devices[:clients]
    work = CaptureSingle(tuple(d.token for d in devices), tuple(by_device[i][0] for i in range(clients)))
    plain = InsertEvents(
        await ctx.plain_table("bench_plain_single"),
        await ctx.sample_canonical(),
        tuple(range(1, clients + 1)),
        devices[0].node_id,
        devices[0].device_id,
        per_call=1,
    )
    svc, base, cores = await ctx.compare(
        "capture_single",
        lambda t: HttpLoad(ctx.service.url, work, clients, t.warmup, t.duration),
        lambda t: SqlLoad(ctx.db_url, plain, clients, t.warmup, t.duration),
    )
    return _throughput(
        "capture_single",
        svc,
        base,
        cores,
        "events/s",
        0.30,
        f"POST /api/v1/events x1 vs single-row committed INSERT, {clients} clients",
    )


# -- reading ------------------------------------------------------------------------------------


@benchmark("epcis_capture")
async def epcis_capture(ctx: Context) -> Result:
    """EPCIS 2.0 documents of 100 ObjectEvents through GS1's capture route, 8 devices on their own batches.

    Each event names a lot by its trace URL (the QR code's URL), with a quantity, a business transaction,
    a sensor reading and an extension field; all of it is validated against GS1's schema and kept in the
    hashed record. The baseline is the raw insert that capture_batched measures against.
    """
    clients, per_request, per_client = 8, 100, 125
    by_device = await ctx.world.open_batches(dict.fromkeys(range(clients), per_client))
    devices = [ctx.world.devices[i] for i in range(clients)]
    work = CaptureEpcis(
        ctx.service.url,
        tuple(d.token for d in devices),
        tuple(tuple(by_device[i]) for i in range(clients)),
        per_request,
    )
    plain = InsertEvents(
        await ctx.plain_table("bench_plain_epcis"),
        await ctx.sample_canonical(),
        tuple(range(1, clients * per_client + 1)),
        devices[0].node_id,
        devices[0].device_id,
        per_call=per_request,
    )
    svc, base, cores = await ctx.compare(
        "epcis_capture",
        lambda t: HttpLoad(ctx.service.url, work, clients, t.warmup, t.duration),
        lambda t: SqlLoad(ctx.db_url, plain, clients, t.warmup, t.duration),
    )
    return _throughput(
        "epcis_capture",
        svc,
        base,
        cores,
        "events/s",
        0.15,
        f"POST /epcis/capture, EPCISDocuments of {per_request} events, vs committed asyncpg executemany "
        f"x{per_request}, {clients} clients",
    )


@benchmark("lookup")
async def lookup(ctx: Context) -> Result:
    """A consumer scanning a label: the public view of a batch with 8 events, 64 at a time."""
    clients, batches, events = 64, 256, 8
    n = len(ctx.world.devices)
    by_device = await ctx.world.open_batches({i: batches // n + (i < batches % n) for i in range(n)})
    await asyncio.gather(
        *(
            ctx.world.capture(ctx.world.devices[i], mine, per_batch=events - 1)  # opening is seq 1
            for i, mine in by_device.items()
        )
    )
    codes = tuple(c for cs in by_device.values() for c in cs)
    sizes = []
    for code in codes[:16]:
        async with ctx.world.session.get(f"/api/v1/batches/{code}") as resp:
            body = await resp.read()
            assert resp.status == 200, (resp.status, body[:200])
            sizes.append(len(body))
    size = round(statistics.mean(sizes))
    bare = await ctx.bare(size)
    work = Lookup(codes)
    svc, base, cores = await ctx.compare(
        "lookup",
        lambda t: HttpLoad(ctx.service.url, work, clients, t.warmup, t.duration),
        lambda t: HttpLoad(bare.url, work, clients, t.warmup, t.duration),
        bare=bare,
    )
    return _throughput(
        "lookup",
        svc,
        base,
        cores,
        "lookups/s",
        0.30,
        f"GET /api/v1/batches/{{code}} ({size} B, {events} events) vs a bare aiohttp handler "
        f"returning {size} B, {clients} connections",
    )


# -- a million events: proofs, verification, tracing ---------------------------------------------

PARENTS, CUTS, EVENTS_PER_CUT = 10_000, 4, 24  # 10,000 x (2 + 4 x 24) = 980,000 events, plus the rest
PAGES = frozenset({"consumer_page", "page_weight", "page_requests"})
"""The benchmarks on the demo city's pages (:mod:`bench.pages`)."""


async def big_ledger(ctx: Context) -> ledger.Ledger:
    """Load the million-event ledger once and wait until all of it is in the Merkle log."""
    if ctx.big is None:
        t0 = time.monotonic()
        ctx.big = await ledger.load(ctx.db_url, ctx.world, PARENTS, CUTS, EVENTS_PER_CUT, ctx.log)
        if ctx.wanted & PAGES:  # nothing is measured while the log and the analyzer catch up: set up the pages' city
            pages.start_demo_city(ctx)
        waited = await ledger.wait_logged(ctx.db_url, ctx.log)
        analyzed, unread = await ledger.wait_analyzed(ctx.db_url, ctx.log)
        if ctx.demo is not None:
            await ctx.demo  # done before anything is measured
        ctx.log(
            f"ledger: {ctx.big.events:,} events loaded and logged in {time.monotonic() - t0:.0f} s "
            f"(the log caught up {waited:.0f} s after the last write, the analyzer {analyzed:.0f} s later"
            + (f", {unread:,} leaves still unread" if unread else "")
            + ")"
        )
    return ctx.big


@benchmark("inclusion_proof")
async def inclusion_proof(ctx: Context) -> Result:
    """GET /api/v1/events/{id}/proof against a log of about a million leaves, 64 connections."""
    big = await big_ledger(ctx)
    async with ctx.sql() as conn:
        leaves = await conn.fetchval("SELECT size FROM log_heads")
    paths = tuple(f"/api/v1/events/{e}/proof" for e in big.event_ids)
    async with ctx.world.session.get(paths[0]) as resp:
        size = len(await resp.read())
        assert resp.status == 200
    bare = await ctx.bare(size)
    clients = 64
    svc, base, cores = await ctx.compare(
        "inclusion_proof",
        lambda t: HttpLoad(ctx.service.url, Get(paths), clients, t.warmup, t.duration),
        lambda t: HttpLoad(bare.url, Get(("/healthz",)), clients, t.warmup, t.duration),
        bare=bare,
    )
    ctx.rss_after_proofs = ctx.service.rss_mb()
    return _throughput(
        "inclusion_proof",
        svc,
        base,
        cores,
        "proofs/s",
        0.30,
        f"{leaves:,}-leaf log, {size} B answers vs a bare aiohttp handler, {clients} connections",
    )


@benchmark("server_rss_1m_leaves")
async def server_rss_1m_leaves(ctx: Context) -> Result:
    """Resident memory of the serving processes with the million-leaf log, after the proof load."""
    rss = ctx.rss_after_proofs or ctx.service.rss_mb()
    baseline = max((p.peak_rss_mb() for p in ctx.bare_servers.values()), default=0.0)
    return Result(
        "server_rss_1m_leaves",
        rss,
        "MB",
        baseline,
        250.0,
        better="lower",
        goal_on="value",
        note="VmRSS of the serve process and its children, added up, after inclusion_proof vs the bare handler's peak",
    )


@benchmark("verify")
async def verify(ctx: Context) -> Result:
    """`traceability verify` (chains, leaves, tiles, checkpoints) over the ledger vs a SHA-256 loop."""
    await big_ledger(ctx)
    env = {
        **os.environ,
        "TRACE_DATABASE_URL": ctx.db_url,
        "TRACE_DATA_DIR": str(ctx.workdir),
        "TRACE_LOG_LEVEL": "warning",
    }
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "traceability",
        "verify",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    took = time.monotonic() - t0
    summary = out.decode().strip().splitlines()[-1] if out else err.decode()[-300:]
    async with ctx.sql() as conn:
        events = await conn.fetchval("SELECT count(*) FROM events")
        hashing = 0.0
        async with conn.transaction():
            batch: list[bytes] = []
            async for row in conn.cursor("SELECT canonical FROM events", prefetch=20_000):
                batch.append(row["canonical"])
                if len(batch) == 20_000:
                    hashing += ledger.sha_loop(batch)
                    batch = []
            hashing += ledger.sha_loop(batch)
    ok = proc.returncode == 0
    return Result(
        "verify",
        events / took,
        "events/s",
        events / hashing,
        0.25,
        note=f"{events:,} events in {took:.1f} s ({summary}); baseline: SHA-256 over the same canonical "
        f"bytes in a tight loop, {hashing:.2f} s",
        broken="" if ok else f"verify exited {proc.returncode}: {summary}",
    )


async def _trace(ctx: Context, direction: str, codes: list[str]) -> Result:
    big = await big_ledger(ctx)
    assert big
    if ctx.regulator is None:
        ctx.regulator = (await ctx.world.call("POST", "/api/v1/admin/tokens", {"role": "regulator", "name": "bench"}))[
            "credential"
        ]
    paths = tuple(f"/api/v1/batches/{c}/trace?direction={direction}" for c in codes[:5000])
    async with ctx.world.session.get(paths[0], headers={"Authorization": f"Bearer {ctx.regulator}"}) as resp:
        size = len(await resp.read())
        assert resp.status == 200
    bare = await ctx.bare(size)
    clients = 8
    # A latency goal far from its bound (tens of ms against 1 s): half the run's rounds and time still take the
    # p99 of several hundred traces (700 forward and 1,200 backward at this machine's rates).
    run = ctx.timing
    svc, base, _cores = await ctx.compare(
        f"trace_{direction}",
        lambda t: HttpLoad(ctx.service.url, Get(paths, ctx.regulator), clients, t.warmup, t.duration),
        lambda t: HttpLoad(bare.url, Get(("/healthz",)), clients, t.warmup, t.duration),
        timing=Timing(run.warmup, run.duration / 2, max(1, run.rounds // 2)),
    )
    return Result(
        f"trace_{direction}",
        svc.quantile(0.99),
        "s p99",
        base.quantile(0.99),
        1.0,
        better="lower",
        goal_on="value",
        note=f"{svc.rate:,.0f} traces/s on a {big.events:,}-event ledger, {clients} "
        f"connections, {size} B answers; baseline: the bare handler's p99",
        broken=_broken(svc),
    )


@benchmark("trace_forward")
async def trace_forward(ctx: Context) -> Result:
    """From a carcass forward to every cut and every node they reached."""
    return await _trace(ctx, "forward", (await big_ledger(ctx)).roots)


@benchmark("trace_backward")
async def trace_backward(ctx: Context) -> Result:
    """From a cut back to its carcass, with certificates."""
    return await _trace(ctx, "backward", (await big_ledger(ctx)).leaves)


benchmark("consumer_page")(pages.consumer_page)
benchmark("page_weight")(pages.page_weight)
benchmark("page_requests")(pages.page_requests)


# -- memory -------------------------------------------------------------------------------------


@benchmark("server_rss_peak")
async def server_rss_peak(ctx: Context) -> Result:
    """The service's peak RSS over the whole run (so run this last)."""
    if not ctx.bare_servers:  # run alone: give the baseline handler some traffic of its own
        bare = await ctx.bare(4096)
        await ctx.workers.run(HttpLoad(bare.url, Lookup(("0",)), 64, 0.5, 1.0))
    baseline = max(p.peak_rss_mb() for p in ctx.bare_servers.values())
    return Result(
        "server_rss_peak",
        ctx.service.peak_rss_mb(),
        "MB",
        baseline,
        200.0,
        better="lower",
        goal_on="value",
        note="VmHWM of the serve process and its children, added up, vs the bare aiohttp handler process",
    )


# -- adding one -----------------------------------------------------------------------------------
# A new benchmark is one more @benchmark function above `server_rss_peak` (which must stay last), using the
# same Context; set-up that is too slow through the API goes straight into the bench database via ctx.sql().
