"""Which database answers a public read: a fresh streaming replica, else the primary (``storage.replicas``).

Handlers of public, read-only answers (the consumer page, batch proofs, checkpoints, tiles, the anonymous batch
view) take their database from :func:`public` instead of ``app[DATABASE]``. Everything else (writes,
custody checks, whatever must read its own writes, anything a credential unlocks) keeps the primary.
With replicas configured, the answer says which pool served it in ``X-Read-From`` (``primary`` or
``replica-N``: a name, never a URL) and ``/metrics`` counts reads by pool.
"""

from __future__ import annotations

from aiohttp import web

from traceability.http.keys import READS
from traceability.http.metrics import METRICS
from traceability.storage.database import Database

HEADER = "X-Read-From"
_FROM = "read_from"


def public(request: web.Request) -> Database:
    """The database for this request's public read; noted for the ``X-Read-From`` header and the metrics."""
    reads = request.app[READS]
    name, db = reads.pick()
    if reads.replicas:
        request[_FROM] = name
        request.app[METRICS].read(name)
    return db


async def read_from(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: name the pool that answered a public read."""
    name = request.get(_FROM)
    if name is not None:
        response.headers[HEADER] = name
