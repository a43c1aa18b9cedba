"""Custody: only the node that holds a batch speaks for it, enforced at capture, over real HTTP and PostgreSQL.

The matrix: for each kind of event and each relation of the recording device to the batch, the status the
ledger answers, and for a refusal the rule it names.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import CHINA, World, new_id
from tests.test_supply import ago, regulator, wait_for_anomaly

# The batch's journey before each case: the slaughterhouse opens it and ships it to the wholesale market,
# which receives it and ships part of it on to the wet market, where it is still in transit.
RELATIONS = ("holder", "past_holder", "destination", "unrelated_node", "unrelated_enterprise", "testing_body", "stall")
KINDS = (
    "receiving",
    "storing",
    "inspecting_pass",
    "inspecting_fail",
    "shipping",
    "retail_selling",
    "transforming",
    "holding",
    "recalled",
)
OK = 201
NOT_HOLDER, NOT_DESTINATION, RESERVED = "not_holder", "not_destination", "status_reserved"
TESTS_ONLY, OPERATOR = "testing_body_only_tests", "not_own_operator"

EXPECTED: dict[str, dict[str, int | str]] = {
    # holds the batch now (received it)
    "holder": {k: OK for k in KINDS} | {"holding": RESERVED, "recalled": RESERVED},
    # opened it and shipped it on: a node that held a batch may still speak for it (a correction, a late sale)
    "past_holder": {k: OK for k in KINDS} | {"holding": RESERVED, "recalled": RESERVED},
    # the named destination of a shipment in transit: may record the arrival (receipt, entry test), nothing else
    "destination": {
        "receiving": OK,
        "storing": NOT_HOLDER,
        "inspecting_pass": OK,
        "inspecting_fail": OK,
        "shipping": NOT_HOLDER,
        "retail_selling": NOT_HOLDER,
        "transforming": NOT_HOLDER,
        "holding": RESERVED,
        "recalled": RESERVED,
    },
    # another node of the slaughterhouse's own enterprise, which never had the batch
    "unrelated_node": {k: NOT_HOLDER for k in KINDS}
    | {"receiving": NOT_DESTINATION, "holding": RESERVED, "recalled": RESERVED},
    # a pharmacy (the pharmacy that inspects pork)
    "unrelated_enterprise": {k: NOT_HOLDER for k in KINDS}
    | {"receiving": NOT_DESTINATION, "holding": RESERVED, "recalled": RESERVED},
    # a registered testing laboratory: inspections and sampling on any batch, nothing else
    "testing_body": {k: TESTS_ONLY for k in KINDS}
    | {"inspecting_pass": OK, "inspecting_fail": OK, "holding": RESERVED, "recalled": RESERVED},
    # a stall's scale at the destination market naming another stall as the operator
    "stall": {k: OPERATOR for k in KINDS} | {"transforming": NOT_HOLDER},
}


async def add_operator(world: World, node: str, code: str) -> str:
    """A stall of ``node`` and its scale's credential."""
    await world.post(
        "/api/v1/admin/operators", {"node": world.nodes[node], "code": code, "name": f"摊位 {code}"}, expect=201
    )
    device = await world.post(
        "/api/v1/admin/devices", {"node": world.nodes[node], "name": f"scale {code}", "operator": code}, expect=201
    )
    return str(device["credential"])


async def journey(world: World) -> str:
    """slaughter opens → ships to wholesale → wholesale receives → ships 20 kg to market (in transit)."""
    await world.add_node("wholesale", "wholesale_market", "320311")
    code = await world.open_batch()
    ship = world.event(code, "shipping", destination={"node": world.nodes["wholesale"]}, quantity=kg(90.5))
    await world.post("/api/v1/events", ship, world.devices["slaughter"], expect=201)
    receive = world.event(code, "receiving", quantity=kg(90.5))
    await world.post("/api/v1/events", receive, world.devices["wholesale"], expect=201)
    onward = world.event(code, "shipping", destination={"node": world.nodes["market"]}, quantity=kg(20))
    await world.post("/api/v1/events", onward, world.devices["wholesale"], expect=201)
    return code


def kg(value: float) -> dict[str, Any]:
    return {"value": value, "uom": "KGM"}


async def device_for(world: World, relation: str) -> str:
    if relation == "holder":
        return world.devices["wholesale"]
    if relation == "past_holder":
        return world.devices["slaughter"]
    if relation == "destination":
        return world.devices["market"]
    if relation == "unrelated_node":
        # A second plant of the slaughterhouse's enterprise: same company, never had the batch.
        node = await world.post(
            "/api/v1/admin/nodes",
            {
                "enterprise": world.enterprises["slaughter"],
                "type": "slaughterhouse",
                "area_code": "320311",
                "name": "二厂",
            },
            expect=201,
        )
        device = await world.post("/api/v1/admin/devices", {"node": node["code"], "name": "plant 2"}, expect=201)
        return str(device["credential"])
    if relation == "unrelated_enterprise":
        return await world.add_node("pharmacy", "pharmacy", "320302")
    if relation == "testing_body":
        return await world.add_node("lab", "testing_lab", "320302")
    assert relation == "stall"
    await add_operator(world, "market", "A-02")
    return await add_operator(world, "market", "A-01")


