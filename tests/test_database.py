"""The one way into the database: driver errors become our errors, collisions are retried, an outage is a 503."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from tests.conftest import World
from tests.test_api_errors import assert_error
from traceability import errors
from traceability.config import Settings
from traceability.http.app import create_app
from traceability.http.keys import PRINCIPALS
from traceability.services.principals import token_hash
from traceability.storage.database import Connection, Database, open_database


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with open_database(Settings.from_env({}, database_url=db_url)) as database:
        yield database


def raising(sqlstate: str, constraint: str | None = None) -> str:
    """A statement that fails with this SQLSTATE (and constraint name), as the server itself reports it."""
    extra = f", CONSTRAINT = '{constraint}'" if constraint else ""
    return f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'{extra}; END $$"


def failing(times: int, statement: str) -> tuple[Callable[[Connection], Any], list[int]]:
    """Work that fails ``times`` times with ``statement``, then answers "done"; and the list of its runs."""
    runs: list[int] = []

    async def work(conn: Connection) -> str:
        runs.append(len(runs) + 1)
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS scratch (n int)")
        await conn.execute("INSERT INTO scratch VALUES ($1)", len(runs))
        if len(runs) <= times:
            await conn.execute(statement)
        return "done"

    return work, runs


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])  # serialization failure, deadlock
async def test_collisions_are_retried_in_a_fresh_transaction(db: Database, sqlstate: str) -> None:
    work, runs = failing(2, raising(sqlstate))
    assert await db.transaction(work, attempts=3) == "done"
    assert runs == [1, 2, 3]

    work, runs = failing(5, raising(sqlstate))
    with pytest.raises(errors.Contention) as caught:
        await db.transaction(work, attempts=3)
    assert runs == [1, 2, 3] and caught.value.status == 503 and caught.value.code == "storage_unavailable"


async def test_a_raced_key_is_retried_and_a_taken_key_names_the_field(db: Database) -> None:
    work, runs = failing(1, raising("23505", "events_event_id_key"))
    assert await db.transaction(work) == "done" and runs == [1, 2]

    work, runs = failing(1, raising("23505", "batch_identifiers_pkey"))
    with pytest.raises(errors.AlreadyExists) as caught:
        await db.transaction(work)
    assert runs == [1] and caught.value.field == "identifiers"


async def test_every_other_driver_error_is_one_of_ours(db: Database) -> None:
    for statement, expected, status in [
        ("SELECT 1/0", errors.TraceError, 500),  # a bug of ours: logged, a 500 without SQL
        ("SELECT * FROM no_such_table", errors.TraceError, 500),
        (raising("23505", "some_other_key"), errors.TraceError, 500),
        (raising("57P01"), errors.StorageUnavailable, 503),  # the server shutting down
        (raising("53300"), errors.StorageUnavailable, 503),  # too many connections
    ]:
        with pytest.raises(errors.TraceError) as caught:
            async with db.connection() as conn:
                await conn.execute(statement)
        assert type(caught.value) is expected and caught.value.status == status, statement
        assert "SELECT" not in caught.value.message and "test" not in caught.value.message
    # Our own errors and ordinary exceptions pass through untouched; the rollback still happens.
    with pytest.raises(errors.NotFound):
        await db.transaction(lambda conn: _raise(errors.NotFound("nothing here")))
    with pytest.raises(KeyError):
        await db.transaction(lambda conn: _raise(KeyError("x")))


async def _raise(exc: Exception) -> None:
    raise exc


async def test_no_connection_to_be_had_is_unavailable(db: Database) -> None:
    held = [await db.pool.acquire() for _ in range(db.pool.get_max_size())]
    try:
        db.acquire_timeout = 0.2
        with pytest.raises(errors.StorageUnavailable):  # the pool stays exhausted: a timeout, not a hang
            async with db.connection():
                pass
    finally:
        for conn in held:
            await db.pool.release(conn)


# -- an outage, over HTTP -------------------------------------------------------------------------------


class Proxy:
    """A TCP front for the test server whose plug can be pulled: then the database is simply not there."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        query = parse_qs(parts.query)
        port = parts.port or int(query.get("port", ["5432"])[0])
        socket_dir = query.get("host", [""])[0]
        self.unix = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else None
        self.tcp = (parts.hostname or "127.0.0.1", port)
        self.upstream = parts
        self.links: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        netloc = f"{self.upstream.username or 'postgres'}"
        if self.upstream.password:
            netloc += f":{self.upstream.password}"
        return urlunsplit(("postgresql", f"{netloc}@127.0.0.1:{port}", self.upstream.path, "", ""))

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.tcp)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def pull_the_plug(self) -> None:
        """Stop listening and cut every connection: what clients see when the server is stopped."""
        assert self.server is not None
        self.server.close()
        for link in self.links:
            link.transport.abort()
        await self.server.wait_closed()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def refusing_connections(server_url: str, db_url: str) -> AsyncIterator[None]:
    """The database stops accepting connections and every session on it is terminated."""
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def wait_until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("outage", ["stopped", "terminated"])
async def test_a_database_outage_is_a_503_everywhere(
    aiohttp_client: Any, world: World, server_url: str, db_url: str, tmp_path: Path, outage: str
) -> None:
    code = await world.open_batch()
    device = world.devices["slaughter"]
    proxy = Proxy(db_url)
    url = await proxy.start() if outage == "stopped" else db_url
    # The same data directory (and so the same log signing key) as the app that registered the world.
    settings = Settings.from_env(
        {"TRACE_METRICS_ALLOW": "127.0.0.1"}, database_url=url, data_dir=tmp_path, public_url="http://trace.test"
    )
    app = create_app(settings)
    client = await aiohttp_client(app)
    try:
        app[PRINCIPALS].ttl = 0.2  # credentials are cached briefly; the outage outlives the cache
        resp = await client.post("/api/v1/events", json=world.event(code), headers=world.auth(device))
        assert resp.status == 201, await resp.text()

        cut = proxy.pull_the_plug() if outage == "stopped" else None
        async with contextlib.AsyncExitStack() as stack:
            if cut is not None:
                await cut
            else:
                await stack.enter_async_context(refusing_connections(server_url, db_url))
            await wait_until(lambda: app[PRINCIPALS].get(token_hash(device)) is None)

            # An authenticated request: resolving the credential needs the database.
            resp = await client.post("/api/v1/events", json=world.event(code), headers=world.auth(device))
            assert resp.status == 503
            assert_error(await resp.json(), "storage_unavailable", words="database")
            # Public reads, the health check, and a page (the HTML error page, no traceback or SQL).
            for path in (f"/api/v1/batches/{code}", f"/api/v1/batches/{code}/trace", "/healthz"):
                resp = await client.get(path)
                assert resp.status == 503, path
                assert_error(await resp.json(), "storage_unavailable")
            resp = await client.get(f"/t/{code}")
            page = await resp.text()
            assert resp.status == 503 and "Traceback" not in page and "asyncpg" not in page
            assert resp.headers["Retry-After"] == "1"
            # Monitoring still sees the process, and that its database is down.
            resp = await client.get("/metrics")
            assert resp.status == 200 and "trace_database_up 0.0" in await resp.text()

        if outage == "terminated":  # the database is back: the pool reconnects by itself
            resp = await client.get(f"/api/v1/batches/{code}")
            assert resp.status == 200
    finally:
        await client.close()
