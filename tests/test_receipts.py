"""A sale that issues a receipt code: the receipt is a child of the batch it was cut from, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg

from tests.conftest import World, new_id
from tests.test_supply import wait_for_anomaly

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


async def test_a_recall_reaches_every_receipt_even_late_synced_ones(world: World, client: Any) -> None:
    source = await farm_to_stall(world)
    market = world.devices["market"]
    before = await world.post("/api/v1/sales", sale(source, 1.0, hours=2), market, expect=201)
    back = await (await client.get(f"/api/v1/batches/{before['traceCode']}/trace?direction=backward")).json()
    pigs = back["origins"][0]
    reg = await regulator(world)
    recall = await world.post(
        "/api/v1/recalls", {"traceCode": pigs, "level": "I", "reason": "瘦肉精阳性"}, reg, expect=201
    )
    assert before["traceCode"] in recall["batches"]  # the receipt made before the recall is reached
    record = await page(world, before["traceCode"])
    assert record["status"]["state"] == "recalled" and record["status"]["recalled"]
    assert set(record["status"]["inherited_from"]) == {pigs, source}
    # Selling it now is refused, before anything is written.
    refused = await world.post("/api/v1/sales", sale(source, 0.5, hours=-0.01), market, expect=409)
    assert refused["error"]["field"] == "source" and "recalled" in refused["error"]["message"]
    # A scale that sold before the recall and syncs only now: accepted, and its receipt is recalled at once.
    late_body = sale(source, 0.5, hours=1.5)
    late = await world.post("/api/v1/sales", late_body, market, expect=201)
    view = await (await client.get(f"/api/v1/batches/{late['traceCode']}")).json()
    assert [e.get("disposition") for e in view["events"]] == ["retail_sold", "recalled"]
    assert (await page(world, late["traceCode"]))["status"]["state"] == "recalled"
    found = await wait_for_anomaly(client, reg, "sale_synced_after_recall", source)
    assert found["event_id"] == late_body["eventID"]
    html = await (await client.get(f"/t/{late['traceCode']}")).text()
    assert "banner-recall" in html


async def test_a_failed_test_upstream_holds_the_receipts(world: World, client: Any) -> None:
    source = await farm_to_stall(world)
    sold = await world.post("/api/v1/sales", sale(source, 1.0, hours=2), world.devices["market"], expect=201)
    failed = world.event(
        source,
        "inspecting",
        eventTime=ago(1),
        attributes={"lab": "鼓楼区快检室", "test": "clenbuterol", "value": "0.8", "limit": "0.5", "result": "fail"},
    )
    await world.post("/api/v1/events", failed, world.devices["market"], expect=201)
    record = await page(world, sold["traceCode"])
    assert record["status"]["state"] == "on_hold"
    assert [(f["test"], f["value"], f["limit"]) for f in record["status"]["failed"]] == [("clenbuterol", "0.8", "0.5")]
    refused = await world.post("/api/v1/sales", sale(source, 0.5, hours=-0.01), world.devices["market"], expect=409)
    assert "on hold" in refused["error"]["message"]


async def test_a_receipt_is_expired_once_its_source_shelf_life_is_over(world: World) -> None:
    yesterday = (datetime.now(CHINA) - timedelta(days=1)).date()
    source = await world.open_batch(
        "market",
        eventTime=ago(72),
        produced_on=(yesterday - timedelta(days=3)).isoformat(),
        expires_on=yesterday.isoformat(),
    )
    sold = await world.post("/api/v1/sales", sale(source, 0.5, hours=48), world.devices["market"], expect=201)
    record = await page(world, sold["traceCode"])
    assert record["status"]["state"] == "expired" and record["status"]["expires_on"] == yesterday.isoformat()
    assert record["batch"]["expires_on"] == yesterday.isoformat()  # the receipt carries its source's dates
    fresh = await world.open_batch("market", expires_on=(yesterday + timedelta(days=5)).isoformat())
    sold = await world.post("/api/v1/sales", sale(fresh, 0.5, hours=0), world.devices["market"], expect=201)
    assert (await page(world, sold["traceCode"]))["status"]["state"] == "ok"


async def test_forward_trace_and_recall_count_what_consumers_took_and_what_is_left(world: World, client: Any) -> None:
    source = await farm_to_stall(world)
    for kg in (0.75, 1.0):
        await world.post("/api/v1/sales", sale(source, kg, hours=2), world.devices["market"], expect=201)
    back = await (await client.get(f"/api/v1/batches/{source}/trace?direction=backward")).json()
    pigs = back["origins"][0]
    reg = await regulator(world)
    fwd = await (await client.get(f"/api/v1/batches/{pigs}/trace?direction=forward", headers=world.auth(reg))).json()
    reached = {n["code"]: n for n in fwd["reached"]}
    stall = reached[world.nodes["market"]]
    kg = "KGM"
    assert stall["receipts"] == 2
    assert stall["sold_to_consumers"] == [{"value": "1.75", "uom": kg}]
    assert stall["left"] == [{"value": "78.25", "uom": kg}]
    assert stall["stock"] == [
        {
            "trace_code": source,
            "uom": kg,
            "received": "80",
            "shipped": "0",
            "processed": "0",
            "sold": "1.75",
            "destroyed": "0",
            "returned": "0",
            "left": "78.25",
        }
    ]
    assert reached[world.nodes["wholesale"]]["left"] == [{"value": "0", "uom": kg}]
    assert reached[world.nodes["slaughter"]]["left"] == [{"value": "0", "uom": kg}]
    assert fwd["totals"] == {
        "receipts": 2,
        "sold_to_consumers": [{"value": "1.75", "uom": kg}],
        "left": [{"value": "78.25", "uom": kg}],
    }
    recall = await world.post("/api/v1/recalls", {"traceCode": pigs, "level": "I", "reason": "瘦肉精"}, reg, expect=201)
    assert recall["totals"] == fwd["totals"] and len([b for b in recall["batches"]]) == 4  # pigs, carcass, 2 receipts


async def test_receipts_of_certified_meat_are_not_missing_certificates(world: World, client: Any) -> None:
    source = await farm_to_stall(world)
    market = world.devices["market"]
    await world.post("/api/v1/sales", sale(source, 0.5, hours=2), market, expect=201)
    # A receipt queued by a station before sales were one record: its opening names the source.
    old = await world.open_batch(
        "market", quantity={"value": 0.6, "uom": "KGM"}, eventTime=ago(1.5), attributes={"soldFrom": source}
    )
    event = world.event(source, "retail_selling", eventTime=ago(1.5), quantity={"value": 0.6, "uom": "KGM"})
    await world.post("/api/v1/events", {**event, "attributes": {"receiptCode": old}}, market, expect=201)
    assert [b["trace_code"] for b in (await page(world, old))["lineage"]][-1] == source
    # Then meat opened at the stall with no certificate at all: flagged, and once it is, the analyzer
    # has looked at every event before it (it reads the log in order).
    bare = await world.open_batch("market")
    reg = await regulator(world)
    await wait_for_anomaly(client, reg, "missing_certificate", bare)
    resp = await client.get("/api/v1/anomalies", params={"kind": "missing_certificate"}, headers=world.auth(reg))
    assert [a["trace_code"] for a in (await resp.json())["anomalies"]] == [bare]
    resp = await client.get("/api/v1/anomalies", headers=world.auth(reg))
    assert {a["kind"] for a in (await resp.json())["anomalies"]} == {"missing_certificate"}
