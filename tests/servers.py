"""Real server processes for the tests that need them (workers, signals, TLS, crashes): ``traceability serve``.

Each waits for conditions with generous deadlines and never judges speed: the machine is shared.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from traceability.config import ROOT
from traceability.storage.embedded import pgserver

START_WITHIN = 90.0
BACKGROUND = "traceability-bg"
"""The name the background process gives itself (``traceability.http.background_main.NAME``)."""


PORTS = 400
"""Ports each test process hands out in turn, from a block of its own."""
_ports = itertools.count()


def free_port() -> int:
    """A port for a server a test starts, free now and handed out by no other test process meanwhile.

    A port the kernel picks (binding port 0) is free only until released: between then and the server's own
    bind, another test process could be given the same one and start its server there, and a test would talk to
    the wrong server. So each pytest-xdist worker takes ports from its own block, below the kernel's ephemeral
    range (which outgoing connections draw from), in turn, skipping any in use.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = 20_000 + PORTS * (int(worker) if worker.isdigit() else 0) % 12_000
    for _ in range(PORTS):
        port = first + next(_ports) % PORTS
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use (or still closing): the next one
                continue
        return port
    raise RuntimeError(f"no free port in {first}-{first + PORTS - 1}")


_blank: Path | None = None
_blank_lock = threading.Lock()


def blank_cluster() -> Path:
    """An initialised, stopped PostgreSQL data directory, made once per test process (initdb takes seconds and
    pgserver runs them one at a time across the machine); removed when the process exits."""
    global _blank
    with _blank_lock:
        if _blank is not None:
            return _blank
        # Under the project's var/ like the servers' homes: the embedded PostgreSQL must reach it.
        where = ROOT / "var" / "test-servers" / f"blank-{os.getpid()}"
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        server = pgserver().get_server(where / "pg", cleanup_mode="stop")
        server.cleanup()  # stops it: this process was its only user
        (where / "user").write_text(server.system_user or "")  # who PostgreSQL runs as when the tests run as root
        atexit.register(shutil.rmtree, where, True)
        _blank = where
        return where


def seed_cluster(home: Path) -> None:
    """Give ``home`` (a ``TRACE_DATA_DIR``) a copy of :func:`blank_cluster` as its embedded PostgreSQL's data
    directory, so the server starts it without running initdb."""
    blank = blank_cluster()
    shutil.copytree(
        blank / "pg", home / "pg", ignore=shutil.ignore_patterns("postmaster.*", ".handle_pids.json", "log")
    )
    user = (blank / "user").read_text()
    if user:
        entry = pwd.getpwnam(user)
        for path in (home / "pg", *(home / "pg").rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)


class Server:
    """``traceability serve`` in a subprocess, with its output in a log file for the failure message."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        scheme: str = "http",
        command: tuple[str, ...] = ("serve",),
    ) -> None:
        self.data_dir = data_dir
        self.command = command
        self.port = free_port()
        self.scheme = scheme
        self.env = {
            **os.environ,
            "TRACE_DATA_DIR": str(data_dir),
            "TRACE_PORT": str(self.port),
            "TRACE_HOST": "127.0.0.1",
            "TRACE_LOG_FORMAT": "json",
            "TRACE_SEQUENCER_INTERVAL_MS": "50",
            **(env or {}),
        }
        self.log_path = data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ssl: ssl.SSLContext | bool = False if scheme == "https" else True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, *args: str) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "traceability", *self.command, *args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    async def wait_healthy(self, within: float = START_WITHIN) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    async with http.get(f"{self.url}/healthz", ssl=self.ssl) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not healthy within {within} s:\n{self.output()}")
                await asyncio.sleep(0.1)

    def children(self) -> list[psutil.Process]:
        """The supervisor's workers (not the background process); none when the process started serves itself."""
        return [p for p, name in self._forked() if name != BACKGROUND]

    def background(self) -> psutil.Process | None:
        """The background process (the log's sequencer and the analyzer) the server started, if it runs."""
        return next((p for p, name in self._forked() if name == BACKGROUND), None)

    def _forked(self) -> list[tuple[psutil.Process, str]]:
        """The live children and their names, each name read once here: a process may exit before the caller
        looks, and psutil reads a 15-character name (``traceability-bg``) from /proc again at every call."""
        assert self.proc is not None
        alive = []
        for p in psutil.Process(self.proc.pid).children():
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append((p, p.name()))
            except psutil.NoSuchProcess:
                pass
        return alive

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float = 60.0) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not exit within {within} s:\n{self.output()}")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        """Clean up after a test, whatever state the server is in: SIGTERM, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


async def wait_until(condition: Any, within: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within} s")
        await asyncio.sleep(0.05)


def trace_scan(home: Path, *args: str, stdin: str = "", timeout: float = 180.0) -> tuple[int, str, str]:
    """Run ``trace-scan`` with its own home, as a vendor would; (exit status, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "scanners.cli", "--home", str(home), "--max-backoff", "0.2", *args],
        input=stdin.encode(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def run_station(home: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """:func:`trace_scan` without blocking the event loop the server under test may share."""
    return await asyncio.to_thread(trace_scan, home, *args, stdin=stdin)