async def attempt(world: World, code: str, kind: str, token: str, relation: str) -> tuple[int, dict[str, Any]]:
    if kind == "transforming":
        body: dict[str, Any] = {
            "eventID": new_id(),
            "bizStep": "repackaging",
            "inputs": [{"traceCode": code, "quantity": kg(2)}],
            "outputs": [{"product": "21113011", "quantity": kg(2)}],
        }
        resp = await world.client.post("/api/v1/transformations", json=body, headers=world.auth(token))
        return resp.status, await resp.json()
    extra: dict[str, Any] = {
        "receiving": {"quantity": kg(20)},
        "storing": {},
        "inspecting_pass": {"attributes": {"test": "beta_agonist", "result": "pass"}},
        "inspecting_fail": {"attributes": {"test": "beta_agonist", "result": "fail"}},
        "shipping": {"destination": {"node": world.nodes["market"]}, "quantity": kg(1)},
        "retail_selling": {"quantity": kg(1), "disposition": "retail_sold"},
        "holding": {"disposition": "non_conformant"},
        "recalled": {"disposition": "recalled"},
    }[kind]
    step = {"inspecting_pass": "inspecting", "inspecting_fail": "inspecting", "recalled": "storing"}.get(kind, kind)
    if relation == "stall":
        extra["operator"] = "A-02"
    resp = await world.client.post("/api/v1/events", json=world.event(code, step, **extra), headers=world.auth(token))
    return resp.status, await resp.json()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("relation", RELATIONS)
async def test_custody_matrix(world: World, relation: str, kind: str) -> None:
    code = await journey(world)
    token = await device_for(world, relation)
    before = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    status, body = await attempt(world, code, kind, token, relation)
    expected = EXPECTED[relation][kind]
    after = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    if expected == OK:
        assert status == 201, body
        assert len(after["events"]) > len(before["events"])
        return
    assert status == 403, body
    error = body["error"]
    assert error["code"] == expected, error
    assert "·" in error["message"] and error["field"]  # the rule in Chinese and English, and where
    assert len(after["events"]) == len(before["events"])  # nothing written


async def test_a_pharmacy_cannot_inspect_pork_or_grant_itself_a_part(world: World) -> None:
    code = await journey(world)
    pharmacy = await world.add_node("pharmacy", "pharmacy", "320302")
    inspect = world.event(code, "inspecting", attributes={"result": "fail"})
    data = await world.post("/api/v1/events", inspect, pharmacy, expect=403)
    assert data["error"]["code"] == "not_holder" and "不能记录" in data["error"]["message"]
    # Nor may it name itself a party to the batch to read its prices.
    party = world.event(code, "storing", source={"enterprise": world.enterprises["pharmacy"]})
    data = await world.post("/api/v1/events", party, pharmacy, expect=403)
    assert data["error"]["code"] == "not_holder"
    view = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    assert all(e["bizStep"] not in ("inspecting", "holding") for e in view["events"])


