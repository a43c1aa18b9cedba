"""Federated ledgers: who the members are, and the handover vouchers that carry a batch from one to another."""

from __future__ import annotations

import asyncio

from aiohttp import web

from traceability import errors
from traceability.domain import bounds
from traceability.http import params, schemas
from traceability.http.api import json_response, read_json
from traceability.http.audit import audit
from traceability.http.auth import require, require_capture
from traceability.http.keys import DATABASE, FEDERATION, LOG, SETTINGS
from traceability.http.openapi import TRACE_CODE_PATH, Param, Response, ok, operation
from traceability.http.pages.voucher_sheet import voucher_pdf
from traceability.services import federated_recall, federation, handover, history, split_views

routes = web.RouteTableDef()
EVENT_PATH = Param("event_id", schemas.UUID, "the shipment's event id", where="path")
ISSUERS = ("device", "enterprise", "regulator", "admin")
WITNESSED = schemas.obj(
    {"own": schemas.STRING, "checkpoints": schemas.array(schemas.obj({"origin": schemas.STRING, "size": schemas.INT,
                                                                        "checkpoint": schemas.STRING}))}
)  # fmt: skip
OVERVIEW = schemas.obj(
    {"members": schemas.array(schemas.obj({"origin": schemas.STRING, "failures": schemas.INT})),
     "split_views": schemas.array(schemas.obj({"id": schemas.INT, "origin": schemas.STRING, "reason": schemas.STRING,
                                               "first_note": schemas.STRING, "second_note": schemas.STRING}))}
)  # fmt: skip
CLEARANCE = schemas.obj({"reason": schemas.text(500)}, closed=True)
CLEARED = schemas.obj({"id": schemas.INT, "origin": schemas.STRING, "cleared_at": schemas.STRING})
SPLIT_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": bounds.INT64_MAX}, "a split view", where="path")


