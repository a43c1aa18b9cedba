"""An event that names no object (sensor readings in a room, say) is kept on the chain of the place it names."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.conftest import CHINA, new_id
from tests.epcis.conftest import Epcis, enterprise_integration

ROOM = "6901234000016"
ROOM_SGLN = "urn:epc:id:sgln:6901234.00001.0"
YARD = "6901234000023"
YARD_SGLN = "urn:epc:id:sgln:6901234.00002.0"


def reading(at: datetime, celsius: float, **place: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{new_id()}",
        "eventTime": at.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        **place,
        "sensorElementList": [
            {
                "sensorMetadata": {"time": at.isoformat(timespec="milliseconds")},
                "sensorReport": [{"type": "gs1:Temperature", "value": celsius, "uom": "CEL"}],
            }
        ],
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(CHINA).isoformat(timespec="milliseconds"),
        "epcisBody": {"eventList": list(events)},
    }


async def test_readings_at_a_place_go_on_that_places_chain_and_only_its_node_speaks_for_it(epcis: Epcis) -> None:
    (node,) = await epcis.register_glns([ROOM], node_type="wholesale_market")
    at = datetime.now(CHINA) - timedelta(hours=1)
    first = reading(at, 3.5, readPoint={"id": ROOM_SGLN})
    second = reading(at + timedelta(minutes=30), 4.0, readPoint={"id": ROOM_SGLN}, epcList=[])
    status, job = await epcis.capture(document(first, second))
    assert status == 202 and job["success"] is True, job

    # Both on one chain, the room's, opened by the first reading at the room's node.
    status, found, _ = await epcis.query(EQ_readPoint=ROOM_SGLN)
    assert status == 200
    assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [
        first["eventID"],
        second["eventID"],
    ]
    for event in (first, second):
        status, answer, _ = await epcis.query(f"/epcis/events/{quote(event['eventID'], safe='')}")
        assert status == 200
        (got,) = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert got["sensorElementList"] == event["sensorElementList"] and got["readPoint"] == event["readPoint"]
    # Its Digital Link (GS1's key for a place, AI 414) resolves to the room's chain, held by the room's node.
    resp = await epcis.client.get(f"/414/{ROOM}", allow_redirects=False)
    assert resp.status in (302, 307), await resp.text()
    code = resp.headers["Location"].rsplit("/t/", 1)[1].split("?")[0]
    resp = await epcis.client.get(f"/api/v1/batches/{code}", headers=epcis.auth())
    view = await resp.json()
    assert resp.status == 200, view
    assert view["product"]["name_en"] == "Location (GLN)" and view["issued_by"]["code"] == node
    assert view["head"]["seq"] == 2
    assert view["events"][0]["batch"] == {
        "epc": ROOM_SGLN,
        "identifiers": [{"scheme": "ai414", "value": ROOM}],
        "openedBy": "epcis",
        "product": "EPC-AI414",
    }
    assert [e["epcis"]["role"] for e in view["events"]] == [["readPoint"], ["readPoint"]]
    # Its page says what it is, in use words (a room is not eaten), and an inspection without a result says so.
    page = await epcis.client.get(f"/t/{code}")
    text = await page.text()
    assert page.status == 200 and "地点（GLN）" in text
    assert "可放心使用" in text and "食用" not in text and "未注明结果" in text and "None" not in text
    # A room is not counted: its chain has no quantity, and its page states none (not "1 件").
    assert view["quantity"] == {"value": "0", "uom": "EA"}
    assert "<dt>数量</dt>" not in text and "1 件" not in text
    page = await epcis.client.get(f"/t/{code}?lang=en")
    text = await page.text()
    assert "Safe to use" in text and "no result stated" in text and "None" not in text
    assert "<dt>Quantity</dt>" not in text

    # The room is where the readings were, not an object they were about: asking for events about it as an EPC
    # finds none.
    status, found, _ = await epcis.query(MATCH_anyEPC=ROOM_SGLN)
    assert status == 200 and found["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []

    # Another enterprise cannot write on the room's chain from a node of its own: it does not hold the room.
    other = await enterprise_integration(epcis.world, "另一企业")
    await other.register_glns([YARD])
    claim = reading(at + timedelta(minutes=40), 9.0, bizLocation={"id": YARD_SGLN}, epcList=[ROOM_SGLN])
    status, answer = await other.capture(document(claim))
    said = " ".join(e["title"] for e in answer["errors"]) if status == 202 else str(answer)
    assert status in (202, 403, 409) and (status != 202 or answer["success"] is False), answer
    assert code in said, said
    resp = await epcis.client.get(f"/api/v1/batches/{code}", headers=epcis.auth())
    assert (await resp.json())["head"]["seq"] == 2


async def test_an_event_naming_no_object_and_no_place_is_refused_saying_so(epcis: Epcis) -> None:
    await epcis.register_glns([ROOM])
    # GS1's schema refuses readings that name no readPoint; an empty epcList passes it, and the ledger says why not.
    status, answer = await epcis.capture(document(reading(datetime.now(CHINA), 3.5)))
    assert status == 400 and "epcisBody.eventList[0]" in answer["title"], answer
    status, answer = await epcis.capture(document(reading(datetime.now(CHINA), 3.5, epcList=[])))
    assert status == 400, answer
    assert (
        "epcisBody.eventList[0].epcList: the event names no EPC or class, nor a readPoint or bizLocation"
        in (answer["title"])
    ), answer
    status, found, _ = await epcis.query()
    assert status == 200 and found["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []


async def test_a_place_named_by_a_broken_gs1_key_is_refused_naming_it(epcis: Epcis) -> None:
    await epcis.register_glns([ROOM])
    event = reading(datetime.now(CHINA), 3.5, bizLocation={"id": "urn:epc:id:sgln:6901234.1"}, epcList=[])
    status, answer = await epcis.capture(document(event))
    assert status == 400, answer
    assert answer["title"].startswith("epcisBody.eventList[0].bizLocation.id: "), answer
    status, found, _ = await epcis.query()
    assert status == 200 and found["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []
    # A place of the enterprise's own naming (a private URI, its one node) has a chain like any other.
    event = reading(datetime.now(CHINA), 3.5, bizLocation={"id": "urn:example:cold-room:7"}, epcList=[])
    status, job = await epcis.capture(document(event))
    assert status == 202 and job["success"] is True, job
    status, found, _ = await epcis.query(EQ_bizLocation="urn:example:cold-room:7")
    assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [event["eventID"]]
