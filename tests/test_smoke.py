from __future__ import annotations

from typing import Any

from tests.conftest import World


async def test_open_capture_read(world: World, client: Any) -> None:
    code = await world.open_batch()
    receipt = await world.post(
        "/api/v1/events", world.event(code, "shipping"), token=world.devices["slaughter"], expect=201
    )
    assert receipt["seq"] == 2
    resp = await client.get(f"/api/v1/batches/{code}")
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert [e["seq"] for e in view["events"]] == [1, 2]
