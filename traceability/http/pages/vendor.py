"""The vendor page (``/vendor``): a stall without a station records receiving and selling from a phone.

The stall signs in with its stall card (the QR code its station printed: the camera, a photo of it, or a
barcode gun typing it) and the six-digit PIN the vendor chose at the station; never a pasted credential.
It types or scans a trace code the same ways and gets the receipt with the QR code that opens the
consumer page. The code field accepts what a station accepts (:mod:`traceability.domain.scans`), and any GS1
identifier a batch carries (a Digital Link, an EPC URN, a GS1 element string), looked up in the identifier table.

A sale or a receipt that must not happen is refused before anything is recorded, in the vendor's
language, saying what to do: a recalled batch, one on hold after a failed test, one past its use-by
date. Every other refusal is explained from its error code, with the server's own words beside it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from aiohttp import web
from markupsafe import Markup

from traceability import errors
from traceability.domain import images, limits, stations
from traceability.domain.fields import BEIJING
from traceability.http.auth import source
from traceability.http.keys import DATABASE, LIMITS, SETTINGS, VIEWS
from traceability.http.openapi import Param, declare, page
from traceability.http.pages import language, sessions
from traceability.http.pages.qr import qr_svg
from traceability.http.pages.render import NO_STORE, PageRoutes, answer, twin, wants_json
from traceability.services import accounts, capture, epcis_query, history, sales
from traceability.services.accounts import WebSession
from traceability.services.views import batch as batch_views

routes = PageRoutes()
SESSION = ("session",)
CSRF_ONLY = {"type": "object", "properties": {"csrf": {"type": "string"}}, "required": ["csrf"]}
MAX_PHOTO_BYTES = 8 * 1024 * 1024


async def vendor_session(request: web.Request) -> WebSession:
    return await sessions.require(request, sessions.VENDOR_COOKIE, "vendor", "/vendor/login")


@routes.get("/vendor/login")
@declare(page("The vendor page's sign-in form (the stall card and its PIN)"))
async def vendor_login_form(request: web.Request) -> web.Response:
    if await sessions.current(request, sessions.VENDOR_COOKIE, "vendor") is not None:
        raise web.HTTPSeeOther("/vendor")
    return sessions.login_page(request, "vendor/login.html")


@routes.post("/vendor/login")
@declare(
    page(
        "Sign in with the stall card (typed, scanned or photographed) and its PIN",
        form={
            "type": "object",
            "properties": {
                "csrf": {"type": "string"},
                "card": {"type": "string"},
                "pin": {"type": "string"},
                "photo": {"type": "string", "contentEncoding": "binary"},
            },
            "required": ["csrf", "pin"],
        },
        form_type="multipart/form-data",
    )
)
async def vendor_login(request: web.Request) -> web.Response:
    form = await sessions.read_form(request)
    sessions.check_pre_csrf(request, form)
    t = language.choose(request)
    pin = str(form.get("pin", "")).strip()[:20]
    lim, db = request.app[LIMITS], request.app[DATABASE]
    try:
        lim.take(lim.sign_in, source(request), "sign-in")
        lim.credentials.check(source(request))
        card = _card_from_form(str(form.get("card", "")).strip()[:200], form.get("photo"))
        try:
            opened = await accounts.sign_in_vendor_card(db, card, pin, request.remote)
        except accounts.CardInvalid:
            await lim.credentials.failed(db, source(request))  # a wrong card counts like a wrong credential
            raise
    except errors.TooManyRequests as exc:  # a locked card, or too many attempts from here
        if isinstance(exc, accounts.LockedOut):
            message = t("pin_locked", minutes=exc.minutes)
        else:
            message = t("too_many", seconds=limits.retry_after(exc.retry_after or 1))
        page = sessions.login_page(request, "vendor/login.html", status=exc.status, error=message)
        page.headers["Retry-After"] = limits.retry_after(exc.retry_after or 1)
        return page
    except accounts.PinWrong as exc:
        return sessions.login_page(request, "vendor/login.html", status=exc.status, error=t("pin_wrong"))
    except (errors.Unauthorized, errors.InvalidField) as exc:
        return sessions.login_page(request, "vendor/login.html", status=exc.status, error=t("card_invalid"))
    response = web.HTTPSeeOther("/vendor")
    lifetime = int(accounts.VENDOR_SESSION_LIFETIME.total_seconds())
    sessions.set_cookie(response, request, sessions.VENDOR_COOKIE, opened.token, "/vendor", lifetime)
    raise response


@routes.post("/vendor/logout")
@declare(page("Sign out of the vendor page", auth=SESSION, form=CSRF_ONLY))
async def vendor_logout(request: web.Request) -> web.Response:
    session = await vendor_session(request)
    sessions.check_csrf(session, await sessions.read_form(request))
    await accounts.sign_out(request.app[DATABASE], request.cookies.get(sessions.VENDOR_COOKIE, ""))
    response = web.HTTPSeeOther("/vendor/login")
    response.del_cookie(sessions.VENDOR_COOKIE, path="/vendor")
    raise response


@routes.get("/vendor")
@declare(page("Record receiving or selling: by camera, photo or typing", auth=SESSION))
async def vendor_home(request: web.Request) -> web.StreamResponse:
    session = await vendor_session(request)
    p = session.principal
    device = {
        "device": p.id,
        "name": p.name,
        "node": p.node_code,
        "operator": p.operator_code,
        "record": "/vendor/record",
    }
    return await _record_page(request, session, device)


async def _record_page(
    request: web.Request, session: WebSession, data: Any, *, code: str = "", action: str = "sell"
) -> web.Response:
    """The recording form; after a refusal (``data`` is the error) with what was typed, why it was refused in
    the vendor's language and what to do, and the server's own words beside it."""
    error = detail = None
    if isinstance(data, errors.TraceError):
        error, detail = _explain(language.choose(request), data), data.message
    context = {"session": session, "error": error, "detail": detail, "code": code, "action": action}
    headers = dict(NO_STORE)
    if isinstance(data, errors.TraceError) and data.retry_after is not None:
        headers["Retry-After"] = limits.retry_after(data.retry_after)
    return await answer(request, data, "vendor/record.html", context, headers=headers)


class Refused(errors.Conflict):
    """A batch this stall must not sell or receive now (recalled, on hold, past its use-by date)."""

    code = "refused"

    def __init__(self, message: str, *, key: str, **values: Any) -> None:
        super().__init__(message, field="code")
        self.key = key
        self.values = values


def _explain(t: Any, exc: errors.TraceError) -> str:
    """Why the page refused, for the vendor: what happened and what to do."""
    if isinstance(exc, Refused):
        return str(t(exc.key, **exc.values))
    if isinstance(exc, errors.TooManyRequests):
        return str(t("too_many", seconds=limits.retry_after(exc.retry_after or 1)))
    text = exc.message.lower()
    if isinstance(exc, errors.Conflict) and "recalled" in text:
        return str(t("vendor_refused_recalled", since=""))
    if isinstance(exc, errors.Conflict) and "on hold" in text:
        return str(t("vendor_refused_held", since=""))
    key = {
        "not_found": "vendor_refused_unknown",
        "forbidden": "vendor_refused_forbidden",
        "invalid_trace_code": "vendor_refused_code",
    }.get(exc.code, "vendor_refused_code" if exc.field in ("code", "photo", "traceCode") else "vendor_refused_other")
    return str(t(key))


async def _check_before_recording(request: web.Request, code: str, action: str) -> None:
    """Refuse a recalled or held batch, and the sale of one past its use-by date, before anything is recorded."""
    try:
        view, _ = await history.read_batch(request.app[DATABASE], code, None, request.app[VIEWS])
    except errors.NotFound:
        return  # the capture says so, with the rest of its checks
    status = batch_views.batch_status(view)
    if status["state"] in ("recalled", "on_hold"):
        events = status["recalled"] or status["held"]
        since = str(events[0]["eventTime"] or "")[:10] if events else ""
        key = "vendor_refused_recalled" if status["state"] == "recalled" else "vendor_refused_held"
        raise Refused(f"code: batch {code} is {status['state'].replace('_', ' ')} since {since}", key=key, since=since)
    expires = view.get("expires_on")
    if action == "sell" and expires and date.fromisoformat(expires) < datetime.now(BEIJING).date():
        raise Refused(f"code: batch {code} expired on {expires}", key="vendor_refused_expired", date=expires)


@routes.post("/vendor/record")
@declare(
    page(
        "Record that this stall received or sold a batch",
        status=201,
        auth=SESSION,
        form={
            "type": "object",
            "properties": {
                "csrf": {"type": "string"},
                "action": {"enum": ["receive", "sell"]},
                "code": {"type": "string"},
                "weight": {"type": "string"},
                "photo": {"type": "string", "contentEncoding": "binary"},
            },
            "required": ["csrf"],
        },
        form_type="multipart/form-data",
    )
)
async def vendor_record(request: web.Request) -> web.StreamResponse:
    """Record that this stall received or sold a batch, then show its receipt QR code."""
    session = await vendor_session(request)
    form = await sessions.read_form(request)
    sessions.check_csrf(session, form)
    action = str(form.get("action", "sell"))
    typed = str(form.get("code", "")).strip()[:300]
    try:
        lim = request.app[LIMITS]
        p = session.principal  # the same bucket as the device's API requests
        lim.take(lim.capture, f"{p.kind}:{p.role}:{p.id}", "capture")
        if action not in ("receive", "sell"):
            raise errors.InvalidField("action must be receive or sell", field="action")
        code = await _code_from_form(request, typed, form.get("photo"))
        await _check_before_recording(request, code, action)
        event: dict[str, Any] = {
            "eventID": str(uuid.uuid4()),
            "traceCode": code,
            "bizStep": "receiving" if action == "receive" else "retail_selling",
            "disposition": "active" if action == "receive" else "retail_sold",
            "eventTime": datetime.now(BEIJING).isoformat(timespec="seconds"),
        }
        weight = str(form.get("weight", "")).strip()
        if weight:
            event["quantity"] = {"value": weight, "uom": "KGM"}
        if action == "sell" and weight:
            # A sale by weight gives the buyer a receipt code of its own, cut from the batch sold from.
            sale = {k: event[k] for k in ("eventID", "eventTime", "quantity")} | {"source": code}
            sold = await sales.sell(request.app[DATABASE], session.principal, sale, request.app[SETTINGS].public_url)
            receipts = [sold.receipt]
        else:
            receipts, _ = await capture.capture_events(
                request.app[DATABASE], session.principal, event, request.app[SETTINGS].max_events_per_request
            )
    except errors.TraceError as exc:
        return await _record_page(request, session, exc, code=typed, action=action)
    receipt = receipts[0]
    if wants_json(request):  # the page itself is a redirect to the receipt
        return twin(request, {**receipt.as_json(), "receipt": f"/vendor/receipt/{receipt.trace_code}"}, status=201)
    raise web.HTTPSeeOther(f"/vendor/receipt/{receipt.trace_code}?seq={receipt.seq}")


def _card_from_form(typed: str, photo: Any) -> str:
    """The stall card's text: scanned into the field (camera, barcode gun), else read from the photo."""
    if typed:
        return typed
    cards = [text for text in _photo_texts(photo) if stations.card_token(text) is not None]
    if not cards:
        raise accounts.CardInvalid("no stall card in the photo")
    return cards[0]


