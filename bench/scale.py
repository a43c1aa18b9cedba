"""``python -m bench --scale N``: the read paths on the million-event ledger, then again once it holds N events.

Not part of the default run: loading ten million events takes many minutes. The ledger of the default
run (:func:`bench.benchmarks.big_ledger`) is measured first; then :func:`bench.ledger.load` grows it to
about N events with parents of the same shape, the sequencer enters them all in the log, the anomaly
analyzer reads them (as at a million), and the same loads run again. Each figure at N is reported beside
the same figure at a million: the p99 of a consumer's lookup (``GET /api/v1/batches/{code}``) and page
(``GET /t/{code}``), a regulator's trace forward and backward, and an inclusion proof, each held to within
1.5x of the million-event figure; and the serving process's resident memory after those loads, held to
250 MB. Codes and event ids are drawn from the whole ledger, old and new parts alike.

The results go to bench/results-scale.json (the default run's bench/results.json stays as it was).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from bench import ledger
from bench.benchmarks import CUTS, EVENTS_PER_CUT, PARENTS, Context, big_ledger
from bench.load import HttpLoad
from bench.report import Result
from bench.workloads import Get

RESULTS = Path(__file__).resolve().parent / "results-scale.json"
CLIENTS = 16
WITHIN = 1.5
RSS_GOAL = 250.0
PATHS = 5_000  # distinct paths each load draws from
WARMUP = 3.0  # seconds of each load not measured: the first requests after a load find cold caches


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    what: str
    token: bool  # needs the regulator's credential


FIGURES = (
    Figure("lookup_p99", "GET /api/v1/batches/{code} of a cut", False),
    Figure("consumer_page_p99", "GET /t/{code} of a cut (the consumer's page)", False),
    Figure("trace_forward_p99", "GET /api/v1/batches/{code}/trace?direction=forward of a carcass", True),
    Figure("trace_backward_p99", "GET /api/v1/batches/{code}/trace?direction=backward of a cut", True),
    Figure("inclusion_proof_p99", "GET /api/v1/events/{id}/proof", False),
)


def _paths(name: str, big: ledger.Ledger, rng: random.Random) -> tuple[str, ...]:
    roots = rng.sample(big.roots, min(PATHS, len(big.roots)))
    leaves = rng.sample(big.leaves, min(PATHS, len(big.leaves)))
    ids = rng.sample(big.event_ids, min(PATHS, len(big.event_ids)))
    return {
        "lookup_p99": tuple(f"/api/v1/batches/{c}" for c in leaves),
        "consumer_page_p99": tuple(f"/t/{c}" for c in leaves),
        "trace_forward_p99": tuple(f"/api/v1/batches/{c}/trace?direction=forward" for c in roots),
        "trace_backward_p99": tuple(f"/api/v1/batches/{c}/trace?direction=backward" for c in leaves),
        "inclusion_proof_p99": tuple(f"/api/v1/events/{e}/proof" for e in ids),
    }[name]


async def measure(ctx: Context, big: ledger.Ledger) -> tuple[dict[str, float], float]:
    """Every figure's p99 (seconds) on the ledger as it is now, and the server's RSS after them (MB)."""
    if ctx.regulator is None:
        ctx.regulator = (await ctx.world.call("POST", "/api/v1/admin/tokens", {"role": "regulator", "name": "bench"}))[
            "credential"
        ]
    rng = random.Random(len(big.roots))
    out: dict[str, float] = {}
    t = ctx.timing
    for f in FIGURES:
        work = Get(_paths(f.name, big, rng), ctx.regulator if f.token else None)
        stats = await ctx.workers.run(HttpLoad(ctx.service.url, work, CLIENTS, max(t.warmup, WARMUP), t.duration / 2))
        if stats.errors:
            raise RuntimeError(f"{f.name}: errors under load {dict(stats.errors)}")
        out[f.name] = stats.quantile(0.99)
        ctx.log(f"scale: {f.name} {out[f.name] * 1000:.1f} ms at {big.events:,} events ({stats.rate:,.0f}/s)")
    return out, ctx.service.rss_mb()


async def run(ctx: Context, events: int) -> list[Result]:
    """Measure at a million events, grow the ledger to about ``events``, measure again."""
    small = await big_ledger(ctx)
    before, rss_before = await measure(ctx, small)
    per_parent = 2 + CUTS * EVENTS_PER_CUT
    more = max(0, events - small.events) // per_parent
    t0 = time.monotonic()
    added = await ledger.load(ctx.db_url, ctx.world, more, CUTS, EVENTS_PER_CUT, ctx.log, first=PARENTS)
    loaded = time.monotonic() - t0
    waited = await ledger.wait_logged(ctx.db_url, ctx.log, patience=max(240.0, added.events / 5_000))
    # As at a million: the analyzer reads the whole log first, as it would have long before a real ledger grew
    # this big; measured while it still reads millions of leaves, the figures would be its, not the reads'.
    analyzed, unread = await ledger.wait_analyzed(ctx.db_url, ctx.log, patience=max(90.0, added.events / 5_000))
    ctx.log(
        f"scale: {added.events:,} more events loaded in {loaded:.0f} s ({added.events / loaded:,.0f}/s), "
        f"in the log {waited:.0f} s later, read by the analyzer {analyzed:.0f} s after that"
        + (f" ({unread:,} leaves still unread)" if unread else "")
    )
    big = ledger.Ledger(
        small.events + added.events,
        small.roots + added.roots,
        small.leaves + added.leaves,
        small.event_ids + added.event_ids,
    )
    after, rss_after = await measure(ctx, big)
    at = f"{big.events / 1e6:.1f}M"
    results = [
        Result(
            f"{f.name}_{at}",
            after[f.name],
            "s p99",
            before[f.name],
            WITHIN,
            better="lower",
            note=f"{f.what}, {CLIENTS} connections, at {big.events:,} events; baseline: the same at "
            f"{small.events:,} events",
        )
        for f in FIGURES
    ]
    results.append(
        Result(
            f"server_rss_{at}",
            rss_after,
            "MB",
            rss_before,
            RSS_GOAL,
            better="lower",
            goal_on="value",
            note=f"VmRSS of the server's processes after the loads at {big.events:,} events; baseline: the same at "
            f"{small.events:,} events",
        )
    )
    return results
