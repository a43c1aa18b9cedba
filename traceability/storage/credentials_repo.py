"""API credentials' lifecycle (issue, list, revoke, rotate) and the notification that tells every process."""

from __future__ import annotations

from datetime import datetime, timedelta

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


ANNOUNCE = "SELECT n, pg_notify($1, n::text) FROM (SELECT nextval('credential_changes') AS n) c"


async def announce_change(conn: Connection, channel: str) -> int:
    """Number this credential change and tell every listening process at commit; returns the number."""
    row = await fetch_one(conn, ANNOUNCE, channel)
    number: int = row["n"]
    return number


REGISTER = """
WITH gone AS (DELETE FROM credential_listeners WHERE seen_at < now() - interval '1 day')
INSERT INTO credential_listeners (listener, acked, seen_at)
SELECT $1, CASE WHEN is_called THEN last_value ELSE 0 END, now() FROM credential_changes
ON CONFLICT (listener) DO UPDATE SET acked = excluded.acked, seen_at = excluded.seen_at
"""


async def register_listener(conn: Connection, listener: str) -> None:
    """A process starts listening: it has nothing cached, so it is up to date with every change so far."""
    await conn.execute(REGISTER, listener)


async def ack_change(conn: Connection, listener: str, number: int) -> None:
    """A process dropped its cache after change ``number``."""
    await conn.execute(
        "UPDATE credential_listeners SET acked = greatest(acked, $2), seen_at = now() WHERE listener = $1",
        listener,
        number,
    )


async def listener_seen(conn: Connection, listener: str) -> None:
    await conn.execute("UPDATE credential_listeners SET seen_at = now() WHERE listener = $1", listener)


async def forget_listener(conn: Connection, listener: str) -> None:
    await conn.execute("DELETE FROM credential_listeners WHERE listener = $1", listener)


BEHIND = """
SELECT count(*) FROM credential_listeners
WHERE acked < $1 AND seen_at > now() - $2::interval
"""


async def listeners_behind(conn: Connection, number: int, alive_within: timedelta) -> int:
    """Live listening processes that have not yet acted on change ``number``."""
    value: int = await conn.fetchval(BEHIND, number, alive_within)
    return value