@routes.get("/api/v1/federation")
@operation(
    "The member ledgers this ledger knows: origin, URL, area-code prefixes, pinned checkpoint key",
    tags=("federation",),
    responses={200: ok("Federation")},
)
async def members(request: web.Request) -> web.Response:
    return json_response(federation.describe(request.app[FEDERATION]), headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/federation/witnessed")
@operation(
    "For every other member, the largest checkpoint of it this ledger holds, with this ledger's cosignature "
    "(what members gossip; where a member collects its cosignatures)",
    tags=("federation",),
    responses={200: Response("the checkpoints held", WITNESSED)},
)
async def witnessed(request: web.Request) -> web.Response:
    body = await split_views.witnessed(request.app[DATABASE], request.app[FEDERATION])
    return json_response(body, headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/federation/witness")
@operation(
    "How witnessing each other member went last, and the split views proven, both signed notes of each",
    tags=("federation",),
    auth=("bearer",),
    responses={200: Response("each member's status, the split views", OVERVIEW)},
)
async def witness_overview(request: web.Request) -> web.Response:
    await require(request, "regulator", "admin")
    body = await split_views.overview(request.app[DATABASE], request.app[FEDERATION])
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.post(r"/api/v1/admin/federation/split-views/{id:\d+}/clear")
@operation(
    "Clear a split view once dealt with: the member's vouchers are taken again, its history starts again "
    "from the next checkpoint fetched from it (the evidence stays)",
    tags=("federation",),
    auth=("bearer",),
    path=(SPLIT_ID,),
    body=CLEARANCE,
    responses={200: Response("cleared", CLEARED)},
)
async def clear_split_view(request: web.Request) -> web.Response:
    principal = await require(request, "admin")
    split_id = params.path_id(request)
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) - {"reason"}:
        unknown = sorted(set(body) - {"reason"})[0] if isinstance(body, dict) else "body"
        raise errors.InvalidField(f"{unknown}: unknown field (known: reason)", field=unknown)
    reason = body.get("reason")
    problem = bounds.text_problem(reason, 500) if isinstance(reason, str) and reason.strip() else "required, a text"
    if problem is not None:
        raise errors.InvalidField(f"reason: {problem}", field="reason")
    assert isinstance(reason, str)
    return json_response(await split_views.clear(request.app[DATABASE], principal, split_id, reason))


async def _voucher(request: web.Request) -> dict[str, object]:
    principal = await require(request, *ISSUERS)
    code = history.valid_code(request.match_info["trace_code"])
    event_id = params.path_uuid(request, "event_id")
    app = request.app
    voucher = await handover.issue_voucher(app[DATABASE], app[LOG], app[FEDERATION], principal, code, event_id)
    if principal.role != "device":  # it opens the shipment's seal (its prices): kept in the access log
        fmt = "pdf" if request.path.endswith("/pdf") else "json"
        audit(request, principal, "export", code, format=f"voucher-{fmt}", event=event_id)
    return voucher


@routes.get("/api/v1/batches/{trace_code}/vouchers/{event_id}")
@operation(
    "The handover voucher of a shipment to a node of another member ledger (the shipper's, a regulator's); "
    "409 not_yet_logged with Retry-After until the shipment is in the log",
    tags=("federation",),
    auth=("bearer",),
    path=(TRACE_CODE_PATH, EVENT_PATH),
    responses={200: ok("Voucher")},
)
async def voucher(request: web.Request) -> web.Response:
    return json_response(await _voucher(request), headers={"Cache-Control": "private, no-cache"})


@routes.get("/api/v1/batches/{trace_code}/vouchers/{event_id}/pdf")
@operation(
    "The voucher to print and send with the goods (卡单同行): a PDF page with its QR code",
    tags=("federation",),
    auth=("bearer",),
    path=(TRACE_CODE_PATH, EVENT_PATH),
    responses={200: Response("an A5 PDF page", {"type": "string"}, media_type="application/pdf")},
)
async def voucher_sheet(request: web.Request) -> web.Response:
    v = await _voucher(request)
    url = f"{request.app[SETTINGS].public_url}/api/v1/batches/{v['trace_code']}/vouchers/{v['event_id']}"
    pdf = await asyncio.to_thread(voucher_pdf, v, url, handover.destination_of(v))
    name = f"voucher-{v['trace_code']}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-cache"},
    )


@routes.post("/api/v1/handovers")
@operation(
    "Receive goods shipped from another member ledger, with the shipment's voucher (verified before the receipt)",
    tags=("federation",),
    auth=("bearer", "signature"),
    body=schemas.ref("Handover"),
    responses={201: ok("HandoverAnswer"), 200: ok("HandoverAnswer", "a replay")},
)
async def receive(request: web.Request) -> web.Response:
    device = await require_capture(request)
    app = request.app
    answer = await handover.receive(
        app[DATABASE], app[FEDERATION], device, await read_json(request), app[SETTINGS].max_events_per_request
    )
    return json_response(answer, status=200 if answer["replayed"] else 201)


@routes.post("/api/v1/federation/recalls")
@operation(
    "A recall notice from a batch's home ledger (a trace-recall/v1 signed note): verified with that member's pinned "
    "key, then recorded as recalls of the batches received from it and of everything made from them here",
    tags=("federation",),
    auth=("signature",),
    body={"type": "string"},
    body_type="text/plain",
    responses={201: ok("NoticeAnswer"), 200: ok("NoticeAnswer", "the same notice again: nothing new")},
)
async def recall_notice(request: web.Request) -> web.Response:
    """The signature on the note is the credential: only the member it names, under its pinned key."""
    raw = await request.read()
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise federated_recall.refuse("malformed", detail="a signed note is UTF-8 text") from None
    app = request.app
    answer = await federated_recall.apply_notice(app[DATABASE], app[FEDERATION], note)
    # Goods this ledger passed on to a third member: the recall goes on there, under this ledger's signature.
    answer["notices"] = await federated_recall.pass_on(app[DATABASE], app[LOG], app[FEDERATION], answer)
    return json_response(answer, status=200 if answer["replayed"] else 201)
