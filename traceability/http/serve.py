"""Serving the app: one process, or a supervisor with ``TRACE_WORKERS`` worker processes; HTTP or HTTPS.

The listening socket is opened once, by the first process, and every worker accepts on it, so a
worker that is replaced leaves no gap in the port and its queued connections go to the others.

With more than one worker the first process only supervises: it forks the workers, replaces one
that dies (at once, then more slowly if a worker keeps dying right after it starts), and on
SIGTERM or SIGINT (Ctrl-C) stops them all and waits for them before it exits, so the embedded
PostgreSQL is stopped after the last worker. Each worker asks the kernel for SIGTERM when the
supervisor dies (``PR_SET_PDEATHSIG``), so killing the supervisor, even with SIGKILL, takes its
workers down with it instead of leaving them orphaned on the port.

The log's sequencer and the anomaly analyzer run in a background process of their own (named
``traceability-bg``, at a lower CPU priority: :mod:`traceability.http.background_main`) when there are
several workers or with ``TRACE_BACKGROUND=process``, so the processes answering
requests keep their cores for capture. With several workers the supervisor forks it like a worker; with
one, the serving process starts it itself (:class:`BackgroundChild`), so a server is two processes, not
three. Either way it is replaced when it dies, meanwhile events are still recorded and acknowledged and
wait in the log queue until it is back, and it gets SIGTERM from the kernel when its parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

from traceability.config import Settings, background_environment
from traceability.http import background_main
from traceability.http.keys import DATABASE
from traceability.logging import get_logger

log = get_logger(__name__)

BACKGROUND = 0
"""The background process's slot."""
SHUTDOWN_TIMEOUT = 10.0
QUICK_DEATH = 5.0
"""A worker that dies sooner than this after starting counts as crashing; the next start waits longer."""
MAX_RESTART_DELAY = 30.0
YOUNG_COLLECTION = 50_000
"""Allocations between two collections of the youngest generation (Python's default: 700). A request
allocates hundreds of objects that are all gone when it is answered; at 700, collections ran several
times a request and each walked the objects of every request then in flight. A capture of an EPCIS
document of 100 events keeps some 3,000 until it is answered, and eight such requests in flight kept
20,000 to 28,000 more allocated than freed: at 10,000, a young collection came every two or three
documents and walked them all (about 4 to 5 us of CPU per captured event); at 50,000, none came."""


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


def _run(make_app: Callable[[], web.Application], sock: socket.socket, settings: Settings, *, child: bool) -> None:
    """Serve on ``sock`` in this process; ``child``: with the background work in a process it starts itself."""
    app = make_app()
    app.on_startup.append(_freeze_heap)  # after the resources are open
    if child:
        background = BackgroundChild(settings)
        app.on_shutdown.append(background.stop)  # first thing on SIGTERM or Ctrl-C: no restart from then on
        app.cleanup_ctx.append(background.context)
    web.run_app(
        app,
        sock=sock,
        ssl_context=tls_context(settings),
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


def _restart_delay(crashes: int) -> float:
    """Seconds before the next start of a process that died ``crashes`` times in a row right after starting."""
    return min(MAX_RESTART_DELAY, 0.5 * 2 ** (crashes - 1)) if crashes else 0.0


@dataclass
class BackgroundChild:
    """The background process of a server with one worker, started and kept by that server itself (no
    supervisor): a program of its own (:mod:`traceability.http.background_main`), replaced when it dies,
    stopped and waited for when the server stops, and gone with the server if the server is killed."""

    settings: Settings
    proc: asyncio.subprocess.Process | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        keeper = asyncio.create_task(self._keep(background_environment(app[DATABASE].url)))
        try:
            yield
        finally:
            await self.stop(app)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(keeper), SHUTDOWN_TIMEOUT)
            if self.proc is not None and self.proc.returncode is None:
                log.warning("background.killed", pid=self.proc.pid)
                self.proc.kill()
            await keeper

    async def stop(self, _app: web.Application) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    async def _keep(self, env: dict[str, str]) -> None:
        crashes = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", background_main.__name__, str(os.getpid()), env=env, stdin=subprocess.DEVNULL
                )
            except OSError as exc:  # out of processes or memory for a moment: try again later
                log.error("background.start_failed", error=str(exc))
                code: int | str = "not started"
            else:
                log.info("background.started_process", pid=self.proc.pid)
                code = await self.proc.wait()
            if self.stopping.is_set():
                break
            crashes = crashes + 1 if time.monotonic() - started < QUICK_DEATH else 0
            delay = max(0.5, _restart_delay(crashes))  # a Ctrl-C reaches it first: give the server time to stop
            log.error("background.died", status=code, restart_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)


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
                background_main.die_with_parent(parent)
                if slot == BACKGROUND:
                    sock.close()  # it answers no requests
                    background_main.run(self.settings)
                else:
                    _run(self.make_app, sock, self.settings, child=False)
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
        if self.settings.background_process:  # forked like a worker, replaced like one
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
            delay = _restart_delay(self.crashes[slot])
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
    """Serve until SIGTERM or SIGINT: in this process with one worker (and the background process it starts,
    or the background work inline), else under a supervisor."""
    sock = listen(settings)
    scheme = "https" if settings.tls_cert else "http"
    log.info(
        "server.listening",
        url=f"{scheme}://{settings.host}:{sock.getsockname()[1]}",
        public_url=settings.public_url,
        workers=settings.workers,
    )
    if settings.workers == 1:
        _run(make_app, sock, settings, child=settings.background_process)
        return 0
    return Supervisor(settings, make_app, on_worker_exit).run(sock)
