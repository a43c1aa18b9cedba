"""Credentials: issuing them (shown once, stored as SHA-256) and resolving a bearer token."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict

from traceability import errors
from traceability.domain.access import Principal
from traceability.storage import registry_repo
from traceability.storage.database import Database

DEVICE_PREFIX = "tdv_"
TOKEN_PREFIX = "tak_"  # noqa: S105 -- a public token prefix, not a secret
ROLES = ("admin", "regulator", "enterprise")


def new_secret(prefix: str) -> tuple[str, bytes]:
    """A fresh credential (256 random bits) and the hash that is stored."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PrincipalCache:
    """Resolved credentials, kept briefly so a scanner's every scan does not cost a database read.

    Entries live ``ttl`` seconds; revoking in this process clears the cache at once, and other
    server processes stop accepting a revoked credential within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: bytes, principal: Principal) -> None:
        self._entries[digest] = (time.monotonic() + self.ttl, principal)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


async def authenticate(db: Database, token: str, cache: PrincipalCache | None = None) -> Principal:
    """Resolve a bearer token or raise Unauthorized (the message never echoes the token)."""
    if not token.startswith((DEVICE_PREFIX, TOKEN_PREFIX)) or len(token) > 200:
        raise errors.Unauthorized("the credential is not one this server issues")
    digest = token_hash(token)
    if cache is not None and (known := cache.get(digest)) is not None:
        return known
    async with db.connection() as conn:
        row = await registry_repo.find_principal(conn, digest)
    if row is None:
        raise errors.Unauthorized("the credential is unknown or revoked")
    principal = Principal(
        role=row["role"],
        id=row["id"],
        name=row["name"],
        enterprise_id=row["enterprise_id"],
        uscc=row["uscc"],
        node_id=row["node_id"],
        node_code=row["node_code"],
        area_code=row["area_code"],
        operator_id=row["operator_id"],
        operator_code=row["operator_code"],
    )
    if cache is not None:
        cache.put(digest, principal)
    return principal


async def create_token(db: Database, role: str, name: str, enterprise_uscc: str | None = None) -> tuple[str, int]:
    """Issue an API credential for a person or system; returns (token, id). The token is shown once."""
    if role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    if not name.strip():
        raise errors.InvalidField("name must not be empty", field="name")
    async with db.connection() as conn:
        enterprise_id = None
        if role == "enterprise":
            if not enterprise_uscc:
                raise errors.InvalidField("an enterprise credential names its enterprise", field="enterprise")
            enterprise_id = await registry_repo.find_enterprise_id(conn, enterprise_uscc)
            if enterprise_id is None:
                raise errors.UnknownReference(f"no enterprise {enterprise_uscc}", field="enterprise")
        token, digest = new_secret(TOKEN_PREFIX)
        row = await registry_repo.insert_api_token(conn, role, name.strip(), enterprise_id, digest)
    return token, int(row["id"])


async def ensure_admin_token(db: Database) -> str | None:
    """On a ledger with no administrator yet, issue one and return it (else None)."""
    async with db.connection() as conn:
        if await registry_repo.count_admin_tokens(conn):
            return None
    token, _ = await create_token(db, "admin", "first administrator")
    return token
