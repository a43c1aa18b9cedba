"""What people do with the pages, in a real headless Chromium."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import World
from tests.web.conftest import logged, new_page, pork_chain
from traceability.ledger import chain

pytestmark = pytest.mark.browser


async def test_scan_shows_the_journey_and_a_verified_badge(world: World, phone: Page, base_url: str) -> None:
    code = await pork_chain(world)
    await logged(world, code)
    await phone.goto(f"{base_url}/t/{code}")
    await expect(phone.locator("h1")).to_have_text("白条猪肉")
    journey = phone.locator("ol.timeline > li")
    await expect(journey).to_have_count(3)  # origin, slaughterhouse, wet market
    await expect(journey.nth(0)).to_contain_text("丰县")
    await expect(journey.nth(1)).to_contain_text("屠宰企业")
    await expect(journey.nth(2)).to_contain_text("零售")
    await expect(phone.locator("section.vendor")).to_contain_text("王记鲜肉")
    await expect(phone.get_by_text("3203001234")).to_be_visible()
    await expect(phone.locator("body")).not_to_contain_text("24.6")  # prices are never public
    badge = phone.locator("#badge")
    await expect(badge).to_have_attribute("data-state", "ok")
    await expect(badge).to_contain_text("已核验：5 条记录")
    assert not await phone.locator(".banner").count()
    # first visit on a slow connection: everything the page fetched, proofs included
    weight = await phone.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        return performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, nav.transferSize);
    }""")
    print(f"consumer page, first visit: {weight} bytes transferred")
    assert 0 < weight < 150_000, weight
    hosts = await phone.evaluate("() => performance.getEntriesByType('resource').map(r => new URL(r.name).host)")
    assert set(hosts) <= {base_url.removeprefix("http://")}  # no CDNs, no web fonts
    # all five records' proofs came in one request
    paths = await phone.evaluate("() => performance.getEntriesByType('resource').map(r => new URL(r.name).pathname)")
    assert [p for p in paths if "/proof" in p] == [f"/api/v1/batches/{code}/proofs"]


async def _rechain(superuser: asyncpg.Connection, code: str, old: str, new: str) -> None:
    """Rewrite a batch's history the way a careful insider would: new content, every chain hash recomputed."""
    await superuser.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
    rows = await superuser.fetch(
        "SELECT e.id, e.canonical FROM events e JOIN batches b ON b.id = e.batch_id "
        "WHERE b.trace_code = $1 ORDER BY e.seq",
        code,
    )
    prev = chain.genesis(code)
    for row in rows:
        data = bytes(row["canonical"]).replace(old.encode(), new.encode())
        digest = chain.link(prev, data)
        await superuser.execute(
            "UPDATE events SET canonical = $2, prev_hash = $3, hash = $4 WHERE id = $1", row["id"], data, prev, digest
        )
        prev = digest
    await superuser.execute(
        "UPDATE batch_heads SET head_hash = $2 FROM batches b WHERE b.id = batch_heads.batch_id AND b.trace_code = $1",
        code,
        prev,
    )
    await superuser.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")


@pytest.mark.parametrize("how", ["content", "rechained"])
async def test_tampered_database_fails_the_badge(
    world: World, phone: Page, base_url: str, superuser: asyncpg.Connection, how: str
) -> None:
    code = await pork_chain(world)
    await logged(world, code)
    if how == "content":  # the origin changed in place: the chain no longer matches
        await superuser.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await superuser.execute(
            "UPDATE events SET canonical = "
            "convert_to(replace(convert_from(canonical, 'UTF8'), '丰县', '沛县'), 'UTF8') "
            "WHERE batch_id = (SELECT id FROM batches WHERE trace_code = $1) AND seq = 1",
            code,
        )
        await superuser.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    else:  # every hash recomputed: only the signed log can tell
        await _rechain(superuser, code, "丰县", "沛县")
    await phone.goto(f"{base_url}/t/{code}")
    await expect(phone.locator("ol.timeline > li").first).to_contain_text("沛县")
    badge = phone.locator("#badge")
    await expect(badge).to_have_attribute("data-state", "fail")
    await expect(badge).to_contain_text("核验失败")
    detail = await phone.locator("#badge-detail").text_content()
    assert ("content was changed" if how == "content" else "log holds a different record") in (detail or "")


