"""Database lifecycle and the one way in: the embedded PostgreSQL, the pool, connections, transactions.

With no ``TRACE_DATABASE_URL`` the project starts its own PostgreSQL (the ``pgserver`` package)
under ``<data dir>/pg``; it listens on a Unix socket only and stops when the last process that
opened it exits. Data stays on disk between runs.

Everything else reaches the database through :class:`Database`:

``async with db.connection() as conn:``
    a pooled connection for statements that commit on their own (reads, single-statement writes),
    or for a caller that holds it for a while (a session advisory lock).
``await db.transaction(work, isolation=..., readonly=..., attempts=...)``
    runs ``await work(conn)`` in one transaction and returns its result. When concurrent writers
    collide (a serialization failure, a deadlock, a key another transaction took since we looked:
    :class:`~traceability.errors.Contention`) it rolls back and runs ``work`` again, up to
    ``attempts`` times, then raises the Contention (a 503). ``work`` must therefore do nothing it
    cannot repeat outside the transaction.

Both translate every driver error into the error tree of :mod:`traceability.errors` (see
:func:`translate`), at acquire time too: an outage is a 503 ``storage_unavailable`` wherever it
strikes, and nothing above ``storage/`` ever sees an asyncpg exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeAlias, TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from traceability import errors
from traceability.config import Settings
from traceability.logging import get_logger
from traceability.storage import migrator
from traceability.storage.embedded import Embedded

log = get_logger(__name__)

Record: TypeAlias = asyncpg.Record
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""What repos take as their first argument: a plain or a pooled connection."""
Isolation = Literal["read_committed", "repeatable_read", "serializable"]
T = TypeVar("T")

ATTEMPTS = 3
"""How often :meth:`Database.transaction` runs its work by default before a Contention is final."""
ACQUIRE_TIMEOUT = 30.0
"""Seconds a request waits for a pooled connection before it is told the database is unavailable."""
LISTEN_CHECK = 5.0
"""Seconds between checks that a listening connection still answers."""

# Keys that concurrent writers race for. The loser's next attempt sees the winner's row and answers
# from it: a replayed capture or opening gets its original receipt, other content a conflict.
RACED_KEYS = frozenset(
    {"events_event_id_key", "batches_open_event_id_key", "batches_trace_code_key", "epcis_events_pkey"}
)
# Keys whose violation is the caller's mistake on every path that writes them: (message, field).
TAKEN_KEYS = {
    "batch_identifiers_pkey": ("identifiers: one of these identifiers already names another batch", "identifiers"),
}
# Driver errors that mean the database cannot serve us now: the network, the server going down or
# refusing connections, resources running out, the driver losing its footing on a connection.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.PostgresSystemError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
_CONTENTION = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# Values PostgreSQL cannot store: every input has a bound checked before it gets here (domain/bounds.py), so
# one of these means a bound is missing. The client still gets the 422 its input deserves, never a 500.
_OUT_OF_RANGE = (
    asyncpg.NumericValueOutOfRangeError,
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.DatetimeFieldOverflowError,
    asyncpg.UntranslatableCharacterError,
)
# What the driver raises: the server's errors, its own, and the socket's.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


def translate(exc: Exception) -> errors.TraceError:
    """The error of our tree that a driver error (one of :data:`DRIVER_ERRORS`) means.

    - the database unreachable, shutting down, out of connections, a broken connection, a pool
      timeout: :class:`StorageUnavailable` (503);
    - a serialization failure, a deadlock, a raced key (:data:`RACED_KEYS`): :class:`Contention`
      (503 when retries run out);
    - a key in :data:`TAKEN_KEYS`: :class:`AlreadyExists` naming the field (409);
    - a value PostgreSQL cannot store (numeric out of range, NUL or an untranslatable character, a
      timestamp overflow): :class:`InvalidField` (422), logged, since a bound in ``domain/bounds.py`` is missing;
    - anything else (a bug of ours: bad SQL, a value of the wrong type, a violated constraint no
      caller expects): a logged 500.
    """
    if isinstance(exc, asyncpg.UniqueViolationError):
        constraint = getattr(exc, "constraint_name", None)
        if constraint in RACED_KEYS:
            log.info("storage.collided", constraint=constraint)
            return errors.Contention()
        if constraint in TAKEN_KEYS:
            message, field = TAKEN_KEYS[constraint]
            return errors.AlreadyExists(message, field=field)
    elif isinstance(exc, _CONTENTION):
        log.info("storage.collided", error=type(exc).__name__)
        return errors.Contention()
    elif isinstance(exc, _OUT_OF_RANGE):
        log.error("storage.value_refused", error=type(exc).__name__, sqlstate=exc.sqlstate)
        return errors.InvalidField("a value in this request is outside what the ledger can store")
    elif isinstance(exc, _UNAVAILABLE) and not isinstance(exc, asyncpg.DataError):
        log.error("storage.unavailable", error=type(exc).__name__)
        return errors.StorageUnavailable()
    log.error(
        "storage.failed",
        error=type(exc).__name__,
        sqlstate=getattr(exc, "sqlstate", None),
        constraint=getattr(exc, "constraint_name", None),
        exc_info=exc,
    )
    return errors.TraceError("something went wrong on our side; it has been logged")


