"""The command line: set everything up, run the benchmarks in order, write and print the results.

Exit status 0 when every benchmark produced a trustworthy figure (goals may still be MISSED);
1 when one failed to run or the service answered errors under load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import aiohttp

from bench import report, scale, stack
from bench.benchmarks import BENCHMARKS, Context, Timing
from bench.load import Workers
from bench.world import World
from traceability.logging import configure

DEVICES = 64
DEFAULT = Timing()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    p.add_argument("--warmup", type=float, default=DEFAULT.warmup, help="seconds of warm-up before each round")
    p.add_argument(
        "--duration", type=float, default=DEFAULT.duration, help="measured seconds per side, split over the rounds"
    )
    p.add_argument("--rounds", type=int, default=DEFAULT.rounds, help="alternating service/baseline rounds")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="TRACE_X=VALUE",
        help="an extra setting for the service (repeatable), e.g. TRACE_DB_POOL_SIZE=64",
    )
    p.add_argument("--keep", action="store_true", help="keep the working directory (server log, pg data)")
    p.add_argument(
        "--scale",
        type=int,
        metavar="EVENTS",
        help="instead of the benchmarks: the read paths' p99 and the server's RSS at a million events and again "
        "after growing the ledger to about EVENTS (e.g. 10000000); writes bench/results-scale.json",
    )
    return p


async def run(args: argparse.Namespace, workdir: Path, log: stack.Log) -> tuple[list[report.Result], bool]:
    names = args.only or list(BENCHMARKS)
    names.sort(key=list(BENCHMARKS).index)
    results: list[report.Result] = []
    ok = True
    async with contextlib.AsyncExitStack() as resources:
        db_url = await resources.enter_async_context(stack.bench_database(workdir, log))
        argv, env, port = stack.service(db_url, workdir, dict(kv.split("=", 1) for kv in args.server_env))
        server = await resources.enter_async_context(stack.running("service", argv, env, port, workdir / "server.log"))
        log(f"service pid {server.pid} listening at {server.url}")
        try:
            admin = (workdir / "admin-token").read_text().strip()
            session = await resources.enter_async_context(
                aiohttp.ClientSession(
                    server.url, connector=aiohttp.TCPConnector(limit=32), timeout=aiohttp.ClientTimeout(total=120)
                )
            )
            world = World(session, admin)
            await world.register(DEVICES)
            log(f"registered {DEVICES} enterprises, nodes and devices")
            workers = Workers()
            resources.callback(workers.close)
            ctx = Context(
                db_url, server, world, workers, Timing(args.warmup, args.duration, args.rounds), workdir, log, resources
            )
            if args.scale:
                results = await scale.run(ctx, args.scale)
                names = []
            ctx.wanted = frozenset(names)
            for name in names:
                log(f"{name}: setting up")
                try:
                    result = await BENCHMARKS[name](ctx)
                except Exception:
                    ok = False
                    print(f"benchmark {name} failed:\n{traceback.format_exc()}", file=sys.stderr)
                    continue
                results.append(result)
                ok = ok and not result.broken
                log(f"{name}: {result.value:,.1f} {result.unit} vs {result.baseline:,.1f}, ratio {result.ratio:.3f}")
        except Exception:
            print(f"server log tail:\n{server.stderr_tail()}", file=sys.stderr)
            raise
        if not ok:
            print(f"server log tail:\n{server.stderr_tail()}", file=sys.stderr)
    return results, ok


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Our own process logs only problems; pgserver's platformdirs warning is about /tmp and harmless.
    configure(fmt="console", level="warning")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    log = stack.Log()
    # Stopped with SIGTERM (kill, a CI timeout) as with Ctrl-C: the service, its PostgreSQL and the load
    # workers are stopped and the working directory removed, instead of left running on the machine.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="trace-bench-"))
    try:
        results, ok = asyncio.run(run(args, workdir, log))
    except KeyboardInterrupt:
        log("stopped: the service, its database and the load workers are stopped")
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    path = scale.RESULTS if args.scale else report.RESULTS
    report.write(results, path)
    print(report.table(results))
    print(f"\nwritten to {path} ({time.monotonic() - log.t0:.0f}s)")
    return 0 if ok and results else 1
