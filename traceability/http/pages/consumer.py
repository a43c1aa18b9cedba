"""The consumer's pages: the page a receipt's QR code opens (``/t/{code}``) and the code lookup (``/``, ``/t``).

Public, cacheable by ETag (the batch's chain head and the language), and readable without JavaScript;
the verified badge is checked on the phone itself by ``verify.js`` from the canonical bytes on the page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from traceability import errors, i18n
from traceability.domain import tracecode
from traceability.http import schemas
from traceability.http.keys import DATABASE, FEDERATION
from traceability.http.openapi import Param, Response, declare, page
from traceability.http.pages import language
from traceability.http.pages.render import PageRoutes, answer, self_url, wants_json
from traceability.services import history
from traceability.services.views import consumer as views
from traceability.services.views import packages, verdict

routes = PageRoutes()
LINKS = {"lookup": "/t/{trace_code}", "console": "/console", "vendor": "/vendor", "api": "/api/v1"}
CACHE = {"Cache-Control": "public, max-age=0, must-revalidate"}
CODE = Param("code", {"type": "string", "maxLength": 64}, "a trace code", where="path")
UNIT = Param("unit", schemas.text(64), "a drug box or unit code (药品追溯码) of this lot: was it dispensed?")


@routes.get("/")
@declare(page("Type a trace code (kiosks, receipts without a camera)"))
async def home(request: web.Request) -> web.Response:
    return await _lookup(request, LINKS, language.choose(request))


@routes.get("/t")
@declare(
    page(
        "A typed trace code or drug box code (full-width digits too): its page (303), or the lookup naming the problem",
        query=(Param("code", schemas.text(64)),),
    )
)
async def lookup(request: web.Request) -> web.StreamResponse:
    t = language.choose(request)
    raw = request.query.get("code", "").strip()[:64]
    try:
        code = history.valid_code(packages.typed_digits(raw))
    except errors.InvalidTraceCode as exc:
        unit = await packages.find_unit(request.app[DATABASE], raw) if raw else None
        if unit is not None:
            raise web.HTTPSeeOther(f"/t/{unit['trace_code']}?unit={unit['code']}") from None
        return await _lookup(request, exc, t, code=raw, problem=_code_problem(raw, t) if raw else None)
    raise web.HTTPSeeOther(f"/t/{code}")


@routes.get("/t/{code}")
@declare(
    page(
        "The page a QR code opens: product, origin, journey, inspections, recall banner, verified badge",
        path=(CODE,),
        query=(UNIT,),
        more={
            301: Response("the code as typed, with spaces, dashes or full-width digits: its page"),
            302: Response("a code whose home is another member ledger, unknown here: its page there"),
            303: Response("a drug box or unit code: its lot's page"),
            304: Response("not modified"),
        },
    )
)
async def consumer(request: web.Request) -> web.StreamResponse:
    """The page a QR code opens: what it is, where it came from, whether it is recalled, and a verified badge."""
    t = language.choose(request)
    raw = request.match_info["code"][:64]
    db = request.app[DATABASE]
    try:
        code = history.valid_code(packages.typed_digits(raw))
    except errors.InvalidTraceCode as exc:
        await _to_lot(request, raw)
        return await _lookup(request, exc, t, code=raw, problem=_code_problem(raw, t))
    if code != raw:
        raise web.HTTPMovedPermanently(self_url(request).replace(request.path, f"/t/{code}", 1))
    unit = None
    if "unit" in request.query:
        unit = await packages.find_unit(db, request.query["unit"][:64])
        unit = (
            unit
            if unit is not None and unit["trace_code"] == code
            else {"code": request.query["unit"][:64], "trace_code": None, "dispensed": None}
        )
    head = await history.head_etag(db, code, None)
    # The verdict changes with the chain and with the day (an expiry); the unit line is not cached at all.
    day = verdict.today().isoformat()
    tag = (
        None if head is None or unit is not None else f'{head[:-1]}-{day}-{"json" if wants_json(request) else t.lang}"'
    )
    if tag is not None and tag in {x.strip() for x in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers={"ETag": tag, **CACHE})
    try:
        record, _ = await views.consumer_record(db, code)
    except errors.NotFound as exc:
        home = request.app[FEDERATION].elsewhere(code)
        if home is not None:  # another city's code that never came here: its own ledger answers
            query = f"?{request.query_string}" if request.query_string else ""
            raise web.HTTPFound(f"{home.url}/t/{code}{query}") from None
        lease = await views.find_lease(db, code)
        if lease is None:
            await _to_lot(request, code)  # a drug code whose own check digit happens to fit ours
            return await _lookup(request, exc, t, code=code, unknown=True)
        # Leased to a stall whose station has not uploaded yet: say whose it is, and not to cache that.
        syncing = {"trace_code": code, "syncing": True, "lease": lease}
        context = {"code": code, "lease": lease}
        return await answer(request, syncing, "syncing.html", context, t=t, headers={"Cache-Control": "no-cache"})
    if unit is not None:
        record = {**record, "unit": unit}
    context = {"r": record, "b": record["batch"], "v": record["verdict"]}
    headers = {"ETag": tag, **CACHE} if tag else {"Cache-Control": "no-cache"}
    return await answer(request, record, "batch.html", context, t=t, headers=headers)


async def _to_lot(request: web.Request, raw: str) -> None:
    """A drug box or unit code typed where a trace code goes: on to its lot's page, naming the box."""
    unit = await packages.find_unit(request.app[DATABASE], raw)
    if unit is not None:
        raise web.HTTPSeeOther(f"/t/{unit['trace_code']}?unit={unit['code']}")


async def _lookup(
    request: web.Request,
    data: Any,
    t: i18n.Words,
    *,
    code: str = "",
    problem: str | None = None,
    unknown: bool = False,
) -> web.Response:
    """The lookup form: the home page, or the answer to a code that is malformed or unknown."""
    context = {"code": code, "problem": problem, "unknown": unknown}
    return await answer(request, data, "lookup.html", context, t=t)


def _code_problem(raw: str, t: i18n.Words) -> str:
    """A specific reason a typed code is not a trace code, in the reader's language."""
    code = packages.typed_digits(raw)
    if not code.isascii() or not code.isdigit():
        return t("code_chars")
    if len(code) != tracecode.LENGTH:
        return t("digits", n=len(code))
    return t("check_bad")
