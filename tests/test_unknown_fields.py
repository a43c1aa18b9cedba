"""Nothing sent to the native API is silently dropped: a field it does not know is a 422 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, new_id


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]}, "epcList"),
        ({"readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"}}, "readPoint"),
        ({"sensorElementList": []}, "sensorElementList"),
        ({"example:myField": "x"}, "example:myField"),
        ({"quantity": {"value": 1, "uom": "KGM", "gross": 2}}, "quantity.gross"),
        ({"documents": [{"type": "invoice", "number": "1", "date": "2026-01-01"}]}, "documents[0].date"),
        ({"commercial": {"unit_price": 3, "discount": 1}}, "commercial.discount"),
        ({"source": {"node": "x", "gln": "0614141073467"}}, "source.gln"),
    ],
)
async def test_capture_refuses_a_field_it_does_not_know(world: World, extra: dict[str, Any], field: str) -> None:
    code = await world.open_batch()
    resp = await world.client.post(
        "/api/v1/events", json=world.event(code, **extra), headers=world.auth(world.devices["slaughter"])
    )
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["field"] == field
    if ":" in field:
        assert "/epcis/capture" in body["error"]["message"]
    batch = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    assert len(batch["events"]) == 1  # nothing was recorded


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"lotNumber": "A1"}, "lotNumber"), ({"origin": {"place": "丰县", "farm": "x"}}, "origin.farm")],
)
async def test_opening_refuses_a_field_it_does_not_know(world: World, extra: dict[str, Any], field: str) -> None:
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 1, "uom": "KGM"}, **extra}
    resp = await world.client.post("/api/v1/batches", json=body, headers=world.auth(world.devices["slaughter"]))
    answer = await resp.json()
    assert resp.status == 422 and answer["error"]["field"] == field
