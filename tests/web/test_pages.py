"""The pages over HTTP: JSON twins, errors, sign-in security, exports, the vendor flow, the CLI."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from typing import Any

import asyncpg
import qrcode

from tests.conftest import World
from tests.web.conftest import STALL_PIN, leased_code, pork_chain, stall_card
from traceability.domain import tracecode
from traceability.services import accounts

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def csrf_of(client: Any, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, resp.status
    match = CSRF.search(await resp.text())
    assert match is not None
    return match.group(1)


async def sign_in(client: Any, name: str, password: str, **headers: str) -> Any:
    token = await csrf_of(client, "/console/login")
    return await client.post(
        "/console/login",
        data={"csrf": token, "name": name, "password": password},
        allow_redirects=False,
        headers=headers,
    )


async def test_consumer_page_twin_is_the_api_view(world: World) -> None:
    code = await pork_chain(world)
    api = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    resp = await world.client.get(f"/t/{code}?format=json")
    assert resp.status == 200 and resp.content_type == "application/json"
    twin = await resp.json()
    assert twin["batch"] == api
    assert twin["status"]["state"] == "ok"
    assert [s["type"] for s in twin["journey"]] == ["origin", "slaughterhouse", "wet_market"]
    assert twin["vendor"]["name"] == "王记鲜肉" and twin["vendor"]["stall_no"] == "A-012"
    assert [e["hash"] for e in twin["ledger"]["events"]] == [e["hash"] for e in api["events"]]
    assert "24.6" not in await resp.text()  # sealed: the canonical bytes carry only the seal
    html = await world.client.get(f"/t/{code}", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert html.headers["Content-Language"] == "en"
    assert "default-src 'self'" in html.headers["Content-Security-Policy"]
    again = await world.client.get(
        f"/t/{code}", headers={"Accept-Language": "en", "If-None-Match": html.headers["ETag"]}
    )
    assert again.status == 304
    spaced = await world.client.get("/t/" + tracecode.pretty(code).replace(" ", "%20"), allow_redirects=False)
    assert spaced.status == 301 and spaced.headers["Location"] == f"/t/{code}"


async def test_bad_and_unknown_codes_get_friendly_pages(world: World) -> None:
    resp = await world.client.get("/t/3203110000000000001")
    assert resp.status == 400
    text = await resp.text()
    assert "追溯码有误" in text and "That code is not right" in text and "Traceback" not in text
    resp = await world.client.get("/t/32031100000000000019?format=json")
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_trace_code"
    assert set(body["error"]) == {"code", "message", "request_id", "field"}
    unknown = tracecode.make("320311", 999_999)
    resp = await world.client.get(f"/t/{unknown}")
    assert resp.status == 404 and "未找到此追溯码" in await resp.text()
    resp = await world.client.get("/t", params={"code": unknown}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/t/{unknown}"
    resp = await world.client.get("/t", params={"code": "12ab"})
    assert resp.status == 400 and "追溯码只含数字" in await resp.text()


async def test_a_leased_code_without_records_shows_its_stall(world: World, superuser: asyncpg.Connection) -> None:
    await pork_chain(world)
    code = await leased_code(superuser, 7)
    resp = await world.client.get(f"/t/{code}")
    text = await resp.text()
    assert resp.status == 200, text
    assert "记录正在同步" in text and "王记鲜肉" in text and "market 节点" in text
    twin = await (await world.client.get(f"/t/{code}?format=json")).json()
    assert twin["syncing"] is True


async def test_sign_in_cookies_csrf_and_lockout(world: World, db_url: str) -> None:
    from tests.web.conftest import REGULATOR

    client = world.client
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login?next=")
    assert (await client.get("/console?format=json")).status == 401
    settings_db = db_url
    await _user(settings_db, *REGULATOR)
    # the sign-in form needs its pre-session token
    resp = await client.post(
        "/console/login", data={"name": REGULATOR[0], "password": REGULATOR[1]}, allow_redirects=False
    )
    assert resp.status == 403
    resp = await sign_in(client, *REGULATOR, Origin="https://evil.example")
    assert resp.status == 403
    resp = await sign_in(client, *REGULATOR)
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    cookie = resp.cookies["trace_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
    page = await client.get("/console")
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    # signing out needs the session's CSRF token
    assert (await client.post("/console/logout", data={}, allow_redirects=False)).status == 403
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    assert (await client.post("/console/logout", data={"csrf": token}, allow_redirects=False)).status == 303
    assert (await client.get("/console", allow_redirects=False)).status == 303
    # five wrong passwords lock the account, even against the right one
    for _ in range(accounts.MAX_FAILURES):
        assert (await sign_in(client, REGULATOR[0], "wrong password!")).status == 401
    locked = await sign_in(client, *REGULATOR)
    assert locked.status == 429 and "try again in" in await locked.text()
    stored = await _hash(db_url)
    assert stored.startswith("$argon2id$") and REGULATOR[1] not in stored


async def _user(db_url: str, name: str, password: str) -> None:
    from traceability.config import Settings
    from traceability.storage.database import open_database

    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, name, "regulator", password, "徐州市市场监督管理局")


async def _hash(db_url: str) -> str:
    conn = await asyncpg.connect(db_url)
    try:
        value: str = await conn.fetchval("SELECT password_hash FROM console_users")
    finally:
        await conn.close()
    return value


async def test_console_twins_and_exports(world: World, regulator: tuple[str, str]) -> None:
    code = await pork_chain(world)
    assert (await sign_in(world.client, *regulator)).status == 303
    found = await (
        await world.client.get("/console", params={"enterprise": world.enterprises["market"], "format": "json"})
    ).json()
    assert [r["trace_code"] for r in found["results"]] == [code]
    none = await (await world.client.get("/console", params={"product": "100%_", "format": "json"})).json()
    assert none["results"] == []
    resp = await world.client.get("/console", params={"code": code}, allow_redirects=False)
    assert resp.headers["Location"] == f"/console/batches/{code}"
    record = await (await world.client.get(f"/console/batches/{code}?format=json")).json()
    assert record["batch"]["view"] == "full" and record["batch"]["events"][2]["commercial"]["unit_price"] == "24.6"
    resp = await world.client.get(f"/console/batches/{code}/export.csv")
    text = await resp.text()
    assert resp.headers["Content-Disposition"] == f'attachment; filename="batch-{code}.csv"'
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("行类型,追溯码,产品") and sum(line.startswith("事件,") for line in lines) == 5
    exported = await (await world.client.get(f"/console/batches/{code}/export.json")).json()
    assert exported == record["batch"]
    for path in ("/console/enterprises", "/console/log"):
        assert (await world.client.get(path)).status == 200
        assert (await world.client.get(path + "?format=json")).content_type == "application/json"


async def test_vendor_records_receive_and_sale_by_typing_and_by_photo(world: World, db_url: str) -> None:
    code = await pork_chain(world)
    card = await stall_card(db_url, world.devices["stall"])
    client = world.client
    token = await csrf_of(client, "/vendor/login")
    # A device credential pasted in is no longer a way in; nor is the card without its PIN.
    bad = await client.post("/vendor/login", data={"csrf": token, "card": world.devices["stall"], "pin": STALL_PIN})
    assert bad.status == 401 and "这张登录卡无效" in await bad.text()
    bad = await client.post("/vendor/login", data={"csrf": token, "card": card, "pin": "111112"})
    assert bad.status == 401 and "密码不对" in await bad.text()
    resp = await client.post(
        "/vendor/login", data={"csrf": token, "card": card, "pin": STALL_PIN}, allow_redirects=False
    )
    assert resp.status == 303 and resp.cookies["trace_vendor"]["path"] == "/vendor"
    form = await csrf_of(client, "/vendor")
    resp = await client.post(
        "/vendor/record",
        data={"csrf": form, "action": "receive", "code": tracecode.pretty(code)},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/vendor/receipt/{code}?seq=6"
    receipt = await client.get(resp.headers["Location"])
    assert "<svg" in await receipt.text() and f"http://trace.test/t/{code}" in await receipt.text()
    png = io.BytesIO()
    qrcode.make(f"http://trace.test/t/{code}").save(png, format="PNG")
    data = {"csrf": form, "action": "sell", "code": "", "weight": "0.75", "photo": io.BytesIO(png.getvalue())}
    resp = await client.post("/vendor/record", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    view = await (await client.get(f"/api/v1/batches/{code}")).json()
    sale = view["events"][-1]
    assert sale["bizStep"] == "retail_selling" and sale["quantity"]["value"] == "0.75"
    # The buyer's receipt carries a code of its own, cut from the batch: its page leads back through it.
    receipt_code = sale["attributes"]["receiptCode"]
    assert resp.headers["Location"] == f"/vendor/receipt/{receipt_code}?seq=1"
    shown = await (await client.get(resp.headers["Location"])).text()
    assert f"http://trace.test/t/{receipt_code}" in shown
    record = await (await client.get(f"/t/{receipt_code}?format=json")).json()
    assert record["sale"]["source"] == code and record["journey"][0]["kind"] == "origin"
    assert record["vendor"]["stall_no"] == "A-012"
    mistyped = code[:-1] + str((int(code[-1]) + 1) % 10)
    resp = await client.post("/vendor/record", data={"csrf": form, "action": "sell", "code": mistyped})
    page = await resp.text()
    assert resp.status == 422 and "追溯码不对：请检查后重输" in page and "check digit" in page
    assert (await client.post("/vendor/record", data={"action": "sell", "code": code})).status == 403


def test_cli_adds_a_console_user_with_the_password_from_stdin(db_url: str) -> None:
    out = cli_stdin(
        db_url,
        "a long enough password\n",
        "user",
        "add",
        "--role",
        "regulator",
        "--name",
        "局长",
        "--authority",
        "市场监管局",
    )
    assert out.returncode == 0, out.stderr
    assert "a long enough password" not in out.stderr + out.stdout
    out = cli_stdin(db_url, "short\n", "user", "add", "--role", "regulator", "--name", "x", "--authority", "市场监管局")
    assert out.returncode == 2 and "password" in out.stderr


def cli_stdin(db_url: str, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    from traceability.config import ROOT

    env = {**os.environ, "TRACE_DATABASE_URL": db_url, "TRACE_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "traceability", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_vendor_signs_in_with_a_photo_of_the_stall_card(world: World, db_url: str) -> None:
    await pork_chain(world)
    card = await stall_card(db_url, world.devices["stall"])
    # Five wrong PINs lock the card for a while, and the page says so and what to do.
    token = await csrf_of(world.client, "/vendor/login")
    for _ in range(5):
        await world.client.post("/vendor/login", data={"csrf": token, "card": card, "pin": "111112"})
    resp = await world.client.post("/vendor/login", data={"csrf": token, "card": card, "pin": STALL_PIN})
    assert resp.status == 429 and "分钟后再试" in await resp.text()
    # A new card (printed at the station) works at once; here as a photo of it.
    card = await stall_card(db_url, world.devices["stall"])
    png = io.BytesIO()
    qrcode.make(card).save(png, format="PNG")
    data = {"csrf": token, "card": "", "pin": STALL_PIN, "photo": io.BytesIO(png.getvalue())}
    resp = await world.client.post("/vendor/login", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def test_vendor_is_told_in_chinese_not_to_sell_recalled_or_expired_goods(world: World, db_url: str) -> None:
    code = await pork_chain(world)
    chicken = await world.open_batch(product="21113011", produced_on="2026-01-01", expires_on="2026-01-04")
    card = await stall_card(db_url, world.devices["stall"])
    client = world.client
    token = await csrf_of(client, "/vendor/login")
    await client.post("/vendor/login", data={"csrf": token, "card": card, "pin": STALL_PIN})
    form = await csrf_of(client, "/vendor")
    resp = await client.post("/vendor/record", data={"csrf": form, "action": "sell", "code": chicken})
    page = await resp.text()
    assert resp.status == 409 and "请勿销售：该批次已过保质期（2026-01-04 到期）" in page
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    before = (await (await client.get(f"/api/v1/batches/{code}")).json())["head"]["seq"]
    resp = await client.post("/vendor/record", data={"csrf": form, "action": "sell", "code": code, "weight": "1"})
    page = await resp.text()
    assert resp.status == 409 and "请勿销售或进货：该批次已召回" in page and "请将此批商品下架封存" in page
    assert (await (await client.get(f"/api/v1/batches/{code}")).json())["head"]["seq"] == before  # nothing recorded
    # In English when the vendor chose English.
    resp = await client.post(
        "/vendor/record",
        data={"csrf": form, "action": "sell", "code": code},
        headers={"Accept-Language": "en"},
    )
    assert "Do not sell or receive: this batch was recalled" in await resp.text()
