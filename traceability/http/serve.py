"""Serving the app: one process, or a supervisor with ``TRACE_WORKERS`` worker processes; HTTP or HTTPS.

The listening socket is opened once, by the first process, and every worker accepts on it, so a
worker that is replaced leaves no gap in the port and its queued connections go to the others.

With more than one worker the first process only supervises: it forks the workers, replaces one
that dies (at once, then more slowly if a worker keeps dying right after it starts), and on
SIGTERM or SIGINT (Ctrl-C) stops them all and waits for them before it exits, so the embedded
PostgreSQL is stopped after the last worker. Each worker asks the kernel for SIGTERM when the
supervisor dies (``PR_SET_PDEATHSIG``), so killing the supervisor, even with SIGKILL, takes its
workers down with it instead of leaving them orphaned on the port.

With several workers (or ``TRACE_BACKGROUND=process``, which asks for a supervisor even with one worker)
the supervisor also keeps one background process (slot 0, named ``traceability-bg``) that runs the log's
sequencer and the anomaly analyzer at a lower CPU priority (:mod:`traceability.services.background`), so
the workers keep their cores for requests. It is replaced like a worker when it dies; meanwhile events
are still recorded and acknowledged, and wait in the log queue until it is back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from traceability.config import Settings
from traceability.logging import get_logger

log = get_logger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
BACKGROUND = 0
"""The background process's slot."""
BACKGROUND_NAME = b"traceability-bg"
BACKGROUND_NICE = 5
"""How much lower the background process's CPU priority is than the workers'."""
SHUTDOWN_TIMEOUT = 10.0
QUICK_DEATH = 5.0
"""A worker that dies sooner than this after starting counts as crashing; the next start waits longer."""
MAX_RESTART_DELAY = 30.0
YOUNG_COLLECTION = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700). A request
allocates hundreds of objects that are all gone when it is answered; at 700, collections ran several
times a request and each walked the objects of every request then in flight."""


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when ``TRACE_TLS_CERT`` and ``TRACE_TLS_KEY`` are set (TLS 1.2 or later)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def listen(settings: Settings) -> socket.socket:
    """The listening socket every worker shares."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock


async def _freeze_heap(app: web.Application) -> None:
    """What the process loaded to serve (modules, templates, the registries: over 100,000 objects) lives
    as long as it does. Kept out of the garbage collector's full passes, which otherwise walk all of it
    whenever requests that allocate much (a capture of 100 events) have promoted enough to trigger one.
    And the youngest generation is collected less often (:data:`YOUNG_COLLECTION`)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, middle, old)


def _run(make_app: Callable[[], web.Application], sock: socket.socket, settings: Settings) -> None:
    app = make_app()
    app.on_startup.append(_freeze_heap)  # after the resources are open
    web.run_app(
        app,
        sock=sock,
        ssl_context=tls_context(settings),
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor dies; exit now if it already has."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # pragma: no cover - Linux always has it
        log.warning("worker.pdeathsig_unavailable", errno=ctypes.get_errno())
    if os.getppid() != parent:  # the supervisor died between fork() and prctl()
        os._exit(0)


def _run_background(settings: Settings) -> None:
    """The background process: the sequencer and the analyzer at a lower priority, until SIGTERM or SIGINT."""
    from traceability.services import background

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(BACKGROUND_NAME), 0, 0, 0)  # how ps, top and the tests tell it apart
    os.nice(BACKGROUND_NICE)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await background.run_process(settings, stop)

    asyncio.run(main())


@dataclass
class Supervisor:
    """Forks and keeps ``settings.workers`` workers serving on one socket."""

    settings: Settings
    make_app: Callable[[], web.Application]
    on_worker_exit: Callable[[int], None] = lambda pid: None
    workers: dict[int, int] = field(default_factory=dict)  # pid -> slot
    started: dict[int, float] = field(default_factory=dict)  # slot -> when its worker started
    crashes: dict[int, int] = field(default_factory=dict)  # slot -> quick deaths in a row
    stopping: bool = False

    def spawn(self, slot: int, sock: socket.socket) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent(parent)
                if slot == BACKGROUND:
                    sock.close()  # it answers no requests
                    _run_background(self.settings)
                else:
                    _run(self.make_app, sock, self.settings)
            except BaseException:  # a worker never returns into the supervisor's code
                log.exception("worker.failed", slot=slot)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.workers[pid] = slot
        self.started[slot] = time.monotonic()
        log.info("background.forked" if slot == BACKGROUND else "worker.started", worker=slot, pid=pid)

    def stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("server.stopping", signal=signal.Signals(signum).name)
        self.stopping = True
        for pid in list(self.workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self, sock: socket.socket) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if self.settings.background_process:
            self.spawn(BACKGROUND, sock)
        for slot in range(1, self.settings.workers + 1):
            self.spawn(slot, sock)
        while self.workers:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            slot_or_none = self.workers.pop(pid, None)
            if slot_or_none is None:
                continue
            slot = slot_or_none
            self.on_worker_exit(pid)
            if self.stopping:
                continue
            lived = time.monotonic() - self.started.get(slot, 0.0)
            self.crashes[slot] = self.crashes.get(slot, 0) + 1 if lived < QUICK_DEATH else 0
            delay = min(MAX_RESTART_DELAY, 0.5 * 2 ** (self.crashes[slot] - 1)) if self.crashes[slot] else 0.0
            log.error("worker.died", worker=slot, pid=pid, status=_describe(status), restart_in_s=delay)
            until = time.monotonic() + delay
            while not self.stopping and time.monotonic() < until:  # a stop signal ends the pause
                time.sleep(max(0.0, min(0.2, until - time.monotonic())))
            if not self.stopping:
                self.spawn(slot, sock)
        sock.close()
        return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def serve(settings: Settings, make_app: Callable[[], web.Application], on_worker_exit: Callable[[int], None]) -> int:
    """Serve until SIGTERM or SIGINT: in this process with one worker and the background work inline, else
    under a supervisor."""
    sock = listen(settings)
    scheme = "https" if settings.tls_cert else "http"
    log.info(
        "server.listening",
        url=f"{scheme}://{settings.host}:{sock.getsockname()[1]}",
        public_url=settings.public_url,
        workers=settings.workers,
    )
    if settings.workers == 1 and not settings.background_process:
        _run(make_app, sock, settings)
        return 0
    return Supervisor(settings, make_app, on_worker_exit).run(sock)
