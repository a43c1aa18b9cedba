"""Shared fixtures: a real PostgreSQL, a migrated template, and a fresh database per test.

The suite starts the same embedded server ``make run`` uses (under ``var/test-pg``) unless
``TRACE_TEST_DATABASE_URL`` names another server. A database that cannot be reached fails the
run; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from stdnum.cn import uscc as uscc_mod

from traceability.config import ROOT, Settings, test_database_url
from traceability.http.app import create_app
from traceability.http.keys import DATABASE
from traceability.storage import migrator
from traceability.storage.database import start_embedded

TEMPLATE = f"trace_template_{os.getpid()}"
CHINA = timezone(timedelta(hours=8))
T = TypeVar("T")

# The machine is shared (CI, benchmarks, other suites): property tests are judged on what they find, never on speed.
hypothesis_settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("shared-machine")
_counter = itertools.count()
TEMPLATE_LOCK = 7_314_001
"""The advisory lock the pytest processes take, one after another, to migrate their templates."""


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url() -> str:
    """The PostgreSQL server the tests use (a maintenance database on it)."""
    url = test_database_url()
    if url:
        return url
    return start_embedded(ROOT / "var" / "test-pg")


@pytest.fixture(scope="session")
async def template(server_url: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        # One template migrates at a time on the server: 0001 creates a role, which the whole server shares, and
        # two pytest processes checking for it at once on a new server would both create it. The migrator's own
        # lock is per database; this one is taken in the maintenance database every process connects to.
        await conn.fetchval("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
        tconn = await asyncpg.connect(with_database(server_url, TEMPLATE))
        try:
            await migrator.migrate(tconn, ROOT / "schema")
        finally:
            await tconn.close()
            await conn.fetchval("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
        yield TEMPLATE
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def cloned_database(server_url: str, template: str) -> AsyncIterator[str]:
    """A fresh, migrated database cloned from the template (a few tens of ms), dropped afterwards."""
    name = f"trace_test_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(server_url, name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db_url(server_url: str, template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    async with cloned_database(server_url, template) as url:
        yield url


@pytest.fixture
def server_home() -> Iterator[Path]:
    """A data directory for a server process with its own embedded PostgreSQL.

    Not under pytest's temporary directory: pgserver runs PostgreSQL as another user (when the tests
    run as root), which must traverse every directory above, and every new pytest session on the
    machine takes that permission away from ``/tmp/pytest-of-<user>``.
    """
    path = ROOT / "var" / "test-servers" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> AsyncIterator[Any]:
    c = await aiohttp_client(create_app(settings))
    yield c
    await c.close()  # before the database is dropped


SETTLE_WITHIN = 180.0
"""A bound far past any run on a loaded machine, only so a stalled sequencer or analyzer fails instead of hanging."""
SETTLED = """
SELECT NOT EXISTS (SELECT 1 FROM log_queue)
   AND (SELECT coalesce(max(leaf_index), -1) FROM log_leaves)
       <= coalesce((SELECT position FROM analyzer_state WHERE name = 'anomalies'), -1)
"""


async def until(probe: Callable[[], Awaitable[T | None]], what: str, within: float = SETTLE_WITHIN) -> T:
    """``probe()``'s first true answer, asked every 50 ms: a wait on the condition itself, bounded only so that
    background work that stalled fails the test instead of hanging it (never a judgement of speed)."""
    deadline = time.monotonic() + within
    while not (found := await probe()):
        assert time.monotonic() < deadline, f"{what}: not seen within {within:.0f} s"
        await asyncio.sleep(0.05)
    return found


async def settled(client: Any, within: float = SETTLE_WITHIN) -> None:
    """Return once everything recorded so far is in the log and the analyzer is past its last leaf.

    The progress markers are in the database (the sequencer empties ``log_queue``; the analyzer saves its
    position in ``analyzer_state``), read in one statement so both are of the same moment: what the analyzer
    derives (anomalies, stock, packages) is then complete for every event sent before the call, however
    slowly the machine ran the background loops.
    """
    db = client.app[DATABASE]

    async def caught_up() -> bool:
        async with db.connection() as conn:
            return bool(await conn.fetchval(SETTLED))

    await until(caught_up, "the log and the analyzer catching up", within)


@pytest.fixture
async def superuser(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection as the database owner (for tamper tests and direct checks)."""
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()


def make_uscc(n: int) -> str:
    body = f"91320300MA{n:07d}"
    return body + uscc_mod.calc_check_digit(body)


def new_id() -> str:
    return str(uuid.uuid4())


class World:
    """A registered world for tests: an admin, a few nodes with scanner devices, two products."""

    def __init__(self, client: Any, admin: str) -> None:
        self.client = client
        self.admin = admin
        self.devices: dict[str, str] = {}
        self.nodes: dict[str, str] = {}
        self.enterprises: dict[str, str] = {}

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Any, token: str | None = None, expect: int | None = None) -> Any:
        resp = await self.client.post(path, json=body, headers=self.auth(token or self.admin))
        data = await resp.json()
        if expect is not None:
            assert resp.status == expect, (resp.status, data)
        return data

    async def add_node(self, key: str, node_type: str, area: str = "320302", n: int | None = None) -> str:
        code = make_uscc(n if n is not None else len(self.enterprises) + 1)
        await self.post("/api/v1/admin/enterprises", {"name": f"{key} 企业", "uscc": code}, expect=201)
        node = await self.post(
            "/api/v1/admin/nodes",
            {"enterprise": code, "type": node_type, "area_code": area, "name": f"{key} 节点", "name_en": f"{key} node"},
            expect=201,
        )
        device = await self.post("/api/v1/admin/devices", {"node": node["code"], "name": f"{key} scanner"}, expect=201)
        self.enterprises[key] = code
        self.nodes[key] = node["code"]
        self.devices[key] = device["credential"]
        return str(device["credential"])

    async def open_batch(self, key: str = "slaughter", product: str = "21113011", **extra: Any) -> str:
        body = {"eventID": new_id(), "product": product, "quantity": {"value": 90.5, "uom": "KGM"}, **extra}
        data = await self.post("/api/v1/batches", body, token=self.devices[key], expect=201)
        return str(data["traceCode"])

    def event(self, code: str, biz_step: str = "receiving", **extra: Any) -> dict[str, Any]:
        """An event a minute ago, Beijing time (events may not be dated long before their batch's opening)."""
        return {
            "eventID": new_id(),
            "traceCode": code,
            "bizStep": biz_step,
            "eventTime": (datetime.now(CHINA) - timedelta(minutes=1)).isoformat(timespec="seconds"),
            **extra,
        }


async def admin_token(db_url: str) -> str:
    from traceability.services import principals
    from traceability.storage.database import open_database

    settings = Settings.from_env({}, database_url=db_url)
    async with open_database(settings) as db:
        token, _ = await principals.create_token(db, "admin", "test admin")
    return token


@pytest.fixture
async def world(client: Any, db_url: str) -> World:
    w = World(client, await admin_token(db_url))
    await w.add_node("slaughter", "slaughterhouse", "320311")
    await w.add_node("market", "wet_market", "320302")
    await w.post(
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
        expect=201,
    )
    await w.post(
        "/api/v1/admin/products",
        {"category": "vegetable", "goods_code": "22101001", "name": "大白菜", "gtin": "06901234567892"},
        expect=201,
    )
    return w
