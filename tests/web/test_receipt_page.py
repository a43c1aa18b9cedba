"""A shopper's receipt from the demo city, opened in headless Chromium at phone size: the farm, the
certificates, the stall and the weight of that sale."""

from __future__ import annotations

import re

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import Demo
from tests.web.test_browser import _rechain

pytestmark = pytest.mark.browser


async def test_a_receipt_shows_the_farm_the_certificates_the_stall_and_the_weight(demo: Demo, phone: Page) -> None:
    code = demo.codes["receipt"]
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/t/{code}?format=json") as resp:
        record = await resp.json()
    origin = record["journey"][0]
    farm = record["journey"][1]
    assert origin["kind"] == "origin" and farm["type"] == "farm"
    certificates = {c["type"]: c["number"] for c in record["certificates"]}
    weight = record["sale"]["quantity"]["value"]

    await phone.goto(f"{demo.url}/t/{code}")
    stops = phone.locator("ol.timeline > li")
    await expect(stops).to_have_count(len(record["journey"]))
    await expect(stops.nth(0)).to_contain_text(origin["name"])
    await expect(stops.nth(1)).to_contain_text(farm["name"])
    await expect(stops.nth(2)).to_contain_text("屠宰企业")
    await expect(stops.last).to_contain_text("零售")
    for kind in ("quarantine_certificate", "meat_inspection_certificate"):
        await expect(phone.get_by_text(certificates[kind], exact=True)).to_be_visible()
    await expect(phone.locator("section.vendor")).to_contain_text(record["vendor"]["stall_no"])
    await expect(phone.locator("section.sale .sale-weight")).to_contain_text(weight)
    await expect(phone.locator("section.sale")).to_contain_text(record["vendor"]["node"])
    # Every record the page shows is checked on the phone: the receipt's own, and those of the batches it came
    # from up to their last record the journey shows (the farm's, the slaughterhouse's, the stall's), in one
    # proof request.
    ledger = record["ledger"]
    upstream = {u["trace_code"]: u for u in ledger["upstream"]}
    assert {b["trace_code"] for b in record["lineage"]} == set(upstream)
    checked = len(ledger["events"]) + sum(len(u["events"]) for u in upstream.values())
    assert checked > len(ledger["events"])
    badge = phone.locator("#badge")
    await expect(badge).to_have_attribute("data-state", "ok")
    await expect(badge).to_contain_text(f"已核验：{checked} 条记录")
    paths = await phone.evaluate("() => performance.getEntriesByType('resource').map(r => new URL(r.name).pathname)")
    assert [p for p in paths if "/proof" in p] == [f"/api/v1/batches/{code}/proofs"]


async def _first_ancestor_record(superuser: asyncpg.Connection, code: str) -> tuple[str, str]:
    """The farthest batch the receipt came from, and a time its first record holds (read from the database, so
    that the page is first built after the test changed it)."""
    row = await superuser.fetchrow(
        """
        WITH RECURSIVE up(id, depth) AS (
            SELECT id, 0 FROM batches WHERE trace_code = $1
            UNION SELECT l.parent_id, up.depth + 1 FROM batch_links l JOIN up ON l.child_id = up.id
        )
        SELECT b.trace_code, convert_from(e.canonical, 'UTF8') AS text
        FROM up JOIN batches b ON b.id = up.id JOIN events e ON e.batch_id = b.id AND e.seq = 1
        ORDER BY up.depth DESC LIMIT 1
        """,
        code,
    )
    when = re.search(r'"eventTime":"([^"]+)"', row["text"])
    assert row["trace_code"] != code and when is not None
    return row["trace_code"], when.group(1)


@pytest.mark.parametrize("how", ["content", "rechained"])
async def test_a_receipt_fails_its_badge_when_the_farm_record_was_rewritten(demo: Demo, phone: Page, how: str) -> None:
    """The farm's record changed in the database, in place or with every hash of its chain recomputed: the
    receipt (a batch cut from it two steps on) no longer verifies."""
    code = demo.codes["receipt"]
    superuser = await asyncpg.connect(demo.db_url)
    try:
        farm, when = await _first_ancestor_record(superuser, code)
        earlier = when.replace(when[:4], str(int(when[:4]) - 1), 1)  # a year earlier
        if how == "content":
            await superuser.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            await superuser.execute(
                "UPDATE events SET canonical = convert_to(replace(convert_from(canonical, 'UTF8'), $2, $3), 'UTF8') "
                "WHERE batch_id = (SELECT id FROM batches WHERE trace_code = $1) AND seq = 1",
                farm,
                when,
                earlier,
            )
            await superuser.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        else:
            await _rechain(superuser, farm, when, earlier)
    finally:
        await superuser.close()
    await phone.goto(f"{demo.url}/t/{code}")
    badge = phone.locator("#badge")
    await expect(badge).to_have_attribute("data-state", "fail")
    await expect(badge).to_contain_text("核验失败")
    detail = await phone.locator("#badge-detail").text_content()
    assert ("content was changed" if how == "content" else "log holds a different record") in (detail or "")