@contextlib.contextmanager
def translating() -> Iterator[None]:
    """Raise driver errors from inside as :func:`translate` says; other exceptions pass through."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc) from None


async def fetch_one(conn: Connection, query: str, *args: object) -> Record:
    """For repos: ``fetchrow`` of a statement that always returns a row (INSERT … RETURNING, a head row)."""
    row = await conn.fetchrow(query, *args)
    if row is None:
        raise LookupError(f"expected a row from: {query.strip().splitlines()[0]}")
    return row


@contextlib.contextmanager
def conflicts_as(message: str, field: str | None = None) -> Iterator[None]:
    """For repos: a unique violation inside becomes AlreadyExists(message) naming ``field``."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise errors.AlreadyExists(message, field=field) from None


def start_embedded(pg_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in ``pg_dir`` and return its URL."""
    return embedded_server(pg_dir).start()


_EMBEDDED: dict[Path, Embedded] = {}


def embedded_server(pg_dir: Path) -> Embedded:
    """This process's handle on the embedded PostgreSQL in ``pg_dir`` (one per directory, like pgserver's)."""
    key = pg_dir.resolve()
    if key not in _EMBEDDED:
        _EMBEDDED[key] = Embedded(key)
    return _EMBEDDED[key]


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    user = parts.username or ""
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{user}@{host}{port}{parts.path}"


@contextlib.asynccontextmanager
async def by_key(conn: Connection) -> AsyncIterator[None]:
    """Within a transaction: the statements planned inside read through indexes, never a whole table, whatever
    the tables' statistics say (a queue's, sampled empty, would have its rows found by scanning it whole). A plan
    is kept with the setting it was made under, so a statement always run inside stays so. When the body fails
    the setting is left to the transaction's end: a statement sent after an error would fail too, and hide the
    first."""
    await conn.execute("SET LOCAL enable_seqscan = off")
    yield
    await conn.execute("SET LOCAL enable_seqscan = on")


class PooledConnection(asyncpg.Connection):
    """Pooled connections skip asyncpg's reset query on release (a round trip per request).

    The service sets no session state, holds session advisory locks only on connections it keeps
    (and unlocks them itself), and uses cursors only inside transactions; open transactions are
    still rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


async def init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _runtime_role(conn: asyncpg.Connection, role: str) -> str | None:
    if not role:
        return None
    ok = await conn.fetchval("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", role)
    return role if ok else None


class Listener(Protocol):
    """What :meth:`Database.listen` tells: the connection is up, a notification arrived, time for a check."""

    async def connected(self, conn: Connection) -> None: ...

    async def notified(self, conn: Connection, payload: str) -> None: ...

    async def checked(self, conn: Connection) -> None: ...

    def state(self, listening: bool) -> None: ...


