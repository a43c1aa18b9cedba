"""The consumer's pages: the page a receipt's QR code opens (``/t/{code}``) and the code lookup (``/``, ``/t``).

Public, readable without JavaScript, and cached: the record by the version of everything it shows
(:mod:`traceability.services.views.page_cache`), the rendered page (compressed too) by that version and the
language, and in the browser by the same ETag. The verified badge is checked on the phone itself by
``verify.js`` from the canonical bytes on the page.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from traceability import errors, i18n
from traceability.domain import tracecode
from traceability.http import compression, reads, schemas
from traceability.http.keys import DATABASE, FEDERATION, PAGES, RENDERED
from traceability.http.openapi import Param, Response, declare, page
from traceability.http.pages import language
from traceability.http.pages.render import CSP, PageRoutes, answer, self_url, wants_json
from traceability.services import history
from traceability.services.views import consumer as views
from traceability.services.views import packages, page_cache, verdict

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
    if unit is not None:  # the unit line is not cached at all
        return await _unit_page(request, code, unit, t)
    try:
        # The page's record from a read replica when one is fresh (storage.replicas), else the primary.
        pages, fed = request.app[PAGES], request.app[FEDERATION]
        record, version = await reads.answer(request, lambda db: page_cache.consumer_page(db, code, pages, fed))
    except errors.NotFound as exc:
        return await _not_found(request, code, exc, t)
    as_json = wants_json(request)
    tag = f'"{version}-{"json" if as_json else t.lang}"'
    if tag in {x.strip() for x in request.headers.get("If-None-Match", "").split(",")}:
        # A browser merges a 304's headers into the page it kept: the page's policy, or its styles and
        # scripts would be refused on the second visit.
        policy = {} if as_json else {"Content-Security-Policy": CSP}
        return web.Response(status=304, headers={"ETag": tag, **CACHE, **policy})
    headers = {"ETag": tag, **CACHE}
    if as_json:
        # When the verdict was checked: now (the stamp that vouches for it was read just now).
        checked = {**record["verdict"], "checked_at": verdict.checked_now()}
        return await answer(request, {**record, "verdict": checked}, "batch.html", {}, t=t, headers=headers)
    rendered = request.app[RENDERED]
    # A QR code's plain URL is the page to keep rendered; a query (a language switch, a tracking tail) is not.
    key = (code, tag) if not request.query_string else None
    if key is not None and (kept := rendered.get(key)) is not None:
        return kept.response(request)
    response = await answer(request, record, "batch.html", _context(record), t=t, headers=headers)
    if key is not None and isinstance(response.body, bytes):
        kept = compression.Kept.of(response)
        rendered.put(key, kept)
        return kept.response(request)
    return response


async def _unit_page(request: web.Request, code: str, unit: dict[str, Any], t: i18n.Words) -> web.StreamResponse:
    """A lot's page opened from one of its boxes: says whether that box was dispensed; never cached."""
    db = request.app[DATABASE]
    try:
        record, _ = await views.consumer_record(db, code)
    except errors.NotFound as exc:
        return await _not_found(request, code, exc, t)
    record = {**record, "unit": unit}
    return await answer(request, record, "batch.html", _context(record), t=t, headers={"Cache-Control": "no-cache"})


def _context(record: dict[str, Any]) -> dict[str, Any]:
    ledger = {**page_ledger(record["ledger"]), "elsewhere": elsewhere_ledgers(record)}
    return {"r": record, "b": record["batch"], "v": record["verdict"], "ledger": ledger}


def page_ledger(ledger: dict[str, Any]) -> dict[str, Any]:
    """What ``verify.js`` checks, as small as it can travel: each record's canonical bytes as the UTF-8 text
    they are (it compresses; base64 only for bytes that are not UTF-8); the phone recomputes every chain
    hash from them and checks them all against the signed log with the compact proof bundle, one multiproof
    (docs/ledger.md, "Proof bundles"). The same for the records of the batches it came from that the journey
    shows (``upstream``: each such batch's chain up to its last record shown, whose proof is in the bundle)."""
    upstream = [
        {
            "trace_code": up["trace_code"],
            "chain_start": up["chain_start"],
            "last": up["last_event_id"],
            "events": _page_events(up["events"]),
        }
        for up in ledger.get("upstream", ())
    ]
    # One request proves them all: the batch's records, and the last shown record of each batch it came from.
    also = "".join(f"&event={up['last']}" for up in upstream)
    return {
        "trace_code": ledger["trace_code"],
        "events": _page_events(ledger["events"]),
        "chain_start": ledger.get("chain_start"),
        "upstream": upstream,
        "public_key_url": ledger["public_key_url"],
        "proofs_url": f"{ledger['proofs_url']}?form=compact{also}",
    }


def _page_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events = []
    for e in records:
        raw = base64.b64decode(e["canonical"])
        try:
            body = {"text": raw.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"canonical": e["canonical"]}
        # The stored chain hash's first 4 bytes: enough to tell a record edited in place (its stored hash no
        # longer fits its bytes) from a rewritten history; the inclusion proof checks the whole hash.
        events.append({"seq": e["seq"], "check": e["hash"][:8], **body})
    return events


def elsewhere_ledgers(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts recorded at other member ledgers as ``verify.js`` checks them: their records and proof bundles,
    with the key the federation file pins for their ledger (docs/federation.md)."""
    keys = ("trace_code", "origin", "name", "key", "events", "proofs", "joins", "chain_start")
    return [{k: part.get(k) for k in keys} for part in record.get("elsewhere", ())]


async def _not_found(request: web.Request, code: str, exc: errors.NotFound, t: i18n.Words) -> web.StreamResponse:
    home = request.app[FEDERATION].elsewhere(code)
    if home is not None:  # another city's code that never came here: its own ledger answers
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPFound(f"{home.url}/t/{code}{query}") from None
    lease = await views.find_lease(request.app[DATABASE], code)
    if lease is None:
        await _to_lot(request, code)  # a drug code whose own check digit happens to fit ours
        return await _lookup(request, exc, t, code=code, unknown=True)
    # Leased to a stall whose station has not uploaded yet: say whose it is, and not to cache that.
    syncing = {"trace_code": code, "syncing": True, "lease": lease}
    context = {"code": code, "lease": lease}
    return await answer(request, syncing, "syncing.html", context, t=t, headers={"Cache-Control": "no-cache"})


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
