"""The verdict as JSON, for stations and anyone else: recalled, on hold, expired or fine, in both languages;
and the list a station checks scans against while it is offline."""

from __future__ import annotations

from aiohttp import web

from traceability.http.api import json_response
from traceability.http.auth import require
from traceability.http.keys import DATABASE, VIEWS
from traceability.http.openapi import TRACE_CODE_PATH, ok, operation
from traceability.services import history
from traceability.services.views import verdict

routes = web.RouteTableDef()


@routes.get("/api/v1/batches/{trace_code}/verdict")
@operation(
    "A batch's verdict: safe, recalled, on hold (with the failed test) or expired, in Chinese and English (public)",
    tags=("read",),
    path=(TRACE_CODE_PATH,),
    responses={200: ok("Verdict")},
)
async def batch_verdict(request: web.Request) -> web.Response:
    """The line the consumer page opens with, and what a station asks before it sells or receives a batch."""
    code = history.valid_code(request.match_info["trace_code"])
    found = await verdict.batch_verdict(request.app[DATABASE], code, request.app[VIEWS])
    return json_response(found, headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/stations/watchlist")
@operation(
    "What a station checks scans against while offline: recalled and held batches, and its node's stock",
    tags=("stations",),
    auth=("bearer", "signature"),
    responses={200: ok("StationWatchlist")},
)
async def station_watchlist(request: web.Request) -> web.Response:
    principal = await require(request, "device")
    found = await verdict.station_watchlist(request.app[DATABASE], principal)
    return json_response(found, headers={"Cache-Control": "no-store"})
