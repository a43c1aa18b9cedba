"""Limits that hold under load: sign-in counted atomically in the database, per account, source and both;
failed credential checks per source; capture per credential. Each answers 429 with Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from tests.conftest import World
from traceability import errors
from traceability.config import Settings
from traceability.domain import limits
from traceability.http.app import create_app
from traceability.http.keys import LIMITS
from traceability.services import accounts
from traceability.storage.database import Database, open_database

PASSWORD = "the right password, long enough"


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with open_database(settings) as database:
        yield database


async def attempt(db: Database, name: str, password: str, remote: str) -> int:
    """The HTTP status a sign-in attempt gets: 200 signed in, 401 wrong, 429 refused by a limit."""
    try:
        await accounts.sign_in(db, name, password, remote)
    except errors.TraceError as exc:
        return exc.status
    return 200


# -- the rules, without a database ---------------------------------------------------------------------


def test_source_keys_count_an_ipv6_host_by_its_64() -> None:
    assert limits.source_key("203.0.113.7") == "203.0.113.7"
    assert limits.source_key("2001:db8:1:2:aaaa::1") == limits.source_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert limits.source_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert limits.source_key(None) == "unknown"


def test_buckets_refill_and_say_how_long_to_wait() -> None:
    buckets = limits.Buckets(rate=2.0, burst=3)
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)
    assert buckets.take("b", 100.0) == 0.0  # another key has its own bucket
    assert buckets.take("a", 100.5) == 0.0  # half a second later one token is back
    assert limits.retry_after(0.01) == "1" and limits.retry_after(2.1) == "3"
    assert limits.Buckets(rate=0, burst=1).take("x", 0.0) == 0.0  # a rate of 0 switches the limit off


def test_sign_in_refusals() -> None:
    ok = limits.SignInCounts(pair=5, source=50, account=100, known_source=False)
    assert limits.sign_in_refusal(ok) is None
    assert limits.sign_in_refusal(limits.SignInCounts(6, 1, 6, False)) == "pair"
    assert limits.sign_in_refusal(limits.SignInCounts(1, 51, 1, True)) == "source"
    assert limits.sign_in_refusal(limits.SignInCounts(1, 1, 101, False)) == "account"
    assert limits.sign_in_refusal(limits.SignInCounts(1, 1, 101, True)) is None


# -- sign-in, counted in the database ------------------------------------------------------------------


async def test_parallel_wrong_passwords_cannot_slip_under_the_lockout(db: Database) -> None:
    await accounts.create_user(db, "张三", "regulator", PASSWORD, "徐州市市场监督管理局")
    statuses = await asyncio.gather(*(attempt(db, "张三", f"wrong guess {i:02d}!", "198.51.100.9") for i in range(15)))
    assert statuses.count(401) <= limits.PAIR_FAILURES, statuses
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 15 - limits.PAIR_FAILURES
    # The right password from the same place is refused too: the count already passed the limit.
    assert await attempt(db, "张三", PASSWORD, "198.51.100.9") == 429


async def test_guessing_from_elsewhere_does_not_lock_the_regulator_out(db: Database) -> None:
    await accounts.create_user(db, "李四", "regulator", PASSWORD, "徐州市市场监督管理局")
    assert await attempt(db, "李四", PASSWORD, "192.0.2.10") == 200  # the regulator's own desk
    for _ in range(limits.PAIR_FAILURES):
        assert await attempt(db, "李四", "someone guessing", "203.0.113.66") == 401
    assert await attempt(db, "李四", PASSWORD, "203.0.113.66") == 429  # locked for the guesser's address
    assert await attempt(db, "李四", PASSWORD, "192.0.2.10") == 200  # not for the desk
    assert await attempt(db, "李四", PASSWORD, "192.0.2.11") == 200  # nor for a new place


async def test_one_source_spraying_names_is_stopped(db: Database, superuser: asyncpg.Connection) -> None:
    await accounts.create_user(db, "王五", "regulator", PASSWORD, "徐州市市场监督管理局")
    await superuser.execute(
        "INSERT INTO auth_throttle (scope, key, failures, last_failure) VALUES ('source', $1, $2, now())",
        "203.0.113.5",
        limits.SOURCE_FAILURES,
    )
    assert await attempt(db, "王五", PASSWORD, "203.0.113.5") == 429
    assert await attempt(db, "王五", PASSWORD, "203.0.113.6") == 200
    # The refused attempt was never charged to the account or to its pair; the success was refunded.
    rows = dict(await superuser.fetch("SELECT key, failures FROM auth_throttle WHERE key LIKE '王五%'"))
    assert rows == {"王五": 0, "王五\x1f203.0.113.6": 0}
    # A quiet spell as long as the window starts the count again.
    await superuser.execute("UPDATE auth_throttle SET last_failure = now() - $1::interval", limits.WINDOW * 2)
    assert await attempt(db, "王五", PASSWORD, "203.0.113.5") == 200


async def test_a_flood_on_one_account_leaves_its_known_places_open(db: Database, superuser: asyncpg.Connection) -> None:
    await accounts.create_user(db, "赵六", "regulator", PASSWORD, "徐州市市场监督管理局")
    assert await attempt(db, "赵六", PASSWORD, "192.0.2.20") == 200
    await superuser.execute(
        "UPDATE auth_throttle SET failures = $1, last_failure = now() WHERE scope = 'account' AND key = '赵六'",
        limits.ACCOUNT_FAILURES,
    )
    assert await attempt(db, "赵六", PASSWORD, "203.0.113.99") == 429  # a place it never signed in from
    assert await attempt(db, "赵六", PASSWORD, "192.0.2.20") == 200  # its desk


async def test_the_console_page_says_when_to_come_back(world: World, db: Database) -> None:
    from tests.web.test_pages import sign_in

    await accounts.create_user(db, "钱七", "regulator", PASSWORD, "徐州市市场监督管理局")
    for _ in range(limits.PAIR_FAILURES):
        assert (await sign_in(world.client, "钱七", "not the password")).status == 401
    locked = await sign_in(world.client, "钱七", PASSWORD)
    assert locked.status == 429 and "15" in await locked.text()


# -- failed credential checks and capture, over HTTP ---------------------------------------------------


@pytest.fixture
async def proxied(aiohttp_client: Any, db_url: str, tmp_path: Path, world: World) -> Any:
    """The app behind a trusted proxy on 127.0.0.1, so a test can speak from several addresses."""
    settings = Settings.from_env(
        {"TRACE_TRUSTED_PROXIES": "127.0.0.1", "TRACE_CAPTURE_RATE": "1", "TRACE_CAPTURE_BURST": "3"},
        database_url=db_url,
        data_dir=tmp_path,
        public_url="http://trace.test",
    )
    c = await aiohttp_client(still(create_app(settings)))
    yield c
    await c.close()


def still(app: web.Application) -> web.Application:
    """``app`` with its rate limits' clock held still: no token comes back while a test spends a burst,
    however slowly the machine runs it, so the counts are exact."""
    now = time.monotonic()
    app[LIMITS].clock = lambda: now
    return app


def speaking_from(address: str, token: str | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": address}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_a_source_trying_credentials_gets_429_and_others_do_not(proxied: Any, world: World) -> None:
    code = await world.open_batch()
    device = world.devices["slaughter"]
    assert (await proxied.get(f"/api/v1/batches/{code}", headers=speaking_from("203.0.113.1", device))).status == 200
    statuses = []
    for i in range(limits.CREDENTIAL_FAILURES + 5):
        resp = await proxied.get(f"/api/v1/batches/{code}", headers=speaking_from("203.0.113.1", f"tak_guess{i}"))
        statuses.append(resp.status)
    assert statuses[: limits.CREDENTIAL_FAILURES] == [401] * limits.CREDENTIAL_FAILURES
    assert set(statuses[limits.CREDENTIAL_FAILURES :]) == {429}
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "too_many_requests"
    # A credential this process already knows still works from there; other addresses are not affected.
    assert (await proxied.get(f"/api/v1/batches/{code}", headers=speaking_from("203.0.113.1", device))).status == 200
    resp = await proxied.get(f"/api/v1/batches/{code}", headers=speaking_from("198.51.100.2", "tak_typo"))
    assert resp.status == 401


async def test_capture_is_limited_per_credential(proxied: Any, world: World) -> None:
    code = await world.open_batch()
    slaughter, market = world.devices["slaughter"], world.devices["market"]
    statuses = []
    for _ in range(5):
        resp = await proxied.post(
            "/api/v1/events", json=world.event(code), headers=speaking_from("192.0.2.1", slaughter)
        )
        statuses.append(resp.status)
    assert statuses[:3] == [201, 201, 201] and statuses[3:] == [429, 429]
    assert resp.headers["Retry-After"] == "1"
    market_code = await world.open_batch("market", product="22101001")
    resp = await proxied.post(
        "/api/v1/events", json=world.event(market_code), headers=speaking_from("192.0.2.1", market)
    )
    assert resp.status == 201  # another credential, its own bucket
    # Reading is not capture: the limited device still reads.
    assert (await proxied.get(f"/api/v1/batches/{code}", headers=speaking_from("192.0.2.1", slaughter))).status == 200
