"""The consumer page of a farm-recorded batch says what went into its plot or pen, in Chinese and English."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.conftest import World, new_id
from tests.test_farm import ABAMECTIN, ENROFLOXACIN, day, opening, pesticide, treatment

pytestmark = pytest.mark.browser


async def test_a_vegetable_from_a_recorded_plot(world: World, phone: Page, base_url: str) -> None:
    await world.add_node("farm", "farm", "320321")
    await world.post("/api/v1/admin/inputs", ABAMECTIN, expect=201)
    await world.post("/api/v1/farm/inputs", pesticide("A-1", 9), world.devices["farm"], expect=201)
    fertiliser = {
        "record_id": new_id(),
        "unit": "A-1",
        "unit_kind": "plot",
        "kind": "fertiliser",
        "product": "腐熟羊粪",
    }
    await world.post("/api/v1/farm/inputs", {**fertiliser, "applied_on": day(30)}, world.devices["farm"], expect=201)
    code = (await world.post("/api/v1/batches", opening("22101001", "A-1"), world.devices["farm"], expect=201))[
        "traceCode"
    ]
    await phone.goto(f"{base_url}/t/{code}")
    farm = phone.locator("section.farm")
    await expect(farm).to_contain_text("产地生产记录")
    await expect(farm.locator(".farm-last")).to_contain_text(f"最后一次施药：{day(9)} {ABAMECTIN['name']}")
    await expect(farm.locator(".farm-last")).to_contain_text(f"已过安全间隔期（7 天，{day(2)} 起可采收）")
    await expect(farm.locator(".farm-inputs li")).to_have_count(2)
    await expect(farm.locator(".farm-inputs li").nth(1)).to_contain_text("肥料 · 腐熟羊粪")
    await expect(farm.locator(".farm-inputs li").nth(1)).to_contain_text("无间隔期要求")
    assert not await phone.locator(".farm-insisted").count()
    await phone.goto(f"{base_url}/t/{code}?lang=en")
    await expect(farm.locator(".farm-last")).to_contain_text(f"Last spraying: {ABAMECTIN['name']} on {day(9)}")
    await expect(farm.locator(".farm-last")).to_contain_text(f"safety interval over (7 days, allowed from {day(2)})")
    await expect(farm.locator(".farm-inputs li").nth(1)).to_contain_text("Fertiliser")
    await expect(farm).not_to_contain_text("最后")


async def test_pork_from_pigs_sent_inside_a_withdrawal_period(world: World, phone: Page, base_url: str) -> None:
    await world.add_node("farm", "farm", "320321")
    await world.post("/api/v1/admin/inputs", ENROFLOXACIN, expect=201)
    await world.post(
        "/api/v1/admin/products", {"category": "meat", "goods_code": "21110001", "name": "生猪"}, expect=201
    )
    await world.post("/api/v1/farm/inputs", treatment("P-1", 3), world.devices["farm"], expect=201)
    body = opening("21110001", "P-1", quantity={"value": 1300, "uom": "KGM"}, insist={"reason": "猪舍火灾，紧急出栏"})
    pigs = (await world.post("/api/v1/batches", body, world.devices["farm"], expect=201))["traceCode"]
    made = await world.post(
        "/api/v1/transformations",
        {
            "eventID": new_id(),
            "bizStep": "commissioning",
            "inputs": [{"traceCode": pigs, "quantity": {"value": 1300, "uom": "KGM"}}],
            "outputs": [{"product": "21113011", "quantity": {"value": 950, "uom": "KGM"}}],
        },
        world.devices["farm"],
        expect=201,
    )
    carcass = made["outputs"][0]["traceCode"]
    await phone.goto(f"{base_url}/t/{carcass}")
    farm = phone.locator("section.farm")
    await expect(farm.locator(".farm-insisted")).to_contain_text("理由：猪舍火灾，紧急出栏")
    await expect(farm.locator(".farm-last")).to_contain_text(f"最后一次用药：{day(3)} {ENROFLOXACIN['name']}")
    await expect(farm.locator(".farm-last")).to_contain_text(f"仍在休药期内（10 天，{day(3 - 10)} 才到期）")
    await phone.goto(f"{base_url}/t/{carcass}?lang=en")
    await expect(farm.locator(".farm-last")).to_contain_text("still inside its withdrawal period")
    await expect(farm.locator(".farm-insisted")).to_contain_text("its reason: 猪舍火灾")
