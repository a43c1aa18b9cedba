"""Web accounts: console users, web sessions (console and vendor) and sign-in attempts."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record, conflicts_as, fetch_one

_USER = "id, name, role, authority, created_at, disabled_at, password_changed_at"

INSERT_USER = f"""
INSERT INTO console_users (name, role, password_hash, authority) VALUES ($1, $2, $3, $4)
RETURNING {_USER}
"""


async def insert_user(conn: Connection, name: str, role: str, password_hash: str, authority: str | None) -> Record:
    """Add a console user; raises AlreadyExists if the name is taken."""
    with conflicts_as(f"a console user named {name!r} already exists", "name"):
        return await fetch_one(conn, INSERT_USER, name, role, password_hash, authority)


SELECT_USER_BY_NAME = """
SELECT id, name, role, authority, password_hash FROM console_users WHERE name = $1 AND disabled_at IS NULL
"""


async def find_user(conn: Connection, name: str) -> Record | None:
    """An active console user by name."""
    return await conn.fetchrow(SELECT_USER_BY_NAME, name)


async def find_user_any(conn: Connection, name: str) -> Record | None:
    """A console user by name, disabled or not."""
    return await conn.fetchrow(f"SELECT {_USER} FROM console_users WHERE name = $1", name)


async def get_user(conn: Connection, user_id: int) -> Record | None:
    """A console user by id, with the password hash (to check a password change)."""
    return await conn.fetchrow(f"SELECT {_USER}, password_hash FROM console_users WHERE id = $1", user_id)


async def list_users(conn: Connection, limit: int, offset: int) -> list[Record]:
    return list(await conn.fetch(f"SELECT {_USER} FROM console_users ORDER BY id LIMIT $1 OFFSET $2", limit, offset))


_UPDATES = {
    "disable": "disabled_at = coalesce(disabled_at, now())",
    "enable": "disabled_at = NULL",
    "authority": "authority = $2",
    "password": "password_hash = $2, password_changed_at = now()",
}


async def update_user(conn: Connection, user_id: int, change: str, **values: object) -> Record | None:
    """Disable, enable, set the authority of, or set the password of a console user (None: no such user)."""
    query = f"UPDATE console_users SET {_UPDATES[change]} WHERE id = $1 RETURNING {_USER}"
    args = [values[k] for k in ("authority", "password_hash") if k in values]
    return await conn.fetchrow(query, user_id, *args)


END_USER_SESSIONS = "UPDATE web_sessions SET ended_at = now() WHERE user_id = $1 AND ended_at IS NULL"


async def end_user_sessions(conn: Connection, user_id: int) -> None:
    """End every live session of a console user (disabled, or the password changed)."""
    await conn.execute(END_USER_SESSIONS, user_id)


STORE_REHASH = "UPDATE console_users SET password_hash = $2 WHERE id = $1"


async def update_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    """Store a re-hashed password (after the hashing parameters were raised)."""
    await conn.execute(STORE_REHASH, user_id, password_hash)


INSERT_ATTEMPT = "INSERT INTO login_attempts (name, remote, succeeded) VALUES ($1, $2, $3)"


async def insert_attempt(conn: Connection, name: str, remote: str | None, succeeded: bool) -> None:
    await conn.execute(INSERT_ATTEMPT, name, remote, succeeded)


INSERT_SESSION = """
INSERT INTO web_sessions (token_hash, csrf_token, user_id, device_token_hash, expires_at, vendor_card_id)
VALUES ($1, $2, $3, $4, $5, $6)
"""


async def insert_session(
    conn: Connection,
    token_hash: bytes,
    csrf_token: str,
    user_id: int | None,
    device_token_hash: bytes | None,
    expires_at: datetime,
    vendor_card_id: int | None = None,
) -> None:
    """Open a web session for a console user or for a vendor's device (exactly one of the two).

    A vendor session opened with a stall card also names the card, so revoking the card ends it.
    """
    await conn.execute(INSERT_SESSION, token_hash, csrf_token, user_id, device_token_hash, expires_at, vendor_card_id)


SELECT_SESSION = """
SELECT s.id, s.csrf_token, s.device_token_hash, s.expires_at,
       u.id AS user_id, u.name AS user_name, u.role AS user_role, u.authority AS user_authority
FROM web_sessions s
LEFT JOIN console_users u ON u.id = s.user_id AND u.disabled_at IS NULL
LEFT JOIN vendor_cards c ON c.id = s.vendor_card_id
WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
  AND (s.vendor_card_id IS NULL OR c.revoked_at IS NULL)
"""


async def find_session(conn: Connection, token_hash: bytes) -> Record | None:
    """A live session by the hash of its cookie token, with its user if it is a console session."""
    return await conn.fetchrow(SELECT_SESSION, token_hash)


END_SESSION = "UPDATE web_sessions SET ended_at = now() WHERE token_hash = $1 AND ended_at IS NULL"


async def end_session(conn: Connection, token_hash: bytes) -> None:
    await conn.execute(END_SESSION, token_hash)


# -- stall cards ------------------------------------------------------------------------------------

REVOKE_LIVE_CARDS = "UPDATE vendor_cards SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL"
INSERT_CARD = """
INSERT INTO vendor_cards (device_id, token_hash, pin_hash) VALUES ($1, $2, $3) RETURNING id, created_at
"""


async def replace_vendor_card(conn: Connection, device_id: int, token_hash: bytes, pin_hash: str) -> Record:
    """Issue a device's stall card, revoking the one it had (call inside a transaction)."""
    await conn.execute(REVOKE_LIVE_CARDS, device_id)
    return await fetch_one(conn, INSERT_CARD, device_id, token_hash, pin_hash)


SELECT_CARD = """
SELECT c.id, c.device_id, c.pin_hash, d.token_hash AS device_token_hash
FROM vendor_cards c JOIN devices d ON d.id = c.device_id
WHERE c.token_hash = $1 AND c.revoked_at IS NULL AND d.revoked_at IS NULL
"""


async def find_vendor_card(conn: Connection, token_hash: bytes) -> Record | None:
    """A live stall card (of a live device) by the hash of its token."""
    return await conn.fetchrow(SELECT_CARD, token_hash)
