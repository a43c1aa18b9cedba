"""The demo city's consumer pages as a phone on a market's 4G gets them: few requests, compressed, checked on
the phone, revalidated on a second visit; and a page kept by the server never hides a recall."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import admin_token
from tests.web.conftest import PHONE, Demo

pytestmark = pytest.mark.browser
MOST_REQUESTS = 6


async def test_a_page_loads_in_six_requests_compressed_and_revalidates(demo: Demo, browser: Browser) -> None:
    for key in ("receipt", "drug"):  # a receipt with its lineage; the lot with the most records
        code = demo.codes[key]
        context = await browser.new_context(viewport=PHONE, locale="zh-CN")
        try:
            page = await context.new_page()
            seen: list[Any] = []

            def note(request: Any) -> None:
                seen.append(request)

            page.on("requestfinished", note)
            await page.goto(f"{demo.url}/t/{code}")
            badge = page.locator("#badge")
            await expect(badge).to_have_attribute("data-state", "ok", timeout=30_000)
            paths = [r.url.removeprefix(demo.url) for r in seen]
            assert len(paths) <= MOST_REQUESTS, paths
            # One request proves every record shown: the batch's, and (by event id) the last one shown of each
            # batch it came from.
            (proofs,) = [p for p in paths if "proof" in p]
            assert proofs.startswith(f"/api/v1/batches/{code}/proofs?form=compact")
            assert ("&event=" in proofs) is (key == "receipt"), proofs
            for r in seen:
                response = await r.response()
                headers = await response.all_headers()
                text = headers.get("content-type", "").startswith(("text/", "application/j"))
                if text and headers.get("content-encoding") != "gzip":  # only what is too small to gain
                    assert int(headers.get("content-length", "0")) < 1024, (r.url, headers)
            # The second visit asks whether the page changed (304) and the phone checks every record again.
            seen.clear()
            await page.goto(f"{demo.url}/t/{code}")
            await expect(badge).to_have_attribute("data-state", "ok", timeout=30_000)
            # (Chromium reports a revalidated answer with the status of the copy it kept: count the bytes.)
            bodies = {r.url.removeprefix(demo.url): (await r.sizes())["responseBodySize"] for r in seen}
            assert bodies[f"/t/{code}"] == 0, bodies  # a 304
            assert all(n <= 0 for p, n in bodies.items() if p.startswith("/static/")), bodies  # kept for a year
        finally:
            await context.close()


async def test_a_recall_shows_at_once_on_a_page_viewed_before(demo: Demo) -> None:
    code = demo.codes["receipt"]
    async with aiohttp.ClientSession(demo.url) as s:
        async with s.get(f"/t/{code}?format=json") as resp:
            record = await resp.json()
        assert record["verdict"]["state"] == "ok"
        async with s.get(f"/t/{code}") as resp:
            assert "可放心食用" in await resp.text()
            tag = resp.headers["ETag"]
        async with s.get(f"/t/{code}", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 304  # kept, and the phone's copy is still good
        admin = {"Authorization": f"Bearer {await admin_token(demo.db_url)}"}
        async with s.post("/api/v1/admin/tokens", json={"role": "regulator", "name": "局"}, headers=admin) as resp:
            regulator = {"Authorization": f"Bearer {(await resp.json())['credential']}"}
        source = record["lineage"][-1]["trace_code"]  # the stall's batch the receipt was cut from
        recall = {"traceCode": source, "level": "I", "reason": "瘦肉精"}
        async with s.post("/api/v1/recalls", json=recall, headers=regulator) as resp:
            assert resp.status == 201, await resp.text()
        async with s.get(f"/t/{code}", headers={"If-None-Match": tag}) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert "已召回" in page and "可放心食用" not in page
        async with s.get(f"/t/{code}?format=json") as resp:
            assert (await resp.json())["verdict"]["state"] == "recalled"
