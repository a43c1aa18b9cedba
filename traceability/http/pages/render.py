"""How every page answers: the page rendered from its template, or its JSON twin, through one helper.

A handler builds its view model (``traceability.services.views``) and calls :func:`answer`; the reader
gets the HTML page, or the same data as JSON with ``?format=json`` or ``Accept: application/json``. A
refusal goes through the same helper with the :class:`~traceability.errors.TraceError` as the data: the
twin is then the API's error body, and the page is shown again with the problem named. Routes are
registered on a :class:`PageRoutes` table, which returns the redirects a handler raises as responses.

Templates are Jinja2 with autoescaping on, so user-supplied text is always escaped. Pages send a strict
Content-Security-Policy: scripts and styles only from ``/static/``, whose files are served with a
content hash in their URL and cached for a year.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson
from aiohttp import web
from markupsafe import Markup

from traceability import errors, i18n
from traceability.config import ROOT
from traceability.domain import tracecode
from traceability.domain.fields import BEIJING
from traceability.http import compression
from traceability.http.api import json_response
from traceability.http.keys import SETTINGS
from traceability.http.middleware import REQUEST_ID, error_body
from traceability.http.pages import language, sheets
from traceability.services.views.tables import TableOf

TEMPLATES = web.AppKey("templates", jinja2.Environment)
STATIC_VERSIONS = web.AppKey("static_versions", dict)
WEB_ROOT = ROOT / "web"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Context = Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]]
"""A page's template context, or an async function that builds it when only the page (not the twin) needs it."""


# -- set-up ---------------------------------------------------------------------------------------


