"""Which database answers a public read: a fresh streaming replica, else the primary (``storage.replicas``).

Handlers of public, read-only answers (the consumer page, batch proofs, checkpoints, tiles, the anonymous batch
view) take their database from :func:`public` instead of ``app[DATABASE]``. Everything else (writes,
custody checks, whatever must read its own writes, anything a credential unlocks) keeps the primary.
With replicas configured, the answer says which pool served it in ``X-Read-From`` (``primary`` or
``replica-N``: a name, never a URL) and ``/metrics`` counts reads by pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from traceability import errors
from traceability.http.keys import DATABASE, READS
from traceability.http.metrics import METRICS
from traceability.storage.database import Database

HEADER = "X-Read-From"
_FROM = "read_from"
T = TypeVar("T")


def public(request: web.Request) -> Database:
    """The database for this request's public read; noted for the ``X-Read-From`` header and the metrics."""
    reads = request.app[READS]
    name, db = reads.pick()
    if reads.replicas:
        request[_FROM] = name
        request.app[METRICS].read(name)
    return db


async def answer(request: web.Request, work: Callable[[Database], Awaitable[T]]) -> T:
    """``await work(db)`` on the database :func:`public` picks. A replica that fails it (unreachable, or gone
    in the middle) is skipped from now on and the primary does the work instead: no 503 for the reader."""
    db = public(request)
    try:
        return await work(db)
    except errors.StorageUnavailable:
        primary = request.app[DATABASE]
        if db is primary:
            raise
        if db.lost is not None:
            db.lost()
        request[_FROM] = "primary"
        request.app[METRICS].read("primary")
        return await work(primary)


async def read_from(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: name the pool that answered a public read."""
    name = request.get(_FROM)
    if name is not None:
        response.headers[HEADER] = name
