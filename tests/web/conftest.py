"""Fixtures for the web pages: the real app on a real port, and a real headless Chromium.

The browser is Debian's ``chromium`` (``make browser`` installs it), driven by Playwright's async
API on the same event loop as the server, so the server keeps answering while a test waits on
the page.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import World, cloned_database, settled, with_database
from traceability.config import Settings
from traceability.demo.loader import load_demo
from traceability.domain import tracecode
from traceability.http.app import create_app
from traceability.services import accounts, principals
from traceability.storage.database import open_database

# Assertions on a page wait for what they expect up to this bound (Playwright's own is 5 s): a bound for a stall,
# never a judgement of speed, on a machine the suite's processes share with others' work.
expect.set_options(timeout=20_000)
CHROMIUM = os.environ.get("TRACE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 640}
TABLET = {"width": 768, "height": 1024}
REGULATOR = ("监管员", "correct horse battery staple")
ADMIN = ("管理员", "correct horse battery staple")
DEMO_TEMPLATE = f"trace_demo_{os.getpid()}"


@dataclass(frozen=True)
class DemoTemplate:
    name: str
    codes: dict[str, str]
    data_dir: Path


@dataclass(frozen=True)
class Demo:
    """The demo city in a fresh database, served on a real port: its trace codes by story, its URL."""

    url: str
    db_url: str
    codes: dict[str, str]


@pytest.fixture(scope="session")
async def demo_template(server_url: str, template: str, tmp_path_factory: Any) -> AsyncIterator[DemoTemplate]:
    """The demo city loaded once, its events in the log and its anomalies found, kept as a template database."""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DEMO_TEMPLATE}" TEMPLATE "{template}"')
        url = with_database(server_url, DEMO_TEMPLATE)
        data_dir = tmp_path_factory.mktemp("demo")
        settings = Settings.from_env({}, database_url=url, data_dir=data_dir, public_url="http://trace.test")
        async with open_database(settings) as db:
            result = await load_demo(db, public_url="http://trace.test")
            await accounts.create_user(db, REGULATOR[0], "regulator", REGULATOR[1], "徐州市市场监督管理局")
            await accounts.create_user(db, ADMIN[0], "admin", ADMIN[1])
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()  # the sequencer and the analyzer run as the app's background work
        try:
            conn = await asyncpg.connect(url)
            try:
                for _ in range(600):  # every event in the log, and the analyzer past the last leaf
                    backlog = await conn.fetchval("SELECT count(*) FROM log_queue")
                    behind = await conn.fetchval(
                        "SELECT (SELECT coalesce(max(leaf_index), -1) FROM log_leaves) - "
                        "coalesce((SELECT position FROM analyzer_state WHERE name = 'anomalies'), -1)"
                    )
                    if backlog == 0 and behind == 0:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"the demo never settled: {backlog} to log, analyzer {behind} behind")
                assert await conn.fetchval("SELECT count(*) FROM anomalies") >= 4
            finally:
                await conn.close()
        finally:
            await runner.cleanup()
        yield DemoTemplate(DEMO_TEMPLATE, {key: code for key, _label, code in result.highlights}, data_dir)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_TEMPLATE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def demo(aiohttp_server: Any, server_url: str, demo_template: DemoTemplate) -> AsyncIterator[Demo]:
    """A copy of the demo city for one test, served by the real app."""
    async with cloned_database(server_url, demo_template.name) as url:
        settings = Settings.from_env(
            {}, database_url=url, data_dir=demo_template.data_dir, public_url="http://trace.test"
        )
        srv = await aiohttp_server(create_app(settings))
        yield Demo(f"http://127.0.0.1:{srv.port}", url, demo_template.codes)
        await srv.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session, before the browser starts
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def server(aiohttp_server: Any, settings: Settings) -> Any:
    return await aiohttp_server(create_app(settings))


@pytest.fixture
async def client(aiohttp_client: Any, server: Any) -> AsyncIterator[Any]:
    """Overrides the suite's client: the API client talks to the same live server the browser uses."""
    c = await aiohttp_client(server)
    yield c
    await c.close()


@pytest.fixture
def base_url(server: Any) -> str:
    return f"http://127.0.0.1:{server.port}"


