"""The console opens on a dashboard: today's and this week's figures, anomalies, recalls, the map and the flows,
each a way into its list; on a tablet."""

from __future__ import annotations

import aiohttp
import asyncpg
from playwright.async_api import Browser, expect

from tests.web.conftest import REGULATOR, TABLET, Demo, new_page
from tests.web.test_console_words import signed_in


async def test_the_dashboard_on_a_tablet_leads_to_each_list(demo: Demo, browser: Browser) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        placed = await conn.fetchval("SELECT count(*) FROM nodes WHERE latitude IS NOT NULL")
        holding_recalled = await conn.fetchval(
            "SELECT count(DISTINCT s.node_id) FROM batch_stock s JOIN batch_heads h ON h.batch_id = s.batch_id "
            "WHERE h.status = 'recalled' AND s.received > s.dispatched"
        )
        a_node = await conn.fetchval("SELECT code FROM nodes WHERE node_type = 'slaughterhouse' ORDER BY code LIMIT 1")
        affected = await conn.fetchval("SELECT affected FROM recalls")
    finally:
        await conn.close()
    context, tablet = await new_page(browser, viewport=TABLET)
    try:
        await tablet.goto(f"{demo.url}/console/login")
        await tablet.get_by_label("账号").fill(REGULATOR[0])
        await tablet.get_by_label("密码").fill(REGULATOR[1])
        await tablet.get_by_role("button", name="登录").click()
        await expect(tablet.get_by_role("heading", name="工作台", level=1)).to_be_visible()
        # Nothing wider than the tablet: the page, the map and the flows fit.
        assert await tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        for svg in ("svg.map", "svg.flows"):
            box = await tablet.locator(svg).bounding_box()
            assert box is not None and box["width"] <= TABLET["width"]
        # The week's figures are the ledger's.
        week = tablet.get_by_role("link", name="追溯记录 · 近 7 天")
        assert int((await week.inner_text()).split()[0]) > 100
        # The map: one dot per node that has a place, the ones holding recalled goods in red.
        await expect(tablet.locator("svg.map circle")).to_have_count(placed)
        await expect(tablet.locator("svg.map circle.st-recalled")).to_have_count(holding_recalled)
        assert holding_recalled >= 1
        await expect(tablet.locator(".legend")).to_contain_text(f"持有召回产品 ({holding_recalled})")
        # The flows: bands between kinds of node, the wholesale market among them.
        assert await tablet.locator("svg.flows path.flow-band").count() >= 3
        await expect(tablet.locator("svg.flows")).to_contain_text("批发市场")
        # The recall in progress, with its progress bar.
        bar = tablet.locator(".recall-progress progress")
        await expect(bar).to_have_attribute("value", "0")
        await expect(tablet.locator(".recall-progress")).to_contain_text(f"0 / {affected}")
        # Each figure leads to its list: an anomaly kind to the anomalies of that kind ...
        await tablet.get_by_role("link", name="药品追溯码重复销售").click()
        await expect(tablet).to_have_url(
            f"{demo.url}/console/anomalies?status=open&severity=high&kind=drug_serial_dispensed_twice"
        )
        await expect(tablet.locator("main table tbody tr")).to_have_count(1)
        await tablet.go_back()
        # ... a node on the map to its batches ...
        dot = tablet.locator(f'svg.map a[href="/console/search?node={a_node}"]').first
        await dot.focus()  # by keyboard: in the city centre dots lie close together
        await tablet.keyboard.press("Enter")
        await expect(tablet.get_by_role("heading", name="追溯检索")).to_be_visible()
        assert await tablet.locator("main table tbody tr").count() > 0
        await tablet.go_back()
        # ... the recall to its batch, and a flow to the key data elements of the week.
        await tablet.locator("svg.flows a").first.focus()
        await tablet.keyboard.press("Enter")
        await expect(tablet.get_by_role("heading", name="关键数据元素导出")).to_be_visible()
        assert await tablet.locator("main table tbody tr").count() > 0
        await tablet.go_back()
        await tablet.get_by_role("link", name="一级召回 · 生猪").click()
        await expect(tablet.get_by_role("heading", level=1)).to_contain_text(demo.codes["recall"])
    finally:
        await context.close()


async def test_the_dashboard_twin_and_old_search_links(demo: Demo) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        async with session.get(f"{demo.url}/console?format=json") as resp:
            d = await resp.json()
        assert set(d["counts"]) == {"events", "batches", "receipts", "inspections"}
        assert d["counts"]["events"]["week"] >= d["counts"]["events"]["today"]
        kinds = {a["kind"]: a for a in d["anomalies"]}
        assert sum(d["severities"].values()) == sum(a["count"] for a in d["anomalies"]) >= 4
        assert (
            kinds["drug_serial_dispensed_twice"]["count"] == 1
            and kinds["drug_serial_dispensed_twice"]["severity"] == "high"
        )
        assert d["recalls"][0]["trace_code"] == demo.codes["recall"] and d["recalls"][0]["affected"] >= 7
        assert all(0 <= n["x"] <= d["map"]["width"] and 0 <= n["y"] <= d["map"]["height"] for n in d["map"]["nodes"])
        assert sum(link["batches"] for link in d["flows"]["links"]) > 0
        async with session.get(f"{demo.url}/console?enterprise=91320311", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/console/search?enterprise=91320311"
