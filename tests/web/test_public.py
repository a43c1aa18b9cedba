"""The public information page (``/public``) on the demo city: its JSON twin and search, its caching and bounds,
the Atom feed, the open data (CSV and JSON), and that nothing sealed or personal is ever in any of them."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import quote
from xml.etree import ElementTree as ET

import aiohttp
import asyncpg
from playwright.async_api import Browser

from tests.web.conftest import PHONE, Demo, new_page
from tests.web.test_browser import CONTRAST_JS
from tests.web.test_console_words import leaks, proper_names, visible
from traceability import i18n
from traceability.services.views.public import district_name

ATOM = "{http://www.w3.org/2005/Atom}"
BEIJING = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")
RECALL_COLUMNS = (
    "id,issued_at,level,status,product,product_en,goods_code,category,trace_code,batches,batches_count,receipts,"
    "reason,scope,authority,source_enterprise,source_enterprise_en,source_district,where_sold,where_sold_en,"
    "advice,advice_en,url"
).split(",")
FAILED_COLUMNS = (
    "event_id,tested_at,product,product_en,goods_code,category,trace_code,test,analyte,value,limit,unit,method,lab,"
    "enterprise,enterprise_en,district,tested_by,outcome,batches,batches_held,batches_destroyed,batches_returned,url"
).split(",")
CREDIT_COLUMNS = (
    "kind,uscc,name,name_en,market,market_en,stall_no,districts,grade,score,events,serious_anomalies_count,"
    "serious_anomalies_penalty,other_anomalies_count,other_anomalies_penalty,failed_inspections_count,"
    "failed_inspections_penalty,recalls_as_source_count,recalls_as_source_penalty,late_reports_count,"
    "late_reports_penalty,as_of"
).split(",")


async def sealed_texts(db_url: str) -> list[str]:
    """What must never reach the public: contacts of enterprises and stalls, buyers, prices, accounts."""
    conn = await asyncpg.connect(db_url)
    try:
        texts = [r[0] for r in await conn.fetch("SELECT contact FROM operators UNION SELECT contact FROM enterprises")]
        texts += [r[0] for r in await conn.fetch("SELECT issued_by FROM recalls")]
        for (private,) in await conn.fetch("SELECT private FROM events WHERE private IS NOT NULL"):
            texts += re.findall(r'"buyer":"([^"]+)"', private.decode(errors="ignore"))  # the sealed buyers
        public = {
            r[0]
            for r in await conn.fetch(
                "SELECT name FROM enterprises UNION SELECT name_zh FROM nodes UNION SELECT name FROM operators"
            )
        }
    finally:
        await conn.close()
    return [t for t in texts if t and t not in public]  # a business buying is named as itself elsewhere


def assert_nothing_sealed(body: str, sealed: list[str]) -> None:
    for text in sealed:
        assert text not in body, text
    for key in ("unit_price", "amount", "buyer", "commercial", "contact", "issued_by", "private"):
        assert f'"{key}"' not in body, key


async def test_the_public_page_lists_recalls_failed_tests_and_credit_and_searches(demo: Demo) -> None:
    sealed = await sealed_texts(demo.db_url)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{demo.url}/public?format=json") as resp:
            assert resp.status == 200
            tag = resp.headers["ETag"]
            text = await resp.text()
        data = await (await s.get(f"{demo.url}/public?format=json")).json()
        assert_nothing_sealed(text, sealed)
        recall = data["recalls"]["items"][0]
        assert recall["trace_code"] == demo.codes["recall"]
        assert recall["reason"] and recall["authority"] == "徐州市市场监督管理局" and recall["advice"]
        assert recall["level"] == "I" and recall["batches_count"] >= 3 and recall["places"]
        assert recall["status"] in ("in_progress", "completed")
        failed = next(f for f in data["failed"]["items"] if f["trace_code"] == demo.codes["failed"])
        assert (failed["value"], failed["limit"], failed["unit"]) == ("0.086", "0.02", "mg/kg")
        assert "carbofuran" in failed["analyte"] and failed["outcome"] == "on_hold" and failed["batches"] >= 4
        rated = [c for c in data["credit"]["items"] if c["grade"]]
        assert rated and {f["factor"] for f in rated[0]["factors"]} >= {"failed_inspections", "late_reports"}
        assert data["credit"]["more"]  # more than a page of enterprises and stalls

        # The same answer again: 304 without a body; the page in each language has its own tag.
        async with s.get(f"{demo.url}/public?format=json", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 304 and resp.headers["ETag"] == tag
        async with s.get(f"{demo.url}/public?lang=en", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 200 and resp.headers["ETag"] != tag
            assert_nothing_sealed(await resp.text(), sealed)
        conn = await asyncpg.connect(demo.db_url)
        try:  # the analyzer finds something new: every answer read before is out of date
            await conn.execute(
                "INSERT INTO anomalies (kind, batch_id, detail) SELECT 'late_report', id, 'x' FROM batches "
                "ORDER BY id DESC LIMIT 1"
            )
        finally:
            await conn.close()
        async with s.get(f"{demo.url}/public?format=json", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 200 and resp.headers["ETag"] != tag

        # Search by product, by district, by name.
        product = quote(failed["product"])
        found = await (await s.get(f"{demo.url}/public?format=json&product={product}")).json()
        assert {f["trace_code"] for f in found["failed"]["items"]} >= {demo.codes["failed"]}
        assert all(f["product"] == failed["product"] for f in found["failed"]["items"])
        assert found["recalls"]["items"] == []
        place = recall["places"][0]
        found = await (await s.get(f"{demo.url}/public?format=json&district={quote(place['district'])}")).json()
        assert demo.codes["recall"] in {r["trace_code"] for r in found["recalls"]["items"]}
        reached = {recall["district"], *(p["district"] for p in recall["places"])}
        other = next(d for d in data["districts"] if d["name"] not in reached)
        found = await (await s.get(f"{demo.url}/public?format=json&district={other['code']}")).json()
        assert demo.codes["recall"] not in {r["trace_code"] for r in found["recalls"]["items"]}
        stall = next(c for c in data["credit"]["items"] if c["kind"] == "enterprise")
        found = await (await s.get(f"{demo.url}/public?format=json&list=credit&q={quote(stall['name'])}")).json()
        assert stall["uscc"] in {c["uscc"] for c in found["credit"]["items"]}
        assert "recalls" not in found and all(stall["uscc"] == c["uscc"] for c in found["credit"]["items"])
        found = await (await s.get(f"{demo.url}/public?format=json&list=credit&q={quote(failed['enterprise'])}")).json()
        grower = next(c for c in found["credit"]["items"] if c["kind"] == "enterprise")
        assert next(f for f in grower["factors"] if f["factor"] == "failed_inspections")["count"] >= 1
        page2 = await (await s.get(f"{demo.url}/public?format=json&list=credit&page=2")).json()
        assert page2["credit"]["items"] and page2["credit"]["items"][0] not in data["credit"]["items"]

        # Bounded and checked: a clear 422 naming the parameter.
        for query, field in (
            ("page=0", "page"),
            ("page=99999999999", "page"),
            ("q=" + "x" * 51, "q"),
            ("list=prices", "list"),
            ("buyer=1", "buyer"),
        ):
            async with s.get(f"{demo.url}/public?format=json&{query}") as resp:
                assert resp.status == 422, query
                assert (await resp.json())["error"]["field"] == field
            async with s.get(f"{demo.url}/public?{query}") as resp:
                assert resp.status == 422 and "text/html" in resp.headers["Content-Type"]


async def test_the_feed_and_the_open_data(demo: Demo) -> None:
    sealed = await sealed_texts(demo.db_url)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{demo.url}/public/feed.atom") as resp:
            assert resp.status == 200 and resp.content_type == "application/atom+xml"
            tag, body = resp.headers["ETag"], await resp.read()
        async with s.get(f"{demo.url}/public/feed.atom", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 304
        assert_nothing_sealed(body.decode(), sealed)
        feed = ET.fromstring(body)
        assert feed.tag == f"{ATOM}feed"
        assert feed.findtext(f"{ATOM}id") == "http://trace.test/public/feed.atom"
        assert feed.findtext(f"{ATOM}title") == "食品药品召回和抽检不合格信息"
        assert BEIJING.match(feed.findtext(f"{ATOM}updated") or "")
        assert feed.find(f"{ATOM}author/{ATOM}name") is not None
        assert feed.find(f"{ATOM}link[@rel='self']") is not None
        entries = feed.findall(f"{ATOM}entry")
        assert len(entries) >= 3
        ids = [e.findtext(f"{ATOM}id") for e in entries]
        assert len(set(ids)) == len(ids) and all(re.match(r"^urn:uuid:[0-9a-f-]{36}$", i or "") for i in ids)
        times = [e.findtext(f"{ATOM}updated") or "" for e in entries]
        assert all(BEIJING.match(t) for t in times) and times == sorted(times, reverse=True)
        links = [e.find(f"{ATOM}link").get("href") for e in entries]  # type: ignore[union-attr]
        assert f"http://trace.test/t/{demo.codes['recall']}" in links
        assert f"http://trace.test/t/{demo.codes['failed']}" in links
        titles = " ".join(e.findtext(f"{ATOM}title") or "" for e in entries)
        assert "一级召回" in titles and "抽检不合格" in titles
        english = ET.fromstring(await (await s.get(f"{demo.url}/public/feed.atom?lang=en")).read())
        assert english.findtext(f"{ATOM}title") == "Food and drug recalls and failed inspections"

        for name, columns in (
            ("recalls", RECALL_COLUMNS),
            ("failed-tests", FAILED_COLUMNS),
            ("credit", CREDIT_COLUMNS),
        ):
            async with s.get(f"{demo.url}/public/{name}.csv") as resp:
                assert resp.status == 200 and resp.content_type == "text/csv"
                raw = await resp.text()
            assert_nothing_sealed(raw, sealed)
            rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
            assert rows[0] == columns, name
            assert len(rows) > 1
            listed = await (await s.get(f"{demo.url}/public/{name}.json")).json()
            assert listed["columns"] == columns and len(listed["items"]) == len(rows) - 1
            assert [list(i) for i in listed["items"]] == [columns] * len(listed["items"])
            times = [c for c in columns if c in ("issued_at", "tested_at", "as_of")]
            for row in rows[1:]:
                for column in times:
                    assert BEIJING.match(row[columns.index(column)]), (name, row)
        recalls = list(csv.DictReader(io.StringIO((await (await s.get(f"{demo.url}/public/recalls.csv")).text())[1:])))
        assert recalls[0]["trace_code"] == demo.codes["recall"] and recalls[0]["authority"] == "徐州市市场监督管理局"
        failed = await (await s.get(f"{demo.url}/public/failed-tests.json?limit=1")).json()
        assert len(failed["items"]) == 1 and failed["next"] is not None and "offset=1" in failed["next"]
        for query in ("limit=0", "limit=201", "offset=-1", "sort=price"):
            async with s.get(f"{demo.url}/public/credit.csv?{query}") as resp:
                assert resp.status == 422, query
            async with s.get(f"{demo.url}/public/credit.json?{query}") as resp:
                assert resp.status == 422 and (await resp.json())["error"]["field"] == query.split("=")[0]


async def test_every_public_page_reads_in_one_language(demo: Demo) -> None:
    names = await proper_names(demo.db_url)
    conn = await asyncpg.connect(demo.db_url)
    try:  # what a test recorded, shown as recorded: the analyte, the laboratory, the method
        for (content,) in await conn.fetch(
            "SELECT convert_from(canonical, 'UTF8') FROM events WHERE biz_step = 'inspecting'"
        ):
            names += re.findall(r'"(?:analyte|lab|method)":"([^"]+)"', content)
        names += [district_name(r[0]) for r in await conn.fetch("SELECT DISTINCT area_code FROM nodes")]
    finally:
        await conn.close()
    names = sorted(set(names), key=len, reverse=True)
    problems: dict[str, list[str]] = {}
    async with aiohttp.ClientSession() as s:
        for lang in ("zh", "en"):
            for path in (
                "/public",
                "/public?list=credit&page=2",
                "/public?list=failed",
                "/public?product=nothing-like-this",
                "/public?page=0",
            ):
                sep = "&" if "?" in path else "?"
                async with s.get(f"{demo.url}{path}{sep}lang={lang}") as resp:
                    assert resp.status in (200, 422), path
                    assert resp.headers["Content-Language"] == ("zh-CN" if lang == "zh" else "en")
                    if bad := leaks(visible(await resp.text()), lang, names):
                        problems[f"{lang} {path}"] = sorted(set(bad))
    assert not problems, problems


async def test_a_shopper_reads_the_public_page_on_a_phone(demo: Demo, browser: Browser) -> None:
    sealed = await sealed_texts(demo.db_url)
    async with aiohttp.ClientSession() as s:
        data = await (await s.get(f"{demo.url}/public?format=json")).json()
    recall = data["recalls"]["items"][0]
    failed = next(f for f in data["failed"]["items"] if f["trace_code"] == demo.codes["failed"])
    rated = next(c for c in data["credit"]["items"] if c["grade"])
    for locale in ("zh-CN", "en-US"):
        en = locale == "en-US"
        words = i18n.words("en" if en else "zh")
        context, page = await new_page(browser, locale=locale)
        try:
            await page.goto(f"{demo.url}/public")
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            report = await page.evaluate(CONTRAST_JS)
            assert report["h1"] == 1 and report["unlabelled"] == [] and report["low"] == [], report
            shown = await page.locator(".recall-item").first.inner_text()
            assert words.pick(recall["product"], recall["product_en"]) in shown
            assert recall["reason"] in shown and recall["authority"] in shown
            assert words.pick(recall["advice"], recall["advice_en"]) in shown
            assert words("public_where_sold") in shown and recall["places"][0]["district"] in shown
            item = page.locator(".failed-item").filter(has_text=failed["trace_code"][-4:])
            shown = await item.first.inner_text()
            assert words.pick(failed["analyte"], failed["analyte_en"]) in shown
            assert "0.086 mg/kg" in shown and "0.02 mg/kg" in shown
            assert words.name("public_outcome", "on_hold") in shown
            card = page.locator(".credit-item").filter(has_text=words.pick(rated["name"], rated["name_en"]))
            text = await card.first.inner_text()
            assert rated["grade"] in text
            assert words.name("credit_factor", "failed_inspections") in text
            body = await page.locator("body").inner_text()
            for secret in sealed:
                assert secret not in body, secret
            assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)|0516-\d{8}", body)  # no telephone numbers at all

            # Search by product: only that product's failed tests, no recall of pork.
            await page.get_by_label(words("public_product")).fill(failed["product"])
            await page.get_by_role("button", name=words("public_search")).click()
            await page.wait_for_url("**/public?**")
            assert await page.locator(".recall-item").count() == 0
            products = await page.locator(".failed-item h3").all_inner_texts()
            assert products and set(products) == {words.pick(failed["product"], failed["product_en"])}
            # By district: the recall shows where it was sold.
            await page.get_by_label(words("public_product")).fill("")
            await page.get_by_label(words("public_district")).select_option(label=recall["places"][0]["district"])
            await page.get_by_role("button", name=words("public_search")).click()
            await page.wait_for_url("**district=**")
            assert await page.locator(".recall-item").filter(has_text=recall["reason"]).count() == 1
            # By name: an enterprise's grade.
            await page.get_by_label(words("public_district")).select_option(value="")
            await page.get_by_label(words("public_q")).fill(rated["name"])
            await page.get_by_role("button", name=words("public_search")).click()
            await page.wait_for_url("**q=**")
            names = await page.locator(".credit-item h3").all_inner_texts()
            assert words.pick(rated["name"], rated["name_en"]) in names
        finally:
            await context.close()