async def new_page(
    browser: Browser,
    *,
    locale: str = "zh-CN",
    viewport: dict[str, int] | None = None,
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport or PHONE, locale=locale)
    page = await context.new_page()
    # Bounds for a stalled page only: a sign-in (a password hash) on a machine shared by the suite's processes and
    # others' work has taken more than 15 s.
    page.set_default_timeout(60_000)
    return context, page


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Page]:
    """A 360×640 phone reading Chinese."""
    context, page = await new_page(browser)
    yield page
    await context.close()


@pytest.fixture
async def regulator(db_url: str) -> tuple[str, str]:
    settings = Settings.from_env({}, database_url=db_url)
    async with open_database(settings) as db:
        await accounts.create_user(db, REGULATOR[0], "regulator", REGULATOR[1], "徐州市市场监督管理局")
    return REGULATOR


async def pork_chain(world: World) -> str:
    """Slaughterhouse → wet market stall, with origin, certificates and an inspection."""
    await world.post(
        "/api/v1/admin/operators",
        {"node": world.nodes["market"], "code": "A-012", "name": "王记鲜肉", "stall_no": "A-012"},
        expect=201,
    )
    stall = await world.post(
        "/api/v1/admin/devices", {"node": world.nodes["market"], "name": "stall A-012", "operator": "A-012"}, expect=201
    )
    world.devices["stall"] = stall["credential"]
    code = await world.open_batch(
        origin={"area_code": "320321", "place": "丰县", "producer": "丰润生猪养殖合作社"},
        produced_on="2026-01-14",
        documents=[{"type": "quarantine_certificate", "number": "3203001234"}],
    )
    s = world.devices["slaughter"]
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "inspecting",
            disposition="conformant",
            documents=[{"type": "meat_inspection_certificate", "number": "PC000123"}],
        ),
        s,
        expect=201,
    )
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "shipping",
            disposition="in_transit",
            commercial={"unit_price": "24.60", "currency": "CNY"},
            destination={"enterprise": world.enterprises["market"], "node": world.nodes["market"]},
        ),
        s,
        expect=201,
    )
    await world.post(
        "/api/v1/events", world.event(code, "receiving", disposition="active"), world.devices["stall"], expect=201
    )
    await world.post(
        "/api/v1/events",
        world.event(code, "retail_selling", disposition="retail_sold", quantity={"value": "1.25", "uom": "KGM"}),
        world.devices["stall"],
        expect=201,
    )
    return code


async def logged(world: World, code: str) -> None:
    """Wait until every event of the batch is in the Merkle log (and the analyzer past it)."""
    await settled(world.client)
    view = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    for event in view["events"]:
        assert (await world.client.get(event["proof_url"])).status == 200, f"event {event['seq']} is not in the log"


STALL_PIN = "250817"


async def stall_card(db_url: str, credential: str, pin: str = STALL_PIN) -> str:
    """A stall card for the device ``credential`` (as its station would have printed it): the QR code's text."""
    settings = Settings.from_env({}, database_url=db_url)
    async with open_database(settings) as db:
        principal = await principals.authenticate(db, credential)
        issued = await accounts.issue_vendor_card(db, principal, {"pin": pin})
    return str(issued["card"])


async def leased_code(superuser: asyncpg.Connection, serial: int) -> str:
    """A code of a block of 100 leased to the stall's station (after :func:`pork_chain`) with nothing recorded yet:
    what a shopper holds while the station is offline. ``serial``: its place in the block."""
    row = await superuser.fetchrow(
        "SELECT d.id AS device, n.id AS node, n.area_code FROM devices d JOIN nodes n ON n.id = d.node_id "
        "WHERE d.operator_id IS NOT NULL"
    )
    block = await superuser.fetchval("SELECT nextval('station_block_seq')")
    first = 5_000_000_000_000 + 100 * block
    await superuser.execute(
        "INSERT INTO code_leases (block_no, device_id, node_id, area_code, first_serial, size) "
        "VALUES ($1, $2, $3, $4, $5, 100)",
        block,
        row["device"],
        row["node"],
        row["area_code"],
        first,
    )
    return tracecode.make(row["area_code"], first + serial)
