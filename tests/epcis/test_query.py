"""Queries: every ledger event, native or EPCIS, answered as schema-valid EPCISQueryDocuments, each reader
seeing what is theirs; capture refuses what the ledger cannot take, naming it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from tests.conftest import World
from tests.epcis.conftest import Epcis, glns_named
from traceability.epcis import document

HERE = Path(__file__).parent / "examples"


def load(name: str) -> dict[str, Any]:
    return document.loads_exact((HERE / name).read_bytes())  # type: ignore[no-any-return]


def events_of(doc: Any) -> list[Any]:
    return doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def valid(doc: Any) -> bool:
    return document.validate(orjson.loads(document.dumps_exact(doc))) == []


async def captured(epcis: Epcis, doc: dict[str, Any]) -> None:
    await epcis.register_glns(glns_named(doc))
    status, job = await epcis.capture(orjson.loads(document.dumps_exact(doc)))
    assert status == 202 and job["success"], job


async def regulator_of(world: World) -> str:
    token = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "市场监管局"}, expect=201)
    return str(token["credential"])


async def test_native_and_epcis_events_are_queried_together(world: World, epcis: Epcis) -> None:
    regulator = await regulator_of(world)
    code = await world.open_batch()
    await world.post(
        "/api/v1/events",
        world.event(code, "shipping", disposition="in_transit"),
        token=world.devices["slaughter"],
        expect=201,
    )
    await captured(epcis, load("Example_9.6.1-ObjectEvent.jsonld"))

    status, doc, _ = await epcis.query(EQ_bizStep="shipping", token=regulator)
    assert status == 200 and valid(doc)
    kinds = sorted(e.get("trace:traceCode", e["eventID"][:4]) for e in events_of(doc))
    assert kinds == sorted([code, "ni:/"])
    native = next(e for e in events_of(doc) if "trace:traceCode" in e)
    assert native["quantityList"] == [{"epcClass": f"http://trace.test/t/{code}"}]
    assert native["readPoint"]["id"] == f"http://trace.test/n/{world.nodes['slaughter']}"

    _, doc, _ = await epcis.query(MATCH_anyEPCClass=f"http://trace.test/t/{code}", token="")
    assert [e["bizStep"] for e in events_of(doc)] == ["commissioning", "shipping"]
    _, doc, _ = await epcis.query(eventType="ObjectEvent", EQ_disposition="in_transit", token=regulator)
    assert len(events_of(doc)) == 2
    # An enterprise asking about no identifier in particular gets its own events; the public must name one.
    _, doc, _ = await epcis.query(eventType="ObjectEvent", EQ_disposition="in_transit")
    assert [e["eventID"][:4] for e in events_of(doc)] == ["ni:/"]
    status, problem, _ = await epcis.query(EQ_bizStep="shipping", token="")
    assert status == 403 and problem["type"] == "epcisException:SecurityException"
    assert (await epcis.query("/epcis/epcs", token=""))[0] == 401
    assert (await epcis.query("/epcis/epcs", token=regulator))[0] == 200


async def test_an_epc_matches_as_urn_and_as_digital_link(epcis: Epcis) -> None:
    await captured(epcis, load("Example_9.6.1-ObjectEventWithDigitalLink.jsonld"))
    for epc in ("urn:epc:id:sgtin:0614141.712345.2018", "https://id.gs1.org/01/70614141123451/21/2018"):
        _, doc, _ = await epcis.query(MATCH_epc=epc)
        assert [e["bizStep"] for e in events_of(doc)] == ["shipping", "receiving"], epc
    _, doc, _ = await epcis.query(MATCH_epc="urn:epc:idpat:sgtin:0614141.712345.*")
    assert len(events_of(doc)) == 2
    _, doc, _ = await epcis.query(MATCH_epcClass="urn:epc:idpat:sgtin:0614141.712345.*")
    assert events_of(doc) == []
    _status, doc, _ = await epcis.query("/epcis/epcs/https://id.gs1.org/01/70614141123451/21/2017/events")
    assert [e["bizStep"] for e in events_of(doc)] == ["shipping"]


async def test_pages_follow_the_link_header(epcis: Epcis) -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    base = doc["epcisBody"]["eventList"][0]
    doc["epcisBody"]["eventList"] = [
        {**copy.deepcopy(base), "eventID": f"urn:uuid:00000000-0000-4000-8000-{i:012d}"} for i in range(7)
    ]
    await captured(epcis, doc)
    seen = []
    path, params = "/epcis/events", {"perPage": "3", "EQ_bizStep": "shipping"}
    while True:
        resp = await epcis.client.get(path, params=params, headers=epcis.auth())
        page = document.loads_exact(await resp.text())
        assert valid(page)
        seen += [e["eventID"] for e in events_of(page)]
        link = resp.headers.get("Link")
        if link is None:
            break
        path, params = link[1 : link.index(">")], {}
    assert seen == [e["eventID"] for e in doc["epcisBody"]["eventList"]]


async def test_the_public_sees_no_destination_the_parties_do(world: World, epcis: Epcis) -> None:
    doc = load("Example_9.6.2-ObjectEvent.jsonld")
    await captured(epcis, doc)
    event_id = doc["epcisBody"]["eventList"][0]["eventID"]
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "市场监管局"}, expect=201)
    for token, sees in (("", False), (regulator["credential"], True), (None, True)):
        _status, answer, _ = await epcis.query(EQ_eventID=event_id, token=token)
        (event,) = events_of(answer)
        assert ("destinationList" in event) is sees
        assert event["sourceList"] == doc["epcisBody"]["eventList"][0]["sourceList"]


async def test_unknown_query_parameters_are_refused_by_name(epcis: Epcis) -> None:
    status, problem, _ = await epcis.query(EQ_bizStepp="shipping")
    assert status == 400 and problem["type"] == "epcisException:QueryParameterException"
    assert problem["field"] == "EQ_bizStepp"
    status, problem, _ = await epcis.query(GE_eventTime="yesterday")
    assert status == 400 and "GE_eventTime" in problem["title"]


async def test_capture_refuses_what_it_cannot_take(world: World, epcis: Epcis) -> None:
    doc = load("Example_9.6.2-ObjectEvent.jsonld")
    # A document the schema refuses: 400 naming the place.
    bad = copy.deepcopy(doc)
    bad["epcisBody"]["eventList"][0]["action"] = "ADDED"
    status, problem = await epcis.capture(orjson.loads(document.dumps_exact(bad)))
    assert status == 400 and problem["type"] == "epcisException:ValidationException"
    assert problem["field"] == "epcisBody.eventList[0].action"
    # A location nobody registered: the job fails, naming the event and the field; nothing is written.
    status, job = await epcis.capture(orjson.loads(document.dumps_exact(doc)))
    assert status == 202 and job["success"] is False
    (error,) = job["errors"]
    assert error["eventIndex"] == 0 and error["field"] == "epcisBody.eventList[0].bizLocation.id"
    assert "0614141008889" in error["title"]
    # Registered now; the same eventID with other content is a conflict.
    await captured(epcis, doc)
    changed = copy.deepcopy(doc)
    changed["epcisBody"]["eventList"][0]["disposition"] = "damaged"
    status, job = await epcis.capture(orjson.loads(document.dumps_exact(changed)))
    assert job["success"] is False and job["errors"][0]["status"] == 409


async def test_a_device_records_only_at_its_own_node(world: World, epcis: Epcis) -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    await epcis.register_glns(glns_named(doc))
    status, job = await epcis.capture(orjson.loads(document.dumps_exact(doc)), token=world.devices["market"])
    assert status == 202 and job["success"] is False
    assert job["errors"][0]["status"] == 403 and job["errors"][0]["type"] == "epcisException:SecurityException"
    status, answer, _ = await epcis.query(EQ_bizStep="shipping")
    assert events_of(answer) == []
    # The regulator and the public read; they do not capture.
    resp = await epcis.client.post("/epcis/capture", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status == 401 and resp.headers["Content-Type"].startswith("application/problem+json")


async def test_an_error_declaration_repeats_the_event(epcis: Epcis) -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    await captured(epcis, doc)
    declared = copy.deepcopy(doc)
    event = declared["epcisBody"]["eventList"][0]
    event["errorDeclaration"] = {"declarationTime": "2005-04-05T00:00:00Z", "reason": "did_not_occur"}
    declared["epcisBody"]["eventList"] = [event]
    _, job = await epcis.capture(orjson.loads(document.dumps_exact(declared)))
    assert job["success"], job
    _, answer, _ = await epcis.query(f"/epcis/events/{quote(event['eventID'], safe='')}")
    got = events_of(answer)
    assert len(got) == 2 and "errorDeclaration" in got[1] and "errorDeclaration" not in got[0]
    _status, answer, _ = await epcis.query(EXISTS_errorDeclaration="true")
    assert [e["eventID"] for e in events_of(answer)] == [event["eventID"]]


async def test_discovery_and_resources(epcis: Epcis) -> None:
    resp = await epcis.client.options("/epcis/capture")
    assert resp.status == 204 and resp.headers["GS1-EPCIS-Capture-Limit"] == "1000"
    assert resp.headers["GS1-CBV-Version"] == "2.0.0"
    _, top, _ = await epcis.query("/epcis")
    assert "events" in top["member"] and "capture" in top["member"]
    _, types, _ = await epcis.query("/epcis/eventTypes")
    assert "TransformationEvent" in types["member"]
    await captured(epcis, load("Example_9.6.1-ObjectEvent.jsonld"))
    _, doc, _ = await epcis.query("/epcis/bizSteps/receiving/events")
    assert [e["bizStep"] for e in events_of(doc)] == ["receiving"]
    _, doc, _ = await epcis.query("/epcis/bizLocations/urn:epc:id:sgln:0012345.11111.0/events")
    assert [e["bizStep"] for e in events_of(doc)] == ["receiving"]
    _status, doc, _ = await epcis.query("/epcis/readPoints/urn:epc:id:sgln:0614141.07346.1234/events")
    assert [e["bizStep"] for e in events_of(doc)] == ["shipping"]


async def test_named_queries(epcis: Epcis) -> None:
    await captured(epcis, load("Example_9.6.1-ObjectEvent.jsonld"))
    definition = {"name": "receipts", "query": {"eventType": ["ObjectEvent"], "EQ_bizStep": ["receiving"]}}
    resp = await epcis.client.post("/epcis/queries", json=definition, headers=epcis.auth())
    assert resp.status == 201 and resp.headers["Location"] == "/epcis/queries/receipts"
    assert (await epcis.client.post("/epcis/queries", json=definition, headers=epcis.auth())).status == 409
    _, listed, _ = await epcis.query("/epcis/queries")
    assert listed["member"] == ["receipts"]
    _, doc, _ = await epcis.query("/epcis/queries/receipts/events")
    assert valid(doc) and [e["bizStep"] for e in events_of(doc)] == ["receiving"]
    bad = {"name": "bad", "query": {"EQ_bizStep": "receiving"}}  # GS1's query schema wants a list
    resp = await epcis.client.post("/epcis/queries", json=bad, headers=epcis.auth())
    problem = await resp.json(content_type=None)
    assert resp.status == 400 and problem["type"] == "epcisException:QueryParameterException"
    assert (await epcis.client.delete("/epcis/queries/receipts", headers=epcis.auth())).status == 204
    assert (await epcis.query("/epcis/queries/receipts/events"))[0] == 404


async def test_an_eventid_a_native_event_holds_is_a_conflict(world: World, epcis: Epcis) -> None:
    code = await world.open_batch()
    native = world.event(code, "shipping")
    await world.post("/api/v1/events", native, token=world.devices["slaughter"], expect=201)
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    doc["epcisBody"]["eventList"][0]["eventID"] = f"urn:uuid:{native['eventID']}"
    await epcis.register_glns(glns_named(doc))
    status, job = await epcis.capture(orjson.loads(document.dumps_exact(doc)))
    assert status == 202 and job["success"] is False
    assert job["errors"][0]["status"] == 409 and "native API" in job["errors"][0]["title"]
