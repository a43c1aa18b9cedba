"""``make screenshots``: phone-size shots of the consumer page and the public information page (zh, en) and
desktop shots of the console: its dashboard, search, anomalies and a triage, a recall's reach and the key
data element export.

Loads the demo ledger into a fresh database on the test PostgreSQL, serves the real app on a free
local port, and drives Debian's chromium. Writes PNGs to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import asyncpg
from aiohttp import web
from playwright.async_api import Page, async_playwright

from tests.conftest import with_database
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, REGULATOR
from traceability.config import ROOT, Settings, test_database_url
from traceability.demo.loader import load_demo
from traceability.http.app import create_app
from traceability.services import accounts
from traceability.storage import migrator
from traceability.storage.database import open_database, start_embedded

OUT = ROOT / "docs" / "screenshots"
DATABASE = "trace_screenshots"
DESKTOP = {"width": 1280, "height": 860}


async def prepare(server_url: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = with_database(server_url, DATABASE)
    conn = await asyncpg.connect(url)
    try:
        await migrator.migrate(conn, ROOT / "schema")
    finally:
        await conn.close()
    return url


async def shoot(page: Page, url: str, name: str, *, wait_badge: bool = False) -> None:
    await page.goto(url)
    if wait_badge:
        await page.locator("#badge[data-state]:not([data-state=checking])").wait_for()
    await page.screenshot(path=str(OUT / name), full_page=True)
    print(f"wrote docs/screenshots/{name}")


async def main() -> int:
    url = await prepare(test_database_url() or start_embedded(ROOT / "var" / "test-pg"))
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {}, database_url=url, data_dir=Path(tmp), public_url="https://trace.example.cn", log_level="warning"
        )
        async with open_database(settings) as db:
            result = await load_demo(db, public_url="")
            codes = {key: code for key, _label, code in result.highlights}
            await accounts.create_user(db, REGULATOR[0], "regulator", REGULATOR[1], "徐州市市场监督管理局")
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        await asyncio.sleep(2)  # let the sequencer put the demo events in the log
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for lang, locale in (("zh", "zh-CN"), ("en", "en-US")):
                    ctx = await browser.new_context(viewport=PHONE, locale=locale, device_scale_factor=2)
                    page = await ctx.new_page()
                    await shoot(page, f"{base}/t/{codes['pork']}", f"consumer-{lang}.png", wait_badge=True)
                    await shoot(page, f"{base}/public", f"public-{lang}.png")
                    await ctx.close()
                ctx = await browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2)
                page = await ctx.new_page()
                await shoot(page, f"{base}/t/{codes['recall']}", "consumer-recalled-zh.png", wait_badge=True)
                await shoot(page, f"{base}/", "lookup-zh.png")
                await ctx.close()
                ctx = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
                page = await ctx.new_page()
                await page.goto(f"{base}/console/login")
                await page.screenshot(path=str(OUT / "console-login.png"))
                await page.get_by_label("账号").fill(REGULATOR[0])
                await page.get_by_label("密码").fill(REGULATOR[1])
                await page.get_by_role("button", name="登录").click()
                await page.wait_for_url(f"{base}/console")
                await asyncio.sleep(2)  # let the analyzer find the demo's anomalies for the dashboard
                await shoot(page, f"{base}/console", "console-dashboard.png")
                await shoot(page, f"{base}/console/search?enterprise=%E5%BE%90%E5%B7%9E", "console-search.png")
                await shoot(page, f"{base}/console/anomalies?status=open", "console-anomalies.png")
                anomaly = page.locator("main table tbody tr a").first
                await anomaly.click()
                await page.get_by_label("状态").select_option("investigating")
                await page.get_by_label("负责人").fill("张科长")
                await page.get_by_label("备注").fill("已通知药店封存，调取销售记录")
                await page.get_by_role("button", name="保存处置").click()
                await page.screenshot(path=str(OUT / "console-triage.png"), full_page=True)
                print("wrote docs/screenshots/console-triage.png")
                await shoot(page, f"{base}/console/recalls/1", "console-recall-reach.png")
                week = f"from={(date.today() - timedelta(days=7)).isoformat()}&to={date.today().isoformat()}"
                await page.goto(f"{base}/console/kde?category=meat&{week}")
                await page.screenshot(path=str(OUT / "console-kde-export.png"))  # the top: a month is long
                print("wrote docs/screenshots/console-kde-export.png")
                await shoot(page, f"{base}/console/batches/{codes['pork']}", "console-batch.png")
                await shoot(page, f"{base}/console/enterprises", "console-register.png")
                await shoot(page, f"{base}/console/log", "console-log.png")
                await ctx.close()
                await browser.close()
        finally:
            await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
