"""The market's query terminal (查询终端): ``/kiosk``, full screen, for a touch screen and a barcode gun.

One page: the start screen (scan or type a code on the large keypad), or, with ``?code=``, what the code
finds, verdict first (the consumer page's verdict, product, origin and stall, from
:func:`traceability.services.views.query.find`), with a QR code that opens the code's full page on the
shopper's phone. The code field keeps the focus, so a barcode gun plugged in as a keyboard types into
it and its Enter looks the code up; a receipt's QR code read by a 2D gun (a URL ending in
``/t/{code}``) works too. After ``idle`` seconds untouched (60; ``?idle=`` sets it, 5 to 600) the page
goes back to the start, in Chinese, so the next shopper never sees the last one's goods or language.
``kiosk.js`` drives the keypad and the idle timer; without it the field and the gun still work.
Everything comes from this server (the pages' Content-Security-Policy allows nothing else): no web fonts, no CDNs.
"""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from traceability import i18n
from traceability.http import params, schemas
from traceability.http.keys import DATABASE, FEDERATION, SETTINGS
from traceability.http.openapi import Param, declare, page
from traceability.http.pages import language
from traceability.http.pages.qr import qr_svg
from traceability.http.pages.render import PageRoutes, answer
from traceability.services.views import query

routes = PageRoutes()
IDLE = 60
"""Seconds untouched before the terminal goes back to its start screen."""
IDLE_RANGE = (5, 600)
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9")


@routes.get("/kiosk")
@declare(
    page(
        "The market's query terminal: a large keypad, the verdict first, a QR code to go on on a phone",
        query=(
            Param(
                "code", schemas.text(64), "a trace code or drug box code, typed, scanned or read from a receipt's QR"
            ),
            Param(
                "idle",
                {"type": "integer", "minimum": IDLE_RANGE[0], "maximum": IDLE_RANGE[1]},
                "seconds untouched before the start screen comes back (60)",
            ),
        ),
    )
)
async def kiosk(request: web.Request) -> web.Response:
    t = language.choose(request)
    idle = params.whole(request, "idle", IDLE, lo=IDLE_RANGE[0], hi=IDLE_RANGE[1])
    raw = (params.text(request, "code", 64) or "").strip()
    digits = query.typed(raw) if raw else ""
    found = await query.find(request.app[DATABASE], digits, request.app[FEDERATION]) if digits else None
    code = found.code if found is not None and found.outcome in ("verdict", "syncing") else None
    phone_url = f"{request.app[SETTINGS].public_url}/t/{code}" if code else None
    if found is not None and found.home is not None:  # another city's code: the phone asks its own ledger
        phone_url = found.home["url"]
    context = {
        "found": found,
        "typed": raw,
        "digits": digits,
        "idle": idle,
        "idle_set": "idle" in request.query,
        "keys": KEYS,
        "default_lang": i18n.DEFAULT,  # where the idle timer goes back to: the next shopper starts in Chinese
        "phone_url": phone_url,
        "qr": Markup(qr_svg(phone_url)) if phone_url else None,  # noqa: S704 - drawn by qrcode from our own URL
    }
    data = {"idle": idle, **(found.as_json() if found is not None else {"outcome": "start"})}
    return await answer(request, data, "kiosk.html", context, t=t, headers={"Cache-Control": "no-store"})
