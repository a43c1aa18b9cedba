"""The processes a full audit runs its parts in.

Forked from ``verify`` itself where the platform can fork and ``verify`` runs a single thread: by the time
the parts are planned, it has imported the audit and everything it needs, so each worker starts at once
with all of it, sharing the parent's memory until either writes to it. Nothing the parent holds is used in a
worker: each opens its own event loop and its own reader of the snapshot, and leaves without running the
parent's finalizers (``os._exit``, as every forked child of :mod:`multiprocessing`). A process running other
threads is not forked (one of them could hold a lock the child would then wait on for good, and Python 3.12
warns about it): its workers are forked from a server that imports the audit once for all of them, or
spawned where there is no fork, each then importing the audit itself.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading

__all__ = ["context", "started"]


def context() -> multiprocessing.context.BaseContext:
    """Where the workers come from (see above); ask right before starting them."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(["traceability.services.audit_parts"])
        return server
    return multiprocessing.get_context("spawn")


def started() -> None:
    """Run in each worker as it starts: a worker ignores Ctrl-C, which the auditing process alone answers. A
    forked worker would otherwise run the handler ``asyncio.run`` installed in that process, which cancels that
    process's task (a copy of it, in the worker), not the worker's part."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