async def test_a_device_speaks_only_at_its_own_node_and_only_the_ledger_holds_or_recalls(world: World) -> None:
    code = await world.open_batch()
    elsewhere = world.event(code, "storing", node=world.nodes["market"])
    data = await world.post("/api/v1/events", elsewhere, world.devices["slaughter"], expect=403)
    assert data["error"]["code"] == "not_own_node" and data["error"]["field"] == "node"
    holding = world.event(code, "holding")
    data = await world.post("/api/v1/events", holding, world.devices["slaughter"], expect=403)
    assert (data["error"]["code"], data["error"]["field"]) == ("status_reserved", "bizStep")
    verdict = world.event(code, "storing", disposition="non_conformant")
    data = await world.post("/api/v1/events", verdict, world.devices["slaughter"], expect=403)
    assert (data["error"]["code"], data["error"]["field"]) == ("status_reserved", "disposition")
    # A shipment to a node nobody registered is refused by name.
    nowhere = world.event(code, "shipping", destination={"node": "320302999999"})
    data = await world.post("/api/v1/events", nowhere, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "destination.node"


async def test_a_list_is_checked_event_by_event_and_refused_whole(world: World) -> None:
    code = await world.open_batch()
    body = {
        "events": [
            world.event(code, "shipping", destination={"node": world.nodes["market"]}, quantity=kg(10)),
            world.event(code, "storing"),
        ]
    }
    await world.post("/api/v1/events", body, world.devices["slaughter"], expect=201)
    # The market may receive, then (in the same request) store: custody moves event by event.
    body = {"events": [world.event(code, "storing"), world.event(code, "receiving")]}
    data = await world.post("/api/v1/events", body, world.devices["market"], expect=403)
    assert data["error"]["field"] == "events[0].traceCode" and data["error"]["code"] == "not_holder"
    body = {"events": [world.event(code, "receiving"), world.event(code, "storing")]}
    await world.post("/api/v1/events", body, world.devices["market"], expect=201)


async def test_concurrent_receipts_and_sales_keep_custody_consistent(world: World) -> None:
    """Many writers at once: a sale by the destination lands only after its receipt, never before."""
    codes = [await world.open_batch() for _ in range(4)]
    for code in codes:
        ship = world.event(code, "shipping", destination={"node": world.nodes["market"]}, quantity=kg(5))
        await world.post("/api/v1/events", ship, world.devices["slaughter"], expect=201)

    async def post(token: str, event: dict[str, Any]) -> int:
        resp = await world.client.post("/api/v1/events", json=event, headers=world.auth(token))
        return resp.status

    sales = [world.event(c, "retail_selling", quantity=kg(1)) for c in codes]
    receipts = [world.event(c, "receiving", quantity=kg(5)) for c in codes]
    statuses = await asyncio.gather(
        *(post(world.devices["market"], e) for pair in zip(sales, receipts, strict=True) for e in pair)
    )
    assert set(statuses) <= {201, 403}
    for code, sale in zip(codes, sales, strict=True):
        view = await (await world.client.get(f"/api/v1/batches/{code}")).json()
        steps = [e["bizStep"] for e in view["events"]]
        assert steps.index("receiving") < (steps.index("retail_selling") if "retail_selling" in steps else 99)
        if "retail_selling" not in steps:  # refused while in transit: it goes through once received
            assert await post(world.devices["market"], sale) == 201


async def test_a_receipt_sent_alone_moves_custody_as_one_in_a_list(world: World, superuser: Any) -> None:
    """A single receipt takes the one-statement path, a list the general one: custody ends the same."""

    async def custody(code: str) -> list[tuple[str, str, Decimal]]:
        rows = await superuser.fetch(
            "SELECT n.code, c.relation, c.in_transit AS t FROM batch_custody c "
            "JOIN batches b ON b.id = c.batch_id JOIN nodes n ON n.id = c.node_id "
            "WHERE b.trace_code = $1 ORDER BY n.code",
            code,
        )
        return [(r["code"], r["relation"], r["t"]) for r in rows]

    seen = []
    for as_list in (False, True):
        code = await world.open_batch()
        ship = world.event(code, "shipping", destination={"node": world.nodes["market"]}, quantity=kg(30))
        await world.post("/api/v1/events", ship, world.devices["slaughter"], expect=201)
        steps = [
            (world.devices["market"], world.event(code, "receiving", quantity=kg(12))),  # destination → holder
            (world.devices["market"], world.event(code, "receiving", quantity={"value": 8000, "uom": "GRM"})),
            (world.devices["slaughter"], world.event(code, "receiving", quantity=kg(1))),  # a holder, none in transit
            (world.devices["market"], world.event(code, "receiving", quantity=kg(25))),  # never below nothing
        ]
        for token, event in steps:
            await world.post("/api/v1/events", {"events": [event]} if as_list else event, token, expect=201)
            seen.append((as_list, await custody(code)))
    alone, listed = [c for flag, c in seen if not flag], [c for flag, c in seen if flag]
    assert alone == listed
    market = world.nodes["market"]
    assert [next(r for r in rows if r[0] == market)[1:] for rows in alone] == [
        ("holder", Decimal(18)),
        ("holder", Decimal(10)),
        ("holder", Decimal(10)),
        ("holder", Decimal(0)),
    ]


async def test_a_testing_laboratory_is_a_node_type_with_names(world: World) -> None:
    await world.add_node("lab", "testing_lab", "320302")
    resp = await world.client.get("/api/v1/admin/nodes", headers=world.auth(world.admin))
    lab = next(n for n in (await resp.json())["items"] if n["code"] == world.nodes["lab"])
    assert lab["node_type"] == "testing_lab"


# -- receiving what may not move, and whom an anomaly counts against ------------------------------------


async def test_receiving_a_recalled_batch_is_refused_unless_it_arrived_before_the_recall(
    world: World, client: Any
) -> None:
    reg = await regulator(world)
    code = await world.open_batch(eventTime=ago(1))
    ship = world.event(code, "shipping", eventTime=ago(0.5), destination={"node": world.nodes["market"]})
    await world.post("/api/v1/events", ship, world.devices["slaughter"], expect=201)
    await world.post("/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, reg, expect=201)
    now = (datetime.now(CHINA) + timedelta(seconds=2)).isoformat(timespec="seconds")  # after the recall
    data = await world.post(
        "/api/v1/events", world.event(code, "receiving", eventTime=now), world.devices["market"], expect=409
    )
    assert (data["error"]["code"], data["error"]["field"]) == ("batch_recalled", "traceCode")
    # A receipt made before the recall that a station only now syncs is accepted, and flagged.
    late = world.event(code, "receiving", eventTime=ago(0.25))
    await world.post("/api/v1/events", late, world.devices["market"], expect=201)
    found = await wait_for_anomaly(client, reg, "receipt_synced_after_recall", code)
    assert found["event_id"] == late["eventID"]


async def test_a_failed_test_counts_against_the_goods_origin_not_who_repacked_or_tested_them(
    world: World, client: Any
) -> None:
    await world.add_node("farm", "farm", "320321")
    await world.add_node("lab", "testing_lab", "320302")
    cabbage = await world.open_batch("farm", "22101001", eventTime=ago(3))
    ship = world.event(cabbage, "shipping", eventTime=ago(2), destination={"node": world.nodes["market"]})
    await world.post("/api/v1/events", ship, world.devices["farm"], expect=201)
    await world.post("/api/v1/events", world.event(cabbage, eventTime=ago(1.5)), world.devices["market"], expect=201)
    repack = {
        "eventID": new_id(),
        "bizStep": "repackaging",
        "eventTime": ago(1),
        "inputs": [{"traceCode": cabbage, "quantity": {"value": 20, "uom": "KGM"}}],
        "outputs": [{"product": "22101001", "quantity": {"value": 20, "uom": "KGM"}}],
    }
    crate = (await world.post("/api/v1/transformations", repack, world.devices["market"], expect=201))["outputs"][0]
    failed = world.event(
        crate["traceCode"],
        "inspecting",
        eventTime=ago(0.5),
        attributes={"result": "fail", "value": "0.086", "limit": "0.02"},
    )
    await world.post("/api/v1/events", failed, world.devices["lab"], expect=201)

    async def failed_inspections(key: str) -> int:
        rated = await (await client.get(f"/api/v1/enterprises/{world.enterprises[key]}/credit")).json()
        return int(next(f for f in rated["factors"] if f["factor"] == "failed_inspections")["count"])

    assert await failed_inspections("farm") == 1  # whose cabbage failed
    assert await failed_inspections("market") == 0  # it only repacked them
    assert await failed_inspections("lab") == 0  # it only tested them


# -- who sees prices and buyers: event by event ----------------------------------------------------------


async def test_an_enterprise_sees_prices_only_on_the_events_it_was_a_party_to(world: World) -> None:
    await world.add_node("wholesale", "wholesale_market", "320311")
    await world.add_node("bystander", "supermarket", "320302")
    code = await world.open_batch()
    first = world.event(
        code,
        "shipping",
        destination={"node": world.nodes["wholesale"]},
        commercial={"unit_price": "24.60", "buyer": "彭城批发"},
    )
    await world.post("/api/v1/events", first, world.devices["slaughter"], expect=201)
    await world.post("/api/v1/events", world.event(code), world.devices["wholesale"], expect=201)
    second = world.event(
        code, "shipping", destination={"node": world.nodes["market"]}, commercial={"unit_price": "30", "buyer": "王记"}
    )
    await world.post("/api/v1/events", second, world.devices["wholesale"], expect=201)
    await world.post("/api/v1/events", world.event(code), world.devices["market"], expect=201)
    # The market, now a holder, names itself the source of an event: that grants it nothing upstream.
    claim = world.event(code, "storing", source={"enterprise": world.enterprises["market"]})
    await world.post("/api/v1/events", claim, world.devices["market"], expect=201)

    async def prices(key: str | None) -> tuple[str, list[str | None]]:
        headers = {}
        if key == "regulator":
            token = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
            headers = world.auth(token["credential"])
        elif key is not None:
            body = {"role": "enterprise", "name": key, "enterprise": world.enterprises[key]}
            headers = world.auth((await world.post("/api/v1/admin/tokens", body, expect=201))["credential"])
        view = await (await world.client.get(f"/api/v1/batches/{code}", headers=headers)).json()
        shipped = [e for e in view["events"] if e["bizStep"] == "shipping"]
        return view["view"], [e.get("commercial", {}).get("unit_price") for e in shipped]

    assert await prices("slaughter") == ("partial", ["24.6", None])  # sold to the wholesaler, not the next hop
    assert await prices("wholesale") == ("full", ["24.6", "30"])  # bought one, sold the other
    assert await prices("market") == ("partial", [None, "30"])  # its own purchase only
    assert await prices("bystander") == ("public", [None, None])
    assert await prices(None) == ("public", [None, None])
    assert await prices("regulator") == ("full", ["24.6", "30"])
