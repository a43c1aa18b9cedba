"""The supply chain: splits and merges, trace both ways, holds, recalls, anomalies, credit ratings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, new_id, settled
from traceability.epcis import identifiers


async def regulator(world: World) -> str:
    return str(
        (await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "市场监管局"}, expect=201))[
            "credential"
        ]
    )


_glns = iter(range(73460, 99999))


async def at_another_node_of(world: World, key: str, code: str, step: str, when: str) -> None:
    """The enterprise's own system (an EPCIS capture with its credential) records ``step`` about ``code`` at
    a new node of the enterprise: custody lets an enterprise move goods between its own nodes."""
    sgln = f"urn:epc:id:sgln:0614141.{next(_glns):05d}.0"
    gln = identifiers.location_gln(sgln)
    uscc = world.enterprises[key]
    node = {"enterprise": uscc, "type": "wholesaler", "area_code": "320302", "name": f"{key} 二号仓", "gln": gln}
    await world.post("/api/v1/admin/nodes", node, expect=201)
    token = await world.post("/api/v1/admin/tokens", {"role": "enterprise", "name": key, "enterprise": uscc})
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": step,
        "eventTime": when,
        "eventTimeZoneOffset": "+08:00",
        "quantityList": [{"epcClass": f"http://trace.test/t/{code}"}],
        "bizLocation": {"id": sgln},
    }
    doc = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": when,
        "epcisBody": {"eventList": [event]},
    }
    auth = world.auth(token["credential"])
    resp = await world.client.post("/epcis/capture", json=doc, headers={**auth, "Content-Type": "application/ld+json"})
    assert resp.status == 202, await resp.text()
    job = await (await world.client.get(resp.headers["Location"], headers=auth)).json()
    assert job["success"], job


def ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).astimezone(timezone(timedelta(hours=8))).isoformat()


async def split(
    world: World,
    code: str,
    cuts: list[float],
    key: str = "slaughter",
    expect: int = 201,
    product: str = "21113011",
    quantity: float | None = None,
) -> Any:
    body = {
        "eventID": new_id(),
        "bizStep": "repackaging",
        "eventTime": ago(5),
        "inputs": [{"traceCode": code, "quantity": {"value": quantity or sum(cuts), "uom": "KGM"}}],
        "outputs": [{"product": product, "quantity": {"value": c, "uom": "KGM"}} for c in cuts],
    }
    return await world.post("/api/v1/transformations", body, world.devices[key], expect=expect)


async def ship_and_sell(world: World, code: str, to: str = "market", kg: float = 1.0) -> None:
    await world.post(
        "/api/v1/events",
        world.event(code, "shipping", eventTime=ago(4), destination={"node": world.nodes[to]}),
        world.devices["slaughter"],
        expect=201,
    )
    await world.post("/api/v1/events", world.event(code, "receiving", eventTime=ago(3)), world.devices[to], expect=201)
    await world.post(
        "/api/v1/events",
        world.event(code, "retail_selling", eventTime=ago(2), quantity={"value": kg, "uom": "KGM"}),
        world.devices[to],
        expect=201,
    )


async def test_split_then_trace_forward_and_backward(world: World, client: Any) -> None:
    carcass = await world.open_batch(
        documents=[
            {"type": "quarantine_certificate", "number": "Q1"},
            {"type": "meat_inspection_certificate", "number": "M1"},
        ]
    )
    made = await split(world, carcass, [30, 30, 28.5])
    cuts = [o["traceCode"] for o in made["outputs"]]
    assert len(set(cuts)) == 3 and carcass not in cuts
    await ship_and_sell(world, cuts[0])
    reg = await regulator(world)
    fwd = await (await client.get(f"/api/v1/batches/{carcass}/trace?direction=forward", headers=world.auth(reg))).json()
    assert {b["trace_code"] for b in fwd["batches"]} == {carcass, *cuts}
    stall = next(n for n in fwd["reached"] if n["code"] == world.nodes["market"])
    assert stall["batches"] == [cuts[0]] and "retail_selling" in stall["steps"]
    assert "contact" in stall
    back = await (await client.get(f"/api/v1/batches/{cuts[0]}/trace?direction=backward")).json()
    assert back["origins"] == [carcass]
    root = next(b for b in back["batches"] if b["trace_code"] == carcass)
    assert {c["type"] for c in root["certificates"]} == {"quarantine_certificate", "meat_inspection_certificate"}
    assert all("contact" not in n for b in back["batches"] for n in b["nodes"])
    resp = await client.get(f"/api/v1/batches/{carcass}/trace?direction=forward")
    assert resp.status == 403
    # The carcass's own chain records the split; each cut's first event names its input.
    view = await (await client.get(f"/api/v1/batches/{carcass}")).json()
    assert view["events"][-1]["type"] == "TransformationEvent"
    assert [o["traceCode"] for o in view["events"][-1]["outputs"]] == cuts
    cut_view = await (await client.get(f"/api/v1/batches/{cuts[1]}")).json()
    assert cut_view["events"][0]["inputs"][0]["traceCode"] == carcass


async def test_mass_balance_and_retries(world: World, superuser: asyncpg.Connection) -> None:
    carcass = await world.open_batch()
    data = await split(world, carcass, [60, 40], quantity=90, expect=422)
    assert data["error"]["field"] == "outputs" and "exceed" in data["error"]["message"]
    body = {
        "eventID": new_id(),
        "inputs": [{"traceCode": carcass, "quantity": {"value": 90, "uom": "KGM"}}],
        "outputs": [{"product": "21113011", "quantity": {"value": 91, "uom": "KGM"}}],
    }  # within 2 %
    first = await world.post("/api/v1/transformations", body, world.devices["slaughter"], expect=201)
    again = await world.post("/api/v1/transformations", body, world.devices["slaughter"], expect=200)
    assert again["replayed"] and [o["traceCode"] for o in again["outputs"]] == [
        o["traceCode"] for o in first["outputs"]
    ]
    assert await superuser.fetchval("SELECT count(*) FROM batches") == 2


async def test_merge_and_diamond(world: World, client: Any) -> None:
    a = await world.open_batch("slaughter", "22101001")
    b = await world.open_batch("slaughter", "22101001")
    halves = [o["traceCode"] for o in (await split(world, a, [45, 45.5], product="22101001"))["outputs"]]
    merge = {
        "eventID": new_id(),
        "bizStep": "packing",
        "inputs": [
            {"traceCode": halves[0], "quantity": {"value": 45, "uom": "KGM"}},
            {"traceCode": halves[1], "quantity": {"value": 45.5, "uom": "KGM"}},
            {"traceCode": b, "quantity": {"value": 90.5, "uom": "KGM"}},
        ],
        "outputs": [{"product": "22101001", "quantity": {"value": 180, "uom": "KGM"}}],
    }
    lot = (await world.post("/api/v1/transformations", merge, world.devices["slaughter"], expect=201))["outputs"][0]
    back = await (await client.get(f"/api/v1/batches/{lot['traceCode']}/trace")).json()
    assert sorted(back["origins"]) == sorted([a, b])
    codes = [x["trace_code"] for x in back["batches"]]
    assert len(codes) == len(set(codes)) == 5  # lot, two halves, a, b: the diamond counted once
    reg = await regulator(world)
    fwd = await (await client.get(f"/api/v1/batches/{a}/trace?direction=forward", headers=world.auth(reg))).json()
    assert {x["trace_code"] for x in fwd["batches"]} == {a, *halves, lot["traceCode"]}


async def test_a_cycle_is_refused(world: World, superuser: asyncpg.Connection) -> None:
    a = await world.open_batch()
    child = (await split(world, a, [90.5]))["outputs"][0]["traceCode"]
    ids = {r["trace_code"]: r["id"] for r in await superuser.fetch("SELECT id, trace_code FROM batches")}
    with pytest.raises(asyncpg.CheckViolationError, match="own descendant"):
        await superuser.execute(
            "INSERT INTO batch_links VALUES ($1, $2, gen_random_uuid(), 1, 'KGM')", ids[child], ids[a]
        )
    # The walk up the ancestors is planned by index, however small batch_links was when a session planned it.
    settings = await superuser.fetchval("SELECT proconfig FROM pg_proc WHERE proname = 'trace_refuse_cycle'")
    assert settings == ["enable_seqscan=off"]


async def test_failed_inspection_holds_everything_made_from_it(world: World, client: Any) -> None:
    lot = await world.open_batch("slaughter", "22101001")
    parts = [o["traceCode"] for o in (await split(world, lot, [40, 50], product="22101001"))["outputs"]]
    test = world.event(
        lot,
        "inspecting",
        eventTime=ago(1),
        attributes={
            "lab": "徐州市农产品质量检测中心",
            "method": "GB/T 5009.199",
            "test": "pesticide_residue",
            "value": "0.8",
            "limit": "0.5",
            "result": "fail",
        },
    )
    await world.post("/api/v1/events", test, world.devices["slaughter"], expect=201)
    part = await (await client.get(f"/api/v1/batches/{parts[0]}")).json()
    assert part["events"][-1]["disposition"] == "non_conformant"
    assert part["events"][-1]["hold"] == {"inspection": test["eventID"], "source": lot}
    data = await world.post(
        "/api/v1/events", world.event(parts[0], "shipping", eventTime=ago(0)), world.devices["slaughter"], expect=409
    )
    assert "on hold after a failed inspection" in data["error"]["message"]
    lie = world.event(lot, "inspecting", attributes={"value": "0.8", "limit": "0.5", "result": "pass"})
    data = await world.post("/api/v1/events", lie, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "attributes.result"


async def wait_for_anomaly(client: Any, token: str, kind: str, code: str) -> dict[str, Any]:
    """The first ``kind`` anomaly of ``code``, once the analyzer has looked at every event recorded so far."""
    await settled(client)
    resp = await client.get(
        "/api/v1/anomalies", params={"kind": kind, "trace_code": code}, headers={"Authorization": f"Bearer {token}"}
    )
    items = (await resp.json())["anomalies"]
    assert items, f"no {kind} anomaly for {code}"
    return dict(items[0])


async def test_recall_marks_descendants_and_refuses_later_sales(world: World, client: Any) -> None:
    carcass = await world.open_batch()
    cuts = [o["traceCode"] for o in (await split(world, carcass, [45, 45.5]))["outputs"]]
    await ship_and_sell(world, cuts[0])
    await world.post(
        "/api/v1/events", world.event(cuts[1], "shipping", eventTime=ago(4)), world.devices["slaughter"], expect=201
    )
    reg = await regulator(world)
    data = await world.post(
        "/api/v1/recalls",
        {"traceCode": carcass, "level": "I", "reason": "非洲猪瘟阳性", "scope": "全市"},
        reg,
        expect=201,
    )
    assert sorted(data["batches"]) == sorted([carcass, *cuts])
    assert world.nodes["market"] in {n["code"] for n in data["reached"]}
    for code in (carcass, *cuts):
        view = await (await client.get(f"/api/v1/batches/{code}")).json()
        assert view["events"][-1]["disposition"] == "recalled"
        assert view["events"][-1]["recall"]["reason"] == "非洲猪瘟阳性"
    data = await world.post(
        "/api/v1/events", world.event(cuts[0], "retail_selling", eventTime=ago(0)), world.devices["market"], expect=409
    )
    assert "recalled" in data["error"]["message"] and data["error"]["field"] == "traceCode"
    # An offline scale syncing a sale made before the recall: accepted, and flagged for the regulator.
    late = world.event(cuts[0], "retail_selling", eventTime=ago(1), quantity={"value": 0.5, "uom": "KGM"})
    await world.post("/api/v1/events", late, world.devices["market"], expect=201)
    found = await wait_for_anomaly(client, reg, "sale_synced_after_recall", cuts[0])
    assert found["event_id"] == late["eventID"]
    listing = await (await client.get("/api/v1/recalls")).json()
    assert listing["recalls"][0]["trace_code"] == carcass
    data = await world.post(
        "/api/v1/recalls", {"traceCode": carcass, "level": "I", "reason": "x"}, world.devices["market"], expect=403
    )


async def test_a_recall_sent_twice_is_recorded_once(world: World, client: Any) -> None:
    """A double submit or a retried request answers the recall already issued; a new level is a new recall."""
    carcass = await world.open_batch()
    cuts = [o["traceCode"] for o in (await split(world, carcass, [45, 45.5]))["outputs"]]
    reg = await regulator(world)
    body = {"traceCode": carcass, "level": "II", "reason": "兽药残留超标", "scope": "全市"}

    async def send() -> tuple[int, Any]:
        resp = await client.post("/api/v1/recalls", json=body, headers=world.auth(reg))
        return resp.status, await resp.json()

    sent = await asyncio.gather(send(), send(), send())
    assert sorted(status for status, _ in sent) == [200, 200, 201], sent
    answers = [a for _, a in sent]
    first = next(a for status, a in sent if status == 201)
    assert sorted(a["replayed"] for a in answers) == [False, True, True]
    assert len({a["recall_id"] for a in answers}) == 1
    assert len({a["issued_at"] for a in answers}) == 1
    for a in answers:
        assert sorted(a["batches"]) == sorted([carcass, *cuts])
    view = await (await client.get(f"/api/v1/batches/{carcass}")).json()
    assert [e.get("disposition") for e in view["events"]].count("recalled") == 1
    listing = await (await client.get("/api/v1/recalls")).json()
    assert [r["trace_code"] for r in listing["recalls"]].count(carcass) == 1
    # Raising the level is a new recall, recorded on every chain again.
    escalated = await world.post("/api/v1/recalls", {**body, "level": "I"}, reg, expect=201)
    assert escalated["replayed"] is False and escalated["recall_id"] != first["recall_id"]
    view = await (await client.get(f"/api/v1/batches/{carcass}")).json()
    assert [e.get("disposition") for e in view["events"]].count("recalled") == 2


async def test_a_sale_the_morning_after_expiry_is_flagged_by_the_beijing_date(world: World, client: Any) -> None:
    # A batch expires at the end of its last day in Beijing (as the consumer page says): a sale at 07:00 the next
    # morning there is after expiry, though it is still the expiry date in UTC.
    china = timezone(timedelta(hours=8))
    now = datetime.now(china)
    sold = now.replace(hour=7, minute=0, second=0, microsecond=0)
    if sold > now:
        sold -= timedelta(days=1)
    expired = sold.date() - timedelta(days=1)
    assert sold.astimezone(UTC).date() == expired
    code = await world.open_batch(
        eventTime=(sold - timedelta(hours=1)).isoformat(),
        expires_on=expired.isoformat(),
        produced_on=(expired - timedelta(days=5)).isoformat(),
    )
    await world.post(
        "/api/v1/events",
        world.event(code, "retail_selling", eventTime=sold.isoformat(), quantity={"value": 5, "uom": "KGM"}),
        world.devices["slaughter"],
        expect=201,
    )
    found = await wait_for_anomaly(client, await regulator(world), "sold_after_expiry", code)
    assert found["kind"] == "sold_after_expiry"


async def test_anomalies(world: World, client: Any) -> None:
    reg = await regulator(world)
    # Sold after expiry, and more sold than received.
    old = await world.open_batch(
        expires_on=(datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        produced_on=(datetime.now(UTC) - timedelta(days=6)).date().isoformat(),
    )
    await world.post(
        "/api/v1/events",
        world.event(old, "retail_selling", eventTime=ago(0.5), quantity={"value": 95, "uom": "KGM"}),
        world.devices["slaughter"],
        expect=201,
    )
    await wait_for_anomaly(client, reg, "sold_after_expiry", old)
    await wait_for_anomaly(client, reg, "mass_balance_exceeded", old)
    # Received without any shipment; an event at a node the batch never reached. A scanner cannot do either
    # (custody refuses it), but an enterprise's own system moves goods between its nodes, which is checked.
    stray = await world.open_batch()
    data = await world.post(
        "/api/v1/events", world.event(stray, "receiving", eventTime=ago(1)), world.devices["market"], expect=403
    )
    assert data["error"]["code"] == "not_destination"
    await at_another_node_of(world, "slaughter", stray, "receiving", ago(1))
    await wait_for_anomaly(client, reg, "received_without_shipment", stray)
    other = await world.open_batch(eventTime=ago(48))
    data = await world.post(
        "/api/v1/events", world.event(other, "storing", eventTime=ago(1)), world.devices["market"], expect=403
    )
    assert data["error"]["code"] == "not_holder"
    await at_another_node_of(world, "slaughter", other, "storing", ago(1))
    await wait_for_anomaly(client, reg, "event_at_unreached_node", other)
    # A meat batch opened without its quarantine certificate; events out of time order.
    await world.post(
        "/api/v1/events", world.event(other, "storing", eventTime=ago(30)), world.devices["slaughter"], expect=201
    )
    found = await wait_for_anomaly(client, reg, "missing_certificate", other)
    assert "quarantine certificate" in found["detail"]
    await wait_for_anomaly(client, reg, "out_of_time_order", other)
    # A drug serial dispensed twice (回流药).
    await world.add_node("pharmacy", "pharmacy", n=60)
    await world.post(
        "/api/v1/admin/products", {"category": "drug", "goods_code": "86900001", "name": "阿莫西林胶囊"}, expect=201
    )
    drug = await world.open_batch(
        "pharmacy",
        "86900001",
        quantity={"value": 100, "uom": "XBX"},
        produced_on="2026-10-01",
        expires_on="2028-09-30",
        attributes={"approval_number": "国药准字H20013061", "drug_identity_code": "8690001", "lot": "B2610"},
    )
    for _ in range(2):
        await world.post(
            "/api/v1/events",
            world.event(
                drug,
                "dispensing",
                eventTime=ago(0.2),
                quantity={"value": 1, "uom": "XBX"},
                attributes={"serial": "81234560000000000011"},
            ),
            world.devices["pharmacy"],
            expect=201,
        )
    found = await wait_for_anomaly(client, reg, "drug_serial_dispensed_twice", drug)
    assert "回流药" in found["detail"]
    resp = await client.get("/api/v1/anomalies", params={"kind": "nonsense"}, headers=world.auth(reg))
    assert resp.status == 422
    resp = await client.get("/api/v1/anomalies")
    assert resp.status == 401


async def test_credit_rating(world: World, client: Any) -> None:
    reg = await regulator(world)
    clean = await (await client.get(f"/api/v1/enterprises/{world.enterprises['market']}/credit")).json()
    # Nothing recorded yet: no activity, never a perfect 100/A.
    assert clean["score"] is None and clean["grade"] is None and clean["active"] is False
    assert len(clean["history"]) == 12 and all(h["score"] is None and h["events"] == 0 for h in clean["history"])
    stray = await world.open_batch()
    ship = world.event(stray, "shipping", eventTime=ago(0.2), destination={"node": world.nodes["market"]})
    await world.post("/api/v1/events", ship, world.devices["slaughter"], expect=201)
    await world.post("/api/v1/events", world.event(stray, "receiving", eventTime=ago(0.1)), world.devices["market"])
    await at_another_node_of(world, "market", stray, "storing", ago(0))
    await wait_for_anomaly(client, reg, "event_at_unreached_node", stray)
    rated = await (await client.get(f"/api/v1/enterprises/{world.enterprises['market']}/credit")).json()
    assert rated["score"] == 98, rated["factors"]
    factor = next(f for f in rated["factors"] if f["factor"] == "other_anomalies")
    assert factor == {
        "factor": "other_anomalies",
        "name": "其他异常",
        "name_en": "Other anomalies",
        "count": 1,
        "penalty": 2,
        "rule": "每次扣 2 分，最多扣 20 分",
        "rule_en": "2 points each, at most 20",
    }
    listing = await (await client.get("/api/v1/enterprises", headers=world.auth(reg))).json()
    assert {e["uscc"]: e["score"] for e in listing["enterprises"]}[world.enterprises["market"]] == 98


async def test_category_key_data(world: World) -> None:
    await world.post(
        "/api/v1/admin/products",
        {"category": "drug", "goods_code": "86900002", "name": "布洛芬缓释胶囊", "gtin": "06901234567809"[:13] + "2"},
        expect=422,
    )
    await world.post(
        "/api/v1/admin/products", {"category": "drug", "goods_code": "86900002", "name": "布洛芬缓释胶囊"}, expect=201
    )
    body = {
        "eventID": new_id(),
        "product": "86900002",
        "quantity": {"value": 100, "uom": "XBX"},
        "produced_on": "2026-10-01",
        "expires_on": "2028-09-30",
        "attributes": {"approval_number": "国药准字X123", "drug_identity_code": "8690001", "lot": "B2610"},
    }
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "attributes.approval_number" and "批准文号" in data["error"]["message"]
    body["attributes"]["approval_number"] = "国药准字H20013061"
    del body["expires_on"]
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "expires_on"
    body["expires_on"] = "2028-09-30"
    await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=201)
    meat = {
        "eventID": new_id(),
        "product": "21113011",
        "quantity": {"value": 1, "uom": "HEA"},
        "attributes": {"head_count": 0},
    }
    data = await world.post("/api/v1/batches", meat, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "attributes.head_count"


async def test_drug_packaging_hierarchy(world: World, client: Any) -> None:
    await world.post(
        "/api/v1/admin/products", {"category": "drug", "goods_code": "86900003", "name": "阿莫西林胶囊"}, expect=201
    )
    drug = await world.open_batch(
        "slaughter",
        "86900003",
        quantity={"value": 2, "uom": "XBX"},
        produced_on="2026-10-01",
        expires_on="2028-09-30",
        attributes={"approval_number": "国药准字H20013061", "drug_identity_code": "8690003", "lot": "A2610"},
    )
    case, boxes = "069012345678900017", ["81234560000000000011", "81234560000000000028"]
    units = [f"8123456000000000{n:04d}" for n in range(100, 103)]
    for parent, children in ((boxes[0], units), (case, boxes)):
        await world.post(
            "/api/v1/events",
            world.event(drug, "packing", type="AggregationEvent", action="ADD", parentID=parent, childEPCs=children),
            world.devices["slaughter"],
            expect=201,
        )
    bad = world.event(drug, "packing", type="AggregationEvent", action="ADD", parentID=case, childEPCs=[])
    data = await world.post("/api/v1/events", bad, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "childEPCs"
    await settled(client)  # packages are the analyzer's work
    assert (await client.get(f"/api/v1/packages/{boxes[1]}")).status == 200  # packed last
    unit = await (await client.get(f"/api/v1/packages/{units[1]}")).json()
    assert unit == {"code": units[1], "trace_code": drug, "inside": [boxes[0], case], "contains": []}
    box = await (await client.get(f"/api/v1/packages/{boxes[0]}")).json()
    assert box["contains"] == units and box["inside"] == [case]


async def test_an_output_identifier_already_in_use_is_a_conflict(world: World, superuser: asyncpg.Connection) -> None:
    await world.open_batch(identifiers=[{"scheme": "city_batch", "value": "XZ-2026-0001"}])
    carcass = await world.open_batch()
    body = {
        "eventID": new_id(),
        "inputs": [{"traceCode": carcass, "quantity": {"value": 90, "uom": "KGM"}}],
        "outputs": [
            {
                "product": "21113011",
                "quantity": {"value": 90, "uom": "KGM"},
                "identifiers": [{"scheme": "city_batch", "value": "XZ-2026-0001"}],
            }
        ],
    }
    data = await world.post("/api/v1/transformations", body, world.devices["slaughter"], expect=409)
    assert data["error"]["field"] == "identifiers"
    assert await superuser.fetchval("SELECT count(*) FROM batches") == 2


async def test_a_stock_rows_last_event_is_the_latest_however_the_events_arrive(
    world: World, client: Any, superuser: asyncpg.Connection
) -> None:
    """Two events at one node in one request, the second dated before the first (a station syncing late): the
    analyzer reads them in one pass, and the stock row keeps the later time, as it does when passes split them."""
    now = datetime.now(UTC)
    code = await world.open_batch(eventTime=(now - timedelta(hours=1)).isoformat())
    later, earlier = now - timedelta(minutes=5), now - timedelta(minutes=20)
    events = [
        world.event(code, "storing", eventTime=later.isoformat()),
        world.event(code, "storing", eventTime=earlier.isoformat()),
    ]
    await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=201)
    await settled(client)
    last = await superuser.fetchval(
        "SELECT s.last_event FROM batch_stock s JOIN batches b ON b.id = s.batch_id JOIN nodes n ON n.id = s.node_id "
        "WHERE b.trace_code = $1 AND n.code = $2",
        code,
        world.nodes["slaughter"],
    )
    assert last == later
