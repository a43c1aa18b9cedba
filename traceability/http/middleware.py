"""Request context, the one log line per request, and the one error renderer (run by :mod:`.pipeline`).

Errors under ``/api/`` and on every page's JSON twin (``?format=json`` or ``Accept: application/json``)
are JSON ``{"error": {"code", "message", "request_id", "field"}}``; elsewhere a short bilingual HTML page.
A 500 never shows a traceback or SQL.
"""

from __future__ import annotations

import html
import itertools
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from multidict import istr

from traceability import errors, i18n
from traceability import logging as logging_context
from traceability.epcis import binding
from traceability.logging import get_logger

log = get_logger("traceability.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
ACTOR = web.RequestKey("actor", str)
_SAFE_ID = re.compile(r"[A-Za-z0-9\-_.]{8,64}")
X_REQUEST_ID = istr("X-Request-ID")
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNT = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes and restarts: 64 random bits chosen when the process starts,
    then a counter (a fresh random id per request cost more than the rest of this middleware)."""
    return f"{_ID_PREFIX}{next(_ID_COUNT):016x}"


# aiohttp's own HTTP errors, mapped onto our codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def asks_for_json(request: web.Request) -> bool:
    """Whether the answer (an error too) is JSON: the API, health, and every page's JSON twin."""
    if request.path.startswith("/api/") or request.path == "/healthz":
        return True
    return request.query.get("format") == "json" or request.headers.get("Accept", "").startswith("application/json")


def error_body(code: str, message: str, request_id: str, field: str | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "request_id": request_id, "field": field}})


def _render(
    request: web.Request, status: int, code: str, message: str, field: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    rid = request.get(REQUEST_ID, "")
    if request.path == "/epcis" or request.path.startswith("/epcis/"):
        return epcis_problem(status, code, message, rid, field, headers)
    if asks_for_json(request) or request.path == "/metrics":
        return web.Response(
            status=status, body=error_body(code, message, rid, field), content_type="application/json", headers=headers
        )
    zh, en = i18n.words("zh"), i18n.words("en")
    title = "error_not_found" if status == 404 else "error_title"
    # No inline styles: the Content-Security-Policy allows only our own stylesheet.
    page = (
        "<!doctype html><html lang=zh-CN><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<link rel=stylesheet href='/static/app.css'>"
        f"<title>{zh(title)} · {en(title)}</title>"
        "<body><main><section class=card>"
        f"<h1>{zh(title)} <small lang=en>{en(title)}</small></h1>"
        f"<p>{html.escape(message)}</p><p><a href='/'>{i18n.say('back_home')}</a></p>"
        f"<p class='muted small'>{zh('request_id')} {en('request_id')}: {html.escape(rid)}</p>"
        "</section></main></body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html", headers=headers)


def epcis_problem(
    status: int, code: str, message: str, rid: str, field: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    """An error under /epcis in the REST binding's shape (:mod:`traceability.epcis.binding`)."""
    body = binding.problem(status, code, message, field=field, request_id=rid)
    return web.Response(
        status=body["status"],
        body=orjson.dumps(body),
        content_type="application/problem+json",
        headers={**binding.HEADERS, **(headers or {})},
    )


def begin(request: web.Request) -> str:
    """Bind the request's id (the client's when it is safe to echo, else a new one) for its log lines."""
    incoming = request.headers.get(X_REQUEST_ID)
    rid = incoming if incoming is not None and _SAFE_ID.fullmatch(incoming) else new_request_id()
    request[REQUEST_ID] = rid
    # Set before the handler, so reading it back never misses: a missing key costs an exception.
    request[ACTOR] = "public"
    logging_context.REQUEST_ID.set(rid)
    return rid


def error_response(request: web.Request, exc: Exception) -> web.Response:
    """The answer for what a handler raised (called from its ``except``); a redirect is raised again."""
    if isinstance(exc, errors.TraceError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return _render(request, exc.status, exc.code, exc.message, exc.field, headers or None)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason
        if exc.status == 413:
            message = "the request body is larger than this server accepts"
        return _render(request, exc.status, code, message, None)
    log.exception("request.failed", method=request.method, path=request.path)
    return _render(request, 500, "internal_error", "something went wrong on our side; it has been logged", None)


def finish(request: web.Request, start: float, status: int) -> None:
    """The request's one log line; its id no longer the current one."""
    if log.is_enabled_for(logging.INFO):  # the line's fields cost more than the rest when it is filtered out
        route = request.match_info.route.resource
        log.info(
            "request.handled",
            method=request.method,
            route=route.canonical if route is not None else request.path,
            status=status,
            duration_ms=round((time.perf_counter() - start) * 1000, 2),
            actor=request[ACTOR],
        )
    logging_context.REQUEST_ID.set(None)
