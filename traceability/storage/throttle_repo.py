"""Failure counts for sign-in and credential limits, kept where every server process sees the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from traceability.storage.database import Connection, Record

# One atomic upsert per key: a count whose last failure is older than the window starts again at 1.
# Keys are charged in the order given, so concurrent charges lock rows in one order (no deadlock).
CHARGE = """
INSERT INTO auth_throttle AS t (scope, key, failures, last_failure)
SELECT u.scope, u.key, 1, now() FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(scope, key, n)
ORDER BY u.n
ON CONFLICT (scope, key) DO UPDATE
SET failures = CASE WHEN t.last_failure < now() - $3::interval THEN 1 ELSE t.failures + 1 END,
    last_failure = now()
RETURNING scope, failures, last_failure
"""


async def charge(conn: Connection, keys: Sequence[tuple[str, str]], window: timedelta) -> dict[str, Record]:
    """Count one more failure against each (scope, key); returns each scope's row after counting."""
    rows = await conn.fetch(CHARGE, [k[0] for k in keys], [k[1] for k in keys], window)
    return {r["scope"]: r for r in rows}


REFUND = """
UPDATE auth_throttle SET failures = CASE WHEN scope = 'pair' THEN 0 ELSE greatest(failures - 1, 0) END
WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


async def refund(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    """A success: the pair's count starts again, the source's and account's forget this one attempt."""
    await conn.execute(REFUND, [k[0] for k in keys], [k[1] for k in keys])


KNOWN_SOURCE = """
SELECT EXISTS (
    SELECT 1 FROM sign_in_sources s JOIN console_users u ON u.id = s.user_id
    WHERE u.name = $1 AND s.source = $2 AND s.last_success_at > now() - $3::interval
)
"""


async def known_source(conn: Connection, name: str, source: str, within: timedelta) -> bool:
    """Whether the account named ``name`` signed in from ``source`` within ``within``."""
    value: bool = await conn.fetchval(KNOWN_SOURCE, name, source, within)
    return value


REMEMBER_SOURCE = """
INSERT INTO sign_in_sources (user_id, source, last_success_at) VALUES ($1, $2, now())
ON CONFLICT (user_id, source) DO UPDATE SET last_success_at = excluded.last_success_at
"""


async def remember_source(conn: Connection, user_id: int, source: str) -> None:
    await conn.execute(REMEMBER_SOURCE, user_id, source)


FORGET_OLD = "DELETE FROM auth_throttle WHERE last_failure < now() - $1::interval"


async def forget_old(conn: Connection, older_than: timedelta) -> None:
    """Drop counts nobody has added to for a long time (they would start again at 1 anyway)."""
    await conn.execute(FORGET_OLD, older_than)


async def failures(conn: Connection, scope: str, key: str, window: timedelta) -> tuple[int, datetime | None]:
    """The current count for (scope, key) within the window, and its last failure."""
    row = await conn.fetchrow(
        "SELECT failures, last_failure FROM auth_throttle WHERE scope = $1 AND key = $2 "
        "AND last_failure >= now() - $3::interval",
        scope,
        key,
        window,
    )
    return (int(row["failures"]), row["last_failure"]) if row else (0, None)