def _photo_texts(photo: Any) -> list[str]:
    if not (isinstance(photo, web.FileField) and photo.filename):
        return []
    data = photo.file.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise errors.InvalidField("photo: the photo is larger than 8 MB", field="photo")
    return images.decode_photo(data)


async def _code_from_form(request: web.Request, typed: str, photo: Any) -> str:
    """The trace code typed (or typed by a barcode gun), else the one in the photo."""
    if typed:
        return await _trace_code(request, typed)
    if isinstance(photo, web.FileField) and photo.filename:
        texts = _photo_texts(photo)
        if not texts:
            raise errors.InvalidField(
                "photo: no code found in the photo; try again closer, or type the code "
                "(照片中未找到条码，请靠近重拍或直接输入)",
                field="photo",
            )
        return await _trace_code(request, texts[0])
    raise errors.InvalidField("code: type or scan a trace code (请输入或扫描追溯码)", field="code")


async def _trace_code(request: web.Request, text: str) -> str:
    """A trace code from what a camera or a person gave: the code itself, a label's URL or Digital Link, or any
    GS1 identifier (Digital Link, EPC URN, element string) a batch carries."""
    return await epcis_query.trace_code_for_scan(request.app[DATABASE], text, request.app[SETTINGS].public_url)


@routes.get("/vendor/receipt/{code}")
@declare(
    page(
        "The receipt to show or print: the trace code and its QR code",
        auth=SESSION,
        path=(Param("code", {"type": "string", "maxLength": 64}, where="path"),),
    )
)
async def vendor_receipt(request: web.Request) -> web.StreamResponse:
    """The receipt to show the buyer or print: the trace code and the QR code that opens the consumer page."""
    session = await vendor_session(request)
    code = history.valid_code(request.match_info["code"])
    view, _ = await history.read_batch(request.app[DATABASE], code, None, request.app[VIEWS])
    url = f"{request.app[SETTINGS].public_url}/t/{code}"
    last = view["events"][-1] if view["events"] else None
    data = {
        "trace_code": code,
        "url": url,
        "product": view["product"],
        "events": len(view["events"]),
        "last": {k: last.get(k) for k in ("seq", "bizStep", "disposition", "eventTime")} if last else None,
    }

    async def page() -> dict[str, Any]:
        qr = Markup(qr_svg(url))  # noqa: S704 - SVG the qrcode library drew from our own URL
        return {"session": session, "d": data, "qr": qr}

    return await answer(request, data, "vendor/receipt.html", page, headers=NO_STORE)
