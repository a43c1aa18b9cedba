"""GS1's example documents are accepted as they are and come back from the query interface as they were sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.epcis.conftest import EXAMPLES, Epcis, glns_named
from traceability.epcis import document


def events_of(doc: Any) -> list[Any]:
    body = doc["epcisBody"]
    return body["eventList"] if "eventList" in body else body["queryResults"]["resultsBody"]["eventList"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_is_captured_and_returned_as_sent(epcis: Epcis, path: Path) -> None:
    raw = path.read_bytes()  # noqa: ASYNC240 - a small test fixture
    sent = document.loads_exact(raw)
    await epcis.register_glns(glns_named(orjson.loads(raw)))

    status, job = await epcis.capture(raw)
    assert status == 202, job
    assert job["success"] is True, job["errors"]
    assert job["errors"] == [] and job["running"] is False

    for event in events_of(sent):
        status, answer, resp = await epcis.query(f"/epcis/events/{quote(event['eventID'], safe='')}")
        assert status == 200, answer
        assert resp.headers["GS1-EPCIS-Version"] == "2.0.0"
        assert document.validate(orjson.loads(document.dumps_exact(answer))) == []
        returned = [e for e in events_of(answer) if "errorDeclaration" in e or "errorDeclaration" not in event]
        assert len(returned) == 1
        got = dict(returned[0])
        assert got.pop("recordTime")
        # Member by member, in order, with every number as it was written.
        assert document.dumps_exact(got) == document.dumps_exact(event)


async def test_resending_a_document_is_idempotent(epcis: Epcis) -> None:
    raw = (Path(__file__).parent / "examples" / "Example_9.6.1-ObjectEvent.jsonld").read_bytes()
    await epcis.register_glns(glns_named(orjson.loads(raw)))
    assert (await epcis.capture(raw))[1]["success"]
    status, job = await epcis.capture(raw)
    assert status == 202 and job["success"], job
    status, answer, _ = await epcis.query(EQ_bizStep="shipping")
    assert len(events_of(answer)) == 1
