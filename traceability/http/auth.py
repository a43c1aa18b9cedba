"""Credentials on requests: who is asking, and refusing those who may not.

Two schemes: ``Bearer <credential>`` (people, systems and scanner devices) and ``Signature keyId=…,
created=…,signature=…`` (enrolled scanner stations signing with their Ed25519 key; docs/scanners.md).
Both give a :class:`Principal`. A signed request may write only through ``/api/v1/stations/``, whose
routes store what was signed with the events it carried.
"""

from __future__ import annotations

from aiohttp import web

from traceability import errors
from traceability.domain import stations as station_rules
from traceability.domain.access import Principal
from traceability.http.keys import DATABASE, PRINCIPALS
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


async def optional_principal(request: web.Request) -> Principal | None:
    """The caller, if they sent a credential; a bad credential is still a 401."""
    cached: Principal | None = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "signature":
        signed = await signed_request(request, token)
        principal, key_pk = await stations.authenticate_signature(request.app[DATABASE], signed)
        if request.method not in ("GET", "HEAD") and not request.path.startswith(STATION_PATHS):
            raise errors.Forbidden(
                f"a signed station request records through {STATION_PATHS}…, "
                "where the signature is kept with the events"
            )
        request[STATION_SIGNATURE] = (signed, key_pk)
    elif scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized(
            "send the credential as 'Authorization: Bearer <credential>' or a station's 'Authorization: Signature …'"
        )
    else:
        principal = await principals.authenticate(request.app[DATABASE], token.strip(), request.app[PRINCIPALS])
    request[PRINCIPAL] = principal
    request[ACTOR] = principal.label
    return principal


async def require(request: web.Request, *roles: str) -> Principal:
    """The caller, who must hold one of ``roles``."""
    principal = await optional_principal(request)
    if principal is None:
        raise errors.Unauthorized(f"this needs a {' or '.join(roles)} credential")
    if principal.role not in roles:
        raise errors.Forbidden(f"this needs a {' or '.join(roles)} credential, not {principal.role}")
    return principal
