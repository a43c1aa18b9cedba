"""The background process's own life: the log's sequencer and the anomaly analyzer at a lower CPU priority.

Two ways in. A supervisor with several workers forks it (:func:`run`). A server with one worker starts it
as a program of its own (``python -m traceability.http.background_main <the server's pid>``,
:func:`main`), so it loads only what the background work needs and shares nothing with the server it
was started from. Either way it asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``),
so it never outlives the server, and it stops on SIGTERM or SIGINT (Ctrl-C reaches every process of
the terminal's group) after closing its connections.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import sys

from traceability.config import Settings
from traceability.logging import configure, get_logger

log = get_logger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
NAME = b"traceability-bg"
"""How ps, top and the tests tell the background process apart."""
NICE = 5
"""How much lower the background process's CPU priority is than the workers'."""


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when ``parent`` dies; exit now if it already has."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # pragma: no cover - Linux always has it
        log.warning("worker.pdeathsig_unavailable", errno=ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before prctl()
        os._exit(0)


def run(settings: Settings) -> None:
    """The sequencer and the analyzer at a lower priority, until SIGTERM or SIGINT."""
    from traceability.services import background

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(NAME), 0, 0, 0)
    os.nice(NICE)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await background.run_process(settings, stop)

    asyncio.run(main())


def main(argv: list[str]) -> int:
    """The program a one-worker server starts: ``argv[1]`` is that server's pid."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m traceability.http.background_main <parent pid>", file=sys.stderr)
        return 2
    die_with_parent(int(argv[1]))
    settings = Settings.from_env()
    configure(fmt=settings.log_format, level=settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    run(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