class PageRoutes:
    """A route table for pages: ``@routes.get(path)``, ``@routes.post(path)``; ``app.add_routes(routes.table)``.

    A redirect a handler raises (``web.HTTPSeeOther``) is returned as a response, so the request log sees it.
    """

    def __init__(self) -> None:
        self.table = web.RouteTableDef()

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._route("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._route("POST", path)

    def _route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def wrapped(request: web.Request) -> web.StreamResponse:
                try:
                    return await handler(request)
                except web.HTTPRedirection as exc:
                    headers = {"Location": str(exc.location)} if isinstance(exc, web.HTTPMove) else None
                    response = web.Response(status=exc.status, headers=headers)
                    for name, morsel in exc.cookies.items():
                        response.cookies[name] = morsel
                    return response

            self.table.route(method, path)(wrapped)
            return handler

        return register


def setup(app: web.Application) -> None:
    """The templates and the static files (``/static/``, cached by content hash) on ``app``."""
    app[TEMPLATES] = _environment(WEB_ROOT / "templates")
    static = compression.StaticFiles(WEB_ROOT / "static")
    app[STATIC_VERSIONS] = static.versions()
    app.router.add_get("/static/{name}", static.handle, name="static")


def _environment(path: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = local_time
    env.filters["day"] = local_day
    env.filters["pretty_code"] = tracecode.pretty
    env.filters["unit"] = unit_name
    env.filters["doc_type"] = doc_type
    env.filters["script_json"] = script_json
    return env


# -- formatting -----------------------------------------------------------------------------------


def _parse_time(value: str | None, offset: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    tz = BEIJING
    if offset:
        try:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = offset[1:].split(":")
            tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except (ValueError, IndexError):
            tz = BEIJING
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(tz)


def local_time(value: str | None, offset: str | None = None) -> str:
    """``2026-11-19T06:00:00.000Z`` → ``2026-11-19 14:00`` in the event's own zone (China time by default)."""
    moment = _parse_time(value, offset)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def local_day(value: str | None, offset: str | None = None) -> str:
    moment = _parse_time(value, offset)
    if moment is None:
        return value or ""
    return moment.strftime("%Y-%m-%d")


def unit_name(uom: str | None, lang: str = i18n.DEFAULT) -> str:
    """``KGM`` → ``千克`` (``kg`` in English); a unit without a name reads as its code."""
    return i18n.words(lang).name("unit", uom or "") or uom or ""


def doc_type(kind: str, lang: str = i18n.DEFAULT) -> str:
    """A document type's name; one without a name reads as its code."""
    return i18n.words(lang).name("document_type", kind) or kind


def script_json(data: Any) -> Markup:
    """JSON safe to place inside a <script type=application/json> element (``<``, ``>``, ``&`` escaped)."""
    text = orjson.dumps(data).decode()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))  # noqa: S704


# -- answering ------------------------------------------------------------------------------------


def wants_json(request: web.Request) -> bool:
    """The reader asked for the JSON twin: ``?format=json`` or ``Accept: application/json``."""
    if request.query.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return accept.startswith("application/json")


async def answer(
    request: web.Request,
    data: Any,
    template: str,
    context: Context,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    t: i18n.Words | None = None,
    table: TableOf | None = None,
) -> web.Response:
    """The page rendered from ``template`` and ``context``, or its JSON twin ``data`` when the reader asked,
    or its ``table`` as a spreadsheet (``?format=csv`` or ``?format=xlsx``).

    ``data`` is the page's view model, or the :class:`~traceability.errors.TraceError` that refused the
    request: its twin is then the API's error body (``{"error": {...}}``). Both answers carry ``status``
    (by default the error's, else 200) and ``headers``. ``context`` may be an async function, called only
    when the page is rendered, for a page that needs more than its twin.
    """
    refused = isinstance(data, errors.TraceError)
    code = status if status is not None else data.status if refused else 200
    fmt = request.query.get("format", "")
    if fmt in sheets.FORMATS and not refused:
        if table is None:
            raise errors.InvalidField("format: this page is not a list; ask for json", field="format")
        words = t or language.choose(request)
        return sheets.response(table(words), fmt, words, dict(headers or {}))
    if wants_json(request):
        response = json_error(request, data) if refused else twin(request, data, status=code)
        response.headers.update(headers or {})
        return response
    page = await context() if callable(context) else context
    return render(request, template, page, status=code, t=t, headers=headers)


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    t: i18n.Words | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Render a page with the common context; sets the security headers and remembers a chosen language.

    Every template gets ``t`` (the reader's :class:`~traceability.i18n.Words`), ``lang``, ``static(name)``,
    ``switch_url`` (this page in the other language), ``path`` and ``request_id``.
    """
    t = t or language.choose(request)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            t=t,
            lang=t.lang,
            static=lambda name: static_url(request, name),
            switch_url=self_url(request, lang=t.other),
            path=request.path,
            request_id=request.get(REQUEST_ID, ""),
            **context,
        )
    )
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers.update(
        {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Content-Language": t.html_lang,
            "Vary": "Accept-Language, Cookie",
        }
    )
    if headers:
        response.headers.update(headers)
    if request.query.get("lang") in i18n.LANGS:
        response.set_cookie(
            language.COOKIE, t.lang, max_age=365 * 86400, path="/", samesite="Lax", secure=secure(request)
        )
    return response


def twin(
    request: web.Request, data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON twin of a page, on its own: for a handler whose page is a redirect (a form's success)."""
    response = json_response(data, status=status, headers=dict(headers) if headers else None)
    response.headers["Vary"] = "Accept, Cookie"
    return response


def json_error(request: web.Request, exc: errors.TraceError) -> web.Response:
    """The API's error body for a refusal, at the page's URL."""
    return web.Response(
        status=exc.status,
        content_type="application/json",
        body=error_body(exc.code, exc.message, request.get(REQUEST_ID, ""), exc.field),
    )


def static_url(request: web.Request, name: str) -> str:
    version = request.app[STATIC_VERSIONS].get(name, "0")
    return f"/static/{name}?v={version}"


def self_url(request: web.Request, **changes: str | None) -> str:
    """This page's URL with some query parameters changed (``None`` removes one)."""
    query = {k: v for k, v in request.query.items() if k not in changes}
    query.update({k: v for k, v in changes.items() if v is not None})
    return request.path + (("?" + urlencode(query)) if query else "")


def secure(request: web.Request) -> bool:
    """Cookies get the Secure flag when the site is served over HTTPS."""
    return request.app[SETTINGS].public_url.startswith("https://") or request.secure
