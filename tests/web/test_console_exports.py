"""Every console list and record as CSV and XLSX at its own URL: the same rows the page shows, headers in the
reader's language, Beijing time with its offset, numbers as numbers, formulas never run; and the key data
element export across lots."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import openpyxl
from playwright.async_api import Browser, expect

from tests.conftest import World
from tests.web.conftest import REGULATOR, Demo, new_page, pork_chain
from tests.web.test_console_words import signed_in
from tests.web.test_pages import sign_in
from traceability.services import kde

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def read_xlsx(body: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book.worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def read_csv(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with session.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def sheets_of(session: aiohttp.ClientSession, url: str) -> tuple[list[list[Any]], list[list[str]]]:
    sep = "&" if "?" in url else "?"
    status, kind, xlsx = await fetch(session, f"{url}{sep}format=xlsx")
    assert status == 200 and kind.startswith(XLSX), (url, status, kind)
    status, kind, text = await fetch(session, f"{url}{sep}format=csv")
    assert status == 200 and kind.startswith("text/csv"), (url, status)
    rows, lines = read_xlsx(xlsx), read_csv(text)
    assert len(rows) == len(lines), url
    return rows, lines


def column(rows: list[list[Any]], header: str) -> list[Any]:
    i = rows[0].index(header)
    return [r[i] for r in rows[1:]]


async def test_every_console_list_and_record_downloads_as_csv_and_xlsx(demo: Demo) -> None:
    codes = demo.codes
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        base = demo.url

        async def twin(path: str) -> Any:
            sep = "&" if "?" in path else "?"
            async with session.get(f"{base}{path}{sep}format=json") as resp:
                assert resp.status == 200, path
                return await resp.json()

        # Search results: one row per batch the page lists, production day as a date, quantity a number.
        found = await twin("/console?product=21113011")
        rows, lines = await sheets_of(session, f"{base}/console?product=21113011")
        assert rows[0][:3] == ["追溯码", "产品", "商品编码"] and lines[0][:3] == rows[0][:3]
        assert column(rows, "追溯码") == [r["trace_code"] for r in found["results"]]
        assert all(isinstance(q, float | int) for q in column(rows, "数量"))
        assert column(rows, "生产/屠宰日期")[0].date().isoformat() == found["results"][0]["produced_on"]
        assert all(v.endswith("+08:00") for v in column(lines, "建档时间（北京时间）"))

        # A batch's record: every event a row, a transformation's input its own row, each document its own row.
        record = await twin(f"/console/batches/{codes['pork']}")
        rows, lines = await sheets_of(session, f"{base}/console/batches/{codes['pork']}")
        kinds = column(rows, "行类型")
        assert kinds.count("事件") == len(record["batch"]["events"])
        opening = record["batch"]["events"][0]
        assert kinds.count("投入") == len(opening["inputs"]) == 1
        assert column(rows, "投入批次追溯码")[kinds.index("投入")] == opening["inputs"][0]["traceCode"]
        assert kinds.count("单据") == sum(len(e.get("documents", ())) for e in record["batch"]["events"])
        priced = next(e for e in record["batch"]["events"] if e.get("commercial"))
        priced_row = next(r for r in rows[1:] if r[0] == "事件" and r[rows[0].index("序号")] == priced["seq"])
        assert priced_row[rows[0].index("单价")] == float(priced["commercial"]["unit_price"])
        first_time = rows[1][rows[0].index("时间")]
        assert isinstance(first_time, datetime)
        assert lines[1][lines[0].index("时间")].endswith("+08:00")
        assert not any(cell.startswith(("{", "[")) for line in lines for cell in line)  # one value per cell
        async with session.get(f"{base}/console/batches/{codes['pork']}/export.xlsx") as resp:
            assert read_xlsx(await resp.read()) == rows  # the old export URL gives the same sheet

        # Traces backward and forward: one row per batch reached.
        for direction in ("backward", "forward"):
            trace = await twin(f"/console/batches/{codes['recall']}/{direction}")
            rows, _ = await sheets_of(session, f"{base}/console/batches/{codes['recall']}/{direction}")
            assert sorted(column(rows, "追溯码")) == sorted(b["trace_code"] for b in trace["batches"])
        # Anomalies, recalls, the register, a credit rating.
        anomalies = await twin("/console/anomalies")
        rows, _ = await sheets_of(session, f"{base}/console/anomalies")
        assert column(rows, "追溯码") == [a["trace_code"] for a in anomalies["anomalies"]]
        assert column(rows, "说明") == [a["explanation"] for a in anomalies["anomalies"]]
        recalls = await twin("/console/recalls")
        rows, _ = await sheets_of(session, f"{base}/console/recalls")
        assert column(rows, "受影响批次") == [r["affected"] for r in recalls["recalls"]]
        assert recalls["recalls"][0]["affected"] >= 7  # the lot, its carcasses and joints, and what was cut from them
        register = await twin("/console/enterprises")
        rows, _ = await sheets_of(session, f"{base}/console/enterprises")
        assert column(rows, "统一社会信用代码") == [e["uscc"] for e in register["items"]]
        assert column(rows, "得分") == [e["credit"]["score"] for e in register["items"]]
        uscc = register["items"][0]["uscc"]
        rating = await twin(f"/console/enterprises/{uscc}")
        rows, _ = await sheets_of(session, f"{base}/console/enterprises/{uscc}")
        factors = [f for f in rating["factors"] if f["factor"] != "anomalies_by_kind"]
        assert column(rows, "因素")[: len(factors)] == [f["name"] for f in factors]

        # The English console exports English headers.
        status, _, body = await fetch(session, f"{base}/console/anomalies?format=xlsx&lang=en")
        assert read_xlsx(body)[0][:4] == ["Detected", "Severity", "Status", "Assignee"]
        # A page that is not a list says so.
        status, _, body = await fetch(session, f"{base}/console/log?format=xlsx")
        assert status == 422


async def test_formulas_in_recorded_text_never_run_and_show_no_mark(world: World, regulator: tuple[str, str]) -> None:
    code = await pork_chain(world)
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "storing",
            documents=[{"type": "other", "number": "=HYPERLINK(1)", "issuer": "+1-2"}],
            commercial={"buyer": "@SUM(A1)", "unit_price": "3.50", "currency": "CNY"},
        ),
        world.devices["stall"],
        expect=201,
    )
    assert (await sign_in(world.client, *regulator)).status == 303
    resp = await world.client.get(f"/console/batches/{code}?format=xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    cells = {c.value: c for row in book.worksheets[0].iter_rows() for c in row if isinstance(c.value, str)}
    for text in ("=HYPERLINK(1)", "+1-2", "@SUM(A1)"):
        assert cells[text].data_type == "s", text  # kept as text, exactly as recorded
    prices = [c.value for row in book.worksheets[0].iter_rows() for c in row if c.value == 3.5]
    assert prices == [3.5] and isinstance(prices[0], float)
    resp = await world.client.get(f"/console/batches/{code}?format=csv")
    lines = read_csv(await resp.read())
    flat = [cell for line in lines for cell in line]
    assert "\u200b=HYPERLINK(1)" in flat and "\u200b@SUM(A1)" in flat and "\u200b+1-2" in flat
    assert "'=HYPERLINK(1)" not in flat and "3.5" in flat


async def test_key_data_elements_of_a_month_across_lots(demo: Demo) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        first, last = await conn.fetchrow(
            "SELECT min(event_time AT TIME ZONE 'Asia/Shanghai')::date, "
            "max(event_time AT TIME ZONE 'Asia/Shanghai')::date FROM events"
        )
        expected = await conn.fetchval(
            "SELECT count(*) FROM events e JOIN batches b ON b.id = e.batch_id JOIN products p ON p.id = b.product_id "
            "WHERE p.category = 'meat' "
            "AND (e.seq = 1 OR e.biz_step IN ('shipping', 'receiving', 'packing', 'repackaging'))"
        )
    finally:
        await conn.close()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        url = f"{demo.url}/console/kde?category=meat&from={first}&to={last}"
        started = time.perf_counter()
        status, _, body = await fetch(session, url + "&format=xlsx")
        took = time.perf_counter() - started
        assert status == 200
        rows = read_xlsx(body)
        print(f"key data elements: {len(rows) - 1} rows over {(last - first).days + 1} days as XLSX in {took:.2f} s")
        header = rows[0]
        assert header[:3] == ["关键追溯事件", "追溯码", "来源批次追溯码"] and "动物检疫合格证明" in header
        data = rows[1:]
        transformed_inputs = sum(1 for r in data if r[0] == "加工转化") - sum(
            1 for r in data if r[0] == "加工转化" and r[2] is None
        )
        assert len(data) >= expected and transformed_inputs > 0
        ctes = column(rows, "关键追溯事件")
        assert {"收获/屠宰/建档", "加工转化", "发货", "收货"} <= set(ctes)
        shipped = next(r for r in data if r[0] == "发货" and r[header.index("收货方")])
        assert shipped[header.index("发货方")] == shipped[header.index("发生地点")]
        assert shipped[header.index("收货方联系方式")].startswith("0516-")
        received = next(r for r in data if r[0] == "收货" and r[header.index("发货方")])
        assert received[header.index("收货方")] == received[header.index("发生地点")]
        assert all(isinstance(r[header.index("事件时间（北京时间）")], datetime) for r in data)
        assert any(r[header.index("动物检疫合格证明")] for r in data)
        status, _, text = await fetch(session, url + "&format=csv")
        lines = read_csv(text)
        assert len(lines) == len(rows) and all(
            line[header.index("事件时间（北京时间）")].endswith("+08:00") for line in lines[1:]
        )
        status, _, _ = await fetch(session, f"{demo.url}/console/kde?from=2026-01-10&to=2026-01-01&format=xlsx")
        assert status == 422


def test_every_document_type_has_its_column() -> None:
    from traceability.domain.events import DOCUMENT_TYPES

    assert set(kde.DOCUMENTS) == DOCUMENT_TYPES and len(kde.DOCUMENTS) == len(DOCUMENT_TYPES)


async def test_a_regulator_downloads_the_key_data_elements_from_the_page(demo: Demo, browser: Browser) -> None:
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 900})
    try:
        await desk.goto(f"{demo.url}/console/kde")
        await desk.get_by_label("账号").fill(REGULATOR[0])
        await desk.get_by_label("密码").fill(REGULATOR[1])
        await desk.get_by_role("button", name="登录").click()
        await expect(desk.get_by_role("heading", name="关键数据元素导出")).to_be_visible()
        await desk.get_by_label("类别").select_option("vegetable")
        conn = await asyncpg.connect(demo.db_url)
        try:
            first, last = await conn.fetchrow(
                "SELECT min(event_time AT TIME ZONE 'Asia/Shanghai')::date, "
                "max(event_time AT TIME ZONE 'Asia/Shanghai')::date FROM events"
            )
        finally:
            await conn.close()
        await desk.get_by_label("起始日期").fill(first.isoformat())
        await desk.get_by_label("截止日期").fill(last.isoformat())
        await desk.get_by_role("button", name="检索").click()
        shown = desk.locator("main table tbody tr")
        await expect(shown.first).to_be_visible()
        async with desk.expect_download() as info:
            await desk.get_by_role("link", name="下载 Excel (XLSX)").click()
        download = await info.value
        rows = read_xlsx(Path(await download.path()).read_bytes())  # noqa: ASYNC240 - a small local file
        page_codes = await desk.locator("main table tbody tr td:nth-child(2)").all_inner_texts()
        assert [r[1] for r in rows[1 : len(page_codes) + 1]] == page_codes
        heading = await desk.get_by_role("heading", level=2).inner_text()
        assert f"({len(rows) - 1})" in heading
        assert {r[5] for r in rows[1:]} == {"蔬菜"}
    finally:
        await context.close()
