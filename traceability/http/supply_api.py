"""Supply-chain routes: transformations, trace backward and forward, recalls, anomalies, credit ratings."""

from __future__ import annotations

from aiohttp import web

from traceability import errors, i18n
from traceability.domain import bounds
from traceability.http import params, schemas
from traceability.http.api import json_response, paging, read_json
from traceability.http.audit import audit
from traceability.http.auth import optional_principal, require, require_capture
from traceability.http.keys import DATABASE, FEDERATION, LOG, SETTINGS
from traceability.http.metrics import METRICS
from traceability.http.openapi import PAGING, TRACE_CODE_PATH, Param, ok, operation
from traceability.services import analyzer, credit, federated_recall, federated_trace, genealogy, history, sales
from traceability.services import recall_notices as recall_notice

routes = web.RouteTableDef()
OVERSIGHT = ("regulator", "admin")


@routes.post("/api/v1/transformations")
@operation(
    "Split, merge or repack batches: outputs get their own trace codes, linked to their inputs",
    tags=("capture",),
    auth=("bearer",),
    body=schemas.ref("Transformation"),
    responses={201: ok("Transformed"), 200: ok("Transformed", "a replay of a transformation already recorded")},
)
async def transform(request: web.Request) -> web.Response:
    device = await require_capture(request)
    result = await genealogy.transform(
        request.app[DATABASE], device, await read_json(request), request.app[SETTINGS].public_url
    )
    request.app[METRICS].captured("transformation", 0 if result["replayed"] else 1, 1 if result["replayed"] else 0)
    return json_response(result, status=200 if result["replayed"] else 201)


@routes.post("/api/v1/sales")
@operation(
    "Sell from a batch with a receipt code: the receipt is a new batch, a child of the batch it was cut from",
    tags=("capture",),
    auth=("bearer",),
    body=schemas.ref("Sale"),
    responses={201: ok("Sold"), 200: ok("Sold", "a replay of a sale already recorded")},
)
async def sell(request: web.Request) -> web.Response:
    device = await require_capture(request)
    sold = await sales.sell(request.app[DATABASE], device, await read_json(request), request.app[SETTINGS].public_url)
    request.app[METRICS].captured("sale", 0 if sold.replayed else 2, 2 if sold.replayed else 0)
    return json_response(sold.as_json(), status=200 if sold.replayed else 201)


@routes.get("/api/v1/batches/{trace_code}/trace")
@operation(
    "Trace a batch backward to its origins (anyone) or forward to everywhere it went (regulators)",
    tags=("supply",),
    path=(TRACE_CODE_PATH,),
    query=(Param("direction", {"enum": ["backward", "forward"], "default": "backward"}),),
    responses={200: ok("Trace")},
)
async def trace(request: web.Request) -> web.Response:
    code = history.valid_code(request.match_info["trace_code"])
    direction = params.text(request, "direction", 20) or "backward"
    app = request.app
    if (signed := request.headers.get(federated_trace.HEADER)) is not None:
        # Another member ledger continuing its trace here: what this ledger recorded, asking no one further.
        member = federated_trace.member_request(app[FEDERATION], signed, request.method, request.path_qs)
        result = await genealogy.trace(app[DATABASE], code, direction)
        audit(request, member, "trace", code, direction=direction, via="member")
        return json_response(result, headers={"Cache-Control": "private, no-cache"})
    viewer = await optional_principal(request)
    oversight = viewer is not None and viewer.role in OVERSIGHT
    if direction == "forward" and not oversight:
        raise errors.Forbidden("tracing forward to every buyer is for regulators")
    result = await federated_trace.trace_across(
        app[DATABASE], app[LOG], app[FEDERATION], code, direction, public=not oversight
    )
    if oversight and viewer is not None:
        audit(request, viewer, "trace", code, direction=direction, via="api")
    return json_response(result, headers={"Cache-Control": "private, no-cache"})


@routes.post("/api/v1/recalls")
@operation(
    "Recall a batch and everything made from it",
    tags=("supply",),
    auth=("bearer",),
    body=schemas.ref("RecallRequest"),
    responses={201: ok("Recall"), 200: ok("Recall", "the same recall issued before (a resent request): nothing new")},
)
async def issue_recall(request: web.Request) -> web.Response:
    regulator = await require(request, *OVERSIGHT)
    app = request.app
    result = await genealogy.recall(app[DATABASE], regulator, await read_json(request))
    audit(request, regulator, "recall", result["trace_code"], level=result["level"], batches=len(result["batches"]))
    # Batches it reached that went to other member ledgers: each of those gets the home ledger's signed notice.
    result["notices"] = await federated_recall.send_notices(app[DATABASE], app[LOG], app[FEDERATION], result)
    return json_response(result, status=200 if result["replayed"] else 201)


