"""Credentials: issuing them (shown once, stored as SHA-256) and resolving a bearer token."""

from __future__ import annotations

import hashlib
import secrets

from traceability import errors
from traceability.domain.access import Principal
from traceability.storage import registry_repo
from traceability.storage.database import Database

DEVICE_PREFIX = "tdv_"
TOKEN_PREFIX = "tak_"
ROLES = ("admin", "regulator", "enterprise")


def new_secret(prefix: str) -> tuple[str, bytes]:
    """A fresh credential (256 random bits) and the hash that is stored."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def authenticate(db: Database, token: str) -> Principal:
    """Resolve a bearer token or raise Unauthorized (the message never echoes the token)."""
    if not token.startswith((DEVICE_PREFIX, TOKEN_PREFIX)) or len(token) > 200:
        raise errors.Unauthorized("the credential is not one this server issues")
    async with db.acquire() as conn:
        row = await registry_repo.find_principal(conn, token_hash(token))
    if row is None:
        raise errors.Unauthorized("the credential is unknown or revoked")
    return Principal(
        role=row["role"], id=row["id"], name=row["name"], enterprise_id=row["enterprise_id"],
        uscc=row["uscc"], node_id=row["node_id"], node_code=row["node_code"], area_code=row["area_code"],
        operator_id=row["operator_id"], operator_code=row["operator_code"],
    )


async def create_token(db: Database, role: str, name: str, enterprise_uscc: str | None = None) -> tuple[str, int]:
    """Issue an API credential for a person or system; returns (token, id). The token is shown once."""
    if role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    if not name.strip():
        raise errors.InvalidField("name must not be empty", field="name")
    async with db.acquire() as conn:
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
    async with db.acquire() as conn:
        if await registry_repo.count_admin_tokens(conn):
            return None
    token, _ = await create_token(db, "admin", "first administrator")
    return token
