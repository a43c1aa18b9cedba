"""Farm routes: the registry of inputs (administrators) and production records (a farm's scanners)."""

from __future__ import annotations

from aiohttp import web

from traceability.domain import bounds
from traceability.http import params, schemas
from traceability.http.api import json_response, paging, read_json
from traceability.http.auth import require, require_capture
from traceability.http.keys import DATABASE
from traceability.http.openapi import PAGING, Param, ok, operation
from traceability.services import farm

routes = web.RouteTableDef()


@routes.post("/api/v1/admin/inputs")
@operation(
    "Register an input (pesticide, veterinary drug, …) with its safety interval, or correct its entry",
    tags=("registry",),
    auth=("bearer",),
    body=schemas.ref("InputProduct"),
    responses={201: ok("Registered"), 200: ok("Registered", "an existing entry corrected")},
)
async def register_input(request: web.Request) -> web.Response:
    await require(request, "admin")
    row = await farm.register_input_product(request.app[DATABASE], await read_json(request))
    return json_response(row, status=201 if row.pop("created") else 200)


@routes.get("/api/v1/admin/inputs")
@operation(
    "The registry of inputs and their safety intervals",
    tags=("registry",),
    auth=("bearer",),
    query=(Param("key", schemas.text(bounds.CODE), "a registration number"), *PAGING),
    responses={200: ok("InputProducts")},
)
async def list_inputs_registry(request: web.Request) -> web.Response:
    await require(request, "admin", "regulator")
    limit, offset = paging(request)
    rows = await farm.list_input_products(
        request.app[DATABASE], registration_no=params.text(request, "key", bounds.CODE), limit=limit, offset=offset
    )
    items = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()} for r in rows]
    return json_response({"items": items, "limit": limit, "offset": offset})


@routes.post("/api/v1/farm/inputs")
@operation(
    "Record what went into a field plot, a pen or a herd (a farm's or pasture's scanner)",
    tags=("capture",),
    auth=("bearer",),
    body=schemas.ref("InputRecord"),
    responses={201: ok("InputRecorded"), 200: ok("InputRecorded", "a resend of a record already kept")},
)
async def record_input(request: web.Request) -> web.Response:
    device = await require_capture(request)
    row, replayed = await farm.record_input(request.app[DATABASE], device, await read_json(request))
    return json_response({**row, "replayed": replayed}, status=200 if replayed else 201)


@routes.get("/api/v1/farm/inputs")
@operation(
    "A farm's production records, latest first (its own scanners; regulators name the node)",
    tags=("read",),
    auth=("bearer",),
    query=(
        Param("node", schemas.text(bounds.CODE), "the farm's node code (regulators)"),
        Param("unit", schemas.text(bounds.CODE), "one plot, pen or herd"),
        *PAGING,
    ),
    responses={200: ok("InputRecords")},
)
async def list_inputs(request: web.Request) -> web.Response:
    principal = await require(request, "device", "regulator", "admin")
    limit, offset = paging(request)
    items = await farm.list_inputs(
        request.app[DATABASE],
        principal,
        params.text(request, "node", bounds.CODE),
        params.text(request, "unit", bounds.CODE),
        limit,
        offset,
    )
    return json_response({"items": items, "limit": limit, "offset": offset})
