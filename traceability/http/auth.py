"""Credentials on requests: who is asking, and refusing those who may not.

Two schemes: ``Bearer <credential>`` (people, systems and scanner devices) and ``Signature keyId=…,
created=…,signature=…`` (enrolled scanner stations signing with their Ed25519 key; docs/scanners.md).
Both give a :class:`Principal`. A signed request may write only through ``/api/v1/stations/``, whose
routes store what was signed with the events it carried.
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from traceability import errors
from traceability.domain import limits
from traceability.domain import stations as station_rules
from traceability.domain.access import Principal
from traceability.http.keys import DATABASE, LIMITS, PRINCIPALS
from traceability.http.middleware import ACTOR
from traceability.services import principals, stations

PRINCIPAL = web.RequestKey("principal", Principal)
STATION_SIGNATURE = web.RequestKey("station_signature", tuple[station_rules.SignedRequest, int])
"""For a signed request: what was signed, and the row id of the station key that signed it."""
STATION_PATHS = "/api/v1/stations/"


async def signed_request(request: web.Request, params: str) -> station_rules.SignedRequest:
    """Parse a Signature header against this request's method, path and body."""
    body = await request.read()
    try:
        return station_rules.parse_authorization(params, request.method, request.path_qs, body)
    except station_rules.SignatureFormatError as exc:
        raise errors.Unauthorized(f"signature: {exc}") from None


def source(request: web.Request) -> str:
    """The unit the limits count for this client: its address (the /64 for IPv6), as a trusted proxy forwarded it."""
    return limits.source_key(request.remote)


async def optional_principal(request: web.Request) -> Principal | None:
    """The caller, if they sent a credential; a bad credential is still a 401.

    Failed checks are counted per source address; an address past the limit gets 429 for
    credentials this process has not already resolved.
    """
    header = request.headers.get("Authorization")
    if header is None:  # before the cache: only a credential sets PRINCIPAL, and a missing key costs an exception
        return None
    cached: Principal | None = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    scheme, _, token = header.partition(" ")
    scheme = scheme.lower()
    app = request.app
    try:
        if scheme == "bearer" and (token := token.strip()):
            # The common case first, and only what it needs: a cached credential reads neither the limits
            # nor the pool (each a lookup on the app, on every request of every scanner).
            cache = app[PRINCIPALS]
            known = cache.get(principals.token_hash(token))
            if known is None:
                app[LIMITS].credentials.check(source(request))
                principal = await principals.authenticate(app[DATABASE], token, cache)
            else:  # resolved within the cache's life and not revoked since (services.principals)
                principal = known
        elif scheme == "signature":
            app[LIMITS].credentials.check(source(request))
            signed = await signed_request(request, token)
            principal, key_pk = await stations.authenticate_signature(app[DATABASE], signed)
            principal = replace(principal, kind="station")
            if request.method not in ("GET", "HEAD") and not request.path.startswith(STATION_PATHS):
                raise errors.Forbidden(
                    f"a signed station request records through {STATION_PATHS}…, "
                    "where the signature is kept with the events"
                )
            request[STATION_SIGNATURE] = (signed, key_pk)
        else:
            raise errors.Unauthorized(
                "send the credential as 'Authorization: Bearer <credential>' "
                "or a station's 'Authorization: Signature …'"
            )
    except errors.Unauthorized:
        await app[LIMITS].credentials.failed(app[DATABASE], source(request))
        raise
    request[PRINCIPAL] = principal
    request[ACTOR] = principal.label
    return principal


async def require_capture(request: web.Request, *roles: str) -> Principal:
    """Someone recording (a device's credential or station signature unless ``roles`` say more), within
    their credential's capture rate limit."""
    principal = await require(request, *(roles or ("device",)))
    lim = request.app[LIMITS]
    lim.take(lim.capture, f"{principal.kind}:{principal.role}:{principal.id}", "capture")
    return principal


async def require(request: web.Request, *roles: str) -> Principal:
    """The caller, who must hold one of ``roles``."""
    principal = await optional_principal(request)
    if principal is None:
        raise errors.Unauthorized(f"this needs a {' or '.join(roles)} credential")
    if principal.role not in roles:
        raise errors.Forbidden(f"this needs a {' or '.join(roles)} credential, not {principal.role}")
    return principal
