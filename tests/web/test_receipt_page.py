"""A shopper's receipt from the demo city, opened in headless Chromium at phone size: the farm, the
certificates, the stall and the weight of that sale."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import Demo

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
    await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok")  # every record checked on the phone
