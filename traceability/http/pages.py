"""The web pages: the consumer page behind every QR code, the regulator console and the vendor page.

Every page renders on the server and reads without JavaScript; each has a JSON twin, the same
data from the same service call, at the same URL with ``?format=json`` (or ``Accept:
application/json``). Templates are Jinja2 with autoescaping on, so user-supplied text is always
escaped. Pages send a strict Content-Security-Policy: scripts and styles only from ``/static/``.

Signing in (console: name and password; vendor: the stall's scanner credential) sets an HttpOnly,
SameSite=Strict session cookie scoped to ``/console`` or ``/vendor``. Every form that changes
something carries the session's CSRF token; the sign-in forms carry a pre-session token that must
match a cookie (double submit). Requests whose ``Origin`` names another site are refused.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
import orjson
from aiohttp import web
from markupsafe import Markup

from traceability import errors
from traceability.config import ROOT
from traceability.domain import images, scans, tracecode
from traceability.domain.events import DOCUMENT_TYPES, UNITS
from traceability.http import i18n
from traceability.http.api import json_response
from traceability.http.keys import DATABASE, LOG, SETTINGS, VIEWS
from traceability.http.middleware import ACTOR, REQUEST_ID, error_body
from traceability.services import accounts, capture, history
from traceability.services.accounts import WebSession
from traceability.services.views import batch as batch_views
from traceability.services.views import console as console_views
from traceability.services.views import consumer as consumer_views

routes = web.RouteTableDef()
TEMPLATES = web.AppKey("templates", jinja2.Environment)
STATIC_VERSIONS = web.AppKey("static_versions", dict)
WEB_ROOT = ROOT / "web"
CONSOLE_COOKIE = "trace_console"
VENDOR_COOKIE = "trace_vendor"
PRE_CSRF_COOKIE = "trace_presession"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
CHINA = timezone(timedelta(hours=8))
MAX_PHOTO_BYTES = 8 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- set-up ---------------------------------------------------------------------------------------


def _page(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register a page handler; a redirect it raises is returned as a response, so the request log sees it."""

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

        routes.route(method, path)(wrapped)
        return handler

    return register


def setup(app: web.Application) -> None:
    """Register the page routes, the templates and the static files on ``app``."""
    app[TEMPLATES] = _environment(WEB_ROOT / "templates")
    static = WEB_ROOT / "static"
    app[STATIC_VERSIONS] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in static.iterdir() if p.is_file()
    }
    app.add_routes(routes)
    app.router.add_static("/static/", static, name="static")
    app.on_response_prepare.append(_static_caching)


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
    return env


