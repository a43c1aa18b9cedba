"""Every documented bad input gets a 4xx in one error shape that names the field and the problem."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, new_id

ERROR_KEYS = {"code", "message", "request_id", "field"}


async def post_raw(world: World, path: str, data: bytes, token: str) -> tuple[int, dict[str, Any]]:
    resp = await world.client.post(
        path, data=io.BytesIO(data), headers={**world.auth(token), "Content-Type": "application/json"}
    )
    return resp.status, await resp.json()


def assert_error(data: dict[str, Any], code: str, field: str | None = None, words: str = "") -> None:
    assert set(data) == {"error"}
    assert set(data["error"]) == ERROR_KEYS, data
    assert data["error"]["code"] == code, data
    assert len(data["error"]["request_id"]) >= 8
    if field is not None:
        assert data["error"]["field"] == field, data
    assert words.lower() in data["error"]["message"].lower(), data


async def test_malformed_json(world: World) -> None:
    status, data = await post_raw(world, "/api/v1/events", b'{"eventID": ', world.devices["slaughter"])
    assert status == 400
    assert_error(data, "invalid_json", words="not valid JSON")


async def test_empty_body(world: World) -> None:
    status, data = await post_raw(world, "/api/v1/events", b"", world.devices["slaughter"])
    assert status == 400
    assert_error(data, "invalid_json", words="no body")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"eventID": None}, "eventID", "required"),
        ({"eventID": "not-a-uuid"}, "eventID", "UUID"),
        ({"bizStep": None}, "bizStep", "required"),
        ({"bizStep": "slaughtering"}, "bizStep", "CBV"),
        ({"bizStep": 7}, "bizStep", "string"),
        ({"eventTime": "yesterday"}, "eventTime", "RFC 3339"),
        ({"eventTime": "2026-01-15T08:30:00"}, "eventTime", "offset"),
        ({"quantity": {"value": "abc", "uom": "KGM"}}, "quantity.value", "number"),
        ({"quantity": {"value": -3, "uom": "KGM"}}, "quantity.value", "negative"),
        ({"quantity": {"value": 3, "uom": "POUNDS"}}, "quantity.uom", "UN/ECE"),
        ({"quantity": 3}, "quantity", "object"),
        ({"disposition": "sold"}, "disposition", "CBV"),
        ({"action": "UPSERT"}, "action", "ADD"),
        ({"documents": [{"type": "quarantine_certificate"}]}, "documents[0].number", "required"),
        ({"documents": [{"type": "passport", "number": "1"}]}, "documents[0].type", "one of"),
        ({"attributes": {"bad key": 1}}, "attributes.bad key", "keys"),
        ({"commercial": {"unit_price": -1}}, "commercial.unit_price", "negative"),
        ({"traceCode": "3203"}, "traceCode", "20 digits"),
    ],
)
async def test_bad_fields(world: World, change: dict[str, Any], field: str, words: str) -> None:
    code = await world.open_batch()
    event = {k: v for k, v in {**world.event(code), **change}.items() if v is not None}
    data = await world.post("/api/v1/events", event, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", field, words)


async def test_wrong_check_digit(world: World) -> None:
    code = await world.open_batch()
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    data = await world.post("/api/v1/events", world.event(wrong), world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "traceCode", "check digit")
    resp = await world.client.get(f"/api/v1/batches/{wrong}")
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_trace_code", "trace_code", "check digit")


async def test_unknown_trace_code(world: World) -> None:
    from traceability.domain import tracecode

    unknown = tracecode.make("320302", 4_999_999_999_999)
    data = await world.post(
        "/api/v1/events", {"events": [world.event(unknown)]}, world.devices["slaughter"], expect=422
    )
    assert_error(data, "unknown_reference", "events[0].traceCode", unknown)
    resp = await world.client.get(f"/api/v1/batches/{unknown}")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found", words=unknown)


async def test_unknown_node_and_product(world: World) -> None:
    data = await world.post("/api/v1/admin/operators", {"node": "999999000001", "code": "A1", "name": "x"}, expect=422)
    assert_error(data, "unknown_reference", "node", "999999000001")
    body = {"eventID": new_id(), "product": "99999999", "quantity": {"value": 1, "uom": "KGM"}}
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
    assert_error(data, "unknown_reference", "product", "99999999")


async def test_event_at_another_node_is_refused(world: World) -> None:
    code = await world.open_batch()
    event = world.event(code, node=world.nodes["market"])
    data = await world.post("/api/v1/events", event, world.devices["slaughter"], expect=403)
    assert_error(data, "not_own_node", words="own node")


async def test_event_time_in_the_future(world: World) -> None:
    code = await world.open_batch()
    soon = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    await world.post("/api/v1/events", world.event(code, eventTime=soon), world.devices["slaughter"], expect=201)
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    data = await world.post(
        "/api/v1/events", world.event(code, eventTime=later), world.devices["slaughter"], expect=422
    )
    assert_error(data, "invalid_field", "eventTime", "future")


async def test_body_over_the_size_limit(world: World) -> None:
    code = await world.open_batch()
    event = b'{"traceCode": "' + code.encode() + b'", "x": "' + b"y" * 9000 + b'"}'
    big = b'{"events": [' + b",".join([event] * 500) + b"]}"
    assert len(big) > 4 * 1024 * 1024
    status, data = await post_raw(world, "/api/v1/events", big, world.devices["slaughter"])
    assert status == 413
    assert_error(data, "payload_too_large", words="larger")


async def test_too_many_events(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    events = [world.event(code) for _ in range(1001)]
    data = await world.post("/api/v1/events", {"events": events}, world.devices["slaughter"], expect=422)
    assert_error(data, "too_many_events", "events", "at most 1000")
    assert await superuser.fetchval("SELECT count(*) FROM events") == 1


async def test_duplicate_id_in_one_request(world: World) -> None:
    code = await world.open_batch()
    event = world.event(code)
    data = await world.post("/api/v1/events", {"events": [event, event]}, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "events[1].eventID", "twice")


async def test_unknown_route_and_method(world: World) -> None:
    resp = await world.client.get("/api/v1/nothing-here")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    resp = await world.client.delete("/api/v1/events")
    assert resp.status == 405
    assert_error(await resp.json(), "method_not_allowed")


async def test_registry_validation(world: World) -> None:
    data = await world.post("/api/v1/admin/enterprises", {"name": "x", "uscc": "91320300MA1MXXXX0X"}, expect=422)
    assert_error(data, "invalid_field", "uscc", "social credit")
    data = await world.post(
        "/api/v1/admin/nodes",
        {"enterprise": world.enterprises["market"], "type": "wet_market", "area_code": "999999", "name": "x"},
        expect=422,
    )
    assert_error(data, "invalid_field", "area_code", "GB/T 2260")
    data = await world.post(
        "/api/v1/admin/nodes",
        {"enterprise": world.enterprises["market"], "type": "spaceport", "area_code": "320302", "name": "x"},
        expect=422,
    )
    assert_error(data, "invalid_field", "type", "one of")
    data = await world.post(
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "1", "name": "x", "gtin": "06901234567893"},
        expect=422,
    )
    assert_error(data, "invalid_field", "gtin", "check digit")
    data = await world.post(
        "/api/v1/admin/enterprises", {"name": "again", "uscc": world.enterprises["market"]}, expect=409
    )
    assert_error(data, "already_exists", "uscc")
