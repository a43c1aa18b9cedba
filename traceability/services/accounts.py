"""Web sign-in: console users with argon2id passwords, sessions, CSRF tokens and lockout.

A console user (a regulator at a desk) signs in with a name and password; a vendor's stall signs in
with its stall card (the QR code its station printed) and the PIN the vendor chose at the station,
never with a pasted credential. Both get a session: a 256-bit random token for an HttpOnly
cookie (only its SHA-256 is stored) and a CSRF token that every form posts back.

Lockout: after ``MAX_FAILURES`` failed attempts for one account name within ``LOCKOUT``, further
attempts are refused until ``LOCKOUT`` has passed since the last failure, whether or not the
password is right. A success resets the count.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from traceability import errors
from traceability.domain import stations
from traceability.domain.access import Principal
from traceability.domain.fields import utc_ms
from traceability.logging import get_logger
from traceability.storage import accounts_repo, registry_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

ROLES = ("regulator", "admin")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
VENDOR_SESSION_LIFETIME = timedelta(hours=16)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, 64 MiB, t=3, p=4).
_hasher = PasswordHasher()
# Verified against when the account does not exist, so a wrong name costs as much time as a wrong password.
# Each argon2id hash or check holds 64 MiB while it runs: at most two at once keeps a server
# process's memory bounded however many people sign in together.
_ARGON2_SLOTS = threading.BoundedSemaphore(2)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, so they cost what a wrong password costs (made on first use)."""
    return _hash("no such account: this hash only equalises timing")


def _hash(password: str) -> str:
    with _ARGON2_SLOTS:
        return _hasher.hash(password)


class LockedOut(errors.TraceError):
    """Too many failed sign-in attempts; wait before trying again."""

    status = 429
    code = "locked_out"

    def __init__(self, message: str, *, minutes: int = 15) -> None:
        super().__init__(message)
        self.minutes = minutes


class CardInvalid(errors.Unauthorized):
    """Not a stall card, or a card replaced by a newer one or revoked."""

    code = "card_invalid"


