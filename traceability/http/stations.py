"""Scanner station routes: enrolment, keys, code leases, signed uploads, goods, stall cards, and who holds a
leased code."""

from __future__ import annotations

from aiohttp import web

from traceability import errors
from traceability.domain import stations as station_format
from traceability.domain.access import Principal
from traceability.domain.stations import SignedRequest
from traceability.http import params, schemas
from traceability.http.api import DEVICE_ID, json_response, paging, read_json
from traceability.http.auth import STATION_SIGNATURE, require, require_capture, signed_request
from traceability.http.keys import DATABASE, FEDERATION, SETTINGS
from traceability.http.metrics import METRICS
from traceability.http.openapi import PAGING, TRACE_CODE_PATH, Param, ok, operation
from traceability.http.pages.qr import qr_svg
from traceability.services import accounts, operations, registry, stations

routes = web.RouteTableDef()
_NO_STORE = {"Cache-Control": "no-store"}


async def _signed(request: web.Request, capture: bool = False) -> tuple[Principal, SignedRequest, int]:
    principal = await (require_capture(request) if capture else require(request, "device"))
    found = request.get(STATION_SIGNATURE)
    if found is None:
        raise errors.Unauthorized("this needs a station's signed request (Authorization: Signature …)")
    return principal, found[0], found[1]


# -- administrators --------------------------------------------------------------------------------


@routes.post(r"/api/v1/admin/devices/{id:\d+}/enrolment")
@operation(
    "Issue a one-time enrolment code for a station (valid 24 hours)",
    tags=("stations",),
    auth=("bearer",),
    path=(DEVICE_ID,),
    responses={201: ok("Enrolment")},
)
async def create_enrolment(request: web.Request) -> web.Response:
    await require(request, "admin")
    created = await stations.create_enrolment(request.app[DATABASE], params.path_id(request))
    # What the station's barcode gun scans (the console shows it as a QR code): server and code together.
    created["qr"] = station_format.enrolment_payload(request.app[SETTINGS].public_url, created["code"])
    created["qrSvg"] = qr_svg(created["qr"])  # to show or print for the station's barcode gun
    return json_response(created, status=201, headers=_NO_STORE)


@routes.get(r"/api/v1/admin/devices/{id:\d+}/keys")
@operation(
    "A device's station keys",
    tags=("stations",),
    auth=("bearer",),
    path=(DEVICE_ID,),
    responses={200: ok("StationKeys")},
)
async def list_keys(request: web.Request) -> web.Response:
    await require(request, "admin", "regulator")
    return json_response({"items": await stations.list_keys(request.app[DATABASE], params.path_id(request))})


@routes.post(r"/api/v1/admin/devices/{id:\d+}/revoke-keys")
@operation(
    "Revoke every key of a station",
    tags=("stations",),
    auth=("bearer",),
    path=(DEVICE_ID,),
    responses={200: ok("Revoked")},
)
async def revoke_station(request: web.Request) -> web.Response:
    await require(request, "admin")
    return json_response(await stations.revoke_station(request.app[DATABASE], params.path_id(request)))


@routes.post(r"/api/v1/admin/station-keys/{key_id:st_[0-9a-f]{32}}/revoke")
@operation("Revoke one station key", tags=("stations",), auth=("bearer",), responses={200: ok("Revoked")})
async def revoke_key(request: web.Request) -> web.Response:
    await require(request, "admin")
    return json_response(await stations.revoke_key(request.app[DATABASE], request.match_info["key_id"]))


@routes.get(r"/api/v1/admin/events/{event_id}/signatures")
@operation(
    "Every signed upload that carried an event, each signature verified again",
    tags=("stations",),
    auth=("bearer",),
    path=(Param("event_id", schemas.UUID, where="path"),),
    responses={200: ok("Signatures")},
)
async def event_signatures(request: web.Request) -> web.Response:
    await require(request, "admin", "regulator")
    items = await stations.event_signatures(request.app[DATABASE], params.path_uuid(request, "event_id"))
    return json_response({"items": items})


# -- stations --------------------------------------------------------------------------------------


