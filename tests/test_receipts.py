"""A sale that issues a receipt code: the receipt is a child of the batch it was cut from, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg

from tests.conftest import World, new_id

CHINA = timezone(timedelta(hours=8))


def ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).astimezone(CHINA).isoformat(timespec="seconds")


async def regulator(world: World) -> str:
    answer = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "市场监管局"}, expect=201)
    return str(answer["credential"])


async def farm_to_stall(world: World, **opening: Any) -> str:
    """Live pigs from a farm (quarantine certificate), slaughtered (meat inspection), through the wholesale
    market to a stall: the batch the stall sells from, as a new user would record it hop by hop."""
    await world.add_node("farm", "farm", "320321")
    await world.add_node("wholesale", "wholesale_market", "320303")
    pigs = await world.open_batch(
        "farm",
        eventTime=ago(30),
        quantity={"value": 230, "uom": "KGM"},
        origin={"area_code": "320321", "place": "丰县", "producer": "丰县生猪养殖场"},
        documents=[{"type": "quarantine_certificate", "number": "Q3203210001"}],
    )
    hops = [("farm", "slaughter", 29), ("slaughter", "wholesale", 10), ("wholesale", "market", 6)]
    carcass = None
    for sender, receiver, hours in hops:
        code = pigs if sender == "farm" else carcass
        assert code is not None
        await world.post(
            "/api/v1/events",
            world.event(code, "shipping", eventTime=ago(hours), destination={"node": world.nodes[receiver]}),
            world.devices[sender],
            expect=201,
        )
        await world.post(
            "/api/v1/events", world.event(code, "receiving", eventTime=ago(hours - 0.5)), world.devices[receiver], 201
        )
        if receiver == "slaughter":
            made = await world.post(
                "/api/v1/transformations",
                {
                    "eventID": new_id(),
                    "bizStep": "commissioning",
                    "eventTime": ago(27),
                    "inputs": [{"traceCode": pigs, "quantity": {"value": 230, "uom": "KGM"}}],
                    "outputs": [
                        {
                            "product": "21113011",
                            "quantity": {"value": 80, "uom": "KGM"},
                            "documents": [{"type": "meat_inspection_certificate", "number": "M3203110001"}],
                            **opening,
                        }
                    ],
                },
                world.devices["slaughter"],
                expect=201,
            )
            carcass = made["outputs"][0]["traceCode"]
    assert carcass is not None
    return carcass


def sale(source: str, kg: float, hours: float = 1, **extra: Any) -> dict[str, Any]:
    return {
        "eventID": new_id(),
        "source": source,
        "quantity": {"value": kg, "uom": "KGM"},
        "eventTime": ago(hours),
        "commercial": {"unit_price": 32, "amount": kg * 32, "currency": "CNY"},
        **extra,
    }


async def page(world: World, code: str) -> dict[str, Any]:
    resp = await world.client.get(f"/t/{code}?format=json")
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_a_sale_opens_its_receipt_as_a_child_of_the_source(world: World, superuser: asyncpg.Connection) -> None:
    source = await farm_to_stall(world)
    body = sale(source, 0.75)
    sold = await world.post("/api/v1/sales", body, world.devices["market"], expect=201)
    receipt = sold["traceCode"]
    assert receipt != source and sold["source"] == source and sold["url"].endswith(f"/t/{receipt}")
    assert sold["receipt"]["seq"] == 1 and sold["sale"]["traceCode"] == source
    # Resent (the answer was lost): the same receipt, nothing written twice.
    again = await world.post("/api/v1/sales", body, world.devices["market"], expect=200)
    assert again["traceCode"] == receipt and again["replayed"] and again["sale"]["seq"] == sold["sale"]["seq"]
    changed = {**body, "quantity": {"value": 0.8, "uom": "KGM"}}
    conflict = await world.post("/api/v1/sales", changed, world.devices["market"], expect=409)
    assert conflict["error"]["code"] == "event_conflict" and conflict["error"]["field"] == "eventID"
    links = await superuser.fetch(
        "SELECT p.trace_code AS parent, l.quantity, l.uom FROM batch_links l JOIN batches p ON p.id = l.parent_id "
        "JOIN batches c ON c.id = l.child_id WHERE c.trace_code = $1",
        receipt,
    )
    assert [(r["parent"], str(r["quantity"]), r["uom"]) for r in links] == [(source, "0.75", "KGM")]
    # The source's chain names the receipt; the receipt's first event names the source and the sale.
    view = await (await world.client.get(f"/api/v1/batches/{source}")).json()
    last = view["events"][-1]
    assert last["bizStep"] == "retail_selling" and last["attributes"]["receiptCode"] == receipt
    assert "commercial" not in last  # prices stay sealed from the public
    mine = await (await world.client.get(f"/api/v1/batches/{receipt}")).json()
    assert mine["events"][0]["soldFrom"] == {"traceCode": source, "eventID": body["eventID"]}
    assert mine["product"]["goods_code"] == "21113011" and mine["quantity"] == {"value": "0.75", "uom": "KGM"}
    # Backward trace from the receipt reaches the farm's pigs.
    back = await (await world.client.get(f"/api/v1/batches/{receipt}/trace?direction=backward")).json()
    assert len(back["origins"]) == 1 and back["origins"][0] != source
    assert {b["trace_code"] for b in back["batches"]} >= {receipt, source}


async def test_the_receipt_page_shows_the_whole_journey(world: World) -> None:
    source = await farm_to_stall(world)
    sold = await world.post("/api/v1/sales", sale(source, 1.25), world.devices["market"], expect=201)
    record = await page(world, sold["traceCode"])
    stops = record["journey"]
    assert stops[0]["kind"] == "origin" and stops[0]["name"] == "丰县生猪养殖场"
    assert [s.get("code") for s in stops[1:]] == [world.nodes[k] for k in ("farm", "slaughter", "wholesale", "market")]
    assert stops[-1]["steps"][-1]["bizStep"] == "retail_selling"
    numbers = {c["number"] for c in record["certificates"]}
    assert {"Q3203210001", "M3203110001"} <= numbers
    assert record["sale"]["quantity"] == {"value": "1.25", "uom": "KGM"}
    assert record["sale"]["source"] == source and record["sale"]["node_code"] == world.nodes["market"]
    assert record["vendor"]["node_code"] == world.nodes["market"]
    assert record["status"]["state"] == "ok" and record["status"]["inherited_from"] == []
    assert [b["trace_code"] for b in record["lineage"]][-1] == source  # the pigs, then the stall's carcass
    assert len(record["lineage"]) == 2
    html = await (await world.client.get(f"/t/{sold['traceCode']}")).text()
    for shown in ("丰县生猪养殖场", "Q3203210001", "M3203110001", "market 节点", "1.25"):
        assert shown in html, shown


async def test_selling_more_than_the_batch_holds_is_refused(world: World) -> None:
    source = await world.open_batch("market", quantity={"value": 2, "uom": "KGM"})
    await world.post("/api/v1/sales", sale(source, 1.5, hours=0.1), world.devices["market"], expect=201)
    refused = await world.post("/api/v1/sales", sale(source, 0.6, hours=0.1), world.devices["market"], expect=409)
    assert refused["error"]["field"] == "quantity" and "more than is left" in refused["error"]["message"]
    await world.post("/api/v1/sales", sale(source, 0.5, hours=0.1), world.devices["market"], expect=201)


async def test_bad_sales_get_a_clear_4xx(world: World) -> None:
    source = await world.open_batch("market")
    dev = world.devices["market"]
    unknown = await world.post("/api/v1/sales", sale("32030200000000000019", 1), dev, expect=422)
    assert unknown["error"]["field"] == "source"
    extra = await world.post("/api/v1/sales", {**sale(source, 1), "colour": "red"}, dev, expect=422)
    assert extra["error"]["field"] == "colour"
    named = await world.post("/api/v1/sales", sale(source, 1, attributes={"receiptCode": source}), dev, expect=422)
    assert named["error"]["field"] == "attributes.receiptCode"
    not_leased = await world.post("/api/v1/sales", sale(source, 1, traceCode=source), dev, expect=422)
    assert not_leased["error"]["field"] == "traceCode"
    nobody = await world.post("/api/v1/sales", sale(source, 1), None, expect=403)
    assert nobody["error"]["code"] == "forbidden"
