"""The console's part in hardening: its views, exports and recalls in the access log, the administrators'
access log page, changing one's own password, limits on the sign-in and vendor pages; and, in a real
Chromium, an administrator reading who saw a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import World, until
from tests.test_limits import speaking_from, still
from tests.web.conftest import new_page, pork_chain
from tests.web.test_pages import CSRF, csrf_of, sign_in
from traceability.config import Settings
from traceability.domain import limits, stations
from traceability.http.app import create_app
from traceability.services import accounts, principals
from traceability.storage.database import open_database

ADMIN = ("管理员", "an administrator's long password")


async def add_admin(db_url: str) -> None:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, ADMIN[0], "admin", ADMIN[1])


async def access_log(world: World, count: int) -> list[dict[str, Any]]:
    """The access log once it holds ``count`` records (each process writes its records in the background)."""

    async def written() -> list[dict[str, Any]] | None:
        resp = await world.client.get("/api/v1/admin/access-log", headers=world.auth(world.admin))
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items if len(items) >= count else None

    return await until(written, f"{count} access records")


async def test_console_reads_and_recalls_are_recorded_and_admins_read_them(
    world: World, regulator: tuple[str, str], db_url: str
) -> None:
    code = await pork_chain(world)
    client = world.client
    assert (await sign_in(client, *regulator)).status == 303
    assert (await client.get(f"/console/batches/{code}")).status == 200
    assert (await client.get(f"/console/batches/{code}/export.csv")).status == 200
    token = CSRF.search(await (await client.get(f"/console/batches/{code}")).text()).group(1)  # type: ignore[union-attr]
    form = {"csrf": token, "level": "II", "reason": "抽检"}
    resp = await client.post(f"/console/batches/{code}/recall", data=form)
    assert resp.status == 422  # not without its confirmation, after the preview
    resp = await client.post(f"/console/batches/{code}/recall", data={**form, "confirm": "yes"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/recalls/")
    found = await access_log(world, 4)
    assert [e["action"] for e in found] == ["recall", "view", "export", "view"]
    assert all(e["actor"]["kind"] == "user" and e["actor"]["name"] == regulator[0] for e in found)
    assert found[0]["actor"]["authority"] == "徐州市市场监督管理局" and found[2]["detail"]["format"] == "csv"
    recalls = await (await client.get("/console/recalls?format=json")).json()
    assert recalls["recalls"][0]["issued_by"].startswith("user:")  # the console shows the account too
    # The access log page is for administrators only.
    assert (await client.get("/console/audit")).status == 403
    await add_admin(db_url)
    await client.post("/console/logout", data={"csrf": token})
    assert (await sign_in(client, *ADMIN)).status == 303
    page = await client.get("/console/audit?action=export")
    text = await page.text()
    assert page.status == 200 and regulator[0] in text and text.count("/console/batches/") == 1  # one export
    twin = await (await client.get("/console/audit?format=json")).json()
    assert len(twin["items"]) >= 4 and twin["actions"] == ["view", "trace", "export", "recall"]


async def test_a_console_user_changes_their_password(world: World, regulator: tuple[str, str]) -> None:
    client = world.client
    assert (await sign_in(client, *regulator)).status == 303
    token = await csrf_of(client, "/console/password")
    wrong = await client.post("/console/password", data={"csrf": token, "current_password": "nope",
                                                          "password": "a brand new password"})  # fmt: skip
    assert wrong.status == 422 and "current_password" in await wrong.text()
    done = await client.post("/console/password", data={"csrf": token, "current_password": regulator[1],
                                                         "password": "a brand new password"})  # fmt: skip
    assert done.status == 200 and "密码已修改" in await done.text()
    assert (await client.get("/console", allow_redirects=False)).status == 200  # this browser stays signed in
    client.session.cookie_jar.clear()  # another browser
    other = await sign_in(client, regulator[0], regulator[1])
    assert other.status == 401  # the old password is gone
    assert (await sign_in(client, regulator[0], "a brand new password")).status == 303


async def test_the_sign_in_pages_say_when_to_come_back(
    aiohttp_client: Any,
    world: World,
    db_url: str,
    tmp_path: Path,
    regulator: tuple[str, str],
    superuser: asyncpg.Connection,
) -> None:
    for _ in range(limits.PAIR_FAILURES):
        assert (await sign_in(world.client, regulator[0], "not the password")).status == 401
    locked = await sign_in(world.client, *regulator)
    assert locked.status == 429 and locked.headers["Retry-After"] == str(int(limits.WINDOW.total_seconds()))
    # The vendor page counts wrong credentials like the API does, and limits recording like capture.
    settings = Settings.from_env(
        {"TRACE_TRUSTED_PROXIES": "127.0.0.1", "TRACE_CAPTURE_RATE": "0.001", "TRACE_CAPTURE_BURST": "1"},
        database_url=db_url,
        data_dir=tmp_path,
        public_url="http://trace.test",
    )
    c = await aiohttp_client(still(create_app(settings)))
    try:
        here = speaking_from("203.0.113.77")
        statuses = []
        for i in range(limits.CREDENTIAL_FAILURES + 1):
            token = await csrf_of(c, "/vendor/login")
            resp = await c.post(
                "/vendor/login",
                data={"csrf": token, "card": f"{stations.CARD_TOKEN_PREFIX}{'x' * 20}{i:04d}", "pin": "250817"},
                headers=here,
            )
            statuses.append(resp.status)
        # The sign-in page's own limit (30 at once per address) comes first; each wrong card was also counted.
        assert statuses[: limits.SIGN_IN_BURST] == [401] * limits.SIGN_IN_BURST and statuses[-1] == 429
        assert "Retry-After" in resp.headers
        counted = await superuser.fetchval(
            "SELECT failures FROM auth_throttle WHERE scope = 'credential' AND key = '203.0.113.77'"
        )
        assert counted == limits.SIGN_IN_BURST
        # Recording on the vendor page is capture, under the same per-credential limit as the API.
        code = await pork_chain(world)
        async with open_database(Settings.from_env({}, database_url=db_url)) as db:
            stall = await principals.authenticate(db, world.devices["stall"])
            card = (await accounts.issue_vendor_card(db, stall, {"pin": "250817"}))["card"]
        token = await csrf_of(c, "/vendor/login")
        resp = await c.post("/vendor/login", data={"csrf": token, "card": card, "pin": "250817"},
                            allow_redirects=False)  # fmt: skip
        assert resp.status == 303
        form = await csrf_of(c, "/vendor")
        first = await c.post("/vendor/record", data={"csrf": form, "action": "receive", "code": code},
                             allow_redirects=False)  # fmt: skip
        assert first.status == 303, await first.text()
        second = await c.post("/vendor/record", data={"csrf": form, "action": "sell", "code": code})
        assert second.status == 429 and int(second.headers["Retry-After"]) >= 1
    finally:
        await c.close()


@pytest.mark.browser
async def test_an_administrator_reads_who_saw_a_batch(
    world: World, browser: Browser, base_url: str, regulator: tuple[str, str], db_url: str
) -> None:
    code = await pork_chain(world)
    await add_admin(db_url)
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 800})
    try:
        for who in (regulator, ADMIN):
            await desk.goto(f"{base_url}/console/login")
            await desk.get_by_label("账号").fill(who[0])
            await desk.get_by_label("密码").fill(who[1])
            await desk.get_by_role("button", name="登录").click()
            await expect(desk.get_by_role("heading", name="追溯检索")).to_be_visible()
            if who is regulator:
                await desk.goto(f"{base_url}/console/batches/{code}")
                await expect(desk.get_by_role("heading", level=1)).to_contain_text(code)
                await desk.get_by_role("button", name="退出").click()
        await desk.get_by_role("link", name="访问记录").click()
        rows = desk.locator("main table tbody tr")
        await expect(rows.first).to_contain_text(regulator[0])
        await expect(rows.first).to_contain_text("查看完整记录")
        await expect(rows.first).to_contain_text("徐州市市场监督管理局")
        await expect(rows.first).to_contain_text(code)
    finally:
        await context.close()
