"""The ledger's own events in EPCIS 2.0: every event the demo city records exports as JSON-LD that GS1's
schema accepts, and round-trips through another ledger's EPCIS capture unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import World, admin_token, cloned_database, make_uscc
from tests.test_demo import TODAY
from traceability.config import Settings
from traceability.demo.loader import load_demo
from traceability.domain.events import BIZ_STEPS, DISPOSITIONS, DOCUMENT_TYPES, UNITS, parse_event
from traceability.epcis import document, export
from traceability.http.app import create_app
from traceability.storage.database import open_database

BASE = "http://trace.test"


def events_of(doc: Any) -> list[Any]:
    body = doc["epcisBody"]
    return body["eventList"] if "eventList" in body else body["queryResults"]["resultsBody"]["eventList"]


async def all_events(client: Any, token: str) -> list[Any]:
    """Every event of a ledger through GET /epcis/events, page by page; each page checked against the schema."""
    found: list[Any] = []
    path, params = "/epcis/events", {"perPage": "1000"}
    while True:
        resp = await client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200
        page = document.loads_exact(await resp.text())
        problems = document.validate(orjson.loads(document.dumps_exact(page)))
        assert problems == [], [(p, events_of(page)[int(p.path.split("[")[1].split("]")[0])]) for p in problems[:2]]
        found += events_of(page)
        if "Link" not in resp.headers:
            return found
        link = resp.headers["Link"]
        path, params = link[1 : link.index(">")], {}


@pytest.fixture
async def other_ledger(aiohttp_client: Any, server_url: str, template: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A second ledger (another city's) with one enterprise and one node, to capture an export into."""
    async with cloned_database(server_url, template) as url:
        settings_ = Settings.from_env({}, database_url=url, data_dir=tmp_path / "other", public_url="http://other.test")
        client = await aiohttp_client(create_app(settings_))
        admin = await admin_token(url)
        world = World(client, admin)
        uscc = make_uscc(900)
        await world.post("/api/v1/admin/enterprises", {"name": "外埠企业", "uscc": uscc}, expect=201)
        await world.post(
            "/api/v1/admin/nodes",
            {"enterprise": uscc, "type": "wholesaler", "area_code": "320302", "name": "接收节点"},
            expect=201,
        )
        token = await world.post("/api/v1/admin/tokens", {"role": "enterprise", "name": "import", "enterprise": uscc})
        yield client, token["credential"]
        await client.close()


async def test_every_demo_event_exports_validates_and_round_trips(
    client: Any, db_url: str, other_ledger: tuple[Any, str]
) -> None:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        result = await load_demo(db, public_url=BASE, today=TODAY, seed=3)
    regulator = await (
        await client.post(
            "/api/v1/admin/tokens",
            json={"role": "regulator", "name": "市场监管局"},
            headers={"Authorization": f"Bearer {await admin_token(db_url)}"},
        )
    ).json()
    exported = await all_events(client, regulator["credential"])
    assert len(exported) == result.total_events
    assert {e["type"] for e in exported} >= {"ObjectEvent", "TransformationEvent"}

    # A batch's export (with its genealogy) is an EPCISDocument GS1's schema accepts.
    code = exported[-1]["trace:traceCode"]
    resp = await client.get(f"/api/v1/batches/{code}/epcis", params={"trace": "backward"})
    assert resp.status == 200 and document.validate(orjson.loads(await resp.read())) == []

    # Captured by another ledger, the export comes back exactly as it left; all but the holds and recalls,
    # which only a ledger itself records (after a failed inspection, for its regulator): an enterprise's
    # capture of them is refused.
    other, token = other_ledger
    context = export.context(BASE)
    everything = [{k: v for k, v in e.items() if k != "recordTime"} for e in exported]
    sent = [e for e in everything if e.get("bizStep") != "holding"]
    holds = [e for e in everything if e.get("bizStep") == "holding"]
    assert holds and len(sent) + len(holds) == len(everything)
    doc = export.epcis_document(holds[:1], [], BASE, datetime.now(UTC))
    doc["@context"] = context
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"}
    resp = await other.post("/epcis/capture", data=document.dumps_exact(doc), headers=headers)
    job = await (await other.get(resp.headers["Location"], headers={"Authorization": f"Bearer {token}"})).json()
    assert not job["success"] and job["errors"][0]["code"] == "status_reserved", job
    for start in range(0, len(sent), 1000):
        doc = export.epcis_document(sent[start : start + 1000], [], BASE, datetime.now(UTC))
        doc["@context"] = context
        resp = await other.post(
            "/epcis/capture",
            data=document.dumps_exact(doc),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"},
        )
        job = await (await other.get(resp.headers["Location"], headers={"Authorization": f"Bearer {token}"})).json()
        assert job["success"], job["errors"][:3]
    back = await all_events(other, token)
    # The other ledger's own "trace:" prefix means its namespace, so each event keeps the context it came with.
    assert all(e["@context"] == context for e in back)
    assert [
        document.dumps_exact({k: v for k, v in e.items() if k not in ("recordTime", "@context")}) for e in back
    ] == [document.dumps_exact(e) for e in sent]


