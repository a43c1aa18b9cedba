"""EPCIS 2.0 and 1.2 XML: validated against GS1's XSDs, mapped to the JSON form, and kept as they came."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from lxml import etree

from tests.epcis.conftest import MORE_XML_EXAMPLES, REFUSED, XML_EXAMPLES, Epcis, glns_in_xml
from traceability.epcis import document, hashing, xml
from traceability.epcis.records import DECLARATION, ledger_event_id

V12 = Path(__file__).parent / "examples-1.2" / "commissioning.xml"


async def proof_of(epcis: Epcis, event_id: str) -> Any:
    """The event's inclusion proof, once the sequencer has put it in the log (a few hundred ms)."""
    for _ in range(200):
        resp = await epcis.client.get(f"/api/v1/events/{event_id}/proof")
        if resp.status != 404:
            assert resp.status == 200
            return await resp.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"event {event_id} never entered the log")


def event_elements(raw: bytes) -> list[Any]:
    root = etree.fromstring(raw)
    return [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname.endswith("Event")]


XML_ACCEPTED = [*XML_EXAMPLES, V12, *(p for p in MORE_XML_EXAMPLES if p.name not in REFUSED)]


@pytest.mark.parametrize("path", XML_ACCEPTED, ids=[p.name for p in XML_ACCEPTED])
async def test_xml_document_is_captured_kept_and_returned(epcis: Epcis, path: Path) -> None:
    raw = path.read_bytes()  # noqa: ASYNC240 - a small test fixture
    await epcis.register_glns(glns_in_xml(raw))
    status, job = await epcis.capture(raw, content_type="application/xml")
    assert status == 202 and job["success"], job

    received = xml.read(raw)
    earlier: set[str] = set()
    for (i, _, sent), element in zip(received.events, event_elements(raw), strict=True):
        event_id = sent.get("eventID") or received.computed_ids[i]
        status, answer, _ = await epcis.query(f"/epcis/events/{quote(event_id, safe='')}")
        assert status == 200, answer
        assert document.validate(orjson.loads(document.dumps_exact(answer))) == []
        # An eventID names the event and, once declared wrong, its error declaration too: the one sent here.
        (got,) = [
            e
            for e in answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            if ("errorDeclaration" in e) == ("errorDeclaration" in sent)
        ]
        got.pop("recordTime")
        sent = {k: v for k, v in sent.items() if k != "recordTime"}  # the capture interface ignores one sent (7.4.1)
        if "eventID" not in sent:
            assert got.pop("eventID") == event_id
        assert document.dumps_exact(got) == document.dumps_exact(sent)

        # The hashed record keeps the event's own XML: nothing of it is lost in the JSON form. It is kept as
        # canonical XML without comments (a comment is no part of the event; GS1's examples carry some).
        # A declaration of an event sent before it is a record of its own; one of an event never sent is the event's.
        declaring = "errorDeclaration" in sent and event_id in earlier
        earlier.add(event_id)
        proof = await proof_of(epcis, ledger_event_id(event_id, DECLARATION if declaring else ""))
        kept = orjson.loads(proof["canonical"])["epcis"]["xml"]
        copy = etree.fromstring(etree.tostring(element))
        assert kept == etree.tostring(copy, method="c14n", with_comments=False).decode()


async def test_identical_events_in_two_time_zones_get_cbv_hashes_of_the_reference_implementation(epcis: Epcis) -> None:
    """GS1's README calls these one event. CBV 2.0 (and its reference implementation) hash eventTimeZoneOffset
    too, so they get two ids; both are recorded, each under the id the reference implementation gives it."""
    first, second = XML_EXAMPLES[2], XML_EXAMPLES[3]
    ids = [xml.read(p.read_bytes()).computed_ids[0] for p in (first, second)]
    assert ids[0] != ids[1]
    for path in (first, second):
        raw = path.read_bytes()
        await epcis.register_glns(glns_in_xml(raw))
        assert (await epcis.capture(raw, content_type="application/xml"))[1]["success"]
    for event_id in ids:
        assert (await epcis.query(f"/epcis/events/{quote(event_id, safe='')}"))[0] == 200


async def test_invalid_xml_is_refused_naming_the_problem(epcis: Epcis) -> None:
    raw = V12.read_bytes().replace(b"<action>ADD</action>", b"<action>ADDED</action>", 1)
    status, problem = await epcis.capture(raw, content_type="application/xml")
    assert status == 400
    assert problem["type"] == "epcisException:ValidationException"
    assert "action" in problem["title"] and "ADDED" in problem["title"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    status, problem = await epcis.capture(bomb, content_type="application/xml")
    assert status == 400


def test_a_business_transaction_without_a_type_gets_the_same_event_hash_from_json_and_from_xml() -> None:
    # GS1's reference implementation reads a bizTransaction as a type and a value and failed on one without a type.
    here = Path(__file__).parent
    doc = orjson.loads((here / "examples-gs1" / "Example-TransactionEvents-2020_07_03y.jsonld").read_bytes())
    first = doc["epcisBody"]["eventList"][0]
    assert "type" not in first["bizTransactionList"][0] and "eventID" not in first
    xml_text = (here / "examples-gs1-xml" / "Example-TransactionEvent-2020_07_03y.xml").read_text()
    assert hashing.event_hash(first, doc["@context"]) == hashing.xml_event_hashes(xml_text)[0]
    # The stand-in type leaves no trace: the same event with a type has another hash.
    typed = {**first, "bizTransactionList": [{"type": "inv", **first["bizTransactionList"][0]}]}
    assert hashing.event_hash(typed, doc["@context"]) != hashing.event_hash(first, doc["@context"])


async def test_a_long_list_the_json_schema_refuses_is_named_with_what_is_wrong_with_it(epcis: Epcis) -> None:
    # The XSD lets an epcList name an EPC twice; GS1's JSON schema does not. The value comes first in the
    # validator's message and the reason last: a long list once hid the reason past the message's bound.
    path = Path(__file__).parent / "examples-xml" / "Example_9.6.1-ObjectEvent-2020_06_18a.xml"
    many = "".join(f"<epc>urn:epc:id:sgtin:0614141.107346.{n}</epc>" for n in range(3000, 3040))
    twice = "<epc>urn:epc:id:sgtin:0614141.107346.2017</epc>"
    raw = path.read_text().replace(twice, twice + many + twice, 1).encode()
    status, problem = await epcis.capture(raw, content_type="application/xml")
    assert status == 400, problem
    assert "epcList" in problem["title"] and problem["title"].endswith(
        "has non-unique elements (in the JSON form of this XML)"
    )


def test_the_unversioned_context_address_gives_the_hash_the_versioned_one_gives() -> None:
    # Most documents now name GS1's unversioned context; the hash once refused them all ("give an eventID").
    doc = orjson.loads((Path(__file__).parent / "examples" / "Example_9.6.1-ObjectEvent.jsonld").read_bytes())
    event = {k: v for k, v in doc["epcisBody"]["eventList"][0].items() if k != "eventID"}
    versioned = hashing.event_hash(event, ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"])
    assert hashing.event_hash(event, ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]) == versioned
