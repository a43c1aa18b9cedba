"""Forward-only numbered SQL migrations: ``schema/NNNN_description.sql``.

Applied in order under a PostgreSQL advisory lock, each in its own transaction and recorded with
its SHA-256 checksum. An applied file that was edited since is refused, as is a database that is
behind (run ``traceability migrate``) or ahead of the code (deploy the newer code).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from traceability.errors import SchemaError
from traceability.logging import get_logger

log = get_logger(__name__)

_LOCK_KEY = 0x7472616365  # "trace"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(schema_dir: Path) -> list[Migration]:
    """The migration files in ``schema_dir``, in version order."""
    found = []
    for path in sorted(schema_dir.glob("*.sql")):
        m = _NAME.fullmatch(path.name)
        if not m:
            raise SchemaError(f"{path.name} is not named NNNN_description.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaError(f"migration numbers must run 1, 2, 3, ... without gaps, found {versions}")
    return found


async def _applied(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    return list(await conn.fetch(SELECT_APPLIED)) if exists else []


def _compare(files: list[Migration], applied: list[asyncpg.Record]) -> list[Migration]:
    by_version = {m.version: m for m in files}
    for row in applied:
        m = by_version.get(row["version"])
        if m is None:
            raise SchemaError(
                f"the database has migration {row['version']:04d}_{row['name']}, which this code does not "
                "know: it is ahead of the code; run the newer version"
            )
        if m.checksum != row["checksum"]:
            raise SchemaError(
                f"schema/{m.version:04d}_{m.name}.sql was edited after it was applied; add a new migration instead"
            )
    done = {row["version"] for row in applied}
    return [m for m in files if m.version not in done]


async def migrate(conn: asyncpg.Connection, schema_dir: Path) -> list[Migration]:
    """Apply what is pending; returns what was applied. Safe to run from several processes at once."""
    files = load(schema_dir)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(CREATE_TABLE)
        pending = _compare(files, await _applied(conn))
        for m in pending:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(INSERT_APPLIED, m.version, m.name, m.checksum)
            log.info("migration.applied", version=m.version, name=m.name)
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def check(conn: asyncpg.Connection, schema_dir: Path) -> None:
    """Raise SchemaError unless the database has exactly the migrations in ``schema_dir``."""
    pending = _compare(load(schema_dir), await _applied(conn))
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
        raise SchemaError(f"the database is behind the code (pending: {names}); run `traceability migrate`")
