"""The provincial deployment's server: province-wide search, trace and anomalies over the members' copies,
replication lag and verification per member, in its console (``/province``), its API and ``/metrics``.

Read-only: no route writes a member's records (they arrive by logical replication only). Everything but
``/healthz`` needs the province's credential (``province-token`` in the data directory): as a bearer
credential for the API and ``/metrics`` (or a client in ``TRACE_METRICS_ALLOW``), or through the console's
sign-in form, which keeps it in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from traceability import errors
from traceability.config import Settings
from traceability.domain.federation import Federation
from traceability.http import params
from traceability.http.api import json_response
from traceability.http.keys import SETTINGS
from traceability.http.middleware import Handler
from traceability.http.openapi import TRACE_CODE_PATH, Param, Response, document, ok, operation
from traceability.http.pages import language, render
from traceability.services import history
from traceability.services.province import Province, open_province
from traceability.storage.database import database_url

routes = web.RouteTableDef()
PROVINCE = web.AppKey("province", Province)
TOKEN = web.AppKey("province_token", str)
COOKIE = "province"
MAX_QUERY = 64
QUERY = Param("q", {"type": "string", "minLength": 1, "maxLength": MAX_QUERY}, "code prefix, product or node name")
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "at most this many (default 50)")


def _known(request: web.Request, *names: str) -> None:
    unknown = sorted(set(request.query) - {*names, "lang", "format"})
    if unknown:
        raise errors.InvalidField(f"{unknown[0]}: unknown query parameter", field=unknown[0])


def _signed_in(request: web.Request) -> bool:
    token = request.app[TOKEN]
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _require(request: web.Request) -> None:
    if not _signed_in(request):
        raise errors.Unauthorized("the province's credential is needed (province-token in its data directory)")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.TraceError as exc:
        return render.json_error(request, exc)


@routes.get("/healthz")
@operation("The province server is up", tags=("province",), responses={200: ok()})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/api/v1/province/members")
@operation(
    "Every member ledger: subscribed or not, replication lag (seconds, WAL bytes), the largest checkpoint its "
    "copy was verified against, and the first fault found",
    tags=("province",),
    auth=("bearer",),
    responses={200: ok()},
)
async def members(request: web.Request) -> web.Response:
    _require(request)
    _known(request)
    province = request.app[PROVINCE]
    counts = await province.counts()
    listed = [dict(m, **counts.get(m["origin"], {})) for m in province.members()]
    return json_response({"members": listed}, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/province/search")
@operation(
    "Batches in every member ledger whose code starts with q, or whose product or node name contains it",
    tags=("province",),
    auth=("bearer",),
    query=(QUERY, LIMIT),
    responses={200: ok()},
)
async def search(request: web.Request) -> web.Response:
    _require(request)
    _known(request, "q", "limit")
    text = params.text(request, "q", MAX_QUERY)
    if text is None:
        raise errors.InvalidField("q: is required", field="q")
    found = await request.app[PROVINCE].search(text, params.whole(request, "limit", 50, lo=1, hi=200))
    return json_response({"batches": found}, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/province/trace/{trace_code}")
@operation(
    "A batch across the member ledgers: every member's part, backward (what it was made from) and forward (what "
    "was made from it), and where a recall of it is issued (its home ledger)",
    tags=("province",),
    auth=("bearer",),
    path=(TRACE_CODE_PATH,),
    responses={200: ok()},
)
async def trace(request: web.Request) -> web.Response:
    _require(request)
    _known(request)
    code = history.valid_code(request.match_info["trace_code"])
    return json_response(await request.app[PROVINCE].trace(code), headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/province/anomalies")
@operation(
    "The newest anomalies the member ledgers found, merged",
    tags=("province",),
    auth=("bearer",),
    query=(LIMIT,),
    responses={200: ok()},
)
async def anomalies(request: web.Request) -> web.Response:
    _require(request)
    _known(request, "limit")
    found = await request.app[PROVINCE].anomalies(params.whole(request, "limit", 50, lo=1, hi=200))
    return json_response({"anomalies": found}, headers={"Cache-Control": "no-store"})


@routes.get("/metrics")
@operation(
    "Prometheus metrics: replication lag and verification per member",
    tags=("province",),
    auth=("bearer",),
    responses={200: Response("the Prometheus text format", {"type": "string"}, media_type="text/plain")},
)
async def metrics(request: web.Request) -> web.Response:
    import ipaddress

    allow = request.app[SETTINGS].metrics_allow
    remote = ipaddress.ip_address(request.remote) if request.remote else None
    if not (remote is not None and any(remote in net for net in allow)):
        _require(request)
    registry = CollectorRegistry()

    def gauge(name: str, text: str) -> Gauge:
        return Gauge(f"trace_province_{name}", text, ["member"], registry=registry)

    lag = gauge("replication_lag_seconds", "at most this far behind the member")
    lag_bytes = gauge("replication_lag_bytes", "WAL the member wrote that the province has not received")
    verified = gauge("verified_size", "largest checkpoint the copy was verified against")
    ok_ = gauge("copy_verified", "1 while the copy has no fault")
    up = gauge("member_reachable", "1 when the member answered the last lag check")
    for m in request.app[PROVINCE].members():
        origin = m["origin"]
        if m["lag_seconds"] is not None:
            lag.labels(origin).set(m["lag_seconds"])
        if m["lag_bytes"] is not None:
            lag_bytes.labels(origin).set(m["lag_bytes"])
        verified.labels(origin).set(m["verified_size"])
        ok_.labels(origin).set(1 if m["verified"] else 0)
        up.labels(origin).set(0 if (m["lag_problem"] or "").startswith("member_unreachable") else 1)
    return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")


# -- the console ------------------------------------------------------------------------------------


@routes.get("/province")
@operation(
    "The province's console: members (lag, verification), search, anomalies",
    tags=("province",),
    auth=("session",),
    query=(Param("q", QUERY.schema, QUERY.description),),
    responses={200: Response("the page", {"type": "string"}, media_type="text/html")},
)
async def console(request: web.Request) -> web.Response:
    if not _signed_in(request):
        return render.render(request, "province/sign_in.html", {"error": None}, status=401)
    _known(request, "q")
    province = request.app[PROVINCE]
    text = params.text(request, "q", MAX_QUERY)
    found = await province.search(text, 50) if text else None
    counts = await province.counts()
    listed = [dict(m, **counts.get(m["origin"], {})) for m in province.members()]
    context = {"members": listed, "q": text or "", "found": found, "anomalies": await province.anomalies(20)}
    return render.render(request, "province/console.html", context, headers={"Cache-Control": "no-store"})


@routes.post("/province/sign-in")
@operation(
    "Sign in to the province's console with its credential (a form field `token`)",
    tags=("province",),
    responses={303: Response("to the console"), 401: Response("the form again")},
)
async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not hmac.compare_digest(token.strip().encode(), request.app[TOKEN].encode()):
        t = language.choose(request)
        return render.render(request, "province/sign_in.html", {"error": t("province_wrong_token")}, status=401)
    response = web.HTTPSeeOther("/province")
    response.set_cookie(
        COOKIE, token.strip(), httponly=True, samesite="Strict", path="/", secure=render.secure(request)
    )
    raise response


@routes.get("/province/trace/{trace_code}")
@operation(
    "A batch across the member ledgers, as a page",
    tags=("province",),
    auth=("session",),
    path=(TRACE_CODE_PATH,),
    responses={200: Response("the page", {"type": "string"}, media_type="text/html")},
)
async def trace_page(request: web.Request) -> web.Response:
    if not _signed_in(request):
        return render.render(request, "province/sign_in.html", {"error": None}, status=401)
    _known(request)
    code = history.valid_code(request.match_info["trace_code"])
    return render.render(request, "province/trace.html", {"trace": await request.app[PROVINCE].trace(code)})


@routes.get("/openapi.json")
@operation("This server's OpenAPI document", tags=("province",), responses={200: ok()})
async def openapi(request: web.Request) -> web.Response:
    return json_response(document(request.app, title="traceability province"))


def create_province_app(settings: Settings, federation: Federation, token: str) -> web.Application:
    app = web.Application(middlewares=[errors_as_json, params.bounded_input], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[TOKEN] = token
    app.add_routes(routes)
    render.setup(app)

    async def province(app: web.Application) -> AsyncIterator[None]:
        url = await database_url(settings)
        async with open_province(url, federation, settings.pool_size) as opened:
            app[PROVINCE] = opened
            await opened.measure()
            await opened.verify()
            stop = asyncio.Event()
            watch = asyncio.create_task(opened.watch(stop))
            yield
            stop.set()
            await watch

    app.cleanup_ctx.append(province)
    return app