@dataclass(slots=True)
class Database:
    """A pool plus what the rest of the service needs to know about where it points."""

    pool: asyncpg.Pool[asyncpg.Record]
    url: str
    role: str | None
    acquire_timeout: float = ACQUIRE_TIMEOUT
    embedded: Embedded | None = None
    """The embedded PostgreSQL this pool points at, if it is one (the server restarts it when it dies)."""
    lost: Callable[[], None] | None = None
    """Told when no connection can be had (a read replica's chooser stops sending reads to it)."""

    @property
    def label(self) -> str:
        return describe(self.url)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; every driver error, acquiring it or using it, comes out translated."""
        try:
            conn = await self.pool.acquire(timeout=self.acquire_timeout)
        except Exception as exc:
            # Whatever stops us getting a connection (refused, a stopped server, a pool timeout, a
            # database not accepting connections) means the database is unavailable to this request.
            log.error("storage.unavailable", error=type(exc).__name__, at="acquire")
            if self.lost is not None:
                self.lost()
            raise errors.StorageUnavailable() from None
        try:
            with translating():
                yield conn
        finally:
            try:
                await self.pool.release(conn)
            except Exception as exc:  # a broken connection is dropped by the pool; the answer stands
                log.warning("storage.release_failed", error=type(exc).__name__)

    async def transaction(
        self,
        work: Callable[[Connection], Awaitable[T]],
        *,
        isolation: Isolation | None = None,
        readonly: bool = False,
        attempts: int = ATTEMPTS,
        conn: Connection | None = None,
    ) -> T:
        """Run ``await work(conn)`` in one transaction and return its result, retrying on Contention.

        A Contention (serialization failure, deadlock, raced key) rolls the transaction back and
        runs ``work`` again on a fresh one, at most ``attempts`` times in all, with a short random
        pause from the third attempt on; the last one is raised. Other errors roll back and are
        raised. ``conn`` runs it on a connection the caller holds (one with a session advisory
        lock) instead of a pooled one.
        """
        for attempt in range(1, attempts + 1):
            try:
                if conn is None:
                    async with self.connection() as pooled, pooled.transaction(isolation=isolation, readonly=readonly):
                        return await work(pooled)
                with translating():
                    async with conn.transaction(isolation=isolation, readonly=readonly):
                        return await work(conn)
            except errors.Contention:
                if attempt >= attempts:
                    raise
                log.info("transaction.retried", attempt=attempt)
                if attempt > 1:
                    await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not a secret
        raise ValueError("attempts must be at least 1")

    async def listen(
        self, channel: str, listener: Listener, stop: asyncio.Event, check_every: float = LISTEN_CHECK
    ) -> None:
        """LISTEN on ``channel`` on a connection of its own until ``stop``, telling ``listener`` what happens.

        ``listener.connected(conn)`` once listening, then ``listener.state(True)``;
        ``listener.notified(conn, payload)`` for each notification, in order; ``listener.checked(conn)``
        every ``check_every`` seconds otherwise. ``listener.state(False)`` as soon as the connection is
        found lost (closed, or a call not finished within ``check_every`` seconds); then it reconnects.
        """
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            arrived: asyncio.Queue[str] = asyncio.Queue()
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.url), timeout=check_every * 2)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(channel, lambda _c, _pid, _ch, payload, q=arrived: q.put_nowait(payload))
                await asyncio.wait_for(listener.connected(conn), timeout=check_every)
                listener.state(True)
                while not stop.is_set() and not lost.is_set():
                    payload = asyncio.ensure_future(arrived.get())
                    others = [asyncio.ensure_future(e.wait()) for e in (stop, lost)]
                    done, pending = await asyncio.wait(
                        [payload, *others], timeout=check_every, return_when=asyncio.FIRST_COMPLETED
                    )
                    for w in pending:
                        w.cancel()
                    if payload in done:
                        await asyncio.wait_for(listener.notified(conn, payload.result()), timeout=check_every)
                    elif not stop.is_set() and not lost.is_set():
                        await asyncio.wait_for(listener.checked(conn), timeout=check_every)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("storage.listen_lost", channel=channel, error=type(exc).__name__)
            finally:
                listener.state(False)
                if conn is not None:
                    conn.terminate()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), check_every / 5)

    async def ping(self) -> None:
        """One round trip; StorageUnavailable when the database does not answer."""
        try:
            async with self.connection() as conn:
                await conn.fetchval("SELECT 1")
        except errors.TraceError:
            raise errors.StorageUnavailable("the database is not answering") from None


async def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's after starting it."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(start_embedded, settings.pg_dir)


async def connect(url: str) -> asyncpg.Connection:
    """One plain connection (migrations, verification, tests)."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool = False, url: str | None = None
) -> AsyncIterator[Database]:
    """Open the pool the CLI and the server share; refuse a schema that does not match the code."""
    given = url or settings.database_url
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
        init=init_connection,
        server_settings=server_settings,
        statement_cache_size=256,
        connection_class=PooledConnection,
    )
    embedded = embedded_server(settings.pg_dir) if not given else None
    try:
        yield Database(pool=pool, url=url, role=role, embedded=embedded)
    finally:
        await pool.close()