async def test_regulator_traces_and_a_recall_shows_on_the_consumer_page(
    world: World, browser: Browser, base_url: str, regulator: tuple[str, str]
) -> None:
    code = await pork_chain(world)
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 800})
    try:
        await desk.goto(f"{base_url}/console")
        await expect(desk).to_have_url(f"{base_url}/console/login?next=%2Fconsole")
        await desk.get_by_label("账号").fill(regulator[0])
        await desk.get_by_label("密码").fill(regulator[1])
        await desk.get_by_role("button", name="登录").click()
        await expect(desk.get_by_role("heading", name="追溯检索")).to_be_visible()
        cookie = next(c for c in await context.cookies() if c["name"] == "trace_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
        await desk.get_by_label("产品（名称或商品编码）").fill("猪肉")
        await desk.get_by_role("button", name="检索").click()
        await desk.get_by_role("link", name=code).click()
        await expect(desk.get_by_role("heading", level=1)).to_contain_text(code)
        await expect(desk.locator("table")).to_contain_text("24.6")  # regulators see prices
        await expect(desk.get_by_role("heading", name="来源与去向")).to_be_visible()
        await desk.get_by_label("召回级别").select_option("I")
        await desk.get_by_label("召回原因").fill("瘦肉精检测阳性")
        await desk.get_by_role("button", name="预览召回范围").click()
        await expect(desk.get_by_role("heading", name="召回范围预览")).to_be_visible()
        await desk.get_by_role("checkbox").check()
        await desk.get_by_role("button", name="发布召回").click()
        await expect(desk.get_by_role("heading", level=1)).to_contain_text("一级召回")
        await expect(desk.locator("main")).to_contain_text("market 节点")  # who is affected: every place it reached
        await desk.goto(f"{base_url}/console/batches/{code}")
        await expect(desk.locator(".banner")).to_contain_text("已召回")
    finally:
        await context.close()
    context, phone = await new_page(browser)
    try:
        await phone.goto(f"{base_url}/t/{code}")
        banner = phone.get_by_role("alert")
        await expect(banner).to_contain_text("已召回，请勿食用")
        await expect(banner).to_contain_text("Recalled: do not eat")
        colour = await banner.evaluate("el => getComputedStyle(el).backgroundColor")
        assert colour == "rgb(179, 0, 27)"
    finally:
        await context.close()


async def test_a_product_named_like_a_script_renders_as_text(
    world: World, phone: Page, base_url: str, browser: Browser, regulator: tuple[str, str]
) -> None:
    evil = "<script>alert(1)</script>"
    await world.post(
        "/api/v1/admin/products",
        {"category": "other", "goods_code": "99000001", "name": evil, "name_en": evil},
        expect=201,
    )
    code = await world.open_batch(product="99000001", origin={"place": '"><img src=x onerror=alert(2)>'})
    dialogs: list[str] = []
    phone.on("dialog", lambda d: dialogs.append(d.message))
    await phone.goto(f"{base_url}/t/{code}")
    await expect(phone.locator("h1")).to_have_text(evil)
    await expect(phone.locator("ol.timeline > li").first).to_contain_text("<img src=x")
    assert await phone.locator("main script").count() == 1  # only the ledger data block
    assert await phone.locator("main img").count() == 0
    context, desk = await new_page(browser, viewport={"width": 1280, "height": 800})
    desk.on("dialog", lambda d: dialogs.append(d.message))
    try:
        await desk.goto(f"{base_url}/console/login")
        await desk.get_by_label("账号").fill(regulator[0])
        await desk.get_by_label("密码").fill(regulator[1])
        await desk.get_by_role("button", name="登录").click()
        await desk.goto(f"{base_url}/console?product=script")
        await expect(desk.locator("tbody")).to_contain_text(evil)
    finally:
        await context.close()
    assert dialogs == []


async def test_typing_a_code_checks_the_check_digit(world: World, phone: Page, base_url: str) -> None:
    code = await world.open_batch()
    await phone.goto(base_url)
    field = phone.get_by_label("追溯码", exact=True)
    status = phone.locator("#code-check")
    await field.press_sequentially(code[:10])
    await expect(status).to_have_text("已输入 10/20 位")
    swapped = (
        code[:11] + code[12] + code[11] + code[13:]
        if code[11] != code[12]
        else code[:19] + str((int(code[19]) + 1) % 10)
    )
    await field.fill(swapped)
    await field.dispatch_event("input")
    await expect(status).to_have_text("校验位不符：可能输错或颠倒了数字")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await field.fill(" ".join(code[i : i + 4] for i in range(0, 20, 4)))
    await field.dispatch_event("input")
    await expect(status).to_have_text("校验位正确")
    await phone.get_by_role("button", name="查询").click()
    await expect(phone).to_have_url(f"{base_url}/t/{code}")
    # a well-formed code nobody issued: a friendly bilingual page, not a stack trace
    unknown = code[:6] + "9999999999999"
    from stdnum import damm

    unknown += str(damm.calc_check_digit(unknown))
    response = await phone.goto(f"{base_url}/t/{unknown}")
    assert response is not None and response.status == 404
    await expect(phone.locator("h1")).to_have_text("未找到此追溯码")
    await expect(phone.locator("main")).to_contain_text("We could not find this code")


async def test_english_by_accept_language_and_by_the_switch(world: World, browser: Browser, base_url: str) -> None:
    code = await pork_chain(world)
    context, page = await new_page(browser, locale="en-US")
    try:
        await page.goto(f"{base_url}/t/{code}")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.locator("h1")).to_have_text("Pork carcass")
        await expect(page.get_by_role("heading", name="Journey")).to_be_visible()
        await expect(page.locator("#badge")).to_contain_text("Verified: 5 records")
        # Places read in English too (the origin, every stop, the stall), never 江苏省徐州市…
        timeline = page.locator("ol.timeline")
        await expect(timeline).to_contain_text("Feng County, Xuzhou, Jiangsu")
        await expect(page.locator("main")).not_to_contain_text("江苏省")
        await page.get_by_role("link", name="中文").click()
        await expect(page.locator("h1")).to_have_text("白条猪肉")
        await page.goto(f"{base_url}/t/{code}")  # the choice sticks
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    finally:
        await context.close()


