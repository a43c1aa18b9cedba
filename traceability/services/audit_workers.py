"""The processes a full audit runs its parts in, and the server they are forked from.

Kept apart from the audit itself, importing nothing but :mod:`multiprocessing`, so that ``verify`` can
start that server before it imports the audit and what the audit needs: the server imports the audit
code once, before any worker can start, and it does so while this process is still importing and
planning instead of after.
"""

from __future__ import annotations

import multiprocessing

__all__ = ["context", "start_server"]

PRELOAD = ["traceability.services.audit_server"]  # the audit, and a quick end (see there)


def context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server process that has imported the audit once (each spawned worker would
    import it again); spawned where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    return forkserver


def start_server() -> multiprocessing.context.BaseContext:
    """Start the server the workers are forked from, if there is one and it is not running yet; it goes on
    importing in the background (the pool would otherwise start it at its first part, and wait for it)."""
    workers = context()
    if workers.get_start_method() == "forkserver":
        import multiprocessing.forkserver

        multiprocessing.forkserver.ensure_running()
    return workers
