"""A regulator triages anomalies: severity, status, assignee and notes kept as history; filters by status, kind,
district, enterprise and date; each anomaly explained in the reader's language, naming batch, node and rule."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, expect

from tests.web.conftest import REGULATOR, Demo, new_page
from tests.web.test_console_words import signed_in


async def test_a_regulator_triages_an_anomaly_to_resolved(demo: Demo, browser: Browser) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        found = await conn.fetchrow(
            "SELECT a.id, n.name_zh, n.name_en, n.area_code, en.name AS enterprise FROM anomalies a "
            "JOIN nodes n ON n.id = a.node_id JOIN enterprises en ON en.id = a.enterprise_id "
            "WHERE a.kind = 'drug_serial_dispensed_twice'"
        )
        other_area = await conn.fetchval(
            "SELECT n.area_code FROM anomalies a JOIN nodes n ON n.id = a.node_id WHERE n.area_code <> $1 LIMIT 1",
            found["area_code"],
        )
    finally:
        await conn.close()
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 900})
    try:
        await desk.goto(f"{demo.url}/console/anomalies?status=open")
        await desk.get_by_label("账号").fill(REGULATOR[0])
        await desk.get_by_label("密码").fill(REGULATOR[1])
        await desk.get_by_role("button", name="登录").click()
        rows = desk.locator("main table tbody tr")
        open_before = await rows.count()
        assert open_before >= 4
        # Filter to the anomaly: its district and part of its enterprise's name.
        await desk.get_by_label("区县").select_option(found["area_code"])
        await desk.get_by_label("企业（名称或统一社会信用代码）").fill(found["enterprise"][2:6])
        await desk.get_by_label("类型").select_option("drug_serial_dispensed_twice")
        await desk.get_by_role("button", name="检索").click()
        await expect(rows).to_have_count(1)
        row = rows.first
        await expect(row).to_contain_text("高")  # a drug sold twice starts as high
        await expect(row).to_contain_text("新发现")
        explanation = await row.locator("td").nth(6).inner_text()
        assert "药品追溯码重复销售" in explanation and found["name_zh"] in explanation and "批次 3203" in explanation
        await row.get_by_role("link", name="药品追溯码重复销售").click()
        await expect(desk.get_by_role("heading", name="处置记录")).to_be_visible()
        await expect(desk.locator("main")).to_contain_text("尚未处置")
        # Investigating, assigned, with a note.
        await desk.get_by_label("状态").select_option("investigating")
        await desk.get_by_label("负责人").fill("张科长")
        await desk.get_by_label("备注").fill("已通知两家药店\n调取销售记录")
        await desk.get_by_role("button", name="保存处置").click()
        history = desk.locator("main section").last.locator("tbody tr")
        await expect(history).to_have_count(1)
        await expect(history.first).to_contain_text("调查中")
        await expect(history.first).to_contain_text("张科长")
        await expect(history.first).to_contain_text(REGULATOR[0])
        # Resolving needs a reason.
        await desk.get_by_label("状态").select_option("resolved")
        await desk.get_by_role("button", name="保存处置").click()
        await expect(desk.get_by_role("alert")).to_contain_text("note")
        await desk.get_by_label("状态").select_option("resolved")
        await desk.get_by_label("严重程度").select_option("medium")
        await desk.get_by_label("备注").fill("回流药已封存，药店已整改")
        await desk.get_by_role("button", name="保存处置").click()
        await expect(history).to_have_count(2)
        await expect(history.nth(1)).to_contain_text("已处理")
        await expect(history.nth(0)).to_contain_text("调查中")  # the earlier step stays as it was
        # It left the open list, and shows among the resolved.
        await desk.goto(f"{demo.url}/console/anomalies?status=open")
        await expect(rows).to_have_count(open_before - 1)
        await desk.goto(f"{demo.url}/console/anomalies?status=resolved&district={found['area_code']}")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("张科长")
        if other_area:
            await desk.goto(f"{demo.url}/console/anomalies?status=resolved&district={other_area}")
            await expect(desk.locator("main")).to_contain_text("没有")
        # In English, the same anomaly explained in English.
        await desk.goto(f"{demo.url}/console/anomalies/{found['id']}?lang=en")
        main = desk.locator("main")
        await expect(main).to_contain_text("Drug serial dispensed twice: serial")
        await expect(main).to_contain_text(found["name_en"])
        await expect(main).to_contain_text("Resolved")
    finally:
        await context.close()
    conn = await asyncpg.connect(demo.db_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE anomaly_triage SET note = 'changed'")
    finally:
        await conn.close()


async def test_triage_refuses_what_it_does_not_know(demo: Demo) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        anomaly = await conn.fetchval("SELECT min(id) FROM anomalies")
    finally:
        await conn.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        async with session.get(f"{demo.url}/console/anomalies/{anomaly}") as resp:
            token = (await resp.text()).split('name="csrf" value="', 1)[1].split('"', 1)[0]
        base = f"{demo.url}/console/anomalies/{anomaly}?format=json"
        for form, field in (
            ({"status": "closed"}, "status"),
            ({"severity": "critical"}, "severity"),
            ({"assignee": "张" * 101}, "assignee"),
            ({"note": "a\x00b"}, "note"),
            ({}, None),
        ):
            async with session.post(base, data={"csrf": token, **form}, headers={"Origin": demo.url}) as resp:
                body = await resp.json()
                assert resp.status == 422, (form, resp.status)
                assert body["error"].get("field") == field, body
        async with session.post(
            base, data={"csrf": token, "status": "investigating"}, headers={"Origin": demo.url}
        ) as resp:
            assert resp.status == 200
            done = await resp.json()
        assert done["anomaly"]["status"] == "investigating" and len(done["history"]) == 1
        async with session.get(f"{demo.url}/console/anomalies/999999999") as resp:
            assert resp.status == 404
        async with session.get(f"{demo.url}/console/anomalies?status=maybe&format=json") as resp:
            assert resp.status == 422
