"""Administrators' routes for credentials, console users and the access log.

API credentials: issue (optionally expiring), list, revoke, rotate. Console users: add, list,
disable, enable, set a password or the authority a regulator acts for. The access log: read, newest
first. Every secret is shown once, in the answer that creates it, with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from traceability import errors
from traceability.domain.fields import Fields
from traceability.http import schemas
from traceability.http.api import json_response, paging, read_json
from traceability.http.auth import require
from traceability.http.keys import DATABASE, PRINCIPALS
from traceability.http.openapi import PAGING, Param, ok, operation
from traceability.services import access_log, accounts, principals
from traceability.services.validation import fields

routes = web.RouteTableDef()
_NO_STORE = {"Cache-Control": "no-store"}
MAX_DAYS = 3650


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.InvalidField("body: must be a JSON object", field="body")
    return body


def _string(body: dict[str, Any], key: str, required: bool = True, max_len: int = 100) -> str | None:
    """A text field, checked like every other (no control or invisible characters, bounded)."""
    with fields():
        value: str | None = Fields(body).text(key, required=required, max_len=max_len)
    return value


def expiry(body: dict[str, Any]) -> datetime | None:
    """``expires_at`` (RFC 3339 with an offset) or ``expires_in_days`` (1 to 3650), or neither."""
    at, days = body.get("expires_at"), body.get("expires_in_days")
    if at is not None and days is not None:
        raise errors.InvalidField("give expires_at or expires_in_days, not both", field="expires_at")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise errors.InvalidField(f"expires_in_days: a whole number from 1 to {MAX_DAYS}", field="expires_in_days")
        return datetime.now(UTC) + timedelta(days=days)
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) and len(at) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise errors.InvalidField("expires_at: an RFC 3339 time with an offset", field="expires_at")
    if moment > datetime.now(UTC) + timedelta(days=MAX_DAYS) or moment.year < 2000:
        raise errors.InvalidField(f"expires_at: at most {MAX_DAYS} days ahead", field="expires_at")
    return moment


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if len(raw) > 18:
        raise errors.NotFound(f"no such id {raw[:20]}")
    return int(raw)


# -- API credentials -------------------------------------------------------------------------------


@routes.post("/api/v1/admin/tokens")
@operation(
    "Issue an API credential (shown once), optionally expiring",
    tags=("credentials",),
    auth=("bearer",),
    body=schemas.ref("TokenRequest"),
    responses={201: ok("Token")},
)
async def create_token(request: web.Request) -> web.Response:
    await require(request, "admin")
    body = _object(await read_json(request))
    role, name = _string(body, "role"), _string(body, "name")
    assert role is not None and name is not None
    token, token_id = await principals.create_token(
        request.app[DATABASE],
        role,
        name,
        _string(body, "enterprise", required=False),
        authority=_string(body, "authority", required=False),
        expires_at=expiry(body),
    )
    described = await principals.get_token(request.app[DATABASE], token_id)
    return json_response({**described, "credential": token}, status=201, headers=_NO_STORE)


@routes.get("/api/v1/admin/tokens")
@operation(
    "List API credentials (never their secrets)",
    tags=("credentials",),
    auth=("bearer",),
    query=(
        *PAGING,
        Param("state", {"enum": ["active", "revoked", "expired"]}),
        Param("role", {"enum": ["admin", "regulator", "enterprise"]}),
    ),
    responses={200: ok("TokenList")},
)
async def list_tokens(request: web.Request) -> web.Response:
    await require(request, "admin")
    limit, offset = paging(request)
    items = await principals.list_tokens(
        request.app[DATABASE],
        state=request.query.get("state") or None,
        role=request.query.get("role") or None,
        limit=limit,
        offset=offset,
    )
    return json_response({"items": items, "limit": limit, "offset": offset})


@routes.post(r"/api/v1/admin/tokens/{id:\d+}/revoke")
@operation(
    "Revoke an API credential, in every server process before this answers",
    tags=("credentials",),
    auth=("bearer",),
    path=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, where="path"),),
    responses={200: ok("TokenInfo")},
)
async def revoke_token(request: web.Request) -> web.Response:
    await require(request, "admin")
    revoked = await principals.revoke_token(request.app[DATABASE], _id(request))
    request.app[PRINCIPALS].clear()
    return json_response(revoked)


@routes.post(r"/api/v1/admin/tokens/{id:\d+}/rotate")
@operation(
    "Replace an API credential with a new one (shown once); the old is revoked",
    tags=("credentials",),
    auth=("bearer",),
    path=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, where="path"),),
    responses={201: ok("Token")},
)
async def rotate_token(request: web.Request) -> web.Response:
    await require(request, "admin")
    token, described = await principals.rotate_token(request.app[DATABASE], _id(request))
    request.app[PRINCIPALS].clear()
    return json_response({**described, "credential": token}, status=201, headers=_NO_STORE)


# -- console users ---------------------------------------------------------------------------------


@routes.post("/api/v1/admin/users")
@operation(
    "Add a console user",
    tags=("credentials",),
    auth=("bearer",),
    body=schemas.ref("UserRequest"),
    responses={201: ok("User")},
)
async def create_user(request: web.Request) -> web.Response:
    await require(request, "admin")
    body = _object(await read_json(request))
    name, role, password = _string(body, "name"), _string(body, "role"), _string(body, "password")
    assert name is not None and role is not None and password is not None
    created = await accounts.create_user(
        request.app[DATABASE], name, role, password, _string(body, "authority", required=False)
    )
    return json_response(created, status=201, headers=_NO_STORE)


@routes.get("/api/v1/admin/users")
@operation("List console users", tags=("credentials",), auth=("bearer",), query=PAGING, responses={200: ok("UserList")})
async def list_users(request: web.Request) -> web.Response:
    await require(request, "admin")
    limit, offset = paging(request)
    items = await accounts.list_users(request.app[DATABASE], limit, offset)
    return json_response({"items": items, "limit": limit, "offset": offset})


@routes.post(r"/api/v1/admin/users/{id:\d+}/{change:disable|enable}")
@operation(
    "Disable (ending their sessions) or enable a console user",
    tags=("credentials",),
    auth=("bearer",),
    path=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, where="path"),),
    responses={200: ok("User")},
)
async def disable_user(request: web.Request) -> web.Response:
    await require(request, "admin")
    change = accounts.disable_user if request.match_info["change"] == "disable" else accounts.enable_user
    return json_response(await change(request.app[DATABASE], _id(request)))


@routes.post(r"/api/v1/admin/users/{id:\d+}/password")
@operation(
    "Set a console user's password (ending their sessions)",
    tags=("credentials",),
    auth=("bearer",),
    path=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, where="path"),),
    body=schemas.ref("PasswordRequest"),
    responses={200: ok("User")},
)
async def set_password(request: web.Request) -> web.Response:
    await require(request, "admin")
    password = _string(_object(await read_json(request)), "password")
    assert password is not None
    return json_response(await accounts.set_password(request.app[DATABASE], _id(request), password))


@routes.post(r"/api/v1/admin/users/{id:\d+}/authority")
@operation(
    "Set the authority a console user acts for",
    tags=("credentials",),
    auth=("bearer",),
    path=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, where="path"),),
    body=schemas.ref("AuthorityRequest"),
    responses={200: ok("User")},
)
async def set_authority(request: web.Request) -> web.Response:
    await require(request, "admin")
    authority = _string(_object(await read_json(request)), "authority")
    assert authority is not None
    return json_response(await accounts.set_authority(request.app[DATABASE], _id(request), authority))


# -- the access log --------------------------------------------------------------------------------


@routes.get("/api/v1/admin/access-log")
@operation(
    "Read the access log, newest first",
    tags=("credentials",),
    auth=("bearer",),
    query=(
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        Param("action", {"enum": ["view", "trace", "export", "recall"]}),
        Param("target", {"type": "string", "maxLength": 100}),
        Param("actor_kind", {"enum": ["token", "user", "device", "station"]}),
        Param("actor_id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
        Param("since", {"type": "string", "format": "date-time"}),
        Param("until", {"type": "string", "format": "date-time"}),
        Param("before", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
    ),
    responses={200: ok("AccessLog")},
)
async def read_access_log(request: web.Request) -> web.Response:
    await require(request, "admin")
    limit, _ = paging(request)
    query = {k: v for k, v in request.query.items() if k != "limit"}
    return json_response(await access_log.list_access(request.app[DATABASE], query, limit))