@routes.post("/api/v1/stations/enrol")
@operation(
    "Bind a station's new public key to its device with a one-time code (signed by the new key)",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("EnrolRequest"),
    responses={201: ok("Station")},
)
async def enrol(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization", "")
    scheme, _, params = header.partition(" ")
    signed = await signed_request(request, params) if scheme.lower() == "signature" else None
    enrolled = await stations.enrol(request.app[DATABASE], await read_json(request), signed)
    enrolled["publicUrl"] = request.app[SETTINGS].public_url
    return json_response(enrolled, status=201)


@routes.get("/api/v1/stations/me")
@operation(
    "What the server knows about the calling station",
    tags=("stations",),
    auth=("signature",),
    responses={200: ok("Station")},
)
async def me(request: web.Request) -> web.Response:
    _principal, signed, _key = await _signed(request)
    described = await stations.describe_station(request.app[DATABASE], signed)
    described["publicUrl"] = request.app[SETTINGS].public_url
    return json_response(described)


@routes.post("/api/v1/stations/keys")
@operation(
    "Replace the calling station's key",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("KeyRotation"),
    responses={201: ok("Revoked")},
)
async def rotate_key(request: web.Request) -> web.Response:
    principal, signed, key_pk = await _signed(request)
    rotated = await stations.rotate_key(request.app[DATABASE], principal, key_pk, signed, await read_json(request))
    return json_response(rotated, status=201)


@routes.post("/api/v1/stations/leases")
@operation(
    "Lease blocks of trace codes to issue offline",
    tags=("stations",),
    auth=("bearer", "signature"),
    body=schemas.ref("LeaseRequest"),
    responses={201: ok("Leases")},
)
async def lease_codes(request: web.Request) -> web.Response:
    principal = await require(request, "device")
    leased = await stations.lease_codes(request.app[DATABASE], principal, await read_json(request))
    return json_response(leased, status=201)


@routes.post("/api/v1/stations/batches")
@operation(
    "Open a batch from a signed upload (usually with a leased code)",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("BatchOpening"),
    responses={201: ok("Opened"), 200: ok("Opened", "a replay")},
)
async def open_batch(request: web.Request) -> web.Response:
    principal, signed, key_pk = await _signed(request, capture=True)
    opened = await stations.open_signed(
        request.app[DATABASE], principal, key_pk, signed, await read_json(request), request.app[SETTINGS].public_url
    )
    replayed = int(opened.receipt.replayed)
    request.app[METRICS].captured("station", 1 - replayed, replayed)
    return json_response(opened.as_json(), status=200 if opened.receipt.replayed else 201)


@routes.post("/api/v1/stations/sales")
@operation(
    "Record a sale from a signed upload: the receipt (usually a leased code) opened as a child of its source",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("Sale"),
    responses={201: ok("Sold"), 200: ok("Sold", "a replay")},
)
async def sell(request: web.Request) -> web.Response:
    principal, signed, key_pk = await _signed(request, capture=True)
    sold = await stations.sell_signed(
        request.app[DATABASE], principal, key_pk, signed, await read_json(request), request.app[SETTINGS].public_url
    )
    request.app[METRICS].captured("station", 0 if sold.replayed else 2, 2 if sold.replayed else 0)
    return json_response(sold.as_json(), status=200 if sold.replayed else 201)


@routes.post("/api/v1/stations/handovers")
@operation(
    "Receive goods from another member ledger with their handover voucher, from a signed upload kept with it",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("Handover"),
    responses={201: ok("HandoverAnswer"), 200: ok("HandoverAnswer", "a replay")},
)
async def receive_handover(request: web.Request) -> web.Response:
    """A station that scanned a voucher's QR code (offline, maybe) uploads the receipt with it."""
    principal, signed, key_pk = await _signed(request, capture=True)
    answer = await stations.receive_signed(
        request.app[DATABASE],
        request.app[FEDERATION],
        principal,
        key_pk,
        signed,
        await read_json(request),
        request.app[SETTINGS].max_events_per_request,
    )
    return json_response(answer, status=200 if answer["replayed"] else 201)


@routes.post("/api/v1/stations/events")
@operation(
    "Capture events from a signed upload; the upload is kept with them",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("Capture"),
    responses={201: ok("CaptureAnswer"), 200: ok("CaptureAnswer", "every event was a replay")},
)
async def capture_events(request: web.Request) -> web.Response:
    principal, signed, key_pk = await _signed(request, capture=True)
    receipts, is_list = await stations.capture_signed(
        request.app[DATABASE],
        principal,
        key_pk,
        signed,
        await read_json(request),
        request.app[SETTINGS].max_events_per_request,
    )
    replayed = sum(r.replayed for r in receipts)
    request.app[METRICS].captured("station", len(receipts) - replayed, replayed)
    status = 200 if all(r.replayed for r in receipts) else 201
    if is_list:
        return json_response({"receipts": [r.as_json() for r in receipts]}, status=status)
    return json_response(receipts[0].as_json(), status=status)


@routes.get("/api/v1/stations/products")
@operation(
    "Registered products by name, pinyin initials or goods code, for a station's picker",
    tags=("stations",),
    auth=("bearer", "signature"),
    query=(Param("q", schemas.text(100), "what was typed"), *PAGING),
    responses={200: ok("Products")},
)
async def find_products(request: web.Request) -> web.Response:
    await require(request, "device")
    limit, offset = paging(request)
    found = await registry.find_products(
        request.app[DATABASE], params.text(request, "q") or "", limit=limit, offset=offset
    )
    return json_response(found, headers={"Cache-Control": "private, max-age=60"})


@routes.post("/api/v1/stations/vendor-card")
@operation(
    "Issue the stall card the vendor page signs in with (replaces the stall's earlier card)",
    tags=("stations",),
    auth=("signature",),
    body=schemas.ref("VendorCardRequest"),
    responses={201: ok("VendorCard")},
)
async def issue_vendor_card(request: web.Request) -> web.Response:
    principal, _signed_request, _key = await _signed(request)
    issued = await accounts.issue_vendor_card(request.app[DATABASE], principal, await read_json(request))
    return json_response(issued, status=201, headers=_NO_STORE)


@routes.post("/api/v1/stations/heartbeat")
@operation("A station reports its upload queue", tags=("stations",), auth=("signature",),
           body=schemas.ref("StationReport"), responses={200: ok("StationReportAck")})  # fmt: skip
async def heartbeat(request: web.Request) -> web.Response:
    """A station reports its upload queue: ``pending``, ``oldestPendingAge`` (seconds), ``codesLeft``."""
    principal, _signed_request, _key = await _signed(request)
    return json_response(await operations.report_station(request.app[DATABASE], principal, await read_json(request)))


# -- the public ------------------------------------------------------------------------------------


@routes.get("/api/v1/codes/{trace_code}/lease")
@operation(
    "Which station holds a leased code (before its records arrive)",
    tags=("stations",),
    path=(TRACE_CODE_PATH,),
    responses={200: ok("Lease")},
)
async def find_lease(request: web.Request) -> web.Response:
    lease = await stations.find_lease(request.app[DATABASE], request.match_info["trace_code"])
    if lease is None:
        raise errors.NotFound("no station holds this code: it was issued by the server or never leased")
    return json_response(lease, headers={"Cache-Control": "public, max-age=60"})