class PinWrong(errors.Unauthorized):
    """The stall card's PIN is wrong."""

    code = "pin_wrong"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: who it is, and the CSRF token its forms must carry."""

    principal: Principal
    csrf_token: str
    kind: str  # "console" or "vendor"

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf_token.encode())


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: the cookie token (shown once, to the browser) and the session itself."""

    token: str
    session: WebSession


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise errors.InvalidField(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")


async def create_user(db: Database, name: str, role: str, password: str) -> dict[str, object]:
    """Add a console user; the password is stored only as an argon2id hash."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise errors.InvalidField("name must be 1 to 100 characters", field="name")
    if role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    _check_password_rules(password)
    digest = await asyncio.to_thread(_hash, password)
    async with db.connection() as conn:
        row = await accounts_repo.insert_user(conn, name, role, digest)
    log.info("console_user.created", user_id=row["id"], role=role)
    return {"id": row["id"], "name": row["name"], "role": row["role"], "created_at": row["created_at"].isoformat()}


def _verify(password_hash: str | None, password: str) -> bool:
    """Check a password (runs in a thread); an unknown name is checked against a dummy hash and fails."""
    if password_hash is None:
        _verify(_dummy_hash(), password)
        return False
    try:
        with _ARGON2_SLOTS:
            return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def _open_session(
    db: Database, user_id: int | None, device_hash: bytes | None, lifetime: timedelta, card_id: int | None = None
) -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with db.connection() as conn:
        await accounts_repo.insert_session(
            conn, _token_hash(token), csrf, user_id, device_hash, datetime.now(UTC) + lifetime, card_id
        )
    return token, csrf


async def sign_in(db: Database, name: str, password: str, remote: str | None) -> Opened:
    """Check a console user's password and open a session; refuses locked accounts (429)."""
    name = name.strip()[:100]
    if not name or not password or len(password) > MAX_PASSWORD:
        raise errors.Unauthorized("the name or password is wrong")
    now = datetime.now(UTC)
    async with db.connection() as conn:
        recent = await accounts_repo.count_recent_failures(conn, name, now - LOCKOUT)
        if recent["failures"] >= MAX_FAILURES:
            await accounts_repo.insert_attempt(conn, name, remote, False)
            until = recent["last_failure"] + LOCKOUT
            minutes = max(1, int((until - now).total_seconds() // 60) + 1)
            log.warning("login.locked_out", failures=int(recent["failures"]))
            raise LockedOut(
                f"too many failed attempts; try again in {minutes} minutes (登录失败次数过多，请 {minutes} 分钟后再试)",
                minutes=minutes,
            )
        user = await accounts_repo.find_user(conn, name)
    ok = await asyncio.to_thread(_verify, user["password_hash"] if user else None, password)
    ok = ok and user is not None
    async with db.connection() as conn:
        await accounts_repo.insert_attempt(conn, name, remote, ok)
        if ok and user is not None and _hasher.check_needs_rehash(user["password_hash"]):
            await accounts_repo.update_password_hash(conn, user["id"], await asyncio.to_thread(_hash, password))
    if not ok or user is None:
        log.info("login.failed")
        raise errors.Unauthorized("the name or password is wrong")
    token, csrf = await _open_session(db, user["id"], None, SESSION_LIFETIME)
    log.info("login.succeeded", user_id=user["id"])
    principal = Principal(role=user["role"], id=user["id"], name=user["name"])
    return Opened(token, WebSession(principal, csrf, "console"))


async def issue_vendor_card(db: Database, principal: Principal, body: object) -> dict[str, object]:
    """A stall card for the calling station: its QR text (shown once) and the stall it signs in to.

    The PIN is chosen by the vendor at the station; only its argon2id hash is kept. The station's
    earlier card stops working.
    """
    if principal.role != "device":
        raise errors.Forbidden("a stall card is issued to a station")
    pin = body.get("pin") if isinstance(body, dict) else None
    if not isinstance(pin, str):
        raise errors.InvalidField(f"pin: is required, {stations.PIN_DIGITS} digits", field="pin")
    if (problem := stations.pin_problem(pin)) is not None:
        raise errors.InvalidField(f"pin: {problem}", field="pin")
    token = stations.CARD_TOKEN_PREFIX + secrets.token_urlsafe(24)
    pin_hash = await asyncio.to_thread(_hash, pin)

    async def issue(conn: Connection) -> Record:
        return await accounts_repo.replace_vendor_card(conn, principal.id, _token_hash(token), pin_hash)

    card = await db.transaction(issue)
    log.info("vendor.card_issued", device=principal.id, card=card["id"])
    return {"card": stations.card_payload(token), "issuedAt": utc_ms(card["created_at"])}


async def sign_in_vendor_card(db: Database, card: str, pin: str, remote: str | None) -> Opened:
    """Open a vendor session with a stall card's QR text and its PIN; five wrong PINs lock the card a while."""
    token = stations.card_token(card)
    if token is None:
        raise CardInvalid("this is not a stall card's QR code")
    now = datetime.now(UTC)
    async with db.connection() as conn:
        found = await accounts_repo.find_vendor_card(conn, _token_hash(token))
        if found is None:
            raise CardInvalid("this stall card is not valid (replaced by a newer card, or revoked)")
        name = f"vendor-card:{found['id']}"
        recent = await accounts_repo.count_recent_failures(conn, name, now - LOCKOUT)
        if recent["failures"] >= MAX_FAILURES:
            await accounts_repo.insert_attempt(conn, name, remote, False)
            until = recent["last_failure"] + LOCKOUT
            minutes = max(1, int((until - now).total_seconds() // 60) + 1)
            raise LockedOut(f"too many wrong PINs; try again in {minutes} minutes", minutes=minutes)
    ok = len(pin) <= MAX_PASSWORD and await asyncio.to_thread(_verify, found["pin_hash"], pin)
    async with db.connection() as conn:
        await accounts_repo.insert_attempt(conn, name, remote, ok)
    if not ok:
        log.info("vendor.card_refused", card=found["id"])
        raise PinWrong("the PIN is wrong")
    session, csrf = await _open_session(
        db, None, found["device_token_hash"], VENDOR_SESSION_LIFETIME, card_id=found["id"]
    )
    async with db.connection() as conn:
        device = await registry_repo.find_principal(conn, found["device_token_hash"])
    if device is None:
        raise CardInvalid("this stall card's station was revoked")
    log.info("vendor.signed_in", device=found["device_id"], card=found["id"])
    return Opened(session, WebSession(_device_principal(device), csrf, "vendor"))


def _device_principal(device: Record) -> Principal:
    return Principal(
        role=device["role"],
        id=device["id"],
        name=device["name"],
        enterprise_id=device["enterprise_id"],
        uscc=device["uscc"],
        node_id=device["node_id"],
        node_code=device["node_code"],
        area_code=device["area_code"],
        operator_id=device["operator_id"],
        operator_code=device["operator_code"],
    )


async def resolve(db: Database, token: str) -> WebSession | None:
    """The live session a cookie token names, or None (expired, ended, unknown, device revoked)."""
    if not token or len(token) > 100:
        return None
    async with db.connection() as conn:
        row = await accounts_repo.find_session(conn, _token_hash(token))
        if row is None:
            return None
        if row["device_token_hash"] is not None:
            device = await registry_repo.find_principal(conn, row["device_token_hash"])
            if device is None:
                return None
            return WebSession(_device_principal(device), row["csrf_token"], "vendor")
    if row["user_id"] is None:
        return None
    return WebSession(
        Principal(role=row["user_role"], id=row["user_id"], name=row["user_name"]), row["csrf_token"], "console"
    )


async def sign_out(db: Database, token: str) -> None:
    """End a session (the cookie is cleared by the caller)."""
    async with db.connection() as conn:
        await accounts_repo.end_session(conn, _token_hash(token))
