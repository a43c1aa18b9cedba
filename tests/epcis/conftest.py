"""EPCIS fixtures: GS1's example documents (copied into tests/epcis with GS1's notice), and a registered
enterprise whose nodes carry the GLNs a document names."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import World, make_uscc
from traceability.epcis import document, identifiers

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "examples").glob("*.jsonld"))
XML_EXAMPLES = sorted((HERE / "examples-xml").glob("*.xml"))
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
        codes = []
        for gln in glns:
            node = await self.world.post(
                "/api/v1/admin/nodes",
                {"enterprise": self.uscc, "type": node_type, "area_code": "320302", "name": f"GLN {gln}", "gln": gln},
            )
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


@pytest.fixture
async def epcis(world: World) -> Epcis:
    uscc = make_uscc(next(_serial))
    await world.post("/api/v1/admin/enterprises", {"name": "GS1 示例企业", "uscc": uscc}, expect=201)
    token = await world.post(
        "/api/v1/admin/tokens", {"role": "enterprise", "name": "ERP integration", "enterprise": uscc}, expect=201
    )
    return Epcis(world, token["credential"], uscc)
