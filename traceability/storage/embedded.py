"""The embedded PostgreSQL (the ``pgserver`` package): started when no database URL is given.

pgserver keeps a list of the processes using one data directory (``.handle_pids.json``) and stops
the server when the last of them exits. A process that is killed (SIGKILL, a power cut) never
takes its pid off that list, and then no clean exit ever stops the server again. So every start
and every exit first forgets the pids of processes that no longer run.

A server process that finds the embedded PostgreSQL gone (killed, crashed, stopped by hand) starts
it again on the same data directory and socket (:meth:`Embedded.revive`), so a service that was
answering 503 recovers on its own.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

from traceability.logging import get_logger

log = get_logger(__name__)

REVIVE_EVERY = 1.0
"""Seconds between the server's checks that its embedded PostgreSQL is still running."""


def pgserver() -> Any:
    """The pgserver module (its server, its binaries). Imported lazily: only needed when no database URL is given.
    From its module, because the package re-exports get_server without declaring it public."""
    with warnings.catch_warnings():
        # platformdirs warns (at import) when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        from pgserver import postgres_server

    return postgres_server


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class Embedded:
    """One embedded PostgreSQL data directory, as this process uses it."""

    def __init__(self, pg_dir: Path) -> None:
        self.pg_dir = pg_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start the server (or attach to the one running on this directory) and return its URL."""
        if self._server is not None:  # attached before (or inherited by a forked worker): check it still runs
            self.revive()
            return str(self._server.get_uri())
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        pg = pgserver()
        with pg.PostgresServer._lock:
            self._forget_dead_handles()
        self._server = pg.get_server(self.pg_dir, cleanup_mode="stop")
        # atexit runs handlers last-in first-out: this one runs just before pgserver's own, so the
        # last live user stops the server even when users before it were killed.
        atexit.register(self._before_exit)
        return str(self._server.get_uri())

    def _forget_dead_handles(self) -> None:
        path = self.pg_dir / ".handle_pids.json"
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            return
        alive = [p for p in pids if _alive(p)]
        if alive != pids:
            path.write_text(json.dumps(alive))
            log.info("embedded_pg.forgot_dead_users", pids=sorted(set(pids) - set(alive)))

    def _before_exit(self) -> None:
        """Ready pgserver's exit handler: forget dead users, and point it at the postmaster running now
        (a worker process may have restarted it, which this process's copy of pgserver never saw)."""
        pg = pgserver()
        with contextlib.suppress(Exception), pg.PostgresServer._lock:
            self._forget_dead_handles()
            info = pg.PostmasterInfo.read_from_pgdata(self.pg_dir)
            if self._server is not None and info is not None and info.is_running():
                self._server._postmaster_info = info

    def running(self) -> bool:
        """Whether the postmaster of this data directory is running."""
        info = pgserver().PostmasterInfo.read_from_pgdata(self.pg_dir)
        return info is not None and bool(info.is_running()) and info.status == "ready"

    def revive(self) -> bool:
        """Start the server again if it is not running; True when it had to. Blocking: run it in a thread."""
        if self._server is None or self.running():
            return False
        pg = pgserver()
        with pg.PostgresServer._lock:  # one process restarts it; the others find it running
            if self.running():
                return False
            log.warning("embedded_pg.restarting", pg_dir=str(self.pg_dir))
            try:
                self._server.ensure_postgres_running()
            except (subprocess.SubprocessError, OSError, AssertionError) as exc:
                # Backends of a killed postmaster may still hold its shared memory for a moment.
                log.warning("embedded_pg.restart_failed", error=type(exc).__name__)
                return False
        log.info("embedded_pg.restarted", pg_dir=str(self.pg_dir))
        return True

    def restart(self) -> None:
        """Restart the server with the options it was started with (a setting that needs a restart changed).
        Blocking: run it in a thread. Connections open to it are closed."""
        pg = pgserver()
        with pg.PostgresServer._lock:
            pg.pg_ctl(["-w", "restart", "-m", "fast"], pgdata=self.pg_dir, user=self._server.system_user)
            self._server._postmaster_info = pg.PostmasterInfo.read_from_pgdata(self.pg_dir)
        log.info("embedded_pg.restarted", pg_dir=str(self.pg_dir))

    def socket(self) -> tuple[str, int]:
        """The directory of its Unix socket and its port: how a process on this machine reaches it."""
        info = self._server.get_postmaster_info()
        return str(info.socket_dir), int(info.port)

    async def watch(self, stop: asyncio.Event, every: float = REVIVE_EVERY) -> None:
        """Check every ``every`` seconds that the server runs; start it again when it does not."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.revive)
            except Exception as exc:  # never let the watcher die: it is what brings the database back
                log.warning("embedded_pg.watch_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
