"""A member ledger's side of provincial replication: the publication, ``wal_level``, the province's role.

The publication ``trace_ledger`` is made by a migration (``schema/0022_ledger_publication.sql``); sending
its changes needs ``wal_level=logical``, a setting PostgreSQL reads when it starts. :func:`enable` sets it
with ``ALTER SYSTEM`` (kept in ``postgresql.auto.conf``), restarts an embedded PostgreSQL itself and says
when an external one needs a restart, then makes the role a province connects as: ``LOGIN REPLICATION``
and ``SELECT`` on the published tables, nothing else. It cannot write the ledger; logical replication
only reads from the member.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import asyncpg

from traceability import errors
from traceability.storage.database import connect
from traceability.storage.embedded import Embedded

PUBLICATION = "trace_ledger"
ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

TABLES = "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY tablename"


@dataclass(frozen=True, slots=True)
class Published:
    """What :func:`enable` found or did."""

    tables: tuple[str, ...]
    wal_level: str
    restarted: bool
    """An embedded PostgreSQL was restarted to take ``wal_level=logical``."""
    needs_restart: bool
    """An external PostgreSQL must be restarted by its operator before a province can subscribe."""
    role: str


async def _wal_level(url: str) -> str:
    conn = await connect(url)
    try:
        return str(await conn.fetchval("SHOW wal_level"))
    finally:
        await conn.close()


async def enable(url: str, embedded: Embedded | None, role: str) -> Published:
    """Make the ledger at ``url`` ready for provinces to subscribe to, as the role ``role``."""
    if not ROLE.fullmatch(role):
        raise errors.ConfigError(f"role {role!r}: a role name is 1 to 63 lowercase letters, digits or _")
    conn = await connect(url)
    try:
        tables = tuple(f"{r['schemaname']}.{r['tablename']}" for r in await conn.fetch(TABLES, PUBLICATION))
        if not tables:
            raise errors.SchemaError(
                f"this ledger has no publication {PUBLICATION} (run `traceability migrate` as the tables' owner)"
            )
        level = str(await conn.fetchval("SHOW wal_level"))
        if level != "logical":
            await conn.execute("ALTER SYSTEM SET wal_level = logical")
        try:
            await conn.execute(f"CREATE ROLE {role} LOGIN REPLICATION")
        except asyncpg.DuplicateObjectError:
            await conn.execute(f"ALTER ROLE {role} LOGIN REPLICATION")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await conn.execute(f"GRANT SELECT ON {', '.join(tables)} TO {role}")
    finally:
        await conn.close()
    restarted = False
    if level != "logical" and embedded is not None:
        await asyncio.to_thread(embedded.restart)
        level, restarted = await _wal_level(url), True
    return Published(tables, level, restarted, level != "logical", role)
