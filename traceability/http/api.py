"""JSON API routes under /api/v1."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from traceability import errors
from traceability.domain import bounds
from traceability.http import compression, params, reads, schemas
from traceability.http.audit import audit
from traceability.http.auth import optional_principal, require, require_capture
from traceability.http.keys import APPENDS, DATABASE, FEDERATION, PRINCIPALS, RENDERED, SETTINGS, VIEWS
from traceability.http.metrics import METRICS
from traceability.http.openapi import PAGING, TRACE_CODE_PATH, Operation, Param, Response, ok, operation
from traceability.services import capture, federation, history, registry

routes = web.RouteTableDef()
OPENAPI = web.AppKey("openapi", bytes)
"""The document, serialised once the app's routes are all added (:func:`traceability.http.app.create_app`)."""
DEVICE_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": bounds.INT64_MAX}, "a device id", where="path")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


async def read_json(request: web.Request) -> Any:
    body = await request.read()
    if not body:
        raise errors.InvalidJSON("the request has no body; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidJSON(f"the body is not valid JSON: {exc}") from None


def paging(request: web.Request) -> tuple[int, int]:
    """``limit`` (1-1000, default 100) and ``offset`` (0 up to a 64-bit integer) from the query string."""
    return params.paging(request)


@routes.get("/healthz")
@operation("Whether the server and its database answer", tags=("operations",), responses={200: ok("Health")})
async def healthz(request: web.Request) -> web.Response:
    await request.app[DATABASE].ping()
    return json_response({"status": "ok"})


@routes.get("/api/v1/openapi.json")
@operation(
    "This document: the OpenAPI 3.1 description of the native API",
    tags=("operations",),
    responses={200: Response("OpenAPI 3.1", {"type": "object"})},
)
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[OPENAPI], content_type="application/json", headers={"Cache-Control": "public, max-age=300"}
    )


# -- registry (administrators) --------------------------------------------------------------------

_REGISTER = {
    "enterprises": registry.register_enterprise,
    "nodes": registry.register_node,
    "operators": registry.register_operator,
    "products": registry.register_product,
    "devices": registry.register_device,
}


@routes.post("/api/v1/admin/{kind:enterprises|nodes|operators|products|devices}")
@operation(
    variants={
        kind: Operation(
            f"Register one of the {kind}",
            ("registry",),
            {201: ok("Registered", "registered; a device's answer carries its credential, shown once")},
            auth=("bearer",),
            body=schemas.ref(component),
        )
        for kind, component in (
            ("enterprises", "Enterprise"),
            ("nodes", "Node"),
            ("operators", "Operator"),
            ("products", "Product"),
            ("devices", "Device"),
        )
    }
)
async def register(request: web.Request) -> web.Response:
    await require(request, "admin")
    created = await _REGISTER[request.match_info["kind"]](request.app[DATABASE], await read_json(request))
    headers = {"Cache-Control": "no-store"} if request.match_info["kind"] == "devices" else None
    return json_response(created, status=201, headers=headers)


@routes.get("/api/v1/admin/{kind:enterprises|nodes|operators|products|devices}")
@operation(
    "List registered enterprises, nodes, operators, products or devices",
    tags=("registry",),
    auth=("bearer",),
    query=(Param("key", schemas.text(100), "filter by USCC, node code or goods code"), *PAGING),
    responses={200: ok("RegisteredList")},
)
async def list_registered(request: web.Request) -> web.Response:
    await require(request, "admin", "regulator")
    limit, offset = paging(request)
    items = await registry.list_registered(
        request.app[DATABASE], request.match_info["kind"], key=params.text(request, "key"), limit=limit, offset=offset
    )
    return json_response({"items": items, "limit": limit, "offset": offset})


@routes.post(r"/api/v1/admin/devices/{id:\d+}/revoke")
@operation(
    "Revoke a device's credential",
    tags=("registry",),
    auth=("bearer",),
    path=(DEVICE_ID,),
    responses={200: ok("Revoked")},
)
async def revoke_device(request: web.Request) -> web.Response:
    await require(request, "admin")
    device_id = params.path_id(request)
    await registry.revoke_device(request.app[DATABASE], device_id)
    request.app[PRINCIPALS].clear()
    return json_response({"revoked": device_id})


# -- batches and events (scanners) ----------------------------------------------------------------


@routes.post("/api/v1/batches")
@operation(
    "Open a batch: issue its trace code and record its opening as the first event",
    tags=("capture",),
    auth=("bearer",),
    body=schemas.ref("BatchOpening"),
    responses={201: ok("Opened"), 200: ok("Opened", "a replay of an opening already recorded")},
)
async def open_batch(request: web.Request) -> web.Response:
    device = await require_capture(request)
    opened = await capture.open_batch(
        request.app[DATABASE], device, await read_json(request), request.app[SETTINGS].public_url
    )
    replayed = int(opened.receipt.replayed)
    request.app[METRICS].captured("api", 1 - replayed, replayed)
    return json_response(opened.as_json(), status=200 if opened.receipt.replayed else 201)


