"""The market's query terminal at its real size (1080×1920, portrait) in a real headless Chromium: the keypad, a
barcode gun typing a code and Enter, the verdict first with a QR code for the phone, the language switch, the
way back to the start when left alone, and nothing loaded from anywhere but this server.

``make screenshots`` runs this module with ``TRACE_SCREENSHOT_DIR=docs/screenshots``; otherwise the shots go to
the test's temporary folder (and are still taken, so a page that cannot be drawn fails here)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import World
from tests.web.conftest import leased_code, new_page, pork_chain
from tests.web.test_verdict import box, drug_lot
from traceability.domain import tracecode

pytestmark = pytest.mark.browser
KIOSK = {"width": 1080, "height": 1920}


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("TRACE_SCREENSHOT_DIR") or tmp_path)


@pytest.fixture
async def kiosk(browser: Browser) -> AsyncIterator[Page]:
    """The terminal's screen, reading Chinese."""
    context, page = await new_page(browser, viewport=KIOSK)
    yield page
    await context.close()


async def shoot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / name))
    assert (folder / name).stat().st_size > 10_000


async def test_the_keypad_and_a_barcode_gun_show_the_verdict_first(
    world: World, kiosk: Page, base_url: str, shots: Path
) -> None:
    code = await pork_chain(world)
    hosts: set[str] = set()
    kiosk.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    resp = await kiosk.goto(f"{base_url}/kiosk")
    assert resp is not None and "default-src 'self'" in resp.headers["content-security-policy"]
    await expect(kiosk.locator("h1")).to_have_text("扫描或输入追溯码")
    await expect(kiosk.locator("#kiosk-code")).to_be_focused()
    for key in await kiosk.locator(".key").all():  # big enough for a finger at arm's length
        size = await key.bounding_box()
        assert size is not None and size["width"] >= 64 and size["height"] >= 64
    await shoot(kiosk, shots, "kiosk-start-zh.png")

    for digit in code[:-1]:  # typed on the screen's keypad, one digit wrong, then mended
        await kiosk.locator(f'.key[data-key="{digit}"]').click()
    await kiosk.locator('.key[data-key="9" ]').click()
    await kiosk.locator('.key[data-key="back"]').click()
    await kiosk.locator(f'.key[data-key="{code[-1]}"]').click()
    await expect(kiosk.locator("#kiosk-code")).to_have_value(code)
    await kiosk.get_by_role("button", name="查询").click()
    await expect(kiosk.locator("#verdict")).to_have_class(re.compile(r"\bverdict-ok\b"))
    first = await kiosk.evaluate("() => document.querySelector('#kiosk').firstElementChild.id")
    assert first == "verdict"
    await expect(kiosk.locator("#verdict h2")).to_have_text("可放心食用")
    await expect(kiosk.locator("#product-h")).to_have_text("白条猪肉")
    facts = kiosk.locator(".facts")
    await expect(facts).to_contain_text("丰润生猪养殖合作社")
    await expect(facts).to_contain_text("王记鲜肉 · 摊位号 A-012")
    await expect(kiosk.locator("body")).not_to_contain_text("24.6")  # the sealed price stays sealed
    qr = kiosk.locator(".kiosk-qr svg")
    await expect(qr).to_be_visible()
    edge = await qr.bounding_box()
    assert edge is not None and edge["width"] >= 300
    await expect(kiosk.locator("#kiosk-code")).to_be_focused()
    await shoot(kiosk, shots, "kiosk-verdict-zh.png")

    # The next shopper's barcode gun types the next code (grouped in fours, as printed) and Enter.
    await kiosk.keyboard.type(tracecode.pretty(code))
    await kiosk.keyboard.press("Enter")
    await expect(kiosk).to_have_url(f"{base_url}/kiosk?code={tracecode.pretty(code).replace(' ', '+')}")
    await expect(kiosk.locator("#verdict h2")).to_have_text("可放心食用")
    assert hosts == {urlsplit(base_url).netloc}, hosts  # no web fonts, no CDN, nothing from elsewhere


