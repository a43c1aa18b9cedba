"""Credit per enterprise and per stall: every factor named with its rule, months without activity shown as such
(never as 100/A), the history drawn as a small chart."""

from __future__ import annotations

import io

import aiohttp
import asyncpg
import openpyxl
from playwright.async_api import Browser, expect

from tests.web.conftest import REGULATOR, Demo, new_page
from tests.web.test_console_words import signed_in


async def test_a_stall_rated_for_selling_expired_chicken(demo: Demo, browser: Browser) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        found = await conn.fetchrow(
            "SELECT en.uscc, n.code AS node, o.code AS stall, o.name AS stall_name FROM anomalies a "
            "JOIN events e ON e.event_id = a.event_id JOIN devices d ON d.id = e.device_id "
            "JOIN operators o ON o.id = d.operator_id JOIN nodes n ON n.id = o.node_id "
            "JOIN enterprises en ON en.id = n.enterprise_id WHERE a.kind = 'sold_after_expiry'"
        )
        active_months = await conn.fetchval(
            "SELECT count(DISTINCT date_trunc('month', e.event_time AT TIME ZONE 'Asia/Shanghai')) FROM events e "
            "JOIN nodes n ON n.id = e.node_id JOIN enterprises en ON en.id = n.enterprise_id WHERE en.uscc = $1",
            found["uscc"],
        )
    finally:
        await conn.close()
    context, desk = await new_page(browser, viewport={"width": 1024, "height": 900})
    try:
        await desk.goto(f"{demo.url}/console/enterprises/{found['uscc']}")
        await desk.get_by_label("账号").fill(REGULATOR[0])
        await desk.get_by_label("密码").fill(REGULATOR[1])
        await desk.get_by_role("button", name="登录").click()
        main = desk.locator("main")
        # Every factor in Chinese with its rule; no English word of the analyzer's.
        await expect(main).to_contain_text("严重异常")
        await expect(main).to_contain_text("每次扣 5 分，最多扣 30 分")
        await expect(main).to_contain_text("超过 24 小时才上报的记录占比 × 10 分")
        # Twelve months: the quiet ones say so, in the table and as hollow dots on the chart.
        history = desk.locator("section").filter(has=desk.get_by_role("heading", name="历史")).locator("tbody tr")
        await expect(history).to_have_count(12)
        quiet = 12 - active_months
        assert quiet > 0
        await expect(history.filter(has_text="当月无经营记录")).to_have_count(quiet)
        await expect(desk.locator("svg.credit-chart circle.quiet-dot")).to_have_count(quiet)
        await expect(desk.locator("svg.credit-chart circle.score-dot")).to_have_count(active_months)
        for row in await history.filter(has_text="当月无经营记录").all():
            assert "100" not in await row.inner_text()
        # The stall that sold the expired chicken, rated on its own.
        await desk.get_by_role("link", name=f"{found['stall']} · {found['stall_name']}").click()
        await expect(desk.get_by_role("heading", level=1)).to_contain_text(found["stall_name"])
        await expect(main).to_contain_text("摊位信用评价")
        serious = desk.locator("tbody tr").filter(has_text="严重异常")
        await expect(serious.locator("td").nth(1)).to_have_text("1")
        await expect(serious.locator("td").nth(2)).to_have_text("5")
        await expect(main).to_contain_text("过期销售: 1")
    finally:
        await context.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        url = f"{demo.url}/console/stalls/{found['node']}/{found['stall']}"
        async with session.get(f"{url}?format=json") as resp:
            rating = await resp.json()
        assert rating["operator"] == found["stall"] and rating["score"] <= 95 and rating["grade"] in "AB"
        assert all(h["score"] is None and h["grade"] is None for h in rating["history"] if h["events"] == 0)
        async with session.get(f"{url}?format=xlsx") as resp:
            rows = list(openpyxl.load_workbook(io.BytesIO(await resp.read())).worksheets[0].iter_rows(values_only=True))
        months = [r for r in rows[1:] if r[0] == "月份"]
        assert len(months) == 12
        assert [r[8] for r in months if r[2] == 0] == ["当月无经营记录"] * sum(1 for r in months if r[2] == 0)
        async with session.get(f"{demo.url}/console/stalls/{found['node']}/Z-99") as resp:
            assert resp.status == 404
