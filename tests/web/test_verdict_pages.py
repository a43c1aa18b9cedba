"""The verdict line as a phone shows it, in Chinese and in English, in a real headless Chromium."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import World
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, logged, new_page, pork_chain
from tests.web.test_verdict import FULL_WIDTH, box, drug_lot, failed_cabbage

pytestmark = pytest.mark.browser


async def first_block(page: Page) -> str:
    """The text of the first thing in <main>: the verdict must come before anything else."""
    return str(await page.evaluate("() => document.querySelector('main').firstElementChild.innerText"))


async def test_recalled_pork_reads_recalled_first_and_the_badge_does_not_vouch_for_it(
    world: World, browser: Browser, phone: Page, base_url: str
) -> None:
    code = await pork_chain(world)
    await phone.goto(f"{base_url}/t/{code}")
    assert (await first_block(phone)).startswith("可放心食用")
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    await logged(world, code)
    await phone.goto(f"{base_url}/t/{code}")
    assert (await first_block(phone)).startswith("已召回，请勿食用")
    verdict = phone.locator("#verdict")
    await expect(verdict).to_have_attribute("role", "alert")
    await expect(verdict).to_contain_text("召回原因：瘦肉精")
    badge = phone.locator("#badge")
    await expect(badge).to_have_attribute("data-state", "records")
    await expect(badge).to_contain_text("记录属实")
    await expect(badge).to_contain_text("这不表示产品可以食用或使用")
    await expect(badge).not_to_contain_text("已核验")
    box_ = await verdict.bounding_box()
    assert box_ is not None and box_["width"] <= PHONE["width"]
    context, english = await new_page(browser, locale="en-US")
    try:
        await english.goto(f"{base_url}/t/{code}")
        assert (await first_block(english)).startswith("Recalled: do not eat")
        await expect(english.locator("#badge")).to_contain_text("The records are genuine")
        await expect(english.locator("body")).not_to_contain_text("None")
    finally:
        await context.close()


async def test_failed_and_expired_goods_say_so_with_the_analyte(
    world: World, browser: Browser, phone: Page, base_url: str
) -> None:
    cabbage = await failed_cabbage(world)
    await phone.goto(f"{base_url}/t/{cabbage}")
    assert (await first_block(phone)).startswith("检测不合格，已暂扣")
    await expect(phone.locator("#verdict .verdict-detail")).to_have_text("克百威 0.086 mg/kg，限量 0.02")
    await expect(phone.locator("body")).not_to_contain_text("None")
    stale = await world.open_batch(produced_on="2026-01-01", expires_on="2026-01-04")
    await phone.goto(f"{base_url}/t/{stale}")
    assert (await first_block(phone)).startswith("已过保质期")
    await expect(phone.locator("#verdict")).to_contain_text("保质期至 2026-01-04")
    context, english = await new_page(browser, locale="en-US")
    try:
        await english.goto(f"{base_url}/t/{cabbage}")
        assert (await first_block(english)).startswith("Failed its test: on hold")
        await expect(english.locator("#verdict .verdict-detail")).to_have_text("carbofuran 0.086 mg/kg, limit 0.02")
        await english.goto(f"{base_url}/t/{stale}")
        assert (await first_block(english)).startswith("Past its use-by date")
        await expect(english.locator("body")).not_to_contain_text("None")
    finally:
        await context.close()


async def test_a_drug_page_and_a_box_code_typed_in_full_width_digits(
    world: World, browser: Browser, phone: Page, base_url: str
) -> None:
    lot = await drug_lot(world)
    await phone.goto(f"{base_url}/")
    await phone.get_by_role("textbox", name="追溯码").fill(box(100, 7).translate(FULL_WIDTH))
    await phone.get_by_role("button", name="查询").click()
    await expect(phone).to_have_url(f"{base_url}/t/{lot}?unit={box(100, 7)}")
    assert (await first_block(phone)).startswith("可放心使用")
    await expect(phone.locator("#unit")).to_contain_text(f"这一盒（{box(100, 7)}）已于")
    await expect(phone.locator("#unit")).to_contain_text("回流药")
    facts = phone.locator("dl.facts")
    for label, value in (("批准文号", "国药准字H32020458"), ("规格", "0.25g×24粒/盒"), ("批号", "26100101")):
        await expect(facts).to_contain_text(label)
        await expect(facts).to_contain_text(value)
    await expect(facts).to_contain_text("2028-09-30")
    context, english = await new_page(browser, locale="en-US")
    try:
        await english.goto(f"{base_url}/t/{lot}?unit={box(100, 8)}")
        assert (await first_block(english)).startswith("Safe to use")
        await expect(english.locator("h1")).to_have_text("Amoxicillin capsules")
        await expect(english.locator("#unit")).to_contain_text("has not been dispensed yet")
        await expect(english.locator("dl.facts")).to_contain_text("Approval number")
        await expect(english.locator("body")).not_to_contain_text("None")
    finally:
        await context.close()


async def test_an_insecure_origin_asks_for_https(world: World, browser: Browser, base_url: str) -> None:
    """Opened by a name that is not this machine over plain http, the phone cannot check: it says why."""
    code = await pork_chain(world)
    port = base_url.rsplit(":", 1)[1]
    other = await browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP market.example 127.0.0.1"]
    )
    try:
        context = await other.new_context(viewport=PHONE, locale="zh-CN")
        page = await context.new_page()
        await page.goto(f"http://market.example:{port}/t/{code}")
        assert (await first_block(page)).startswith("可放心食用")
        badge = page.locator("#badge")
        await expect(badge).to_have_attribute("data-state", "unsupported")
        await expect(badge).to_have_text("请通过 HTTPS（https://）打开本页，才能在手机上核验记录")
        await context.close()
    finally:
        await other.close()