@routes.post("/api/v1/events")
@operation(
    "Capture one event, or a list of up to 1,000, all or nothing",
    tags=("capture",),
    auth=("bearer",),
    body=schemas.ref("Capture"),
    responses={201: ok("CaptureAnswer"), 200: ok("CaptureAnswer", "every event was a replay")},
)
async def capture_events(request: web.Request) -> web.Response:
    device = await require_capture(request)
    settings = request.app[SETTINGS]
    receipts, is_list = await capture.capture_events(
        request.app[DATABASE],
        device,
        await read_json(request),
        settings.max_events_per_request,
        appends=request.app[APPENDS],
    )
    replayed = sum(r.replayed for r in receipts)
    request.app[METRICS].captured("api", len(receipts) - replayed, replayed)
    status = 200 if all(r.replayed for r in receipts) else 201
    answer = json_response(
        {"receipts": [r.as_json() for r in receipts]} if is_list else receipts[0].as_json(), status=status
    )
    # Receipts are mostly hex: gzip (in a thread past 4 KB) cost 10-15% of a capture's CPU (see compression.PLAIN).
    answer[compression.PLAIN] = True
    return answer


@routes.get("/api/v1/batches/{trace_code}")
@operation(
    "A batch's history: public view, or full for regulators and the enterprises involved",
    tags=("read",),
    path=(TRACE_CODE_PATH,),
    responses={
        200: ok("BatchView", headers={"ETag": "the chain head"}),
        304: Response("not modified"),
        307: ok(description="the code's home is another member ledger and it never came here: there"),
    },
)
async def read_batch(request: web.Request) -> web.StreamResponse:
    code = history.valid_code(request.match_info["trace_code"])
    viewer = await optional_principal(request)
    # The public view may come from a read replica; a credential's view reads the primary (its own writes).
    db = reads.public(request) if viewer is None else request.app[DATABASE]
    cache = {
        "Cache-Control": "public, max-age=0, must-revalidate" if viewer is None else "private, no-cache",
        "Vary": "Authorization",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match:
        tag = await history.head_etag(db, code, viewer, request.app[VIEWS])
        if tag is not None and tag in {t.strip() for t in if_none_match.split(",")}:
            return web.Response(status=304, headers={"ETag": tag, **cache})
    try:
        view, tag = await history.read_batch(db, code, viewer, request.app[VIEWS])
    except errors.NotFound:
        home = request.app[FEDERATION].elsewhere(code)
        if home is None:
            raise
        there = federation.pointer(home, f"/api/v1/batches/{code}")
        return json_response({"home": there}, status=307, headers={"Location": there["url"]})
    if viewer is not None and view.get("view") in ("full", "partial"):
        audit(request, viewer, "view", code, view=view["view"], via="api")
    if viewer is not None:
        return json_response(view, headers={"ETag": tag, **cache})
    # The public view is the same bytes for everyone until its ETag changes: kept encoded, plain and gzip,
    # so a QR code scanned by a crowd costs neither a JSON encoding nor a compression per request.
    rendered = request.app[RENDERED]
    key = ("api-batch", code, tag)
    if (kept := rendered.get(key)) is None:
        kept = compression.Kept.of(json_response(view, headers={"ETag": tag, **cache}))
        rendered.put(key, kept)
    return kept.response(request)


@routes.get("/api/v1/identifiers")
@operation(
    "Find the batch a GS1 lot, drug code or other identifier names",
    tags=("read",),
    query=(
        Param("scheme", {"enum": ["gs1", "drug_code", "city_batch", "enterprise"]}, required=True),
        Param("value", schemas.text(64)),
        Param("gtin", {"type": "string", "pattern": "^[0-9]{8,14}$"}),
        Param("lot", schemas.text(20)),
    ),
    responses={200: ok("Identifier")},
)
async def find_identifier(request: web.Request) -> web.Response:
    scheme = params.text(request, "scheme", 20) or ""
    if scheme == "gs1":
        value = f"{(params.text(request, 'gtin', 14) or '').zfill(14)}/{params.text(request, 'lot', 20) or ''}"
    else:
        value = params.text(request, "value", 64) or ""
    if not scheme or not value:
        raise errors.InvalidField("give scheme and value (or scheme=gs1 with gtin and lot)", field="scheme")
    code = await history.find_by_identifier(request.app[DATABASE], scheme, value)
    return json_response({"trace_code": code, "url": f"{request.app[SETTINGS].public_url}/t/{code}"})
