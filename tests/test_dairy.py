"""Dairy end to end: pasture → raw-milk collection station → dairy plant → supermarket (issue 17)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import World, new_id
from tests.test_farm import ENROFLOXACIN, opening, treatment
from tests.test_supply import ago, regulator, wait_for_anomaly

CHINA = timezone(timedelta(hours=8))
RAW_MILK = {"category": "dairy", "goods_code": "23110001", "name": "生牛乳", "name_en": "Raw cow's milk"}
PASTEURISED = {"category": "dairy", "goods_code": "23120001", "name": "巴氏杀菌乳", "name_en": "Pasteurised milk"}
UHT = {"category": "dairy", "goods_code": "23120002", "name": "超高温灭菌乳", "name_en": "UHT milk"}
GOOD_TEST = {
    "test": "raw_milk",
    "protein": 3.2,
    "fat": 3.8,
    "total_bacteria": 500_000,
    "somatic_cells": 300_000,
    "melamine": 0.1,
    "antibiotics": "negative",
}


def readings(*celsius: float) -> list[dict[str, Any]]:
    start = datetime.now(CHINA) - timedelta(hours=3)
    return [
        {"at": (start + timedelta(minutes=20 * i)).isoformat(timespec="seconds"), "celsius": c}
        for i, c in enumerate(celsius)
    ]


async def dairy_world(world: World) -> World:
    await world.add_node("pasture", "pasture", "320321")
    await world.add_node("station", "milk_station", "320321")
    await world.add_node("plant", "dairy_plant", "320311")
    await world.add_node("supermarket", "supermarket", "320302")
    for product in (RAW_MILK, PASTEURISED, UHT):
        await world.post("/api/v1/admin/products", product, expect=201)
    await world.post("/api/v1/admin/inputs", ENROFLOXACIN, expect=201)
    return world


async def hand_over(world: World, code: str, frm: str, to: str, **extra: Any) -> None:
    ship = world.event(code, "shipping", destination={"node": world.nodes[to]}, **extra)
    await world.post("/api/v1/events", ship, world.devices[frm], expect=201)
    await world.post("/api/v1/events", world.event(code, "receiving"), world.devices[to], expect=201)


async def milk_lot(world: World, herd: str, kg: int = 2000, **extra: Any) -> str:
    body = opening("23110001", herd, quantity={"value": kg, "uom": "KGM"}, attributes={"heat_treatment": "raw"})
    data = await world.post("/api/v1/batches", {**body, **extra}, world.devices["pasture"], expect=201)
    return str(data["traceCode"])


def processing(lot: str, kg: int, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "eventID": new_id(),
        "bizStep": "commissioning",
        "inputs": [{"traceCode": lot, "quantity": {"value": kg, "uom": "KGM"}}],
        "outputs": outputs,
    }


PASTEURISED_OUT = {
    "product": "23120001",
    "quantity": {"value": 1200, "uom": "LTR"},
    "attributes": {
        "heat_treatment": "pasteurised",
        "treatment_celsius": 75,
        "holding_seconds": 15,
        "process_batch": "P20261130-1",
    },
}
UHT_OUT = {
    "product": "23120002",
    "quantity": {"value": 700, "uom": "KGM"},
    "attributes": {"heat_treatment": "uht", "treatment_celsius": 137, "holding_seconds": 4, "process_batch": "U-77"},
}


async def test_dairy_chain_end_to_end_with_a_recall_of_a_raw_milk_lot(world: World, client: Any) -> None:
    await dairy_world(world)
    # A cow treated yesterday gives no milk for sale; the herd without records does.
    await world.post("/api/v1/farm/inputs", treatment("H-1", 1, unit_kind="herd"), world.devices["pasture"], expect=201)
    body = opening("23110001", "H-1", quantity={"value": 900, "uom": "KGM"})
    refused = await world.post("/api/v1/batches", body, world.devices["pasture"], expect=409)
    assert refused["error"]["code"] == "inside_safety_interval"
    lot = await milk_lot(world, "H-2")
    await hand_over(world, lot, "pasture", "station", attributes={"temperatures": readings(3.5, 3.8, 3.9)})
    # The station's raw-milk test: a value outside its limit cannot pass.
    lie = world.event(lot, "inspecting", attributes={**GOOD_TEST, "fat": 2.9, "result": "pass"})
    data = await world.post("/api/v1/events", lie, world.devices["station"], expect=422)
    assert data["error"]["field"] == "attributes.result" and "fat" in data["error"]["message"]
    bad = world.event(lot, "inspecting", attributes={**GOOD_TEST, "melamine": "1e9999"})
    assert (await world.post("/api/v1/events", bad, world.devices["station"], expect=422))["error"][
        "field"
    ] == "attributes.melamine"
    passed = world.event(lot, "inspecting", disposition="conformant", attributes=GOOD_TEST)
    await world.post("/api/v1/events", passed, world.devices["station"], expect=201)
    await hand_over(world, lot, "station", "plant", attributes={"temperatures": readings(3.9, 4.0)})
    # Mass balance from raw milk to packaged products: a litre of milk weighs 1.03 kg.
    too_much = processing(lot, 2000, [{**PASTEURISED_OUT, "quantity": {"value": 2000, "uom": "LTR"}}])
    data = await world.post("/api/v1/transformations", too_much, world.devices["plant"], expect=422)
    assert data["error"]["field"] == "outputs" and "2060" in data["error"]["message"]
    no_batch = {**PASTEURISED_OUT, "attributes": {"heat_treatment": "pasteurised"}}
    data = await world.post("/api/v1/transformations", processing(lot, 2000, [no_batch]), world.devices["plant"])
    assert data["error"]["field"] == "outputs[0].attributes.process_batch"
    cool = {**UHT_OUT, "attributes": {**UHT_OUT["attributes"], "treatment_celsius": 120}}
    data = await world.post("/api/v1/transformations", processing(lot, 2000, [cool]), world.devices["plant"])
    assert data["error"]["field"] == "outputs[0].attributes.treatment_celsius"
    made = await world.post(
        "/api/v1/transformations", processing(lot, 2000, [PASTEURISED_OUT, UHT_OUT]), world.devices["plant"], expect=201
    )
    milk, uht = (o["traceCode"] for o in made["outputs"])
    # The cold chain to the supermarket broke for the pasteurised milk (above 6 °C), not for the UHT milk.
    await hand_over(world, milk, "plant", "supermarket", attributes={"temperatures": readings(4.5, 9.5, 5.0)})
    await hand_over(world, uht, "plant", "supermarket", attributes={"temperatures": readings(24, 26)})
    sale = world.event(milk, "retail_selling", quantity={"value": 2, "uom": "LTR"})
    await world.post("/api/v1/events", sale, world.devices["supermarket"], expect=201)
    reg = await regulator(world)
    warm = await wait_for_anomaly(client, reg, "cold_chain_breach", milk)
    assert warm["node_code"] == world.nodes["plant"] and "9.5" in warm["explanation"]
    resp = await client.get("/api/v1/anomalies", params={"kind": "cold_chain_breach"}, headers=world.auth(reg))
    assert {a["trace_code"] for a in (await resp.json())["anomalies"]} == {milk}
    # Trace back from the bottle to the pasture, then recall the raw-milk lot: both products follow.
    back = await (await client.get(f"/api/v1/batches/{milk}/trace?direction=backward")).json()
    assert back["origins"] == [lot]
    recall = {"traceCode": lot, "level": "I", "reason": "生乳抗生素复检阳性", "scope": "全市"}
    data = await world.post("/api/v1/recalls", recall, reg, expect=201)
    assert sorted(data["batches"]) == sorted([lot, milk, uht])
    assert world.nodes["supermarket"] in {n["code"] for n in data["reached"]}
    for code in (milk, uht):
        view = await (await client.get(f"/api/v1/batches/{code}")).json()
        assert view["events"][-1]["disposition"] == "recalled"
    again = world.event(uht, "retail_selling", eventTime=ago(0), quantity={"value": 1, "uom": "KGM"})
    data = await world.post("/api/v1/events", again, world.devices["supermarket"], expect=409)
    assert "recalled" in data["error"]["message"]
    page = await (await client.get(f"/t/{milk}?format=json")).json()
    assert page["verdict"]["state"] == "recalled"


async def test_a_failed_raw_milk_test_holds_the_lot_and_what_was_made_from_it(world: World, client: Any) -> None:
    await dairy_world(world)
    lot = await milk_lot(world, "H-3", kg=1000)
    await hand_over(world, lot, "pasture", "plant")
    made = await world.post(
        "/api/v1/transformations",
        processing(lot, 1000, [{**UHT_OUT, "quantity": {"value": 950, "uom": "KGM"}}]),
        world.devices["plant"],
        expect=201,
    )
    uht = made["outputs"][0]["traceCode"]
    failed = world.event(lot, "inspecting", attributes={**GOOD_TEST, "melamine": 3.1, "antibiotics": "positive"})
    await world.post("/api/v1/events", failed, world.devices["plant"], expect=201)
    view = await (await client.get(f"/api/v1/batches/{uht}")).json()
    assert view["events"][-1]["disposition"] == "non_conformant"
    sale = world.event(uht, "shipping", eventTime=ago(0), destination={"node": world.nodes["supermarket"]})
    data = await world.post("/api/v1/events", sale, world.devices["plant"], expect=409)
    assert "on hold" in data["error"]["message"]
    page = await (await client.get(f"/t/{lot}?format=json")).json()
    measures = {m["name"]: m["ok"] for i in page["inspections"] for m in i["measures"]}
    assert measures == {
        "protein": True,
        "fat": True,
        "total_bacteria": True,
        "somatic_cells": True,
        "melamine": False,
        "antibiotics": False,
    }
