"""Credentials: issuing them (shown once, stored as SHA-256), resolving a bearer token, and their lifecycle.

API credentials (``tak_…``) for administrators, regulators and enterprises may carry an expiry;
they are listed, revoked and rotated (a new credential with the same role, name and authority; the
old one refused from that moment) by the CLI and the admin API alike. Scanner devices (``tdv_…``)
are revoked through the registry.

Resolved credentials are cached for a few seconds in each server process. Every change that can
take a credential away (revocation, rotation, a device revoked) is numbered and announced to every
process through PostgreSQL (``NOTIFY`` on :data:`CHANNEL`, in the same transaction as the change).
Each process empties its cache when told and records that it did (``credential_listeners``); the
change is answered only once every live process has (or after :data:`ACK_WAIT`, logged). A process
caches nothing while it is not listening (the listening connection lost, the database restarting).
So when a revocation has been answered, every worker refuses the credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from traceability import errors
from traceability.domain.access import Principal
from traceability.logging import get_logger
from traceability.services.together import ReadTogether
from traceability.storage import credentials_repo, registry_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)
T = TypeVar("T")

DEVICE_PREFIX = "tdv_"
TOKEN_PREFIX = "tak_"  # noqa: S105 -- a public token prefix, not a secret
ROLES = ("admin", "regulator", "enterprise")
CHANNEL = "trace_credentials"
MAX_NAME = 100
ACK_WAIT = 5.0
"""Seconds a credential change waits for every live process to drop its cache."""
ALIVE_WITHIN = timedelta(seconds=15)
"""A listening process that has not checked in for this long counts as gone (killed)."""


def new_secret(prefix: str) -> tuple[str, bytes]:
    """A fresh credential (256 random bits) and the hash that is stored."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PrincipalCache:
    """Resolved credentials, kept briefly so a scanner's every scan does not cost a database read.

    Entries live ``ttl`` seconds (never past the credential's expiry). The cache answers only while
    ``listening`` (this process hears :data:`CHANNEL`); :meth:`clear` runs on every notification. A
    lookup that started before a clear is not stored after it (``generation``), so a revocation that
    lands while a lookup is in flight cannot be undone by that lookup's stale answer.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self.listening = False
        self.generation = 0
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self.reads: ReadTogether[bytes, Record] = ReadTogether(registry_repo.find_principals)
        """Where a credential not cached is looked up: with the others asked for at the same time, in one
        statement (a crowd of scanners' entries lapse together)."""

    def get(self, digest: bytes) -> Principal | None:
        if not self.listening:
            return None
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: bytes, principal: Principal, generation: int, expires_at: datetime | None = None) -> None:
        if not self.listening or generation != self.generation:
            return
        until = time.monotonic() + self.ttl
        if expires_at is not None:
            until = min(until, time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds())
        self._entries[digest] = (until, principal)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def set_listening(self, listening: bool) -> None:
        """Called as the notification channel comes and goes; nothing cached survives a gap."""
        self.clear()
        self.listening = listening


def principal_from(row: Record) -> Principal:
    """A principal from a credential lookup row (devices and API tokens share the columns)."""
    return Principal(
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
        kind="device" if row["role"] == "device" else "token",
        authority=row["authority"],
    )


async def authenticate(db: Database, token: str, cache: PrincipalCache | None = None) -> Principal:
    """Resolve a bearer token or raise Unauthorized (the message never echoes the token)."""
    if not token.startswith((DEVICE_PREFIX, TOKEN_PREFIX)) or len(token) > 200:
        raise errors.Unauthorized("the credential is not one this server issues")
    digest = token_hash(token)
    generation = 0
    if cache is not None:
        if (known := cache.get(digest)) is not None:
            return known
        generation = cache.generation
        row = await cache.reads.get(db, digest)
    else:
        async with db.connection() as conn:
            row = await registry_repo.find_principal(conn, digest)
    if row is None:
        raise errors.Unauthorized("the credential is unknown, revoked or expired")
    principal = principal_from(row)
    if cache is not None:
        cache.put(digest, principal, generation, row["expires_at"])
    return principal


class _Watch:
    """This process's listener: empties the cache on each change and records that it did."""

    def __init__(self, cache: PrincipalCache) -> None:
        self.cache = cache
        self.name = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"

    async def connected(self, conn: Connection) -> None:
        await credentials_repo.register_listener(conn, self.name)

    async def notified(self, conn: Connection, payload: str) -> None:
        self.cache.clear()
        if payload.isdigit():
            await credentials_repo.ack_change(conn, self.name, int(payload))

    async def checked(self, conn: Connection) -> None:
        await credentials_repo.listener_seen(conn, self.name)

    def state(self, listening: bool) -> None:
        self.cache.set_listening(listening)


async def watch_revocations(db: Database, cache: PrincipalCache, stop: asyncio.Event) -> None:
    """Keep ``cache`` in step with credential changes made by any process, until ``stop``."""
    watch = _Watch(cache)
    await db.listen(CHANNEL, watch, stop)
    with contextlib.suppress(errors.TraceError):  # a clean stop: this process no longer counts
        async with db.connection() as conn:
            await credentials_repo.forget_listener(conn, watch.name)


