"""Federated ledgers: who the members are, and the handover vouchers that carry a batch from one to another."""

from __future__ import annotations

from aiohttp import web

from traceability.http.api import json_response
from traceability.http.keys import FEDERATION
from traceability.http.openapi import ok, operation
from traceability.services import federation

routes = web.RouteTableDef()


@routes.get("/api/v1/federation")
@operation(
    "The member ledgers this ledger knows: origin, URL, area-code prefixes, pinned checkpoint key",
    tags=("federation",),
    responses={200: ok("Federation")},
)
async def members(request: web.Request) -> web.Response:
    return json_response(federation.describe(request.app[FEDERATION]), headers={"Cache-Control": "no-cache"})
