"""Federated ledgers: who the members are, and the handover vouchers that carry a batch from one to another."""

from __future__ import annotations

import asyncio

from aiohttp import web

from traceability.http import params, schemas
from traceability.http.api import json_response, read_json
from traceability.http.audit import audit
from traceability.http.auth import require, require_capture
from traceability.http.keys import DATABASE, FEDERATION, LOG, SETTINGS
from traceability.http.openapi import TRACE_CODE_PATH, Param, Response, ok, operation
from traceability.http.pages.voucher_sheet import voucher_pdf
from traceability.services import federated_recall, federation, handover, history

routes = web.RouteTableDef()
EVENT_PATH = Param("event_id", schemas.UUID, "the shipment's event id", where="path")
ISSUERS = ("device", "enterprise", "regulator", "admin")


@routes.get("/api/v1/federation")
@operation(
    "The member ledgers this ledger knows: origin, URL, area-code prefixes, pinned checkpoint key",
    tags=("federation",),
    responses={200: ok("Federation")},
)
async def members(request: web.Request) -> web.Response:
    return json_response(federation.describe(request.app[FEDERATION]), headers={"Cache-Control": "no-cache"})


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
    answer = await federated_recall.apply_notice(request.app[DATABASE], request.app[FEDERATION], note)
    return json_response(answer, status=200 if answer["replayed"] else 201)
