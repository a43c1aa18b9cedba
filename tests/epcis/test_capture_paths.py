"""A document of new events, each on a batch of its own, is written without first looking up its eventIDs:
its records are chained and verifiable, a resent document is answered as recorded, and a refusal of one
event refuses the whole document with nothing written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from tests.conftest import CHINA, World, new_id
from tests.epcis.conftest import Epcis
from tests.test_metrics import scrape, value
from tests.test_supply import regulator
from traceability.config import Settings
from traceability.services.verify import verify_chains
from traceability.storage.database import open_database


def document_of(codes: list[str], step: str) -> dict[str, Any]:
    when = datetime.now(CHINA).isoformat(timespec="milliseconds")
    events = [
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{new_id()}",
            "eventTime": when,
            "eventTimeZoneOffset": "+08:00",
            "action": "OBSERVE",
            "bizStep": step,
            "disposition": "in_progress",
            "quantityList": [{"epcClass": f"http://trace.test/t/{code}", "quantity": 12.5, "uom": "KGM"}],
        }
        for code in codes
    ]
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": when,
        "epcisBody": {"eventList": events},
    }


async def steps_of(world: World, code: str) -> list[str]:
    view = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    return [e.get("bizStep", "") for e in view["events"]]


async def test_events_each_on_a_batch_of_their_own_are_chained_like_any_others(
    world: World, epcis: Epcis, db_url: str
) -> None:
    codes = [await world.open_batch() for _ in range(3)]
    device = world.devices["slaughter"]
    doc = document_of(codes, "storing")
    status, job = await epcis.capture(doc, token=device)
    assert status == 202 and job["success"], job
    for code in codes:
        assert (await steps_of(world, code))[-1] == "storing"
    # Indexed and kept with them: the events answer a query by their eventIDs, the job is there to read.
    first = doc["epcisBody"]["eventList"][0]
    _, found, _ = await epcis.query(EQ_eventID=first["eventID"], token=await regulator(world))
    assert [e["eventID"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [first["eventID"]]
    kept = await world.client.get(f"/epcis/capture/{job['captureID']}", headers=epcis.auth(device))
    assert kept.status == 200 and (await kept.json())["success"]
    # Sent again: answered as recorded, nothing written twice.
    status, job = await epcis.capture(doc, token=device)
    assert status == 202 and job["success"], job
    assert [len(await steps_of(world, code)) for code in codes] == [2, 2, 2]
    # Counted for the operator as every other path's events are: three recorded, three retries.
    counted = await scrape(world.client, world.admin)
    assert value(counted, "trace_events_captured_total", path="epcis", outcome="new") == 3
    assert value(counted, "trace_events_captured_total", path="epcis", outcome="replayed") == 3
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        assert (await verify_chains(db)).ok
    # A sale of a recalled batch among others: the whole document is refused, naming that event; nothing written.
    await world.post(
        "/api/v1/recalls", {"traceCode": codes[1], "level": "II", "reason": "抽检不合格"}, await regulator(world), 201
    )
    refused = document_of(codes, "retail_selling")
    status, job = await epcis.capture(refused, token=device)
    assert status == 202 and not job["success"], job
    assert job["errors"][0]["eventIndex"] == 1 and "recalled" in job["errors"][0]["title"]
    assert [(await steps_of(world, code)).count("retail_selling") for code in codes] == [0, 0, 0]
    for event in refused["epcisBody"]["eventList"]:  # nor indexed: the index rows go in with the events or not at all
        _, found, _ = await epcis.query(EQ_eventID=event["eventID"], token=await regulator(world))
        assert found["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []
    # Another device's credential speaks for none of them.
    status, job = await epcis.capture(document_of(codes[:1], "storing"), token=world.devices["market"])
    assert status == 202 and not job["success"] and job["errors"][0]["status"] == 403, job


async def test_a_voucher_is_looked_at_however_its_name_is_written(world: World, epcis: Epcis) -> None:
    """The capture skips looking for handover vouchers only when the body cannot name one: a member named
    ``…handoverVoucher`` (even spelled with JSON escapes) is still read, and refused on a storing event."""
    code = await world.open_batch()
    device = world.devices["slaughter"]
    doc = document_of([code], "storing")
    doc["@context"] = [*doc["@context"], {"trace": "https://trace.test/epcis/"}]
    doc["epcisBody"]["eventList"][0]["trace:handoverVoucher"] = "not a voucher"
    plain = orjson.dumps(doc)
    escaped = plain.replace(b'"trace:handoverVoucher"', b'"trace:handover\\u0056oucher"')
    assert b"handoverVoucher" not in escaped and orjson.loads(escaped) == doc
    for body in (plain, escaped):
        status, job = await epcis.capture(body, token=device)
        assert status == 202 and not job["success"], job
        assert "a voucher goes with a receiving event" in job["errors"][0]["title"], job
    assert (await steps_of(world, code))[-1] != "storing"
    # Without one, the same document is recorded.
    del doc["epcisBody"]["eventList"][0]["trace:handoverVoucher"]
    status, job = await epcis.capture(doc, token=device)
    assert status == 202 and job["success"], job
    assert (await steps_of(world, code))[-1] == "storing"
