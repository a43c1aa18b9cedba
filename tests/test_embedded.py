"""The embedded PostgreSQL ``make run`` starts: stopped on every clean exit even after the server was killed,
and started again by the server when it dies."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil

from tests.servers import Server, wait_until


def postmaster(pg_dir: Path) -> int | None:
    """The running postmaster's pid, or None."""
    pid_file = pg_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split("\n", 1)[0])
    try:
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


async def test_a_clean_exit_stops_the_embedded_database_even_after_crashes(server_home: Path) -> None:
    pg_dir = server_home / "pg"
    server = Server(server_home)  # no TRACE_DATABASE_URL: the embedded PostgreSQL in $TRACE_DATA_DIR/pg
    server.start("--migrate")
    try:
        await server.wait_healthy()
        first = postmaster(pg_dir)
        assert first is not None
        for _ in range(2):  # killed twice: each leaves its pid in pgserver's list of users
            server.kill()
            assert postmaster(pg_dir) == first  # the database outlives a killed server
            server.start()
            await server.wait_healthy()
        users = json.loads((pg_dir / ".handle_pids.json").read_text())
        assert server.proc is not None and users == [server.proc.pid]  # the dead were forgotten
        server.signal(signal.SIGINT)  # Ctrl-C
        assert await server.wait_exit() == 0
        await wait_until(lambda: postmaster(pg_dir) is None, what="the embedded PostgreSQL to stop")
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    finally:
        server.stop()
        if (pid := postmaster(pg_dir)) is not None:
            psutil.Process(pid).kill()


async def test_a_database_restarted_by_a_worker_is_still_stopped_on_exit(server_home: Path) -> None:
    pg_dir = server_home / "pg"
    server = Server(server_home, {"TRACE_WORKERS": "2"})
    server.start("--migrate")
    try:
        await server.wait_healthy()
        first = postmaster(pg_dir)
        assert first is not None
        psutil.Process(first).kill()
        # A worker notices within a second or so and starts it again; the service answers again.
        await wait_until(lambda: postmaster(pg_dir) not in (None, first), what="a restarted PostgreSQL")
        await server.wait_healthy()
        server.signal(signal.SIGTERM)
        assert await server.wait_exit() == 0
        await wait_until(lambda: postmaster(pg_dir) is None, what="the restarted PostgreSQL to stop")
    finally:
        server.stop()
        if (pid := postmaster(pg_dir)) is not None:
            psutil.Process(pid).kill()
