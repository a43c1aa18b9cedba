"""The one middleware of the main app: what every request goes through, in one coroutine frame.

In order: the client as a trusted proxy forwarded it (:func:`.security.behind_proxy`), the request's
count and latency (:func:`.metrics.count`), its id, errors rendered and its one log line
(:mod:`.middleware`), query parameters and path segments bounded (:func:`.params.check_input`), and on
the way out gzip for a text answer worth it (:func:`.compression.compress`). One layer instead of five:
each layer's coroutine frame is re-entered at every suspension of the request. A request that is not a GET
is noted as a write, which the background work gives way to (:class:`traceability.services.background.Foreground`).
"""

from __future__ import annotations

import time

from aiohttp import web

from traceability.http import compression, metrics, middleware, params, security
from traceability.http.keys import FOREGROUND
from traceability.http.middleware import Handler


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's way through the app (the order above; a redirect raised by a handler passes through)."""
    inner = security.behind_proxy(request)
    start = time.perf_counter()
    if request.method not in ("GET", "HEAD"):  # a write, or what may be one: background work gives way to it
        request.app[FOREGROUND].wrote = time.monotonic()
    status = 500
    try:
        rid = middleware.begin(inner)
        try:
            try:
                params.check_input(inner)
                response = await handler(inner)
            except Exception as exc:  # error_response logs what it does not know
                response = middleware.error_response(inner, exc)
            response.headers[middleware.X_REQUEST_ID] = rid
            status = response.status
        finally:
            middleware.finish(inner, start, status)
    except web.HTTPException as exc:  # redirects and the like are counted by their status
        status = exc.status
        raise
    finally:
        metrics.count(inner, status, time.perf_counter() - start)
    compression.compress(request, response)
    return response
