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
    await expect(farm.locator(".farm-last")).to_contain_text(f"Last spraying: {ABAMECTIN['name_en']} on {day(9)}")
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


async def test_a_bottle_of_milk_from_the_pasture(world: World, phone: Page, base_url: str) -> None:
    from tests.test_dairy import GOOD_TEST, PASTEURISED_OUT, dairy_world, hand_over, milk_lot, processing

    await dairy_world(world)
    lot = await milk_lot(world, "H-2")
    await hand_over(world, lot, "pasture", "station")
    passed = world.event(lot, "inspecting", disposition="conformant", attributes=GOOD_TEST)
    await world.post("/api/v1/events", passed, world.devices["station"], expect=201)
    await hand_over(world, lot, "station", "plant")
    made = await world.post(
        "/api/v1/transformations", processing(lot, 2000, [PASTEURISED_OUT]), world.devices["plant"], expect=201
    )
    milk = made["outputs"][0]["traceCode"]
    await hand_over(world, milk, "plant", "supermarket")
    await phone.goto(f"{base_url}/t/{milk}")
    await expect(phone.locator("h1")).to_have_text("巴氏杀菌乳")
    await expect(phone.locator(".summary .category")).to_have_text("乳制品")
    await expect(phone.locator(".facts .heat")).to_contain_text("巴氏杀菌 · 75 °C · 15 s")
    await expect(phone.locator(".facts .heat")).to_contain_text("杀菌批号 P20261130-1")
    journey = phone.locator("ol.timeline > li")
    await expect(journey.filter(has_text="牧场")).not_to_have_count(0)
    await expect(journey.filter(has_text="生鲜乳收购站")).not_to_have_count(0)
    await expect(journey.filter(has_text="乳品厂")).not_to_have_count(0)
    measures = phone.locator("ul.measures li")
    await expect(measures).to_have_count(6)
    await expect(measures.nth(0)).to_contain_text("蛋白质 3.2 g/100g")
    await expect(measures.nth(5)).to_contain_text("抗生素残留 未检出")
    await expect(phone.locator("section.farm .farm-unit")).to_contain_text("H-2")
    await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok")
    await phone.goto(f"{base_url}/t/{milk}?lang=en")
    await expect(phone.locator(".summary .category")).to_have_text("Dairy")
    await expect(phone.locator(".facts .heat")).to_contain_text("Pasteurised · 75 °C")
    await expect(measures.nth(5)).to_contain_text("Antibiotic residues not detected")
    await expect(phone.locator("section.farm")).to_contain_text("No inputs recorded")
