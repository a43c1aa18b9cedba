"""The processes a full audit runs its parts in.

Forked from ``verify`` itself where the platform can fork: by the time the parts are planned, ``verify`` has
imported the audit and everything it needs, so each worker starts at once with all of it, sharing the parent's
memory until either writes to it. Nothing the parent holds is used in a worker: each opens its own event loop
and its own reader of the snapshot, and leaves without running the parent's finalizers (``os._exit``, as
every forked child of :mod:`multiprocessing`). Spawned where there is no fork: each worker then imports the
audit itself.
"""

from __future__ import annotations

import multiprocessing
import signal

__all__ = ["context", "started"]


def context() -> multiprocessing.context.BaseContext:
    """Workers forked from the auditing process, or spawned where there is no fork."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def started() -> None:
    """Run in each worker as it starts: a worker ignores Ctrl-C, which the auditing process alone answers. A
    forked worker would otherwise run the handler ``asyncio.run`` installed in that process, which cancels that
    process's task (a copy of it, in the worker), not the worker's part."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
