"""Web sign-in: console users with argon2id passwords, sessions, CSRF tokens and lockout.

A console user (a regulator at a desk) signs in with a name and password; a vendor's stall signs in
with its stall card (the QR code its station printed) and the PIN the vendor chose at the station,
never with a pasted credential. Both get a session: a 256-bit random token for an HttpOnly
cookie (only its SHA-256 is stored) and a CSRF token that every form posts back.

Limits (:mod:`traceability.domain.limits`, applied by :mod:`traceability.services.throttle`): each
attempt is counted in the database before the password or PIN is checked, per account (or card) and
source address, per source and per account; past a limit attempts are refused (429) whether or not
the password is right. Every attempt is also kept in ``login_attempts`` for the record. A stall card
is locked for everyone after ``MAX_FAILURES`` wrong PINs (whoever guesses holds the card).

Lifecycle: administrators list, disable and enable console users, set a user's password and the
authority a regulator acts for; a user changes their own password by giving the current one.
Disabling a user or changing a password ends the user's sessions at once.
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
from traceability.domain import limits, stations
from traceability.domain.access import Principal
from traceability.domain.fields import utc_ms
from traceability.logging import get_logger
from traceability.services import principals, throttle
from traceability.storage import accounts_repo, registry_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

ROLES = ("regulator", "admin")
MAX_FAILURES = limits.PAIR_FAILURES
LOCKOUT = limits.WINDOW
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


LockedOut = errors.LockedOut


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


def _check_authority(role: str, authority: str | None) -> str | None:
    if authority is not None:
        authority = authority.strip()
        if not 1 <= len(authority) <= 100:
            raise errors.InvalidField("authority must be 1 to 100 characters", field="authority")
    if role == "regulator" and not authority:
        raise errors.InvalidField(
            "authority: a regulator acts for an authority, which public records name (e.g. 徐州市市场监督管理局)",
            field="authority",
        )
    return authority


async def create_user(
    db: Database, name: str, role: str, password: str, authority: str | None = None
) -> dict[str, object]:
    """Add a console user; the password is stored only as an argon2id hash. Regulators name their authority."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise errors.InvalidField("name must be 1 to 100 characters", field="name")
    if role not in ROLES:
        raise errors.InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
    authority = _check_authority(role, authority)
    _check_password_rules(password)
    digest = await asyncio.to_thread(_hash, password)
    async with db.connection() as conn:
        row = await accounts_repo.insert_user(conn, name, role, digest, authority)
    log.info("console_user.created", user_id=row["id"], role=role)
    return describe_user(row)


def describe_user(row: Record) -> dict[str, object]:
    """A console user as administrators see them (never the password hash)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "authority": row["authority"],
        "created_at": row["created_at"].isoformat(),
        "disabled_at": row["disabled_at"].isoformat() if row["disabled_at"] else None,
        "password_changed_at": row["password_changed_at"].isoformat() if row["password_changed_at"] else None,
    }


async def list_users(db: Database, limit: int = 100, offset: int = 0) -> list[dict[str, object]]:
    async with db.connection() as conn:
        return [describe_user(r) for r in await accounts_repo.list_users(conn, limit, offset)]


async def _change(db: Database, user_id: int, change: str, **values: object) -> dict[str, object]:
    async def work(conn: Connection) -> Record:
        row = await accounts_repo.update_user(conn, user_id, change, **values)
        if row is None:
            raise errors.NotFound(f"no console user {user_id}")
        if change in ("disable", "password"):
            await accounts_repo.end_user_sessions(conn, user_id)
        return row

    row = await db.transaction(work)
    log.info("console_user.changed", user_id=user_id, change=change)
    return describe_user(row)


async def disable_user(db: Database, user_id: int) -> dict[str, object]:
    """Disable a console user: their sessions end now and they can no longer sign in."""
    return await _change(db, user_id, "disable")


async def enable_user(db: Database, user_id: int) -> dict[str, object]:
    return await _change(db, user_id, "enable")


async def set_authority(db: Database, user_id: int, authority: str) -> dict[str, object]:
    """Set the authority a console user acts for (what their recalls name publicly)."""
    return await _change(db, user_id, "authority", authority=_check_authority("regulator", authority))


async def set_password(db: Database, user_id: int, password: str) -> dict[str, object]:
    """An administrator sets a user's password; the user's sessions end."""
    _check_password_rules(password)
    digest = await asyncio.to_thread(_hash, password)
    return await _change(db, user_id, "password", password_hash=digest)


async def change_password(db: Database, user_id: int, current: str, new: str) -> dict[str, object]:
    """A user changes their own password, proving they know the current one; their other sessions end."""
    _check_password_rules(new)
    async with db.connection() as conn:
        user = await accounts_repo.get_user(conn, user_id)
    if user is None or user["disabled_at"] is not None:
        raise errors.NotFound(f"no console user {user_id}")
    if not await asyncio.to_thread(_verify, user["password_hash"], current[:MAX_PASSWORD]):
        raise errors.InvalidField("current_password: is not the current password", field="current_password")
    if current == new:
        raise errors.InvalidField("password: choose a password other than the current one", field="password")
    return await set_password(db, user_id, new)


async def user_id_by_name(db: Database, name: str) -> int:
    async with db.connection() as conn:
        user = await accounts_repo.find_user_any(conn, name.strip())
    if user is None:
        raise errors.NotFound(f"no console user named {name.strip()!r}")
    return int(user["id"])


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
    """Check a console user's password and open a session; refuses (429) what the limits refuse."""
    name = name.strip()[:100]
    if not name or not password or len(password) > MAX_PASSWORD:
        raise errors.Unauthorized("the name or password is wrong")
    source = limits.source_key(remote)
    try:
        await throttle.charge_sign_in(db, name, source)
    except errors.LockedOut:
        async with db.connection() as conn:
            await accounts_repo.insert_attempt(conn, name, remote, False)
        raise
    async with db.connection() as conn:
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
    await throttle.signed_in(db, user["id"], name, source)
    token, csrf = await _open_session(db, user["id"], None, SESSION_LIFETIME)
    log.info("login.succeeded", user_id=user["id"])
    principal = Principal(role=user["role"], id=user["id"], name=user["name"], kind="user", authority=user["authority"])
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
    async with db.connection() as conn:
        found = await accounts_repo.find_vendor_card(conn, _token_hash(token))
    if found is None:
        raise CardInvalid("this stall card is not valid (replaced by a newer card, or revoked)")
    name = f"vendor-card:{found['id']}"
    source = limits.source_key(remote)
    try:
        await throttle.charge_sign_in(db, name, source, account_failures=MAX_FAILURES)
    except errors.LockedOut:
        async with db.connection() as conn:
            await accounts_repo.insert_attempt(conn, name, remote, False)
        raise
    ok = len(pin) <= MAX_PASSWORD and await asyncio.to_thread(_verify, found["pin_hash"], pin)
    async with db.connection() as conn:
        await accounts_repo.insert_attempt(conn, name, remote, ok)
    if not ok:
        log.info("vendor.card_refused", card=found["id"])
        raise PinWrong("the PIN is wrong")
    await throttle.signed_in(db, None, name, source)
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
    return principals.principal_from(device)


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
    principal = Principal(
        role=row["user_role"], id=row["user_id"], name=row["user_name"], kind="user", authority=row["user_authority"]
    )
    return WebSession(principal, row["csrf_token"], "console")


async def sign_out(db: Database, token: str) -> None:
    """End a session (the cookie is cleared by the caller)."""
    async with db.connection() as conn:
        await accounts_repo.end_session(conn, _token_hash(token))
