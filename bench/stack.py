"""What the benchmarks run against: a fresh database, the service and the bare baseline server.

Everything here is started by the run and torn down by it, whatever happens in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from traceability.config import ROOT
from traceability.storage import migrator
from traceability.storage.database import connect, start_embedded

_TICKS = os.sysconf("SC_CLK_TCK")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (a supervisor's workers, the background process a server starts)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):  # a child is listed under the thread that forked it
        try:
            children = task.read_text().split()
        except OSError:  # gone since it was listed
            continue
        for child in children:
            found += tree(int(child))
    return found


def _status_mb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:  # a descendant that exited since it was listed
        return 0.0
    raise RuntimeError(f"no {key} for pid {pid}")


def rss_mb(pid: int) -> float:
    """The resident set now (VmRSS) of the process and its live descendants, added up, in MiB. Pages a
    forked process still shares with its parent count in both, as ``ps`` and ``top`` count them."""
    return sum(_status_mb(p, "VmRSS:") for p in tree(pid))


def peak_rss_mb(pid: int) -> float:
    """The peak resident sets (VmHWM) of the process and its live descendants, added up, in MiB: at most
    what they ever held at once (each peak may have come at another moment)."""
    return sum(_status_mb(p, "VmHWM:") for p in tree(pid))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process and its descendants have used so far: the live ones' own, and
    that of those that ended and were reaped (PostgreSQL's backends of closed connections), which their
    parent's ``cutime``/``cstime`` hold. Without the second, a connection closing mid-window took its
    backend's time out of the total, and a window could come out negative."""
    total = 0.0
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:  # gone since it was listed
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime
    return total


def embedded_dir(workdir: Path) -> Path:
    """Where :func:`bench_database` keeps the embedded PostgreSQL it starts when no database URL is given."""
    return workdir / "pg"


def postgres_pid(workdir: Path) -> int | None:
    """The embedded PostgreSQL's postmaster (its backends are its children), or None when the run has none
    (on ``TRACE_DATABASE_URL``'s server, whose processes may not be this machine's to read)."""
    try:
        return int((embedded_dir(workdir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.asynccontextmanager
async def bench_database(workdir: Path, log: Log) -> AsyncIterator[str]:
    """A fresh, migrated ``trace_bench_<pid>`` database; yields its URL and drops it afterwards.

    On ``TRACE_DATABASE_URL``'s server when that is set, else on an embedded PostgreSQL started in
    ``workdir/pg`` and stopped at the end.
    """
    server_url = os.environ.get("TRACE_DATABASE_URL") or None
    embedded = None
    if server_url is None:
        pg_dir = embedded_dir(workdir)
        log(f"starting embedded PostgreSQL in {pg_dir}")
        server_url = await asyncio.to_thread(start_embedded, pg_dir)
        import pgserver

        embedded = pgserver.get_server(pg_dir)  # the handle start_embedded opened, to stop it ourselves
    name = f"trace_bench_{os.getpid()}"
    try:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = with_database(server_url, name)
        conn = await connect(url)
        try:
            applied = await migrator.migrate(conn, ROOT / "schema")
        finally:
            await conn.close()
        log(f"database {name} created, {len(applied)} migration(s) applied")
        try:
            yield url
        finally:
            admin = await asyncpg.connect(server_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.cleanup)


class Log:
    """Progress lines on stderr, with the time since the run began."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class Process:
    """A server we started: where it listens and how to reach its process."""

    name: str
    url: str
    popen: asyncio.subprocess.Process
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _wait_healthy(proc: Process, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.popen.returncode is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.stderr_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{proc.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not answer /healthz in {patience:.0f}s:\n{proc.stderr_tail()}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(
    name: str, argv: list[str], env: dict[str, str], port: int, stderr_path: Path
) -> AsyncIterator[Process]:
    """Start ``argv`` as a subprocess, wait for its /healthz, and stop it (SIGTERM, then SIGKILL) afterwards."""
    with stderr_path.open("wb") as err:
        popen = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT
        )
    proc = Process(name, f"http://127.0.0.1:{port}", popen, stderr_path)
    try:
        await _wait_healthy(proc)
        yield proc
    finally:
        if popen.returncode is None:
            popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(popen.wait(), 20)
            except TimeoutError:
                popen.kill()
                await popen.wait()


def service(db_url: str, workdir: Path, extra: dict[str, str] | None = None) -> tuple[list[str], dict[str, str], int]:
    """The argv, environment and port for ``python -m traceability serve`` on the bench database.

    ``extra`` adds settings (``TRACE_DB_POOL_SIZE=64``) for comparing configurations.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env.update(extra or {})
    env.update(
        {
            "TRACE_DATABASE_URL": db_url,
            "TRACE_PORT": str(port),
            "TRACE_DATA_DIR": str(workdir),
            "TRACE_LOG_FORMAT": "json",
            "TRACE_LOG_LEVEL": "warning",
            # The benchmarks measure capacity, with a few clients each far busier than any scanner:
            # the per-credential capture limit still runs, set where it never refuses.
            "TRACE_CAPTURE_RATE": "1000000",
            "TRACE_CAPTURE_BURST": "1000000",
        }
    )
    # --migrate is a no-op after bench_database() migrated, unless a migration landed in between.
    return [sys.executable, "-m", "traceability", "serve", "--migrate"], env, port


def bare(size: int) -> tuple[list[str], dict[str, str], int]:
    """The argv, environment and port for the bare handler serving ``size``-byte bodies."""
    port = free_port()
    return ([sys.executable, "-m", "bench.bare", "--port", str(port), "--size", str(size)], dict(os.environ), port)


def pages(folder: Path) -> tuple[list[str], dict[str, str], int]:
    """The argv, environment and port for the bare handler serving the pages saved in ``folder``."""
    port = free_port()
    return ([sys.executable, "-m", "bench.bare", "--port", str(port), "--pages", str(folder)], dict(os.environ), port)
