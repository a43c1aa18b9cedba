"""Database lifecycle: the embedded PostgreSQL, the connection pool, and asyncpg error translation.

With no ``TRACE_DATABASE_URL`` the project starts its own PostgreSQL (the ``pgserver`` package)
under ``<data dir>/pg``; it listens on a Unix socket only and stops when the last process that
opened it exits. Data stays on disk between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from traceability import errors
from traceability.config import Settings
from traceability.logging import get_logger
from traceability.storage import migrator

log = get_logger(__name__)

Connection = asyncpg.Connection
Pool = asyncpg.Pool

# Writers retry these: serialization failures and deadlocks are the database asking us to.
RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
UniqueViolation = asyncpg.UniqueViolationError
# A CHECK constraint refused the row (for instance a batch link that would close a cycle).
CheckViolation = asyncpg.CheckViolationError


def start_embedded(pg_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in ``pg_dir`` and return its URL."""
    # Imported lazily: only needed when no database URL is given. From its module, because the package
    # re-exports get_server without declaring it public.
    pg_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns (at import) when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        server = get_server(pg_dir, cleanup_mode="stop")
    return str(server.get_uri())


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    user = parts.username or ""
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{user}@{host}{port}{parts.path}"


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Pooled connections skip asyncpg's reset query on release (a round trip per request).

    The service sets no session state, holds session advisory locks only on connections it keeps
    (and unlocks them itself), and uses cursors only inside transactions; open transactions are
    still rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _runtime_role(conn: asyncpg.Connection, role: str) -> str | None:
    if not role:
        return None
    ok = await conn.fetchval("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", role)
    return role if ok else None


@dataclass(slots=True)
class Database:
    """A pool plus what the rest of the service needs to know about where it points."""

    pool: asyncpg.Pool
    url: str
    role: str | None

    @property
    def label(self) -> str:
        return describe(self.url)

    def acquire(self) -> Any:
        return self.pool.acquire()


async def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's after starting it."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(start_embedded, settings.pg_dir)


async def connect(url: str) -> asyncpg.Connection:
    """One plain connection (migrations, verification, tests)."""
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool = False, url: str | None = None
) -> AsyncIterator[Database]:
    """Open the pool the CLI and the server share; refuse a schema that does not match the code."""
    url = url or await database_url(settings)
    admin = await connect(url)
    try:
        if migrate:
            await migrator.migrate(admin, settings.schema_dir)
        await migrator.check(admin, settings.schema_dir)
        role = await _runtime_role(admin, settings.runtime_role)
    finally:
        await admin.close()
    server_settings = {"application_name": "traceability", "synchronous_commit": "on"}
    if role:
        # A startup parameter, so RESET ALL on pool release keeps it.
        server_settings["role"] = role
    pool = await asyncpg.create_pool(
        url,
        min_size=2,
        max_size=settings.pool_size,
        init=_init_connection,
        server_settings=server_settings,
        statement_cache_size=256,
        connection_class=_Connection,
    )
    try:
        yield Database(pool=pool, url=url, role=role)
    finally:
        await pool.close()


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn connection-level failures into StorageUnavailable for the client."""
    try:
        yield
    except (OSError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError) as exc:
        log.error("storage.unavailable", error=type(exc).__name__)
        raise errors.StorageUnavailable() from None


@contextlib.contextmanager
def conflicts_as(message: str, field: str | None = None) -> Iterator[None]:
    """A unique violation inside becomes AlreadyExists(message) naming ``field``."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise errors.AlreadyExists(message, field=field) from None
