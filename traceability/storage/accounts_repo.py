"""Web accounts: console users, web sessions (console and vendor) and sign-in attempts."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record, conflicts_as, fetch_one

INSERT_USER = """
INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3)
RETURNING id, name, role, created_at
"""


async def insert_user(conn: Connection, name: str, role: str, password_hash: str) -> Record:
    """Add a console user; raises AlreadyExists if the name is taken."""
    with conflicts_as(f"a console user named {name!r} already exists", "name"):
        return await fetch_one(conn, INSERT_USER, name, role, password_hash)


SELECT_USER_BY_NAME = """
SELECT id, name, role, password_hash FROM console_users WHERE name = $1 AND disabled_at IS NULL
"""


async def find_user(conn: Connection, name: str) -> Record | None:
    """An active console user by name."""
    return await conn.fetchrow(SELECT_USER_BY_NAME, name)


STORE_REHASH = "UPDATE console_users SET password_hash = $2 WHERE id = $1"


async def update_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    """Store a re-hashed password (after the hashing parameters were raised)."""
    await conn.execute(STORE_REHASH, user_id, password_hash)


COUNT_FAILURES = """
SELECT count(*) AS failures, max(attempted_at) AS last_failure
FROM login_attempts
WHERE name = $1 AND NOT succeeded AND attempted_at > $2
  AND attempted_at > coalesce((SELECT max(attempted_at) FROM login_attempts
                               WHERE name = $1 AND succeeded), '-infinity')
"""


async def count_recent_failures(conn: Connection, name: str, since: datetime) -> Record:
    """Failed attempts for ``name`` since ``since`` and since its last success, and the latest one's time."""
    return await fetch_one(conn, COUNT_FAILURES, name, since)


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
       u.id AS user_id, u.name AS user_name, u.role AS user_role
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