async def _static_caching(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        versioned = "v" in request.query
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if versioned else "public, max-age=300"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"


# -- formatting -----------------------------------------------------------------------------------


def _parse_time(value: str | None, offset: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    tz = CHINA
    if offset:
        try:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = offset[1:].split(":")
            tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except (ValueError, IndexError):
            tz = CHINA
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


def unit_name(uom: str | None, lang: str = "zh") -> str:
    pair = UNITS.get(uom or "")
    if pair is None:
        return uom or ""
    return pair[0] if lang == "zh" else pair[1]


def doc_type(kind: str, lang: str = "zh") -> str:
    pair = DOCUMENT_TYPES.get(kind)
    if pair is None:
        return kind
    return pair[0] if lang == "zh" else pair[1]


# -- rendering ------------------------------------------------------------------------------------


def wants_json(request: web.Request) -> bool:
    if request.query.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return accept.startswith("application/json")


def static_url(request: web.Request, name: str) -> str:
    version = request.app[STATIC_VERSIONS].get(name, "0")
    return f"/static/{name}?v={version}"


def _self_url(request: web.Request, **changes: str | None) -> str:
    query = {k: v for k, v in request.query.items() if k not in changes}
    query.update({k: v for k, v in changes.items() if v is not None})
    return request.path + (("?" + urlencode(query)) if query else "")


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    t: i18n.Translator | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Render a page with the common context; sets the security headers and remembers a chosen language."""
    t = t or i18n.choose(request)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            t=t,
            lang=t.lang,
            static=lambda name: static_url(request, name),
            switch_url=_self_url(request, lang=t.other),
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
        response.set_cookie(i18n.COOKIE, t.lang, max_age=365 * 86400, path="/", samesite="Lax", secure=_secure(request))
    return response


def twin(request: web.Request, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """The JSON twin of a page."""
    response = json_response(data, status=status, headers=headers)
    response.headers["Vary"] = "Accept, Cookie"
    return response


def json_error(request: web.Request, exc: errors.TraceError) -> web.Response:
    return web.Response(
        status=exc.status,
        content_type="application/json",
        body=error_body(exc.code, exc.message, request.get(REQUEST_ID, ""), exc.field),
    )


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS].public_url.startswith("https://") or request.secure


def _same_origin(request: web.Request) -> None:
    """Refuse a state-changing request that another site's page sent (CSRF, with the token as the main guard)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise errors.Forbidden("this form was sent from another site")


# -- consumer -------------------------------------------------------------------------------------


def _code_problem(raw: str, t: i18n.Translator) -> str:
    """A bilingual, specific reason a typed code is not a trace code."""
    code = tracecode.normalize(raw)
    if not code.isascii() or not code.isdigit():
        return t("code_chars")
    if len(code) != tracecode.LENGTH:
        return t("digits", n=len(code))
    return t("check_bad")


def _lookup(
    request: web.Request,
    t: i18n.Translator,
    *,
    status: int = 200,
    code: str = "",
    problem: str | None = None,
    unknown: bool = False,
) -> web.Response:
    return render(request, "lookup.html", {"code": code, "problem": problem, "unknown": unknown}, status=status, t=t)


@_page("GET", "/")
async def home(request: web.Request) -> web.Response:
    if wants_json(request):
        return twin(
            request, {"lookup": "/t/{trace_code}", "console": "/console", "vendor": "/vendor", "api": "/api/v1"}
        )
    return _lookup(request, i18n.choose(request))


@_page("GET", "/t")
async def lookup(request: web.Request) -> web.StreamResponse:
    t = i18n.choose(request)
    raw = request.query.get("code", "").strip()[:64]
    try:
        code = history.valid_code(raw)
    except errors.InvalidTraceCode as exc:
        if wants_json(request):
            return json_error(request, exc)
        return _lookup(request, t, status=400, code=raw, problem=_code_problem(raw, t) if raw else None)
    raise web.HTTPSeeOther(f"/t/{code}")


@_page("GET", "/t/{code}")
async def consumer(request: web.Request) -> web.StreamResponse:
    """The page a QR code opens: what it is, where it came from, whether it is recalled, and a verified badge."""
    t = i18n.choose(request)
    raw = request.match_info["code"][:64]
    db = request.app[DATABASE]
    try:
        code = history.valid_code(raw)
    except errors.InvalidTraceCode as exc:
        if wants_json(request):
            return json_error(request, exc)
        return _lookup(request, t, status=400, code=raw, problem=_code_problem(raw, t))
    if code != raw:
        raise web.HTTPMovedPermanently(_self_url(request).replace(request.path, f"/t/{code}", 1))
    as_json = wants_json(request)
    head = await history.head_etag(db, code, None)
    tag = None if head is None else f'{head[:-1]}-{"json" if as_json else t.lang}"'
    cache = {"Cache-Control": "public, max-age=0, must-revalidate"}
    if tag is not None and tag in {x.strip() for x in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers={"ETag": tag, **cache})
    try:
        record, _ = await consumer_views.consumer_record(db, code)
    except errors.NotFound as exc:
        lease = await consumer_views.find_lease(db, code)
        if as_json:
            if lease is not None:
                return twin(request, {"trace_code": code, "syncing": True, "lease": lease})
            return json_error(request, exc)
        if lease is not None:
            return render(
                request, "syncing.html", {"code": code, "lease": lease}, t=t, headers={"Cache-Control": "no-cache"}
            )
        return _lookup(request, t, status=404, code=code, unknown=True)
    if as_json:
        return twin(request, record, headers={"ETag": tag or "", **cache})
    return render(
        request,
        "batch.html",
        {"r": record, "b": record["batch"], "ledger_json": Markup(_script_json(record["ledger"]))},  # noqa: S704 (<>& escaped)
        t=t,
        headers={"ETag": tag or "", **cache},
    )


def _script_json(data: Any) -> str:
    """JSON safe to place inside a <script type=application/json> element."""
    text = orjson.dumps(data).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- sessions -------------------------------------------------------------------------------------


def _cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, path: str, max_age: int | None
) -> None:
    response.set_cookie(
        name, value, path=path, max_age=max_age, httponly=True, samesite="Strict", secure=_secure(request)
    )


def _pre_csrf(request: web.Request) -> tuple[str, bool]:
    existing = request.cookies.get(PRE_CSRF_COOKIE, "")
    if 20 <= len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(24), True


async def _form(request: web.Request) -> Any:
    _same_origin(request)
    return await request.post()


def _check_pre_csrf(request: web.Request, form: Any) -> None:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not cookie or not isinstance(sent, str) or not secrets.compare_digest(cookie.encode(), sent.encode()):
        raise errors.Forbidden("the form expired; reload the page and try again (表单已过期，请刷新后重试)")


async def _session(request: web.Request, cookie: str, kind: str) -> WebSession | None:
    token = request.cookies.get(cookie)
    if not token:
        return None
    session = await accounts.resolve(request.app[DATABASE], token)
    if session is None or session.kind != kind:
        return None
    request[ACTOR] = f"{kind}:{session.principal.id}"
    return session


async def _require(request: web.Request, cookie: str, kind: str, login: str) -> WebSession:
    session = await _session(request, cookie, kind)
    if session is None:
        if wants_json(request):
            raise errors.Unauthorized("sign in first")
        raise web.HTTPSeeOther(f"{login}?{urlencode({'next': request.path_qs})}")
    return session


def _check_csrf(session: WebSession, form: Any) -> None:
    sent = form.get("csrf")
    if not isinstance(sent, str) or not session.csrf_ok(sent):
        raise errors.Forbidden("the form expired; reload the page and try again (表单已过期，请刷新后重试)")


def _next(raw: str | None, default: str, prefix: str) -> str:
    """Only a local path under ``prefix`` may be the place to go after signing in."""
    if raw and raw.startswith(prefix) and not raw.startswith("//") and "\\" not in raw:
        return raw
    return default


def _login_page(
    request: web.Request, template: str, *, status: int = 200, error: str | None = None, name: str = ""
) -> web.Response:
    token, fresh = _pre_csrf(request)
    response = render(
        request,
        template,
        {"csrf": token, "error": error, "name": name, "next": request.query.get("next", "")},
        status=status,
        headers={"Cache-Control": "no-store"},
    )
    if fresh:
        _cookie(response, request, PRE_CSRF_COOKIE, token, "/", 3600)
    return response


# -- console --------------------------------------------------------------------------------------

# The console's sections; supply-chain sections (genealogy, recalls, anomalies, credit) join this list.
CONSOLE_NAV = (
    ("/console", "search_title"),
    ("/console/recalls", "recalls"),
    ("/console/anomalies", "anomalies"),
    ("/console/enterprises", "register"),
    ("/console/log", "log_status"),
)


def _console(
    request: web.Request, template: str, session: WebSession, context: dict[str, Any], status: int = 200
) -> web.Response:
    return render(
        request,
        template,
        {"session": session, "nav": CONSOLE_NAV, **context},
        status=status,
        headers={"Cache-Control": "no-store"},
    )


async def console_session(request: web.Request) -> WebSession:
    return await _require(request, CONSOLE_COOKIE, "console", "/console/login")


@_page("GET", "/console/login")
async def console_login_form(request: web.Request) -> web.Response:
    if await _session(request, CONSOLE_COOKIE, "console") is not None:
        raise web.HTTPSeeOther("/console")
    return _login_page(request, "console/login.html")


@_page("POST", "/console/login")
async def console_login(request: web.Request) -> web.Response:
    form = await _form(request)
    _check_pre_csrf(request, form)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    try:
        opened = await accounts.sign_in(request.app[DATABASE], name, password, request.remote)
    except (errors.Unauthorized, accounts.LockedOut) as exc:
        t = i18n.choose(request)
        message = (
            exc.message
            if isinstance(exc, accounts.LockedOut)
            else ("账号或密码错误" if t.lang == "zh" else "The name or password is wrong")
        )
        return _login_page(request, "console/login.html", status=exc.status, error=message, name=name[:100])
    response = web.HTTPSeeOther(_next(str(form.get("next", "")), "/console", "/console"))
    _cookie(response, request, CONSOLE_COOKIE, opened.token, "/console", int(accounts.SESSION_LIFETIME.total_seconds()))
    raise response


@_page("POST", "/console/logout")
async def console_logout(request: web.Request) -> web.Response:
    session = await console_session(request)
    _check_csrf(session, await _form(request))
    await accounts.sign_out(request.app[DATABASE], request.cookies.get(CONSOLE_COOKIE, ""))
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(CONSOLE_COOKIE, path="/console")
    raise response


@_page("GET", "/console")
async def console_search(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    try:
        result = await console_views.search_batches(request.app[DATABASE], dict(request.query))
    except errors.TraceError as exc:
        if wants_json(request):
            return json_error(request, exc)
        return _console(
            request,
            "console/search.html",
            session,
            {"result": {"query": dict(request.query), "results": [], "searched": False}, "error": exc.message},
            status=exc.status,
        )
    if result["redirect"]:
        raise web.HTTPSeeOther(f"/console/batches/{result['redirect']}")
    if wants_json(request):
        return twin(request, result)
    return _console(request, "console/search.html", session, {"result": result, "error": None})


@_page("GET", "/console/batches/{code}")
async def console_batch(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    record = await console_views.console_record(request.app[DATABASE], code, session.principal)
    if wants_json(request):
        return twin(request, record, headers={"Cache-Control": "no-store"})
    return _console(request, "console/batch.html", session, {"r": record, "b": record["batch"]})


@_page("GET", "/console/batches/{code}/export.{fmt:csv|json}")
async def console_export(request: web.Request) -> web.Response:
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    record = await console_views.console_record(request.app[DATABASE], code, session.principal)
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="batch-{code}.{request.match_info["fmt"]}"',
    }
    if request.match_info["fmt"] == "csv":
        return web.Response(
            text=batch_views.export_csv(record["batch"]), content_type="text/csv", charset="utf-8", headers=headers
        )
    return json_response(record["batch"], headers=headers)


@_page("GET", "/console/enterprises")
async def console_register(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    overview = await console_views.register_overview(request.app[DATABASE])
    if wants_json(request):
        return twin(request, overview)
    return _console(request, "console/register.html", session, {"overview": overview})


@_page("GET", "/console/log")
async def console_log(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    status = await console_views.log_status(request.app[DATABASE], request.app[LOG])
    if wants_json(request):
        return twin(request, status)
    return _console(request, "console/log.html", session, {"log": status})


@_page("POST", "/console/batches/{code}/recall")
async def console_recall(request: web.Request) -> web.StreamResponse:
    """Issue a recall of this batch and everything made from it; show who is affected."""
    session = await console_session(request)
    form = await _form(request)
    _check_csrf(session, form)
    code = history.valid_code(request.match_info["code"])
    fields = {k: str(form.get(k, ""))[:500] for k in ("level", "reason", "scope")}
    try:
        result = await console_views.issue_recall(request.app[DATABASE], session.principal, {"code": code, **fields})
    except errors.InvalidField as exc:
        if wants_json(request):
            return json_error(request, exc)
        record = await console_views.console_record(request.app[DATABASE], code, session.principal)
        return _console(
            request,
            "console/batch.html",
            session,
            {"r": record, "b": record["batch"], "recall_error": exc.message},
            status=exc.status,
        )
    if wants_json(request):
        return twin(request, result, status=201)
    return _console(request, "console/recall.html", session, {"recall": result}, status=201)


@_page("GET", "/console/recalls")
async def console_recalls(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    data = await console_views.list_recalls(request.app[DATABASE])
    if wants_json(request):
        return twin(request, data)
    return _console(request, "console/recalls.html", session, {"data": data})


@_page("GET", "/console/anomalies")
async def console_anomalies(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    try:
        data = await console_views.list_anomalies(request.app[DATABASE], dict(request.query))
    except errors.TraceError as exc:
        if wants_json(request):
            return json_error(request, exc)
        data = {"query": dict(request.query), "anomalies": [], "kinds": [], "error": exc.message}
        return _console(request, "console/anomalies.html", session, {"data": data}, status=exc.status)
    if wants_json(request):
        return twin(request, data)
    return _console(request, "console/anomalies.html", session, {"data": data})


@_page("GET", "/console/enterprises/{uscc}")
async def console_enterprise(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    rating = await console_views.enterprise_credit(request.app[DATABASE], request.match_info["uscc"][:18])
    if wants_json(request):
        return twin(request, rating)
    return _console(request, "console/credit.html", session, {"c": rating})


# -- vendor ---------------------------------------------------------------------------------------


async def vendor_session(request: web.Request) -> WebSession:
    return await _require(request, VENDOR_COOKIE, "vendor", "/vendor/login")


@_page("GET", "/vendor/login")
async def vendor_login_form(request: web.Request) -> web.Response:
    if await _session(request, VENDOR_COOKIE, "vendor") is not None:
        raise web.HTTPSeeOther("/vendor")
    return _login_page(request, "vendor/login.html")


@_page("POST", "/vendor/login")
async def vendor_login(request: web.Request) -> web.Response:
    form = await _form(request)
    _check_pre_csrf(request, form)
    try:
        opened = await accounts.sign_in_vendor(request.app[DATABASE], str(form.get("credential", ""))[:200])
    except (errors.Unauthorized, errors.Forbidden) as exc:
        t = i18n.choose(request)
        message = "凭证无效或已停用" if t.lang == "zh" else "That credential is unknown or revoked"
        return _login_page(request, "vendor/login.html", status=exc.status, error=message)
    response = web.HTTPSeeOther("/vendor")
    _cookie(
        response, request, VENDOR_COOKIE, opened.token, "/vendor", int(accounts.VENDOR_SESSION_LIFETIME.total_seconds())
    )
    raise response


@_page("POST", "/vendor/logout")
async def vendor_logout(request: web.Request) -> web.Response:
    session = await vendor_session(request)
    _check_csrf(session, await _form(request))
    await accounts.sign_out(request.app[DATABASE], request.cookies.get(VENDOR_COOKIE, ""))
    response = web.HTTPSeeOther("/vendor/login")
    response.del_cookie(VENDOR_COOKIE, path="/vendor")
    raise response


def _vendor_page(
    request: web.Request,
    session: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    code: str = "",
    action: str = "sell",
) -> web.Response:
    return render(
        request,
        "vendor/record.html",
        {"session": session, "error": error, "code": code, "action": action},
        status=status,
        headers={"Cache-Control": "no-store"},
    )


@_page("GET", "/vendor")
async def vendor_home(request: web.Request) -> web.StreamResponse:
    session = await vendor_session(request)
    if wants_json(request):
        p = session.principal
        return twin(
            request,
            {
                "device": p.id,
                "name": p.name,
                "node": p.node_code,
                "operator": p.operator_code,
                "record": "/vendor/record",
            },
        )
    return _vendor_page(request, session)


def code_from_scan(text: str) -> str:
    """A trace code from what a camera or a person gave: the code itself, or a label's URL or Digital Link."""
    try:
        return scans.trace_code_of(text)
    except scans.ScanError as exc:
        raise errors.InvalidField(f"code: {exc} ({exc.message_zh})", field="code") from None


@_page("POST", "/vendor/record")
async def vendor_record(request: web.Request) -> web.StreamResponse:
    """Record that this stall received or sold a batch, then show its receipt QR code."""
    session = await vendor_session(request)
    _same_origin(request)
    form = await request.post()
    _check_csrf(session, form)
    action = str(form.get("action", "sell"))
    typed = str(form.get("code", "")).strip()[:300]
    photo = form.get("photo")
    try:
        if action not in ("receive", "sell"):
            raise errors.InvalidField("action must be receive or sell", field="action")
        if typed:
            code = code_from_scan(typed)
        elif isinstance(photo, web.FileField) and photo.filename:
            data = photo.file.read(MAX_PHOTO_BYTES + 1)
            if len(data) > MAX_PHOTO_BYTES:
                raise errors.InvalidField("photo: the photo is larger than 8 MB", field="photo")
            texts = images.decode_photo(data)
            if not texts:
                raise errors.InvalidField(
                    "photo: no code found in the photo; try again closer, or type the code "
                    "(照片中未找到条码，请靠近重拍或直接输入)",
                    field="photo",
                )
            code = code_from_scan(texts[0])
        else:
            raise errors.InvalidField("code: type or scan a trace code (请输入或扫描追溯码)", field="code")
        event: dict[str, Any] = {
            "eventID": str(uuid.uuid4()),
            "traceCode": code,
            "bizStep": "receiving" if action == "receive" else "retail_selling",
            "disposition": "active" if action == "receive" else "retail_sold",
            "eventTime": datetime.now(CHINA).isoformat(timespec="seconds"),
        }
        weight = str(form.get("weight", "")).strip()
        if weight:
            event["quantity"] = {"value": weight, "uom": "KGM"}
        receipts, _ = await capture.capture_events(
            request.app[DATABASE], session.principal, event, request.app[SETTINGS].max_events_per_request
        )
    except errors.TraceError as exc:
        if wants_json(request):
            return json_error(request, exc)
        return _vendor_page(request, session, status=exc.status, error=exc.message, code=typed, action=action)
    receipt = receipts[0]
    if wants_json(request):
        return twin(request, {**receipt.as_json(), "receipt": f"/vendor/receipt/{receipt.trace_code}"}, status=201)
    raise web.HTTPSeeOther(f"/vendor/receipt/{receipt.trace_code}?seq={receipt.seq}")


def qr_svg(url: str) -> str:
    """An inline SVG QR code for ``url``."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg: bytes = img.to_string()
    text = svg.decode()
    return text[text.index("<svg") :] if "<svg" in text else text


@_page("GET", "/vendor/receipt/{code}")
async def vendor_receipt(request: web.Request) -> web.StreamResponse:
    """The receipt to show the buyer or print: the trace code and the QR code that opens the consumer page."""
    session = await vendor_session(request)
    code = history.valid_code(request.match_info["code"])
    view, _ = await history.read_batch(request.app[DATABASE], code, None, request.app[VIEWS])
    url = f"{request.app[SETTINGS].public_url}/t/{code}"
    data = {
        "trace_code": code,
        "url": url,
        "product": view["product"],
        "events": len(view["events"]),
        "last": {k: view["events"][-1].get(k) for k in ("seq", "bizStep", "disposition", "eventTime")}
        if view["events"]
        else None,
    }
    if wants_json(request):
        return twin(request, data)
    qr = Markup(qr_svg(url))  # noqa: S704 - SVG the qrcode library drew from our own URL
    return render(
        request, "vendor/receipt.html", {"session": session, "d": data, "qr": qr}, headers={"Cache-Control": "no-store"}
    )