@st.composite
def native_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventID": str(draw(st.uuids())),
        "traceCode": "32031100000000000010",
        "bizStep": draw(st.sampled_from(sorted(BIZ_STEPS))),
        "eventTime": draw(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2025, 1, 1)))
        .replace(tzinfo=UTC)
        .isoformat(),
        "type": draw(st.sampled_from(["ObjectEvent", "TransactionEvent"])),
    }
    if draw(st.booleans()):
        event["disposition"] = draw(st.sampled_from(sorted(DISPOSITIONS)))
    if draw(st.booleans()):
        value = draw(st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False))
        event["quantity"] = {"value": str(value), "uom": draw(st.sampled_from(sorted(UNITS)))}
    if draw(st.booleans()):
        docs = st.fixed_dictionaries(
            {"type": st.sampled_from(sorted(DOCUMENT_TYPES)), "number": st.text(min_size=1, max_size=20).map(str.strip)}
        ).filter(lambda d: bool(d["number"]) and not any(ord(c) < 32 for c in d["number"]))
        event["documents"] = draw(st.lists(docs, min_size=1, max_size=3))
    if draw(st.booleans()):
        event["commercial"] = {"unit_price": "12.5", "buyer": draw(st.text(min_size=1, max_size=10).map(str.strip))}
    return event


@settings(max_examples=200)
@given(native_events(), st.booleans())
def test_any_native_event_exports_as_valid_epcis(event: dict[str, Any], full: bool) -> None:
    try:
        content = parse_event(event, "", datetime.now(UTC)).content
    except ValueError:
        return  # hypothesis made something the API refuses (a control character, say): nothing to export
    content["node"] = "320311000001"
    out = export.native_event(
        content,
        event_id=content["eventID"],
        trace_code=content["traceCode"],
        recorded_at=datetime.now(UTC),
        public_url=BASE,
        node=f"{BASE}/n/320311000001",
        nodes={},
        full=full,
    )
    doc = export.epcis_document([out], [], BASE, datetime.now(UTC))
    assert document.validate(orjson.loads(document.dumps_exact(doc))) == [], document.dumps_exact(out)


async def test_the_console_exports_a_batch_with_its_genealogy(world: World, db_url: str) -> None:
    from tests.web.conftest import REGULATOR, pork_chain
    from tests.web.test_pages import sign_in
    from traceability.services import accounts

    code = await pork_chain(world)
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, REGULATOR[0], "regulator", REGULATOR[1], "徐州市市场监督管理局")
    assert (await world.client.get(f"/console/batches/{code}/export.epcis.jsonld", allow_redirects=False)).status in (
        303,
        401,
    )
    assert (await sign_in(world.client, *REGULATOR)).status == 303
    page = await (await world.client.get(f"/console/batches/{code}")).text()
    assert f"/console/batches/{code}/export.epcis.jsonld" in page and "导出 EPCIS" in page
    resp = await world.client.get(f"/console/batches/{code}/export.epcis.jsonld")
    assert resp.status == 200 and resp.headers["Content-Disposition"].endswith(f'batch-{code}.epcis.jsonld"')
    doc = orjson.loads(await resp.read())
    assert document.validate(doc) == []
    events = doc["epcisBody"]["eventList"]
    assert {e["trace:traceCode"] for e in events} == {code}
    assert any("trace:commercial" in e for e in events)  # the regulator's export is the full record