async def test_recalled_in_english_and_back_to_the_start_when_left_alone(
    world: World, browser: Browser, base_url: str, shots: Path
) -> None:
    code = await pork_chain(world)
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    context, page = await new_page(browser, locale="en-US", viewport=KIOSK)
    try:
        await page.goto(f"{base_url}/kiosk")
        await expect(page.locator("h1")).to_have_text("Scan or type a trace code")
        await page.keyboard.type(code)  # a barcode gun: the digits, then Enter
        await page.keyboard.press("Enter")
        await expect(page.locator("#verdict h2")).to_have_text("Recalled: do not eat")
        await expect(page.locator("#verdict")).to_have_attribute("role", "alert")
        await expect(page.locator("#verdict")).to_contain_text("Recalled for: 瘦肉精")
        await expect(page.locator("#product-h")).to_have_text("Pork carcass")
        await expect(page.locator("body")).not_to_contain_text("None")
        go = await page.get_by_role("button", name="Look up").bounding_box()
        assert go is not None and go["y"] + go["height"] <= KIOSK["height"]  # on screen, no scrolling
        await shoot(page, shots, "kiosk-recalled-en.png")
        await page.locator("a.lang").click()  # the switch keeps the code on screen
        await expect(page.locator("#verdict h2")).to_have_text("已召回，请勿食用")
        await page.goto(f"{base_url}/kiosk?code={code}&idle=5")
        await expect(page.locator("#verdict h2")).to_have_text("已召回，请勿食用")
        await page.locator("a.lang").click()  # back to English, as the last shopper leaves it
        await expect(page.locator("#verdict h2")).to_have_text("Recalled: do not eat")
        await page.wait_for_url(f"{base_url}/kiosk?idle=5&lang=zh", timeout=20_000)  # left alone: the start, in Chinese
        await expect(page.locator("h1")).to_have_text("扫描或输入追溯码")
        await expect(page.locator("#kiosk-code")).to_have_value("")
        await page.goto(f"{base_url}/kiosk?idle=5&lang=en")  # left in English on the start screen: Chinese again
        await expect(page.locator("h1")).to_have_text("Scan or type a trace code")
        await page.wait_for_url(f"{base_url}/kiosk?idle=5&lang=zh", timeout=20_000)
        await expect(page.locator("h1")).to_have_text("扫描或输入追溯码")
    finally:
        await context.close()


async def test_syncing_unknown_mistyped_and_a_drug_box(world: World, superuser: asyncpg.Connection) -> None:
    await pork_chain(world)
    leased = await leased_code(superuser, 3)
    page = await (await world.client.get("/kiosk", params={"code": leased})).text()
    assert "记录正在同步" in page and "王记鲜肉" in page and f"http://trace.test/t/{leased}" not in page
    assert "<svg" in page  # the phone can follow it once the records arrive
    twin = await (await world.client.get("/kiosk", params={"code": leased, "format": "json"})).json()
    assert twin["outcome"] == "syncing" and twin["lease"]["operator"]["stallNo"] == "A-012"
    unknown = tracecode.make("320311", 999_999)
    assert "未找到此追溯码" in await (await world.client.get("/kiosk", params={"code": unknown})).text()
    mistyped = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    assert "校验" in await (await world.client.get("/kiosk", params={"code": mistyped})).text()
    # A 2D gun reading a receipt's QR code types its URL.
    linked = await world.client.get("/kiosk", params={"code": f"http://trace.test/t/{unknown}", "format": "json"})
    assert (await linked.json())["traceCode"] == unknown
    lot = await drug_lot(world)
    twin = await (await world.client.get("/kiosk", params={"code": box(100, 7), "format": "json"})).json()
    assert twin["outcome"] == "verdict" and twin["traceCode"] == lot and twin["brief"]["unit"]["dispensed"]
    assert (await world.client.get("/kiosk", params={"idle": "1"})).status == 422
