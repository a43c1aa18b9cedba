"""Recalls to the last stall: a preview of everything a recall reaches, confirmation with the level chosen
explicitly, and the recall's page with every batch, place, stall and receipt, quantities and contacts."""

from __future__ import annotations

import io
import re

import aiohttp
import asyncpg
import openpyxl
from playwright.async_api import Browser, expect

from tests.web.conftest import REGULATOR, Demo, new_page
from tests.web.test_console_words import signed_in


async def test_a_regulator_previews_confirms_and_follows_a_recall(demo: Demo, browser: Browser) -> None:
    code = demo.codes["pork"]
    conn = await asyncpg.connect(demo.db_url)
    try:
        stall = await conn.fetchrow(
            "SELECT DISTINCT o.name, o.contact, o.stall_no FROM events e JOIN batches b ON b.id = e.batch_id "
            "JOIN devices d ON d.id = e.device_id JOIN operators o ON o.id = d.operator_id "
            "WHERE b.trace_code = $1",
            code,
        )
        receipts = await conn.fetchval(
            "SELECT count(*) FROM batch_links l JOIN batches p ON p.id = l.parent_id WHERE p.trace_code = $1", code
        )
    finally:
        await conn.close()
    assert stall is not None and stall["contact"]
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 900})
    try:
        await desk.goto(f"{demo.url}/console/batches/{code}")
        await desk.get_by_label("账号").fill(REGULATOR[0])
        await desk.get_by_label("密码").fill(REGULATOR[1])
        await desk.get_by_role("button", name="登录").click()
        # No level is chosen for the regulator.
        assert await desk.get_by_label("召回级别").input_value() == ""
        await desk.get_by_label("召回级别").select_option("II")
        await desk.get_by_label("召回原因").fill("抽检不合格")
        await desk.get_by_role("button", name="预览召回范围").click()
        await expect(desk.get_by_role("heading", name="召回范围预览")).to_be_visible()
        main = desk.locator("main")
        # The stall that sold it, with its phone, and the receipts consumers took home.
        await expect(main).to_contain_text(stall["name"])
        await expect(main).to_contain_text(stall["contact"])
        await expect(main).to_contain_text("0516-")  # the enterprises' contacts
        if receipts:
            await expect(main.locator(".facts")).to_contain_text(str(receipts))
        # Nothing is recalled yet.
        conn = await asyncpg.connect(demo.db_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM recalls") == 1
        finally:
            await conn.close()
        await expect(desk.get_by_role("radio", name="二级召回")).to_be_checked()
        await desk.get_by_role("checkbox").check()
        await desk.get_by_role("button", name="发布召回").click()
        await expect(desk).to_have_url(re.compile(r"/console/recalls/\d+$"))
        await expect(desk.get_by_role("heading", level=1)).to_contain_text("二级召回")
        bar = desk.locator(".recall-progress progress")
        await expect(bar).to_have_attribute("value", "0")
        await expect(main).to_contain_text(stall["name"])
        page_rows = await desk.locator("table.reach tbody tr").count()
        recall_url = desk.url
    finally:
        await context.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        async with session.get(f"{recall_url}?format=json") as resp:
            recall = await resp.json()
        assert recall["level"] == "II" and recall["affected"] == len(recall["batches"])
        stock = [s for p in recall["places"] for s in p.get("stock", [])]
        assert any(float(s["sold"]) > 0 for s in stock) and all("left" in s for s in stock)
        async with session.get(f"{recall_url}?format=xlsx") as resp:
            rows = list(openpyxl.load_workbook(io.BytesIO(await resp.read())).worksheets[0].iter_rows(values_only=True))
        header = rows[0]
        assert header[:3] == ("节点", "节点编码", "节点类型")
        assert len(rows) - 1 >= page_rows
        stall_rows = [r for r in rows[1:] if r[header.index("摊位联系方式")] == stall["contact"]]
        received = [r[header.index("进货量")] for r in stall_rows if r[header.index("进货量")] is not None]
        assert received and all(isinstance(v, float | int) for v in received)  # receipts there hold no stock
        # A recall without its level, or without its confirmation, is refused by the preview.
        async with session.get(f"{demo.url}/console/batches/{demo.codes['drug']}") as resp:
            token = (await resp.text()).split('name="csrf" value="', 1)[1].split('"', 1)[0]
        for form in ({"reason": "x", "confirm": "yes"}, {"level": "I", "reason": "x"}):
            async with session.post(
                f"{demo.url}/console/batches/{demo.codes['drug']}/recall",
                data={"csrf": token, **form},
                headers={"Origin": demo.url},
            ) as resp:
                assert resp.status == 422
                assert "召回范围预览" in await resp.text()