async def change_credentials(db: Database, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` (a revocation) in a transaction that announces it; return once every live process
    has dropped its cached credentials (or after :data:`ACK_WAIT`)."""

    async def announced(conn: Connection) -> tuple[T, int]:
        result = await work(conn)
        return result, await credentials_repo.announce_change(conn, CHANNEL)

    result, number = await db.transaction(announced)
    deadline = time.monotonic() + ACK_WAIT
    async with db.connection() as conn:
        while (behind := await credentials_repo.listeners_behind(conn, number, ALIVE_WITHIN)) > 0:
            if time.monotonic() > deadline:
                log.warning("credential.change_unacknowledged", change=number, processes=behind)
                break
            await asyncio.sleep(0.005)
    return result


def _check_name(value: object, field: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_NAME:
        raise errors.InvalidField(f"{field}: must be 1 to {MAX_NAME} characters", field=field)
    return value.strip()


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise errors.InvalidField("expires_at: must be in the future", field="expires_at")


async def create_token(
    db: Database,
    role: str,
    name: str,
    enterprise_uscc: str | None = None,
    *,
    authority: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, int]:
    """Issue an API credential for a person or system; returns (token, id). The token is shown once.

    A regulator's credential names the authority it acts for (by default its name).
    """
    if role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    clean_name = _check_name(name, "name")
    assert clean_name is not None
    clean_authority = _check_name(authority, "authority", required=False)
    if role == "regulator" and clean_authority is None:
        clean_authority = clean_name
    _check_expiry(expires_at)
    async with db.connection() as conn:
        enterprise_id = None
        if role == "enterprise":
            if not enterprise_uscc:
                raise errors.InvalidField("an enterprise credential names its enterprise", field="enterprise")
            enterprise_id = await registry_repo.find_enterprise_id(conn, enterprise_uscc)
            if enterprise_id is None:
                raise errors.UnknownReference(f"no enterprise {enterprise_uscc}", field="enterprise")
        token, digest = new_secret(TOKEN_PREFIX)
        row = await credentials_repo.insert_token(
            conn, role, clean_name, enterprise_id, digest, authority=clean_authority, expires_at=expires_at
        )
    log.info("credential.issued", token_id=row["id"], role=role)
    return token, int(row["id"])


def describe_token(row: Record) -> dict[str, Any]:
    """A credential as the admin list shows it (never its secret or hash)."""
    now = datetime.now(UTC)
    state = "active"
    if row["revoked_at"] is not None:
        state = "revoked"
    elif row["expires_at"] is not None and row["expires_at"] <= now:
        state = "expired"
    return {
        "id": row["id"],
        "role": row["role"],
        "name": row["name"],
        "authority": row["authority"],
        "enterprise": row["uscc"],
        "state": state,
        "created_at": row["created_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
        "replaced_by": row["replaced_by"],
    }


async def get_token(db: Database, token_id: int) -> dict[str, Any]:
    """One API credential as the admin list shows it."""
    async with db.connection() as conn:
        return describe_token(await credentials_repo.get_token(conn, token_id))


async def list_tokens(
    db: Database, *, state: str | None = None, role: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """API credentials, newest first; ``state`` is active, revoked or expired."""
    if state not in (None, "active", "revoked", "expired"):
        raise errors.InvalidField("state must be active, revoked or expired", field="state")
    if role is not None and role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    async with db.connection() as conn:
        rows = await credentials_repo.list_tokens(conn, state, role, limit, offset)
    return [describe_token(r) for r in rows]


async def revoke_token(db: Database, token_id: int) -> dict[str, Any]:
    """Revoke an API credential: refused from now on by every server process."""

    async def revoke(conn: Connection) -> Record:
        row = await credentials_repo.revoke_token(conn, token_id)
        if row is None:
            raise errors.NotFound(f"no active credential {token_id}")
        return row

    row = await change_credentials(db, revoke)
    log.info("credential.revoked", token_id=token_id)
    return describe_token(row)


async def rotate_token(db: Database, token_id: int) -> tuple[str, dict[str, Any]]:
    """Replace a credential with a new one (same role, name, authority, expiry); the old one is refused at once."""
    token, digest = new_secret(TOKEN_PREFIX)

    async def rotate(conn: Connection) -> Record:
        old = await credentials_repo.lock_active_token(conn, token_id)
        if old is None:
            raise errors.NotFound(f"no active credential {token_id}")
        new = await credentials_repo.insert_token(
            conn,
            old["role"],
            old["name"],
            old["enterprise_id"],
            digest,
            authority=old["authority"],
            expires_at=old["expires_at"],
        )
        await credentials_repo.revoke_token(conn, token_id, replaced_by=new["id"])
        return await credentials_repo.get_token(conn, new["id"])

    row = await change_credentials(db, rotate)
    log.info("credential.rotated", token_id=token_id, new_token_id=row["id"])
    return token, describe_token(row)


async def rotate_by_secret(db: Database, token: str) -> tuple[str, dict[str, Any]]:
    """Rotate the credential whose secret is ``token`` (the CLI's ``token rotate-admin``)."""
    async with db.connection() as conn:
        token_id = await credentials_repo.find_token_id(conn, token_hash(token.strip()))
    if token_id is None:
        raise errors.NotFound("that credential is unknown, revoked or expired")
    return await rotate_token(db, token_id)


async def ensure_admin_token(db: Database) -> str | None:
    """On a ledger with no administrator yet, issue one and return it (else None)."""
    async with db.connection() as conn:
        if await registry_repo.count_admin_tokens(conn):
            return None
    token, _ = await create_token(db, "admin", "first administrator")
    return token
