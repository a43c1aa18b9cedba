"""The access log: who read or did what (append-only in the database, like the ledger)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from traceability.storage.database import Connection, Record

INSERT_MANY = """
INSERT INTO access_log (at, actor_kind, actor_id, actor_role, actor_name, authority, action, target, detail,
                        source, request_id)
SELECT at, actor_kind, actor_id, actor_role, actor_name, authority, action, target, detail::jsonb, source, request_id
FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[])
     AS r(at, actor_kind, actor_id, actor_role, actor_name, authority, action, target, detail, source, request_id)
"""


async def insert_access(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append access records in one statement; each row is (at, actor_kind, actor_id, actor_role,
    actor_name, authority, action, target, detail as JSON text, source, request_id)."""
    columns = list(zip(*rows, strict=True))
    await conn.execute(INSERT_MANY, *columns)


SELECT = """
SELECT id, at, actor_kind, actor_id, actor_role, actor_name, authority, action, target, detail, source, request_id
FROM access_log
WHERE ($1::bigint IS NULL OR id < $1)
  AND ($2::text IS NULL OR action = $2)
  AND ($3::text IS NULL OR target = $3)
  AND ($4::text IS NULL OR actor_kind = $4)
  AND ($5::bigint IS NULL OR actor_id = $5)
  AND ($6::timestamptz IS NULL OR at >= $6)
  AND ($7::timestamptz IS NULL OR at < $7)
ORDER BY id DESC
LIMIT $8
"""


async def list_access(
    conn: Connection,
    *,
    before: int | None,
    action: str | None,
    target: str | None,
    actor_kind: str | None,
    actor_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[Record]:
    """Access records, newest first, optionally before an id (the next page) and filtered."""
    return list(await conn.fetch(SELECT, before, action, target, actor_kind, actor_id, since, until, limit))
