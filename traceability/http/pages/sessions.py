"""Signing in to the console and the vendor page: session cookies, CSRF tokens and the same-origin check.

Signing in (console: name and password; vendor: the stall's scanner credential) sets an HttpOnly,
SameSite=Strict session cookie scoped to ``/console`` or ``/vendor``. Every form that changes something
carries the session's CSRF token (:func:`check_csrf`); the sign-in forms carry a pre-session token that
must match a cookie (double submit, :func:`check_pre_csrf`). Requests whose ``Origin`` names another
site are refused (:func:`read_form`).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from traceability import errors
from traceability.http.keys import DATABASE
from traceability.http.middleware import ACTOR
from traceability.http.pages.render import NO_STORE, render, secure, wants_json
from traceability.services import accounts
from traceability.services.accounts import WebSession

CONSOLE_COOKIE = "trace_console"
VENDOR_COOKIE = "trace_vendor"
PRE_CSRF_COOKIE = "trace_presession"
_EXPIRED = "the form expired; reload the page and try again (表单已过期，请刷新后重试)"


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, path: str, max_age: int | None
) -> None:
    """An HttpOnly, SameSite=Strict cookie (Secure over HTTPS)."""
    response.set_cookie(
        name, value, path=path, max_age=max_age, httponly=True, samesite="Strict", secure=secure(request)
    )


def same_origin(request: web.Request) -> None:
    """Refuse a state-changing request that another site's page sent (CSRF, with the token as the main guard)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise errors.Forbidden("this form was sent from another site")


async def read_form(request: web.Request) -> Any:
    """The posted form, once the request is known to come from our own pages."""
    same_origin(request)
    try:
        return await request.post()
    except (HttpProcessingError, ValueError) as exc:  # a malformed multipart or urlencoded body
        raise errors.BadRequest(f"the form could not be read: {type(exc).__name__}") from None


def check_pre_csrf(request: web.Request, form: Any) -> None:
    """A sign-in form must carry the token its pre-session cookie holds."""
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not cookie or not isinstance(sent, str) or not secrets.compare_digest(cookie.encode(), sent.encode()):
        raise errors.Forbidden(_EXPIRED)


def check_csrf(session: WebSession, form: Any) -> None:
    """A form from a signed-in page must carry its session's CSRF token."""
    sent = form.get("csrf")
    if not isinstance(sent, str) or not session.csrf_ok(sent):
        raise errors.Forbidden(_EXPIRED)


async def current(request: web.Request, cookie: str, kind: str) -> WebSession | None:
    """The ``kind`` session (``console`` or ``vendor``) the request's cookie opens, or None."""
    token = request.cookies.get(cookie)
    if not token:
        return None
    session = await accounts.resolve(request.app[DATABASE], token)
    if session is None or session.kind != kind:
        return None
    request[ACTOR] = f"{kind}:{session.principal.id}"
    return session


async def require(request: web.Request, cookie: str, kind: str, login: str) -> WebSession:
    """The session, or off to the sign-in page (the JSON twin answers 401)."""
    session = await current(request, cookie, kind)
    if session is None:
        if wants_json(request):
            raise errors.Unauthorized("sign in first")
        raise web.HTTPSeeOther(f"{login}?{urlencode({'next': request.path_qs})}")
    return session


def next_path(raw: str | None, default: str, prefix: str) -> str:
    """Only a local path under ``prefix`` may be the place to go after signing in."""
    if raw and raw.startswith(prefix) and not raw.startswith("//") and "\\" not in raw:
        return raw
    return default


def login_page(
    request: web.Request, template: str, *, status: int = 200, error: str | None = None, name: str = ""
) -> web.Response:
    """A sign-in form with its pre-session token (and the cookie that holds it, when new)."""
    token, fresh = _pre_csrf(request)
    response = render(
        request,
        template,
        {"csrf": token, "error": error, "name": name, "next": request.query.get("next", "")},
        status=status,
        headers=NO_STORE,
    )
    if fresh:
        set_cookie(response, request, PRE_CSRF_COOKIE, token, "/", 3600)
    return response


def _pre_csrf(request: web.Request) -> tuple[str, bool]:
    existing = request.cookies.get(PRE_CSRF_COOKIE, "")
    if 20 <= len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(24), True
