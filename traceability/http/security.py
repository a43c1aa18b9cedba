"""What every response carries for the browser's protection, and who the client really is behind a proxy.

Headers on every response (pages, JSON, errors, static files): a Content-Security-Policy that lets
pages load only their own scripts, styles and images and never be framed; ``X-Content-Type-Options:
nosniff``; a Referrer-Policy that keeps trace codes in URLs from leaking to other sites; and a
``Server`` header without a version. Over HTTPS, also Strict-Transport-Security.

Behind a reverse proxy the peer is the proxy. Only when the peer is in ``TRACE_TRUSTED_PROXIES``
does the app believe what it forwards (RFC 7239 ``Forwarded``, or ``X-Forwarded-For`` and
``X-Forwarded-Proto``): then the client's address (for limits, the access log and ``/metrics``
access) and the scheme (HTTPS, so cookies are ``Secure``) come from those headers. Anyone else
sending them is ignored, so a client cannot pretend to be another address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from multidict import istr

from traceability.config import Network
from traceability.http.keys import SETTINGS

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Pages: only our own scripts and styles (no inline code), images may be data: URLs (QR codes)."""
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""JSON, text and downloads render nothing, so they may load nothing."""
SERVER = "traceability"
FORWARDED_HTTPS = web.RequestKey("forwarded_https", bool)
"""Set on the request as received: a trusted proxy says the client spoke HTTPS (the hooks that
prepare responses see that request, not the clone the handlers got)."""


_CSP = istr("Content-Security-Policy")
_CONTENT_TYPE = istr("Content-Type")
_HSTS = istr("Strict-Transport-Security")
_ALWAYS = tuple(
    (istr(name), value)
    for name, value in (
        ("Server", SERVER),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=()"),
    )
)
"""Set on every response; keys made case-insensitive once here, not on each response."""


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: the protective headers, on every response the app sends."""
    headers = response.headers
    for name, value in _ALWAYS:
        headers[name] = value
    if _CSP not in headers:  # the header as set, not response.content_type (which parses it on every read)
        headers[_CSP] = PAGE_POLICY if headers.get(_CONTENT_TYPE, "").startswith("text/html") else API_POLICY
    # behind_proxy records FORWARDED_HTTPS on every request it sees: looking up a key a request lacks
    # costs an exception (about 2 µs), more than the rest of this hook.
    if request.secure or request.get(FORWARDED_HTTPS, False):
        headers[_HSTS] = "max-age=31536000"


def _trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def _clean(value: str) -> str:
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:4711
        return value[1 : value.index("]")]
    if value.count(":") == 1:  # 192.0.2.1:4711
        return value.split(":", 1)[0]
    return value


def forwarded_client(request: web.Request, proxies: Sequence[Network]) -> tuple[str | None, str | None]:
    """The client address and scheme a trusted proxy forwarded (either may be None: not forwarded).

    Walks the chain from the nearest hop back, skipping trusted proxies: the first untrusted address
    is the client (a client cannot insert itself further down the chain than the first proxy).
    """
    hops: list[tuple[str | None, str | None]] = []
    if request.forwarded:  # RFC 7239, parsed by aiohttp: one mapping per hop, the client first
        hops = [(_clean(f["for"]) if f.get("for") else None, f.get("proto")) for f in request.forwarded]
    elif "X-Forwarded-For" in request.headers:
        addresses = [_clean(a) for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        protos = [p.strip() for p in request.headers.get("X-Forwarded-Proto", "").split(",") if p.strip()]
        hops = [(a, None) for a in addresses]
        if hops and protos:
            hops[0] = (hops[0][0], protos[0])
    elif "X-Forwarded-Proto" in request.headers:
        return None, request.headers["X-Forwarded-Proto"].split(",")[0].strip()
    client, scheme = None, None
    for address, proto in reversed(hops):
        client, scheme = address, proto or scheme
        if not _trusted(address, proxies):
            break
    if hops and scheme is None:
        scheme = hops[0][1]
    return client, scheme


def behind_proxy(request: web.Request) -> web.Request:
    """The request as the handlers see it: a trusted proxy believed about the client's address and scheme,
    the headers from anyone else ignored (run by :mod:`.pipeline`)."""
    proxies = request.app[SETTINGS].trusted_proxies
    # Without proxies configured (the default) the peer's address is not even asked for: a call to the
    # transport for every request.
    if not proxies or not _trusted(request.remote, proxies):
        request[FORWARDED_HTTPS] = False
        return request
    client, scheme = forwarded_client(request, proxies)
    changes: dict[str, str] = {}
    if client:
        changes["remote"] = client
    request[FORWARDED_HTTPS] = scheme == "https"
    if scheme in ("http", "https"):
        changes["scheme"] = scheme
    return request.clone(**changes) if changes else request  # type: ignore[arg-type]
