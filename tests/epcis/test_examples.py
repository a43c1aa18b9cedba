"""GS1's example documents are accepted as they are and come back from the query interface as they were sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.epcis.conftest import EXAMPLES, MORE_EXAMPLES, MORE_XML_EXAMPLES, REFUSED, Epcis, glns_in_xml, glns_named
from traceability.epcis import document, hashing


def events_of(doc: Any) -> list[Any]:
    body = doc["epcisBody"]
    return body["eventList"] if "eventList" in body else body["queryResults"]["resultsBody"]["eventList"]


ACCEPTED = [*EXAMPLES, *(p for p in MORE_EXAMPLES if p.name not in REFUSED)]


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.name for p in ACCEPTED])
async def test_example_is_captured_and_returned_as_sent(epcis: Epcis, path: Path) -> None:
    raw = path.read_bytes()  # noqa: ASYNC240 - a small test fixture
    sent = document.loads_exact(raw)
    await epcis.register_glns(glns_named(orjson.loads(raw)))

    status, job = await epcis.capture(raw)
    assert status == 202, job
    assert job["success"] is True, job["errors"]
    assert job["errors"] == [] and job["running"] is False

    for event in events_of(sent):
        event_id = event.get("eventID") or hashing.event_hash(event, sent["@context"])
        status, answer, resp = await epcis.query(f"/epcis/events/{quote(event_id, safe='')}")
        assert status == 200, answer
        assert resp.headers["GS1-EPCIS-Version"] == "2.0.0"
        assert document.validate(orjson.loads(document.dumps_exact(answer))) == []
        returned = [e for e in events_of(answer) if "errorDeclaration" in e or "errorDeclaration" not in event]
        assert len(returned) == 1
        got = dict(returned[0])
        assert got.pop("recordTime")
        if "eventID" not in event:  # the CBV 2.0 event hash it was found by, given back
            assert got.pop("eventID") == event_id
        # Member by member, in order, with every number as it was written; a recordTime sent is the one thing
        # left out (EPCIS 2.0, 7.4.1: the capture interface ignores it and the repository sets its own).
        expected = {k: v for k, v in event.items() if k != "recordTime"}
        assert document.dumps_exact(got) == document.dumps_exact(expected)


async def test_resending_a_document_is_idempotent(epcis: Epcis) -> None:
    raw = (Path(__file__).parent / "examples" / "Example_9.6.1-ObjectEvent.jsonld").read_bytes()
    await epcis.register_glns(glns_named(orjson.loads(raw)))
    assert (await epcis.capture(raw))[1]["success"]
    status, job = await epcis.capture(raw)
    assert status == 202 and job["success"], job
    status, answer, _ = await epcis.query(EQ_bizStep="shipping")
    assert len(events_of(answer)) == 1


REFUSED_PATHS = [p for p in [*MORE_EXAMPLES, *MORE_XML_EXAMPLES] if p.name in REFUSED]


@pytest.mark.parametrize("path", REFUSED_PATHS, ids=[p.name for p in REFUSED_PATHS])
async def test_a_gs1_document_the_ledger_cannot_keep_is_refused_saying_why(epcis: Epcis, path: Path) -> None:
    raw = path.read_bytes()  # noqa: ASYNC240 - a small test fixture
    xml = path.suffix == ".xml"
    await epcis.register_glns(glns_in_xml(raw) if xml else glns_named(orjson.loads(raw)))
    status, answer = await epcis.capture(raw, content_type="application/xml" if xml else "application/ld+json")
    if status == 202:  # refused while writing: the job failed, nothing was kept
        assert answer["success"] is False and answer["errors"], answer
        said = " ".join(e["title"] for e in answer["errors"])
    else:
        assert status == 400, answer
        said = answer["title"] + " ".join(str(e) for e in answer.get("errors", ()))
    assert REFUSED[path.name] in said, said
    status, found, _ = await epcis.query()
    assert status == 200 and events_of(found) == []