@routes.get("/api/v1/recalls")
@operation("Recalls, newest first (public)", tags=("supply",), query=PAGING, responses={200: ok("RecallList")})
async def recalls(request: web.Request) -> web.Response:
    """Public: the recalls, each naming the authority that issued it (oversight also sees the account)."""
    limit, offset = paging(request)
    viewer = await optional_principal(request)
    oversight = viewer is not None and viewer.role in OVERSIGHT
    items = await genealogy.list_recalls(request.app[DATABASE], limit, offset, oversight=oversight)
    return json_response({"recalls": items})


RECALL_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "a recall's id", where="path")


@routes.get("/api/v1/recalls/notices")
@operation(
    "The recalls that reach the caller's enterprise, newest first, each with its acknowledgement (if any)",
    tags=("supply",),
    auth=("bearer",),
    query=PAGING,
    responses={200: ok("RecallNotices")},
)
async def recall_notices(request: web.Request) -> web.Response:
    enterprise = await require(request, "enterprise")
    limit, offset = paging(request)
    items = await recall_notice.notices(request.app[DATABASE], enterprise, limit, offset)
    return json_response({"notices": items}, headers={"Cache-Control": "private, no-cache"})


@routes.post("/api/v1/recalls/{id}/acknowledge")
@operation(
    "The caller's enterprise acknowledges a recall that reaches it (once: a second acknowledgement answers the first)",
    tags=("supply",),
    auth=("bearer",),
    path=(RECALL_ID,),
    responses={
        201: ok("RecallAcknowledgement"),
        200: ok("RecallAcknowledgement", "acknowledged before: the first acknowledgement, nothing new"),
    },
)
async def acknowledge_recall(request: web.Request) -> web.Response:
    enterprise = await require(request, "enterprise")
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise errors.InvalidField("id: a recall's number", field="id")
    answer, created = await recall_notice.acknowledge(request.app[DATABASE], enterprise, int(raw))
    return json_response(answer, status=201 if created else 200)


@routes.get("/api/v1/anomalies")
@operation(
    "Anomalies the analyzer found (an enterprise's credential reads its own)",
    tags=("supply",),
    auth=("bearer",),
    query=(
        Param("kind", schemas.text(40)),
        Param("node", schemas.text(40)),
        Param("enterprise", schemas.text(18)),
        Param("trace_code", schemas.text(40)),
        Param("since", schemas.TIME),
        Param("until", schemas.TIME),
        *PAGING,
    ),
    responses={200: ok("Anomalies")},
)
async def anomalies(request: web.Request) -> web.Response:
    viewer = await require(request, *OVERSIGHT, "enterprise")
    limit, offset = paging(request)
    enterprise = params.text(request, "enterprise", 18)
    if viewer.role == "enterprise":  # an enterprise reads its own: what it received, what it was flagged for
        enterprise = viewer.uscc or ""
    kind = params.text(request, "kind", 40)
    if kind is not None and kind not in analyzer.KINDS:
        raise errors.InvalidField(f"kind must be one of: {', '.join(analyzer.KINDS)}", field="kind")
    items = await analyzer.list_anomalies(
        request.app[DATABASE],
        kind=kind,
        node=params.text(request, "node", bounds.CODE),
        enterprise=enterprise,
        trace_code=params.text(request, "trace_code", 40),
        since=params.moment(request, "since"),
        until=params.moment(request, "until"),
        limit=limit,
        offset=offset,
    )
    return json_response({"anomalies": items, "kinds": {k: i18n.name_fields("anomaly", k) for k in analyzer.KINDS}})


@routes.get("/api/v1/enterprises")
@operation(
    "Every enterprise's credit rating", tags=("supply",), auth=("bearer",), query=PAGING, responses={200: ok("Ratings")}
)
async def enterprises(request: web.Request) -> web.Response:
    await require(request, *OVERSIGHT)
    limit, offset = paging(request)
    return json_response({"enterprises": await credit.ratings(request.app[DATABASE], limit, offset)})


@routes.get("/api/v1/enterprises/{uscc}/credit")
@operation(
    "An enterprise's credit rating with its factors and history (public)",
    tags=("supply",),
    path=(Param("uscc", {"type": "string", "maxLength": 18}, where="path"),),
    responses={200: ok("Credit")},
)
async def enterprise_credit(request: web.Request) -> web.Response:
    """Public: credit ratings are food-safety information the city plans publish."""
    return json_response(await credit.rating(request.app[DATABASE], request.match_info["uscc"]))


@routes.get("/api/v1/packages/{code}")
@operation(
    "Where a case, box or unit sits in the packaging hierarchy",
    tags=("supply",),
    path=(Param("code", {"type": "string", "maxLength": 40}, where="path"),),
    responses={200: ok("Package")},
)
async def package(request: web.Request) -> web.Response:
    """The drug packaging hierarchy around a code: the packages it is inside, and what it contains."""
    return json_response(await analyzer.find_package(request.app[DATABASE], request.match_info["code"]))
