"""Production records at the farm and the safety-interval rule where a batch is opened (issue 17)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, new_id
from tests.test_supply import ago, regulator, wait_for_anomaly

CHINA = timezone(timedelta(hours=8))
ABAMECTIN = {
    "registration_no": "PD20080001",
    "kind": "pesticide",
    "name": "阿维菌素 1.8% 乳油",
    "name_en": "Abamectin 1.8% EC",
    "active_ingredient": "阿维菌素",
    "applies_to": "叶菜",
    "interval_days": 7,
    "source": "农药标签 (GB/T 8321 农药合理使用准则): 叶菜 7 天",
}
ENROFLOXACIN = {
    "registration_no": "兽药字(2019)010012345",
    "kind": "veterinary_drug",
    "name": "恩诺沙星注射液",
    "name_en": "Enrofloxacin injection",
    "active_ingredient": "恩诺沙星",
    "applies_to": "猪",
    "interval_days": 10,
    "source": "农业部公告第278号 (2003) 兽药停药期规定: 猪 10 日",
}


def day(days_ago: int) -> str:
    return (datetime.now(CHINA) - timedelta(days=days_ago)).date().isoformat()


def pesticide(unit: str, days_ago: int, **extra: Any) -> dict[str, Any]:
    return {
        "record_id": new_id(),
        "unit": unit,
        "unit_kind": "plot",
        "kind": "pesticide",
        "registration_no": ABAMECTIN["registration_no"],
        "dose": {"value": "40", "uom": "MLT"},
        "applied_on": day(days_ago),
        **extra,
    }


def treatment(unit: str, days_ago: int, **extra: Any) -> dict[str, Any]:
    return {
        "record_id": new_id(),
        "unit": unit,
        "unit_kind": "pen",
        "kind": "veterinary_drug",
        "registration_no": ENROFLOXACIN["registration_no"],
        "dose": {"value": "2.5", "uom": "MLT"},
        "animals": 12,
        "applied_on": day(days_ago),
        **extra,
    }


@pytest.fixture
async def farm(world: World) -> World:
    await world.add_node("farm", "farm", "320321")
    await world.add_node("wholesale", "wholesale_market", "320302")
    await world.post("/api/v1/admin/inputs", ABAMECTIN, expect=201)
    await world.post("/api/v1/admin/inputs", ENROFLOXACIN, expect=201)
    return world


def opening(product: str, unit: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventID": new_id(),
        "product": product,
        "quantity": {"value": 500, "uom": "KGM"},
        "eventTime": ago(1),
        "origin": {"area_code": "320321", "place": "丰县"},
        **extra,
    }
    if unit is not None:
        body["origin"]["unit"] = unit
    return body


async def test_the_registry_of_inputs(world: World, client: Any) -> None:
    created = await world.post("/api/v1/admin/inputs", ABAMECTIN, expect=201)
    assert created["interval_days"] == 7 and created["source"].startswith("农药标签")
    missing = await world.post("/api/v1/admin/inputs", {**ABAMECTIN, "source": None}, expect=422)
    assert missing["error"]["field"] == "source"
    bad = await world.post("/api/v1/admin/inputs", {**ABAMECTIN, "registration_no": "12345"}, expect=422)
    assert bad["error"]["field"] == "registration_no" and "农药登记证号" in bad["error"]["message"]
    vet = await world.post("/api/v1/admin/inputs", {**ENROFLOXACIN, "registration_no": "PD20080001x"}, expect=422)
    assert vet["error"]["field"] == "registration_no"
    too_long = await world.post("/api/v1/admin/inputs", {**ABAMECTIN, "interval_days": 4000}, expect=422)
    assert too_long["error"]["field"] == "interval_days"
    unknown = await world.post("/api/v1/admin/inputs", {**ABAMECTIN, "crop": "白菜"}, expect=422)
    assert unknown["error"]["field"] == "crop"
    corrected = await world.post("/api/v1/admin/inputs", {**ABAMECTIN, "interval_days": 10}, expect=200)
    assert corrected["interval_days"] == 10
    resp = await client.get("/api/v1/admin/inputs", headers=world.auth(world.admin))
    assert [i["registration_no"] for i in (await resp.json())["items"]] == ["PD20080001"]
    await world.post("/api/v1/admin/inputs", ABAMECTIN, world.devices["slaughter"], expect=403)


async def test_production_records(farm: World, client: Any, superuser: asyncpg.Connection) -> None:
    body = pesticide("A-3", 2, note="东三号地 小菜蛾")
    rec = await farm.post("/api/v1/farm/inputs", body, farm.devices["farm"], expect=201)
    assert rec["safe_from"] == day(2 - 7) and rec["interval_days"] == 7 and rec["product_name"] == ABAMECTIN["name"]
    assert rec["dose"] == "40" and rec["node_code"] == farm.nodes["farm"] and not rec["replayed"]
    again = await farm.post("/api/v1/farm/inputs", body, farm.devices["farm"], expect=200)
    assert again["replayed"] and again["id"] == rec["id"]
    other = await farm.post("/api/v1/farm/inputs", {**body, "unit": "A-4"}, farm.devices["farm"], expect=409)
    assert other["error"]["field"] == "record_id"
    # The registry's later correction leaves what was recorded as it was.
    await farm.post("/api/v1/admin/inputs", {**ABAMECTIN, "interval_days": 14}, expect=200)
    assert (await farm.post("/api/v1/farm/inputs", body, farm.devices["farm"], expect=200))["interval_days"] == 7
    fails = {
        "registration_no": pesticide("A-3", 1, registration_no="PD20999999"),
        "unit_kind": treatment("A-3", 1, unit_kind="plot"),
        "animals": treatment("P-1", 1, animals=None),
        "applied_on": pesticide("A-3", -2),
        "dose.uom": pesticide("A-3", 1, dose={"value": 1, "uom": "BOTTLE"}),
        "dose.value": pesticide("A-3", 1, dose={"value": 0, "uom": "MLT"}),
        "unit": pesticide("东三号地", 1),
        "kind": pesticide(
            "A-3", 1, kind="vaccine", unit_kind="pen", animals=3, registration_no="兽药生字(2019)010012345"
        ),
    }
    for field, bad in fails.items():
        data = await farm.post(
            "/api/v1/farm/inputs", bad, farm.devices["farm"], expect=422 if field != "kind" else None
        )
        assert data["error"]["field"] in (field, "registration_no"), (field, data)
    # Only a farm's scanner records; a feed record needs no registration number.
    await farm.post("/api/v1/farm/inputs", pesticide("A-3", 1), farm.devices["slaughter"], expect=403)
    feed = {"record_id": new_id(), "unit": "P-1", "unit_kind": "pen", "kind": "feed", "product": "育肥猪配合饲料"}
    fed = await farm.post("/api/v1/farm/inputs", {**feed, "applied_on": day(3)}, farm.devices["farm"], expect=201)
    assert fed["interval_days"] == 0 and fed["safe_from"] == day(3)
    mine = await client.get("/api/v1/farm/inputs", headers=farm.auth(farm.devices["farm"]))
    assert [i["unit"] for i in (await mine.json())["items"]] == ["A-3", "P-1"]  # latest application first
    reg = await regulator(farm)
    theirs = await client.get(f"/api/v1/farm/inputs?node={farm.nodes['farm']}&unit=A-3", headers=farm.auth(reg))
    assert [i["kind"] for i in (await theirs.json())["items"]] == ["pesticide"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await superuser.execute("UPDATE farm_inputs SET applied_on = applied_on - 30")


async def test_harvest_inside_an_interval_is_refused_and_outside_accepted(farm: World) -> None:
    await farm.post("/api/v1/farm/inputs", pesticide("A-3", 3), farm.devices["farm"], expect=201)
    await farm.post("/api/v1/farm/inputs", pesticide("B-1", 9), farm.devices["farm"], expect=201)
    refused = await farm.post("/api/v1/batches", opening("22101001", "A-3"), farm.devices["farm"], expect=409)
    err = refused["error"]
    assert err["code"] == "inside_safety_interval" and err["field"] == "origin.unit"
    assert ABAMECTIN["name"] in err["message"] and "PD20080001" in err["message"]
    assert day(3) in err["message"] and day(3 - 7) in err["message"]
    assert "安全间隔期" in err["message"] and "safety interval" in err["message"]
    unnamed = await farm.post("/api/v1/batches", opening("22101001", None), farm.devices["farm"], expect=422)
    assert unnamed["error"]["field"] == "origin.unit" and "A-3" in unnamed["error"]["message"]
    # Nine days after a seven-day interval began, B-1 may be harvested; its input travels on the opening.
    opened = await farm.post("/api/v1/batches", opening("22101001", "B-1"), farm.devices["farm"], expect=201)
    view = await (await farm.client.get(f"/api/v1/batches/{opened['traceCode']}")).json()
    production = view["events"][0]["production"]
    assert production["unit"] == "B-1" and "insideIntervals" not in production
    assert [(i["product"], i["appliedOn"], i["safeFrom"]) for i in production["inputs"]] == [
        (ABAMECTIN["name"], day(9), day(2))
    ]
    # A plot with no records at a farm that keeps them, and a slaughterhouse's own openings, are not held up.
    await farm.post("/api/v1/batches", opening("22101001", "C-9"), farm.devices["farm"], expect=201)
    await farm.post("/api/v1/batches", opening("21113011", None), farm.devices["slaughter"], expect=201)


async def test_insisted_opening_is_flagged_and_seen_downstream(farm: World, client: Any) -> None:
    await farm.post(
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "21110001", "name": "生猪", "name_en": "Live pigs"},
        expect=201,
    )
    await farm.post("/api/v1/farm/inputs", treatment("P-2", 2), farm.devices["farm"], expect=201)
    body = opening("21110001", "P-2", quantity={"value": 1300, "uom": "KGM"}, attributes={"head_count": 12})
    refused = await farm.post("/api/v1/batches", body, farm.devices["farm"], expect=409)
    assert "恩诺沙星注射液" in refused["error"]["message"] and day(2 - 10) in refused["error"]["message"]
    body["insist"] = {"reason": "猪舍火灾，紧急出栏"}
    pigs = (await farm.post("/api/v1/batches", body, farm.devices["farm"], expect=201))["traceCode"]
    view = await (await client.get(f"/api/v1/batches/{pigs}")).json()
    first = view["events"][0]
    assert first["insist"] == {"reason": "猪舍火灾，紧急出栏"}
    assert first["production"]["insideIntervals"][0]["safeFrom"] == day(2 - 10)
    # The lot goes to the slaughterhouse, is slaughtered, and a carcass reaches the wholesale market.
    await farm.post(
        "/api/v1/events",
        farm.event(pigs, "shipping", destination={"node": farm.nodes["slaughter"]}),
        farm.devices["farm"],
        expect=201,
    )
    await farm.post("/api/v1/events", farm.event(pigs, "receiving"), farm.devices["slaughter"], expect=201)
    made = await farm.post(
        "/api/v1/transformations",
        {
            "eventID": new_id(),
            "bizStep": "commissioning",
            "inputs": [{"traceCode": pigs, "quantity": {"value": 1300, "uom": "KGM"}}],
            "outputs": [{"product": "21113011", "quantity": {"value": 950, "uom": "KGM"}}],
        },
        farm.devices["slaughter"],
        expect=201,
    )
    carcass = made["outputs"][0]["traceCode"]
    await farm.post(
        "/api/v1/events",
        farm.event(carcass, "shipping", destination={"node": farm.nodes["wholesale"]}),
        farm.devices["slaughter"],
        expect=201,
    )
    await farm.post("/api/v1/events", farm.event(carcass, "receiving"), farm.devices["wholesale"], expect=201)
    reg = await regulator(farm)
    at_farm = await wait_for_anomaly(client, reg, "opened_inside_interval", pigs)
    assert at_farm["node_code"] == farm.nodes["farm"] and "insisted" in at_farm["detail"]
    assert at_farm["kind_name"] == "安全间隔期/休药期内采收或出栏"
    await wait_for_anomaly(client, reg, "received_inside_interval", pigs)
    at_market = await wait_for_anomaly(client, reg, "received_inside_interval", carcass)
    assert at_market["node_code"] == farm.nodes["wholesale"] and pigs in at_market["detail"]
    assert "猪舍火灾" in at_market["detail"] and "猪舍火灾" in at_market["explanation"]
    assert "Enrofloxacin injection" in at_market["explanation_en"] and pigs in at_market["explanation_en"]
    assert "恩诺沙星注射液" in at_market["explanation"]
    # The slaughterhouse's own systems read what concerns it, and nothing of the others'.
    token = (
        await farm.post(
            "/api/v1/admin/tokens",
            {"role": "enterprise", "name": "屠宰 ERP", "enterprise": farm.enterprises["slaughter"]},
            expect=201,
        )
    )["credential"]
    own = await (await client.get("/api/v1/anomalies", headers=farm.auth(token))).json()
    kinds = {(a["kind"], a["trace_code"]) for a in own["anomalies"]}
    assert ("received_inside_interval", pigs) in kinds
    assert all(a["uscc"] == farm.enterprises["slaughter"] for a in own["anomalies"])


def test_the_registry_of_inputs_by_cli(db_url: str) -> None:
    from tests.test_verify import cli

    flags = ["--registration-no", "兽药字(2019)010012345", "--kind", "veterinary_drug", "--name", "恩诺沙星注射液"]
    out = cli(db_url, "input", "add", *flags, "--interval-days", "10", "--source", ENROFLOXACIN["source"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["interval_days"] == 10
    out = cli(db_url, "input", "add", *flags, "--interval-days", "10")
    assert out.returncode == 2 and "source" in out.stderr
    out = cli(db_url, "input", "list")
    assert [i["applies_to"] for i in json.loads(out.stdout)] == [None]


def epcis_harvest(lot: str) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": ago(0),
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": ago(0.5),
                    "eventTimeZoneOffset": "+08:00",
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "quantityList": [
                        {"epcClass": f"urn:epc:class:lgtin:6901234.056789.{lot}", "quantity": 300, "uom": "KGM"}
                    ],
                }
            ]
        },
    }


async def test_an_epcis_opening_at_a_farm_inside_an_interval_is_refused(farm: World, client: Any) -> None:
    async def capture(lot: str) -> tuple[int, Any]:
        resp = await client.post(
            "/epcis/capture",
            json=epcis_harvest(lot),
            headers={**farm.auth(farm.devices["farm"]), "Content-Type": "application/ld+json"},
        )
        return resp.status, await resp.json(content_type=None)

    status, answer = await capture("L1")
    assert status in (201, 202), answer
    await farm.post("/api/v1/farm/inputs", pesticide("A-3", 2), farm.devices["farm"], expect=201)
    status, answer = await capture("L2")
    assert status == 409 and answer["code"] == "inside_safety_interval", answer
    assert "PD20080001" in answer["title"] and "origin.unit" in answer["title"] and day(2 - 7) in answer["title"]
