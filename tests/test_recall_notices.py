"""Recall notices and their end: each enterprise a recall reaches sees it through its API credential and
acknowledges it once; the holder of a recalled batch still destroys it or sends it back, and the regulator's
recall page shows who acknowledged, what was destroyed, returned or is still held, and the progress."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import CHINA, World, new_id
from tests.test_supply import ago, regulator
from traceability.config import Settings
from traceability.epcis import identifiers
from traceability.services import accounts
from traceability.storage.database import open_database

CONSOLE = ("recall-desk", "correct horse battery staple 9")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def now() -> str:
    return datetime.now(CHINA).isoformat(timespec="milliseconds")


async def sign_in(client: Any, db_url: str) -> None:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, CONSOLE[0], "regulator", CONSOLE[1], "徐州市市场监督管理局")
    token = CSRF.search(await (await client.get("/console/login")).text())
    assert token is not None
    origin = str(client.make_url("")).rstrip("/")
    resp = await client.post(
        "/console/login",
        data={"csrf": token.group(1), "name": CONSOLE[0], "password": CONSOLE[1]},
        headers={"Origin": origin},
    )
    assert resp.status == 200, resp.status


async def test_enterprises_acknowledge_and_the_holder_destroys_or_returns(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection
) -> None:
    await world.add_node("bystander", "wet_market")
    carcass = await world.open_batch()
    slaughter, market = world.devices["slaughter"], world.devices["market"]
    ship = world.event(carcass, "shipping", eventTime=ago(4), destination={"node": world.nodes["market"]})
    await world.post("/api/v1/events", ship, slaughter, expect=201)
    await world.post("/api/v1/events", world.event(carcass, "receiving", eventTime=ago(3)), market, expect=201)
    recall = await world.post(
        "/api/v1/recalls", {"traceCode": carcass, "level": "I", "reason": "非洲猪瘟阳性"}, await regulator(world), 201
    )
    recall_id = recall["recall_id"]
    erp = {
        key: (await world.post("/api/v1/admin/tokens", {"role": "enterprise", "name": key, "enterprise": uscc}))[
            "credential"
        ]
        for key, uscc in world.enterprises.items()
    }

    # The market sees the notice through its credential; a bystander sees none and may not acknowledge it.
    resp = await client.get("/api/v1/recalls/notices", headers=world.auth(erp["market"]))
    assert resp.status == 200
    notices = (await resp.json())["notices"]
    assert [(n["recall_id"], n["trace_code"], n["acknowledged_at"]) for n in notices] == [(recall_id, carcass, None)]
    resp = await client.get("/api/v1/recalls/notices", headers=world.auth(erp["bystander"]))
    assert (await resp.json())["notices"] == []
    resp = await client.post(f"/api/v1/recalls/{recall_id}/acknowledge", headers=world.auth(erp["bystander"]))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.post(f"/api/v1/recalls/{recall_id + 1000}/acknowledge", headers=world.auth(erp["market"]))
    assert resp.status == 404
    resp = await client.post(f"/api/v1/recalls/{recall_id}/acknowledge", headers=world.auth(market))
    assert resp.status == 403  # a scanner's credential is not the enterprise's
    resp = await client.post("/api/v1/recalls/0x1/acknowledge", headers=world.auth(erp["market"]))
    assert resp.status in (400, 422)

    # Acknowledged once: the second acknowledgement answers the first.
    first = await client.post(f"/api/v1/recalls/{recall_id}/acknowledge", headers=world.auth(erp["market"]))
    assert first.status == 201
    acked = await first.json()
    await asyncio.sleep(0.01)
    again = await client.post(f"/api/v1/recalls/{recall_id}/acknowledge", headers=world.auth(erp["market"]))
    assert again.status == 200 and await again.json() == acked
    assert acked["enterprise"] == world.enterprises["market"]
    notices = (await (await client.get("/api/v1/recalls/notices", headers=world.auth(erp["market"]))).json())["notices"]
    assert notices[0]["acknowledged_at"] == acked["acknowledged_at"]
    with pytest.raises(asyncpg.PostgresError):
        await superuser.execute("UPDATE recall_acknowledgements SET at = now()")
    with pytest.raises(asyncpg.PostgresError):
        await superuser.execute("DELETE FROM recall_acknowledgements")

    # The market may not sell the recalled carcass, but sends 20 kg back and destroys the rest.
    await asyncio.sleep(0.01)
    sale = world.event(carcass, "retail_selling", eventTime=now(), quantity={"value": 1, "uom": "KGM"})
    await world.post("/api/v1/events", sale, market, expect=409)
    other = world.event(carcass, "shipping", eventTime=now(), destination={"node": world.nodes["bystander"]})
    await world.post("/api/v1/events", other, market, expect=409)  # only as a return
    back = world.event(
        carcass,
        "shipping",
        eventTime=now(),
        disposition="returned",
        destination={"node": world.nodes["slaughter"]},
        quantity={"value": 20, "uom": "KGM"},
    )
    await world.post("/api/v1/events", back, market, expect=201)
    received = world.event(
        carcass, "receiving", eventTime=now(), disposition="returned", quantity={"value": 20, "uom": "KGM"}
    )
    await world.post("/api/v1/events", received, slaughter, expect=201)
    rest = world.event(carcass, "destroying", eventTime=now(), quantity={"value": 70.5, "uom": "KGM"})
    await world.post("/api/v1/events", rest, market, expect=201)
    # Someone who does not hold it cannot destroy it.
    await world.post(
        "/api/v1/events", world.event(carcass, "destroying", eventID=new_id()), world.devices["bystander"], expect=403
    )

    # The regulator's recall page: who acknowledged and when, what was destroyed, returned or is still held.
    await sign_in(client, db_url)
    resp = await client.get(f"/console/recalls/{recall_id}?format=json")
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    acks = {a["uscc"]: a["acknowledged_at"] for a in page["acknowledgements"]}
    assert acks == {world.enterprises["market"]: acked["acknowledged_at"], world.enterprises["slaughter"]: None}
    assert page["acknowledged"] == 1 and page["closed"] == 1 and page["affected"] == 1
    assert page["progress"] == 100 and page["overall"] == round(100 * 2 / 3)
    stock = {p["code"]: {s["trace_code"]: s for s in p["stock"]} for p in page["places"]}
    at_market = stock[world.nodes["market"]][carcass]
    assert (at_market["destroyed"], at_market["returned"], at_market["left"]) == ("70.5", "20", "0")
    assert stock[world.nodes["slaughter"]][carcass]["left"] == "20"  # back at the source, still held there
    html = await (await client.get(f"/console/recalls/{recall_id}")).text()
    assert 'value="67"' in html and "已确认 1 / 2 家企业" in html and "尚未确认" in html
    assert "已退回" in html and "70.5" in html
    english = await (await client.get(f"/console/recalls/{recall_id}?lang=en")).text()
    assert "1 of 2 enterprises have acknowledged" in english


async def epcis(world: World, token: str, sgln: str, code: str, step: str, **extra: Any) -> dict[str, Any]:
    """One event captured through EPCIS with the enterprise's credential; the capture job's outcome."""
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": step,
        "eventTime": now(),
        "eventTimeZoneOffset": "+08:00",
        "quantityList": [{"epcClass": f"http://trace.test/t/{code}", "quantity": 5, "uom": "KGM"}],
        "bizLocation": {"id": sgln},
        **extra,
    }
    doc = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now(),
        "epcisBody": {"eventList": [event]},
    }
    auth = world.auth(token)
    resp = await world.client.post("/epcis/capture", json=doc, headers={**auth, "Content-Type": "application/ld+json"})
    assert resp.status == 202, await resp.text()
    return dict(await (await world.client.get(resp.headers["Location"], headers=auth)).json())


async def test_an_enterprise_system_returns_or_destroys_a_recalled_batch_through_epcis(world: World) -> None:
    carcass = await world.open_batch()
    sgln = "urn:epc:id:sgln:0614141.73399.0"
    uscc = world.enterprises["slaughter"]
    node = {
        "enterprise": uscc,
        "type": "slaughterhouse",
        "area_code": "320311",
        "name": "二号车间",
        "gln": identifiers.location_gln(sgln),
    }
    await world.post("/api/v1/admin/nodes", node, expect=201)
    erp = (await world.post("/api/v1/admin/tokens", {"role": "enterprise", "name": "ERP", "enterprise": uscc}))[
        "credential"
    ]
    await world.post(
        "/api/v1/recalls",
        {"traceCode": carcass, "level": "II", "reason": "抽检不合格"},
        await regulator(world),
        201,
    )
    refused = await epcis(world, erp, sgln, carcass, "shipping")
    assert not refused["success"] and "recalled" in str(refused)
    returned = await epcis(world, erp, sgln, carcass, "shipping", disposition="returned")
    assert returned["success"], returned
    destroyed = await epcis(world, erp, sgln, carcass, "destroying", disposition="destroyed")
    assert destroyed["success"], destroyed


async def test_a_shipment_sent_again_after_a_recall_is_answered_as_recorded(world: World) -> None:
    """A resent EPCIS document is a replay even when its batch was recalled in between and the shipment is dated
    after the recall (a sender's clock running a little fast): nothing new is written, so nothing is refused; a new
    shipment of the batch still is."""
    carcass = await world.open_batch()
    sgln = "urn:epc:id:sgln:0614141.73398.0"
    uscc = world.enterprises["slaughter"]
    node = {
        "enterprise": uscc,
        "type": "slaughterhouse",
        "area_code": "320311",
        "name": "三号车间",
        "gln": identifiers.location_gln(sgln),
    }
    await world.post("/api/v1/admin/nodes", node, expect=201)
    erp = (await world.post("/api/v1/admin/tokens", {"role": "enterprise", "name": "ERP", "enterprise": uscc}))[
        "credential"
    ]
    ahead = (datetime.now(CHINA) + timedelta(minutes=2)).isoformat(timespec="milliseconds")
    shipment = {"eventID": f"urn:uuid:{new_id()}", "eventTime": ahead}
    assert (await epcis(world, erp, sgln, carcass, "shipping", **shipment))["success"]
    await world.post(
        "/api/v1/recalls",
        {"traceCode": carcass, "level": "II", "reason": "抽检不合格"},
        await regulator(world),
        201,
    )
    again = await epcis(world, erp, sgln, carcass, "shipping", **shipment)
    assert again["success"] and again["errors"] == [], again
    view = await (await world.client.get(f"/api/v1/batches/{carcass}")).json()
    assert [e["bizStep"] for e in view["events"]].count("shipping") == 1
    refused = await epcis(world, erp, sgln, carcass, "shipping", eventID=f"urn:uuid:{new_id()}")
    assert not refused["success"] and "recalled" in str(refused)