async def test_a_farm_that_opened_its_own_batch_is_the_origin_in_english_too(
    world: World, browser: Browser, base_url: str
) -> None:
    """The origin's producer is the first record's free text (Chinese); when it is the farm's registered name, an
    English page names the farm as its journey does, not once in Chinese and once in English."""
    await world.add_node("farm", "farm", "320321")
    code = await world.open_batch(
        "farm", origin={"area_code": "320321", "place": "丰县", "producer": "farm 节点"}, produced_on="2026-01-14"
    )
    await logged(world, code)
    for locale, name, other in (("en-US", "farm node", "farm 节点"), ("zh-CN", "farm 节点", "farm node")):
        context, page = await new_page(browser, locale=locale)
        try:
            await page.goto(f"{base_url}/t/{code}")
            origin = page.locator("ol.timeline li.stop-origin")
            await expect(origin.locator(".stop-name")).to_have_text(name)
            await expect(page.locator("section.summary")).to_contain_text(name)
            await expect(page.locator("section.summary")).not_to_contain_text(other)
        finally:
            await context.close()


async def test_a_batch_of_one_record_says_so_in_both_languages(world: World, browser: Browser, base_url: str) -> None:
    """A lot just registered has one record: "1 record matches", not "1 records match"."""
    code = await world.open_batch()
    await logged(world, code)
    for locale, words in (("en-US", "Verified: 1 record matches the signed log"), ("zh-CN", "已核验：1 条记录")):
        context, page = await new_page(browser, locale=locale)
        try:
            await page.goto(f"{base_url}/t/{code}")
            await expect(page.locator("#badge")).to_have_attribute("data-state", "ok")
            await expect(page.locator("#badge")).to_contain_text(words)
        finally:
            await context.close()


@pytest.mark.parametrize("width", [180, 640])  # a 360 px phone and a 1280 px desktop, both at 200% zoom
async def test_pages_reflow_at_200_percent_zoom(
    world: World, browser: Browser, base_url: str, regulator: tuple[str, str], width: int
) -> None:
    code = await pork_chain(world)
    context, page = await new_page(browser, viewport={"width": width, "height": 700})
    try:
        urls = [f"/t/{code}", "/", "/public", "/console/login"]
        for url in urls:
            await page.goto(base_url + url)
            overflow = await page.evaluate(OVERFLOW_JS)
            assert not overflow, (url, width, overflow)
        await page.get_by_label("账号").fill(regulator[0])
        await page.get_by_label("密码").fill(regulator[1])
        await page.get_by_role("button", name="登录").click()
        await page.goto(f"{base_url}/console/batches/{code}")
        await expect(page.locator("h1")).to_contain_text(code)
        overflow = await page.evaluate(OVERFLOW_JS)
        assert not overflow, ("console batch", width, overflow)  # wide tables scroll inside their box
    finally:
        await context.close()


async def test_headings_labels_and_contrast(world: World, phone: Page, base_url: str) -> None:
    code = await pork_chain(world)
    await phone.goto(f"{base_url}/t/{code}")
    await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok")
    report: dict[str, Any] = await phone.evaluate(CONTRAST_JS)
    assert report["h1"] == 1 and report["unlabelled"] == [], report
    assert report["low"] == [], report["low"]


# Elements that stick out past the right edge of the viewport (the page would scroll sideways).
OVERFLOW_JS = """() => {
  if (document.documentElement.scrollWidth <= innerWidth) return [];
  const clipped = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement)
                            if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };
  return [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5 && !clipped(el))
    .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
}"""


# WCAG 2 relative luminance contrast of every visible text element against its nearest opaque background.
CONTRAST_JS = """() => {
  const lum = c => { const [r, g, b] = c.map(v => {
                       v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgb = s => { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
                     const p = m[1].split(',').map(Number); return p.length > 3 && p[3] === 0 ? null : p.slice(0, 3); };
  const bg = el => { for (; el; el = el.parentElement) {
                       const c = rgb(getComputedStyle(el).backgroundColor); if (c) return c; }
                     return [255, 255, 255]; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el), fg = rgb(st.color); if (!fg) continue;
    const [a, b] = [lum(fg), lum(bg(el))].sort((x, y) => y - x), ratio = (a + 0.05) / (b + 0.05);
    const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && +st.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push([el.tagName, el.textContent.trim().slice(0, 30), ratio.toFixed(2)]);
  }
  const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(i => !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).map(i => i.name);
  return {h1: document.querySelectorAll('h1').length, low, unlabelled};
}"""
