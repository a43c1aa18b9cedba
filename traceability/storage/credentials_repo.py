"""API credentials' lifecycle (issue, list, revoke, rotate) and the notification that tells every process."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record, fetch_one

INSERT_TOKEN = """
INSERT INTO api_tokens (role, name, enterprise_id, token_hash, authority, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, role, name, created_at
"""  # noqa: S105 -- SQL text, not a secret


async def insert_token(
    conn: Connection,
    role: str,
    name: str,
    enterprise_id: int | None,
    token_hash: bytes,
    *,
    authority: str | None,
    expires_at: datetime | None,
) -> Record:
    """Store a new API credential (its SHA-256 only)."""
    return await fetch_one(conn, INSERT_TOKEN, role, name, enterprise_id, token_hash, authority, expires_at)


_COLUMNS = """
t.id, t.role, t.name, t.authority, t.enterprise_id, e.uscc, t.created_at, t.expires_at, t.revoked_at, t.replaced_by
"""

SELECT_TOKENS = f"""
SELECT {_COLUMNS}
FROM api_tokens t LEFT JOIN enterprises e ON e.id = t.enterprise_id
WHERE ($1::text IS NULL
       OR ($1 = 'active' AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()))
       OR ($1 = 'revoked' AND t.revoked_at IS NOT NULL)
       OR ($1 = 'expired' AND t.revoked_at IS NULL AND t.expires_at <= now()))
  AND ($2::text IS NULL OR t.role = $2)
ORDER BY t.id DESC LIMIT $3 OFFSET $4
"""


async def list_tokens(conn: Connection, state: str | None, role: str | None, limit: int, offset: int) -> list[Record]:
    """API credentials, newest first, filtered by state (active, revoked, expired) and role."""
    return list(await conn.fetch(SELECT_TOKENS, state, role, limit, offset))


async def get_token(conn: Connection, token_id: int) -> Record:
    """One API credential by id (it must exist)."""
    return await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM api_tokens t LEFT JOIN enterprises e ON e.id = t.enterprise_id WHERE t.id = $1",
        token_id,
    )


LOCK_ACTIVE = """
SELECT id, role, name, authority, enterprise_id, expires_at FROM api_tokens
WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
FOR UPDATE
"""


async def lock_active_token(conn: Connection, token_id: int) -> Record | None:
    """An active credential, row-locked for the rest of the transaction (rotation)."""
    return await conn.fetchrow(LOCK_ACTIVE, token_id)


REVOKE = f"""
WITH revoked AS (
    UPDATE api_tokens SET revoked_at = now(), replaced_by = $2
    WHERE id = $1 AND revoked_at IS NULL
    RETURNING *
)
SELECT {_COLUMNS} FROM revoked t LEFT JOIN enterprises e ON e.id = t.enterprise_id
"""


async def revoke_token(conn: Connection, token_id: int, replaced_by: int | None = None) -> Record | None:
    """Revoke a credential (None if there is no unrevoked credential with that id)."""
    return await conn.fetchrow(REVOKE, token_id, replaced_by)


FIND_ID = """
SELECT id FROM api_tokens
WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""


async def find_token_id(conn: Connection, token_hash: bytes) -> int | None:
    """The id of the active credential with this hash."""
    value: int | None = await conn.fetchval(FIND_ID, token_hash)
    return value


async def notify_changed(conn: Connection, channel: str) -> None:
    """Tell every server process (at commit) that credentials changed, so they drop what they cached."""
    await conn.execute("SELECT pg_notify($1, '')", channel)
