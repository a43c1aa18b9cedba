"""Bearer credentials on requests: who is asking, and refusing those who may not."""

from __future__ import annotations

from aiohttp import web

from traceability import errors
from traceability.domain.access import Principal
from traceability.http.keys import DATABASE
from traceability.http.middleware import ACTOR
from traceability.services import principals

PRINCIPAL = web.RequestKey("principal", Principal)


async def optional_principal(request: web.Request) -> Principal | None:
    """The caller, if they sent a credential; a bad credential is still a 401."""
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("send the credential as 'Authorization: Bearer <credential>'")
    principal = await principals.authenticate(request.app[DATABASE], token.strip())
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
