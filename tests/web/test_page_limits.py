"""The pages' inputs are bounded too, and a page's JSON twin answers its errors in JSON, never a 500 page in HTML."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.web.conftest import pork_chain
from tests.web.test_pages import sign_in

ERROR_KEYS = {"code", "message", "request_id", "field"}


async def twin_error(world: World, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    resp = await world.client.get(path, params={**params, "format": "json"})
    assert resp.content_type == "application/json", (path, params, resp.status, (await resp.text())[:200])
    body = await resp.json()
    assert set(body["error"]) == ERROR_KEYS
    return resp.status, body["error"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/console", {"from": "0001-01-01"}, "from"),
        ("/console", {"to": "9999-12-31"}, "to"),
        ("/console", {"from": "2026-W48-1"}, "from"),
        ("/console", {"product": "白菜\u0000"}, "product"),
        ("/console", {"enterprise": "\u202e9132"}, "enterprise"),
        ("/console", {"node": "x" * 1001}, "node"),
        ("/console/anomalies", {"from": "0001-01-01"}, "from"),
        ("/console/anomalies", {"to": "9999-12-31"}, "to"),
        ("/console/anomalies", {"node": "3203\u0000"}, "node"),
        ("/console/anomalies", {"code": "\u0000"}, "code"),
    ],
)
async def test_console_filters_out_of_bounds(
    world: World, regulator: tuple[str, str], path: str, params: dict[str, str], field: str
) -> None:
    assert (await sign_in(world.client, *regulator)).status == 303
    status, error = await twin_error(world, path, params)
    assert status == 422 and error["code"] == "invalid_field" and error["field"] == field, error
    html = await world.client.get(path, params=params)
    assert html.status == 422 and html.content_type == "text/html"


async def test_twins_answer_every_error_in_json(world: World, regulator: tuple[str, str]) -> None:
    status, _ = await twin_error(world, "/console/batches/123", {})
    assert status == 401  # not signed in: the twin says so in JSON rather than redirecting to a form
    assert (await sign_in(world.client, *regulator)).status == 303
    for path, expected in [
        ("/console/batches/123", 400),
        ("/console/batches/32031100000000000019", 400),
        ("/console/enterprises/9132%00", 422),
        ("/t/3203%00", 422),
        ("/console/nothing", 404),
    ]:
        status, _ = await twin_error(world, path, {})
        assert status == expected, path
    resp = await world.client.get("/console/batches/123", headers={"Accept": "application/json"})
    assert resp.status == 400 and resp.content_type == "application/json"


async def test_exports_of_a_batch_at_the_bounds(world: World, regulator: tuple[str, str]) -> None:
    """A batch holding the largest values capture accepts exports as CSV and reads back under a megabyte."""
    code = await pork_chain(world)
    event = world.event(
        code,
        "storing",
        quantity={"value": "999999999999.999999", "uom": "KGM"},
        commercial={"unit_price": "999999999.9999", "amount": "999999999999.9999", "buyer": "买" * 200},
        documents=[{"type": "other", "number": "=1+" + "N" * 61, "issuer": "发" * 200} for _ in range(20)],
        attributes={f"k{i}": "字" * 2000 for i in range(50)},
    )
    await world.post("/api/v1/events", event, world.devices["stall"], expect=201)
    assert (await sign_in(world.client, *regulator)).status == 303
    csv = await world.client.get(f"/console/batches/{code}/export.csv")
    assert csv.status == 200
    text = await csv.text()
    assert "999999999999.999999" in text and "'=1+" not in text.split("\n")[0]
    page = await world.client.get(f"/t/{code}")
    assert page.status == 200 and len(await page.read()) < 1_000_000


@pytest.mark.parametrize("path", ["/vendor/login", "/console/login"])
async def test_a_malformed_form_is_a_400_not_a_500(world: World, path: str) -> None:
    """A multipart body whose part headers do not parse once made the form reader raise past the error renderer."""
    body = b"--x\r\nContent-Disposition form-data; name=\x01pin\r\n\r\n1234\r\n--x--\r\n"
    resp = await world.client.post(path, data=body, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert 400 <= resp.status < 500, (path, resp.status)
