"""Every value has a bound: the inputs that once made the server answer 500 now get a 4xx naming the field.

Each test here is one cause found by probing the service as an attacker and as careless clients would
(issue 11): decimals that overflow or explode into a megabyte of digits, NUL and other invisible
characters, integers beyond 64 bits, dates that overflow, a malformed id in a path. They go over real
HTTP through the real app, with and without credentials.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.conftest import World, new_id
from tests.test_api_errors import assert_error
from traceability import errors
from traceability.storage.database import translate

HUGE = "99999999999999999999"  # 20 digits: beyond a signed (and an unsigned) 64-bit integer


async def get(world: World, path: str, token: str | None = None, **params: str) -> tuple[int, Any]:
    headers = world.auth(token) if token else {}
    resp = await world.client.get(path, params=params or None, headers=headers)
    assert resp.content_type == "application/json", (path, resp.status, await resp.text())
    return resp.status, await resp.json()


# -- decimals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"commercial": {"unit_price": "1e1000000"}}, "commercial.unit_price"),
        ({"commercial": {"amount": "-1e1000000"}}, "commercial.amount"),
        ({"commercial": {"unit_price": "1e-1000000"}}, "commercial.unit_price"),
        ({"quantity": {"value": "1e-16384", "uom": "KGM"}}, "quantity.value"),
        ({"quantity": {"value": "1e-999999", "uom": "KGM"}}, "quantity.value"),
        ({"quantity": {"value": "0.0000001", "uom": "KGM"}}, "quantity.value"),
        ({"quantity": {"value": "1234567890.1234567891", "uom": "KGM"}}, "quantity.value"),
        ({"quantity": {"value": 1e300, "uom": "KGM"}}, "quantity.value"),
        ({"attributes": {"value": 1e300}}, "attributes.value"),
        ({"attributes": {"value": 1e-300}}, "attributes.value"),
        ({"attributes": {"deep": {"n": "ok", "x": 5e-324}}}, "attributes.deep.x"),
    ],
)
async def test_decimals_out_of_range_are_refused(world: World, change: dict[str, Any], field: str) -> None:
    code = await world.open_batch()
    data = await world.post("/api/v1/events", {**world.event(code), **change}, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", field)


async def test_a_batch_quantity_with_a_megabyte_of_digits_is_refused(world: World) -> None:
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": "1e-999999", "uom": "KGM"}}
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "quantity.value", "decimal places")
    data = await world.post(
        "/api/v1/admin/nodes",
        {
            "enterprise": world.enterprises["market"],
            "type": "wet_market",
            "area_code": "320302",
            "name": "x",
            "latitude": "1e-999999",
        },
        expect=422,
    )
    assert_error(data, "invalid_field", "latitude")


async def test_the_largest_accepted_values_keep_pages_and_exports_small(world: World) -> None:
    """What capture accepts at its bounds still reads back: the public view stays well under a megabyte."""
    code = await world.open_batch()
    event = world.event(
        code,
        quantity={"value": "999999999999.999999", "uom": "KGM"},
        commercial={"unit_price": "999999999.9999", "amount": "999999999999.9999", "buyer": "买" * 200},
        attributes={f"k{i}": "字" * 2000 for i in range(50)},
        documents=[{"type": "other", "number": "N" * 64, "issuer": "发" * 200} for _ in range(20)],
    )
    await world.post("/api/v1/events", event, world.devices["slaughter"], expect=201)
    resp = await world.client.get(f"/api/v1/batches/{code}")
    assert resp.status == 200
    assert len(await resp.read()) < 600_000


# -- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/admin/enterprises", {"name": "x", "licences": {"food": "JY1\u0000"}}, "licences.food"),
        ("/api/v1/admin/enterprises", {"name": "x", "licences": {"fo\u0000od": "JY1"}}, "licences"),
        ("/api/v1/admin/enterprises", {"name": "徐州\u202e肉联厂"}, "name"),
        ("/api/v1/admin/enterprises", {"name": "徐州\u200b肉联厂"}, "name"),
        ("/api/v1/admin/enterprises", {"name": "x", "contact": "\u2066138\u2069"}, "contact"),
        ("/api/v1/admin/tokens", {"role": "regulator", "name": "局\u0000"}, "name"),
        ("/api/v1/admin/tokens", {"role": "regulator", "name": "x" * 201}, "name"),
        ("/api/v1/admin/tokens", {"role": "regu\u0000lator", "name": "x"}, "role"),
        ("/api/v1/admin/witnesses", {"name": "w\u0000", "verifier_key": "w+00000000+AAAA"}, "name"),
    ],
)
async def test_invisible_and_control_characters_are_refused(
    world: World, path: str, body: dict[str, Any], field: str
) -> None:
    if path.endswith("enterprises"):
        body = {"uscc": "91320300MA0000099P", **body}
    data = await world.post(path, body, expect=422)
    assert_error(data, "invalid_field", field)


async def test_control_characters_in_event_strings_are_refused(world: World) -> None:
    code = await world.open_batch()
    for change, field in [
        ({"attributes": {"note": "a\u0000b"}}, "attributes.note"),
        ({"attributes": {"list": ["ok", "\u202e"]}}, "attributes.list[1]"),
        ({"source": {"name": "王\u200d记"}}, "source.name"),
        ({"commercial": {"buyer": "\u0007"}}, "commercial.buyer"),
    ]:
        data = await world.post(
            "/api/v1/events", {**world.event(code), **change}, world.devices["slaughter"], expect=422
        )
        assert_error(data, "invalid_field", field, "character")


@pytest.mark.parametrize(
    ("path", "params", "token", "field"),
    [
        ("/api/v1/admin/enterprises", {"key": "9132\u0000"}, "admin", "key"),
        ("/api/v1/admin/nodes", {"key": "x" * 101}, "admin", "key"),
        ("/api/v1/anomalies", {"node": "3203\u0000"}, "admin", "node"),
        ("/api/v1/anomalies", {"enterprise": "\u0000"}, "admin", "enterprise"),
        ("/api/v1/anomalies", {"trace_code": "\u0000"}, "admin", "trace_code"),
        ("/api/v1/identifiers", {"scheme": "drug_code", "value": "8\u0000"}, None, "value"),
        ("/api/v1/identifiers", {"scheme": "gs1", "gtin": "06901234567892", "lot": "\u0000"}, None, "lot"),
        ("/api/v1/identifiers", {"scheme": "\u0000", "value": "1"}, None, "scheme"),
    ],
)
async def test_nul_in_query_parameters_is_refused(
    world: World, path: str, params: dict[str, str], token: str | None, field: str
) -> None:
    status, data = await get(world, path, world.admin if token else None, **params)
    assert status == 422, data
    assert_error(data, "invalid_field", field)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/enterprises/9132%00/credit",
        "/api/v1/packages/8123%00",
        "/api/v1/batches/3203%00",
        "/api/v1/codes/3203%00/lease",
        "/api/v1/batches/3203%00/trace",
        "/api/v1/events/%00/proof",
        "/api/v1/admin/events/%00/signatures",
        "/api/v1/admin/station-keys/st_%00/revoke",
    ],
)
async def test_nul_in_path_segments_is_refused(world: World, path: str) -> None:
    resp = await world.client.request(
        "POST" if path.endswith("/revoke") else "GET", path, headers=world.auth(world.admin)
    )
    assert 400 <= resp.status < 500, (path, resp.status)
    assert resp.content_type == "application/json"
    assert set((await resp.json())["error"]) == {"code", "message", "request_id", "field"}


# -- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "token", "field"),
    [
        ("/api/v1/admin/enterprises", {"offset": HUGE}, "admin", "offset"),
        ("/api/v1/admin/devices", {"limit": HUGE}, "admin", "limit"),
        ("/api/v1/recalls", {"offset": HUGE}, None, "offset"),
        ("/api/v1/recalls", {"offset": "-1"}, None, "offset"),
        ("/api/v1/anomalies", {"offset": HUGE}, "admin", "offset"),
        ("/api/v1/enterprises", {"offset": HUGE}, "admin", "offset"),
        ("/api/v1/log/checkpoints", {"before": HUGE}, None, "before"),
        ("/api/v1/log/checkpoints", {"before": "-5"}, None, "before"),
        ("/api/v1/log/checkpoints", {"limit": HUGE}, None, "limit"),
        ("/api/v1/log/consistency", {"first": HUGE, "second": "1"}, None, "first"),
        ("/api/v1/log/consistency", {"first": "1", "second": HUGE}, None, "second"),
        ("/api/v1/log/consistency", {"first": "1", "second": "٣"}, None, "second"),
    ],
)
async def test_integers_beyond_64_bits_are_refused(
    world: World, path: str, params: dict[str, str], token: str | None, field: str
) -> None:
    status, data = await get(world, path, world.admin if token else None, **params)
    assert status == 422, data
    assert_error(data, "invalid_field", field)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/api/v1/admin/devices/{HUGE}/revoke"),
        ("POST", f"/api/v1/admin/devices/{HUGE}/enrolment"),
        ("GET", f"/api/v1/admin/devices/{HUGE}/keys"),
        ("POST", f"/api/v1/admin/devices/{HUGE}/revoke-keys"),
    ],
)
async def test_ids_beyond_64_bits_in_paths_are_refused(world: World, method: str, path: str) -> None:
    resp = await world.client.request(method, path, headers=world.auth(world.admin))
    data = await resp.json()
    assert resp.status in (404, 422), data
    assert set(data["error"]) == {"code", "message", "request_id", "field"}


async def test_whole_numbers_in_bodies_stay_within_64_bits(world: World) -> None:
    data = await world.post(
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "1", "name": "x", "shelf_life_days": 2**70},
        expect=422,
    )
    assert_error(data, "invalid_field", "shelf_life_days")
    data = await world.post("/api/v1/stations/leases", {"blocks": 2**70}, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "blocks")


# -- dates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"until": "0001-01-01T00:00:00+14:00"}, "until"),
        ({"since": "2026-11-30T14+00:00"}, "since"),
        ({"since": "2026-11-30"}, "since"),
        ({"since": "2026-11-30T14:00:00+08:00\u0000"}, "since"),
    ],
)
async def test_dates_out_of_range_in_queries_are_refused(world: World, params: dict[str, str], field: str) -> None:
    status, data = await get(world, "/api/v1/anomalies", world.admin, **params)
    assert status == 422, data
    assert_error(data, "invalid_field", field)


async def test_dates_in_bodies_have_a_range(world: World) -> None:
    for key, value in [("produced_on", "0001-01-01"), ("expires_on", "9999-12-31"), ("produced_on", "1999-12-31")]:
        body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 1, "uom": "KGM"}, key: value}
        data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
        assert_error(data, "invalid_field", key)


# -- ids in paths ---------------------------------------------------------------------------------


async def test_a_malformed_event_id_in_the_signatures_path_is_refused(world: World) -> None:
    resp = await world.client.get("/api/v1/admin/events/not-a-uuid/signatures", headers=world.auth(world.admin))
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_field", "event_id", "UUID")
    resp = await world.client.get(f"/api/v1/admin/events/{new_id()}/signatures", headers=world.auth(world.admin))
    assert resp.status == 200 and (await resp.json()) == {"items": []}


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.NumericValueOutOfRangeError("value overflows numeric format"),
        asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.DatetimeFieldOverflowError("date/time field value out of range"),
    ],
)
def test_a_value_the_database_cannot_store_is_still_a_422(error: Exception) -> None:
    """Behind every bound, a safety net: were one missing, the client would get a 422, not a 500."""
    translated = translate(error)
    assert isinstance(translated, errors.InvalidField) and translated.status == 422
