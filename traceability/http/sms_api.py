"""The SMS webhook: an SMS gateway posts each text a shopper sends, and gets back the one message to reply.

``POST /api/v1/sms/inbound`` takes the two forms gateways use, form-encoded (``from=…&content=…``) or
JSON (``{"from": "…", "content": "…"}``), with the gateway's shared secret in the ``X-SMS-Secret``
header (compared in constant time; a wrong one counts as a failed credential check from that address).
The answer is the reply's text (``text/plain``), or, asked for with ``Accept: application/json``,
the reply with what it found (:func:`traceability.services.sms.answer`).

Off unless ``TRACE_SMS_SECRET`` is set: then every request gets 404, so an unconfigured server never
answers anyone. Each sender may send :data:`~traceability.domain.sms.SENDER_BURST` texts at once and
then one every :data:`~traceability.domain.sms.SENDER_INTERVAL` seconds; past that, 429 and no reply,
so a flood (or two auto-responders answering each other) costs no messages. The counts are kept per
server process under a keyed hash of the number; logs show the number masked (``138****5678``) and
never the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aiohttp import web

from traceability import errors
from traceability.domain import limits, sms
from traceability.http.api import json_response, read_json
from traceability.http.auth import source
from traceability.http.keys import DATABASE, FEDERATION, LIMITS, SETTINGS
from traceability.http.openapi import Param, Response, operation
from traceability.logging import get_logger
from traceability.services import sms as sms_service

log = get_logger(__name__)
routes = web.RouteTableDef()
SENDERS = web.AppKey("sms_senders", limits.Buckets)
HEADER = "X-SMS-Secret"
MAX_BODY = 8192
SENDER_FIELDS = ("from", "mobile", "phone", "sender")
TEXT_FIELDS = ("content", "text", "msg", "message")
IGNORED_FIELDS = ("to", "id", "msgid", "time", "timestamp")
"""What gateways send beside the sender and the text (the number texted, the message's id and time): read
and not used. Any other field is refused (422 naming it), as everywhere in this API."""
FIELDS = (*SENDER_FIELDS, *TEXT_FIELDS, "lang", *IGNORED_FIELDS)


class _TextOrJson(Response):
    """The reply as text, or as JSON when asked for."""

    def as_json(self) -> dict[str, Any]:
        out = Response.as_json(self)
        out["content"]["application/json"] = {"schema": REPLY_SCHEMA}
        return out


REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["reply", "lang", "outcome", "traceCode", "state", "length", "limit"],
    "properties": {
        "reply": {"type": "string", "description": "the message to send back"},
        "lang": {"enum": ["zh", "en"]},
        "outcome": {"enum": ["verdict", "syncing", "elsewhere", "unknown", "invalid", "help"]},
        "traceCode": {"type": ["string", "null"]},
        "state": {"enum": ["ok", "recalled", "on_hold", "expired", None]},
        "length": {"type": "integer", "description": "characters (UCS-2) or septets (GSM 7-bit) of one message"},
        "limit": {"type": "integer", "description": "70 (UCS-2) or 160 (GSM 7-bit), less TRACE_SMS_RESERVE"},
    },
}
_FIELD = {"type": "string", "maxLength": sms.MAX_TEXT}
BODY: dict[str, Any] = {
    "type": "object",
    "description": f"the sender as one of {', '.join(SENDER_FIELDS)}; the text as one of {', '.join(TEXT_FIELDS)}",
    "properties": {name: _FIELD for name in FIELDS} | {"lang": {"enum": ["zh", "en"]}},
    "additionalProperties": False,
}


def setup(app: web.Application) -> None:
    """The webhook's route and its per-sender limit."""
    app[SENDERS] = limits.Buckets(1 / sms.SENDER_INTERVAL, sms.SENDER_BURST)
    app.add_routes(routes)


@routes.post("/api/v1/sms/inbound")
@operation(
    "An SMS gateway's inbound text: the reply (verdict, product, origin, stall) in one message",
    tags=("read",),
    query=(Param("format", {"enum": ["json"]}, "the reply with what was found, as JSON"),),
    body=BODY,
    body_type="application/x-www-form-urlencoded",
    description=(
        f"Off (404) unless TRACE_SMS_SECRET is set; the gateway sends it in the {HEADER} header. "
        "Form-encoded or JSON bodies. A sender past its limit gets 429 and no reply."
    ),
    responses={200: _TextOrJson("the reply", {"type": "string"}, media_type="text/plain")},
)
async def inbound(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.sms_secret is None:
        raise errors.NotFound("no SMS gateway is configured on this server")
    await _check_secret(request, settings.sms_secret)
    fields = await _fields(request)
    number = sms.sender_number(_one(fields, SENDER_FIELDS, "from"))
    if number is None:
        raise errors.InvalidField("from: must be a phone number (digits, an optional leading +)", field="from")
    text = _one(fields, TEXT_FIELDS, "content")
    lang = fields.get("lang")
    if lang not in (None, "zh", "en"):
        raise errors.InvalidField("lang: must be zh or en", field="lang")
    key = hmac.new(settings.sms_secret.encode(), number.encode(), hashlib.sha256).hexdigest()[:32]
    wait = request.app[SENDERS].take(key, time.monotonic())
    if wait > 0:
        log.warning("sms.limited", sender=sms.mask(number), retry_after=limits.retry_after(wait))
        raise errors.TooManyRequests(
            f"this sender sent too many texts; nothing is sent back for {limits.retry_after(wait)} s", retry_after=wait
        )
    found = await sms_service.answer(request.app[DATABASE], text, lang, request.app[FEDERATION], settings.sms_reserve)
    log.info(
        "sms.answered",
        sender=sms.mask(number),
        outcome=found["outcome"],
        trace_code=found["traceCode"],
        lang=found["lang"],
        length=found["length"],
    )
    headers = {"Cache-Control": "no-store"}
    if request.query.get("format") == "json" or request.headers.get("Accept", "").startswith("application/json"):
        return json_response(found, headers=headers)
    return web.Response(text=found["reply"], content_type="text/plain", charset="utf-8", headers=headers)


async def _check_secret(request: web.Request, secret: str) -> None:
    """The gateway's secret, in constant time; a wrong or missing one is a failed credential check."""
    guard = request.app[LIMITS].credentials
    guard.check(source(request))
    given = request.headers.get(HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode()):
        await guard.failed(request.app[DATABASE], source(request))
        raise errors.Unauthorized(f"send the SMS gateway's shared secret in the {HEADER} header")


async def _fields(request: web.Request) -> dict[str, str]:
    """The posted fields, form-encoded or JSON, each a bounded string; unknown fields refused."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.PayloadTooLarge(f"an inbound text is at most {MAX_BODY} bytes")
    kind = request.content_type
    if kind == "application/json":
        data = await read_json(request)
        if not isinstance(data, dict):
            raise errors.InvalidJSON('send one JSON object: {"from": …, "content": …}')
        pairs = list(data.items())
    elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        pairs = list(form.items())
    else:
        raise errors.BadRequest("send the text form-encoded (from=…&content=…) or as JSON")
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in FIELDS:
            raise errors.InvalidField(f"{name[:40]}: unknown field; send {', '.join(FIELDS)}", field=name[:40])
        if isinstance(value, int) and not isinstance(value, bool) and name not in TEXT_FIELDS:
            value = str(value)  # JSON gateways send the number, an id or a Unix time as a number
        if not isinstance(value, str):
            raise errors.InvalidField(f"{name}: must be text", field=name)
        if name in fields:
            raise errors.InvalidField(f"{name}: sent twice", field=name)
        if len(value) > sms.MAX_TEXT:
            raise errors.InvalidField(f"{name}: must be at most {sms.MAX_TEXT} characters", field=name)
        fields[name] = value
    return fields


def _one(fields: dict[str, str], names: tuple[str, ...], field: str) -> str:
    """The one field of ``names`` that was sent (``from`` or ``mobile``, …)."""
    sent = [n for n in names if fields.get(n, "").strip()]
    if not sent:
        raise errors.InvalidField(f"{field}: is required (or one of {', '.join(names[1:])})", field=field)
    if len(sent) > 1:
        raise errors.InvalidField(f"{field}: send one of {', '.join(names)}, not {' and '.join(sent)}", field=field)
    return fields[sent[0]]
