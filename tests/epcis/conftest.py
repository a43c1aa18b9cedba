"""EPCIS fixtures: GS1's example documents (copied into tests/epcis with GS1's notice), and a registered
enterprise whose nodes carry the GLNs a document names."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from lxml import etree

from tests.conftest import World, make_uscc
from traceability.epcis import document, identifiers

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "examples").glob("*.jsonld"))
XML_EXAMPLES = sorted((HERE / "examples-xml").glob("*.xml"))
# The rest of GS1's published example documents (gs1/EPCIS JSON/ and XML/, folders flattened with "__").
REFUSED = {
    # The ledger refuses these, each with a 400 naming why (docs/epcis.md, "Not supported"):
    # a transformation whose outputs are its inputs would make each lot its own ancestor;
    "WithFullCombinationOfFields__transformation_event_all_possible_fields.jsonld": "its own ancestor",
    "WithFullCombinationOfFields__transformation_event_all_possible_fields.xml": "its own ancestor",
    # master data is not kept (nor a document of master data and no event);
    "CBV__CBV-11.4-2020-06-16a.xml": "master data",
    "Mimasu__Example-masterData.xml": "master data",
    "WithFullCombinationOfFields__masterdata_all_possible_fields.xml": "holds no event",
    # valid against GS1's XSD but not, in JSON, against GS1's JSON schema, which every query answer must meet:
    # persistentDisposition on an AggregationEvent, sensor types the JSON schema does not list, a report
    # without a type.
    "Example-PersistentDisposition.xml": "persistentDisposition",
    "WithExtension__TransactionEvent.xml": "EffectiveDoseRate",
    "WithSensorData__SensorDataExamples.xml": "Molar_concentration",
}
MORE_EXAMPLES = sorted((HERE / "examples-gs1").glob("*.jsonld"))
MORE_XML_EXAMPLES = sorted((HERE / "examples-gs1-xml").glob("*.xml"))
_serial = itertools.count(500)


def glns_named(doc: Any) -> list[str]:
    """Every location and party GLN a document's events name (read point, business location, sources, destinations)."""
    found: list[str] = []
    events = doc["epcisBody"].get("eventList") or doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    for event in events:
        uris = [(event.get(k) or {}).get("id") for k in ("readPoint", "bizLocation")]
        uris += [s["source"] for s in event.get("sourceList", ())] + [
            d["destination"] for d in event.get("destinationList", ())
        ]
        for uri in uris:
            if uri and (gln := identifiers.location_gln(uri)) and gln not in found:
                found.append(gln)
    return found


def glns_in_xml(raw: bytes) -> list[str]:
    root = etree.fromstring(raw)
    found: list[str] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        text = (element.text or "").strip()
        if etree.QName(element).localname in ("id", "source", "destination") and text.startswith("urn:epc:id:s"):
            gln = identifiers.location_gln(text)
            if gln and gln not in found:
                found.append(gln)
    return found


class Epcis:
    """Capture and query through /epcis as one enterprise that owns a node per GLN."""

    def __init__(self, world: World, token: str, uscc: str) -> None:
        self.world = world
        self.client = world.client
        self.token = token
        self.uscc = uscc

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def register_glns(self, glns: list[str], node_type: str = "wholesaler") -> list[str]:
        """A node for each GLN; a document that names no place by GLN (a geo: URI, a private URN) is recorded at
        the enterprise's one node, registered without a GLN."""
        codes = []
        for gln in glns or [None]:
            fields = {"enterprise": self.uscc, "type": node_type, "area_code": "320302", "name": f"GLN {gln}"}
            node = await self.world.post("/api/v1/admin/nodes", fields | ({"gln": gln} if gln else {}))
            if "code" in node:
                codes.append(node["code"])
        return codes

    async def capture(
        self,
        body: bytes | dict[str, Any],
        *,
        token: str | None = None,
        content_type: str = "application/ld+json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        resp = await self.client.post(
            "/epcis/capture", data=data, headers={**self.auth(token), "Content-Type": content_type, **(headers or {})}
        )
        answer = await resp.json(content_type=None)
        if resp.status == 202:
            job = await self.client.get(resp.headers["Location"], headers=self.auth(token))
            assert job.status == 200
            return 202, await job.json()
        return resp.status, answer

    async def query(self, path: str = "/epcis/events", token: str | None = None, **params: str) -> tuple[int, Any, Any]:
        resp = await self.client.get(path, params=params, headers=self.auth(token) if token != "" else {})
        text = await resp.text()
        return resp.status, document.loads_exact(text) if text else None, resp


async def enterprise_integration(world: World, name: str = "GS1 示例企业") -> Epcis:
    """A newly registered enterprise and its ERP's integration credential."""
    uscc = make_uscc(next(_serial))
    await world.post("/api/v1/admin/enterprises", {"name": name, "uscc": uscc}, expect=201)
    token = await world.post(
        "/api/v1/admin/tokens", {"role": "enterprise", "name": "ERP integration", "enterprise": uscc}, expect=201
    )
    return Epcis(world, token["credential"], uscc)


@pytest.fixture
async def epcis(world: World) -> Epcis:
    return await enterprise_integration(world)
