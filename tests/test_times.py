"""Times are RFC 3339 only, offsets agree, and an event is not dated long before its batch was opened.

Late syncs keep their real times: a station that recorded offline uploads hours or days later, and
what it recorded is dated when it happened, not when it arrived.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import World, new_id
from tests.test_api_errors import assert_error
from traceability.domain import bounds, tracecode
from traceability.ledger import chain

CHINA = timezone(timedelta(hours=8))


def at(hours_ago: float, tz: timezone = CHINA) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).astimezone(tz).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    "raw",
    [
        "20261130T140933+0000",  # ISO 8601 basic format
        "2026-W48-1T12:00:00+00:00",  # week date
        "2026-11-30T14+00:00",  # hour only
        "2026-11-30T14:09+00:00",  # no seconds
        "2026-11-30T14:09:33+0800",  # offset without its colon
        "2026-11-30T14:09:33+08",  # offset without minutes
        "2026-11-30 14:09:33+08:00",  # a space for the T
        "2026-11-30T14:09:33",  # no offset
        "2026-11-30",  # a date
        "2026-334T14:09:33+08:00",  # ordinal date
        "2026-11-30T24:00:00+08:00",  # hour 24
        "2026-02-30T10:00:00+08:00",  # no such day
        "2026-11-30T14:09:33+15:00",  # no such offset
        "２０２６-11-30T14:09:33+08:00",  # full-width digits
        "1999-12-31T23:59:59Z",  # before the documented range
    ],
)
def test_only_rfc_3339_is_accepted(raw: str) -> None:
    with pytest.raises(bounds.TimeFormatError):
        bounds.parse_rfc3339(raw)


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("2026-11-30T14:09:33+08:00", "2026-11-30T06:09:33+00:00"),
        ("2026-11-30T06:09:33Z", "2026-11-30T06:09:33+00:00"),
        ("2026-11-30t06:09:33z", "2026-11-30T06:09:33+00:00"),
        ("2026-11-30T06:09:33.1234Z", "2026-11-30T06:09:33.123400+00:00"),
        ("2026-11-30T06:09:33.123456789-05:30", "2026-11-30T11:39:33.123456+00:00"),
    ],
)
def test_rfc_3339_forms(raw: str, utc: str) -> None:
    assert bounds.parse_rfc3339(raw).astimezone(UTC).isoformat() == utc


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 31), timezones=st.just(CHINA)))
def test_every_time_python_writes_in_rfc_3339_reads_back(moment: datetime) -> None:
    assert bounds.parse_rfc3339(moment.isoformat()) == moment


@pytest.mark.parametrize("raw", ["20261130T140933+0000", "2026-W48-1T12:00:00+00:00", "2026-11-30T14+00:00"])
async def test_capture_refuses_other_time_forms(world: World, raw: str) -> None:
    code = await world.open_batch()
    data = await world.post("/api/v1/events", world.event(code, eventTime=raw), world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "eventTime", "RFC 3339")
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 1, "uom": "KGM"}, "eventTime": raw}
    data = await world.post("/api/v1/batches", body, world.devices["slaughter"], expect=422)
    assert_error(data, "invalid_field", "eventTime", "RFC 3339")


async def test_the_offset_must_agree_with_eventTimeZoneOffset(world: World) -> None:
    code = await world.open_batch()
    device = world.devices["slaughter"]
    clash = world.event(code, eventTime=at(1), eventTimeZoneOffset="+09:00")
    data = await world.post("/api/v1/events", clash, device, expect=422)
    assert_error(data, "invalid_field", "eventTimeZoneOffset", "+08:00")
    # UTC with the zone it happened in is how EPCIS writes it; a local time with its own offset agrees.
    await world.post(
        "/api/v1/events", world.event(code, eventTime=at(1, UTC), eventTimeZoneOffset="+08:00"), device, expect=201
    )
    await world.post(
        "/api/v1/events", world.event(code, eventTime=at(1), eventTimeZoneOffset="+08:00"), device, expect=201
    )
    stored = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    assert [e["eventTimeZoneOffset"] for e in stored["events"][1:]] == ["+08:00", "+08:00"]


async def test_an_event_long_before_its_batch_was_opened_is_refused(world: World) -> None:
    device = world.devices["slaughter"]
    code = await world.open_batch(eventTime=at(2))
    data = await world.post(
        "/api/v1/events", world.event(code, eventTime="2001-03-04T10:00:00+08:00"), device, expect=422
    )
    assert_error(data, "invalid_field", "eventTime", "before the batch was opened")
    data = await world.post(
        "/api/v1/events", {"events": [world.event(code), world.event(code, eventTime=at(27))]}, device, expect=422
    )
    assert_error(data, "invalid_field", "events[1].eventTime", "24 hours")
    # A device clock a few hours off is within the tolerance.
    await world.post("/api/v1/events", world.event(code, eventTime=at(20)), device, expect=201)


OPENED = """
SELECT h.opened_at, o.event_time FROM batches b JOIN batch_heads h ON h.batch_id = b.id
     LEFT JOIN events o ON o.batch_id = b.id AND o.seq = 1
WHERE b.trace_code = $1
"""


async def test_the_opening_time_kept_on_the_head_is_the_first_events(
    world: World, superuser: asyncpg.Connection
) -> None:
    """The capture statement compares with the opening time kept on the chain head (schema 0027). A head
    written without it (an EPCIS or handover opening) has it read from the first event,
    and gets it when the statement writes that first event: the bound is the same whichever way."""
    device = world.devices["slaughter"]
    code = await world.open_batch(eventTime=at(2))
    row = await superuser.fetchrow(OPENED, code)
    assert row["opened_at"] == row["event_time"]

    await superuser.execute(
        "UPDATE batch_heads h SET opened_at = NULL FROM batches b WHERE b.id = h.batch_id AND b.trace_code = $1", code
    )
    data = await world.post("/api/v1/events", world.event(code, eventTime=at(27)), device, expect=422)
    assert_error(data, "invalid_field", "eventTime", "before the batch was opened")
    await world.post("/api/v1/events", world.event(code, eventTime=at(20)), device, expect=201)

    # A head with no event yet (seq 0), held by the scanner's node: its first event sets the opening time.
    empty = tracecode.make("320311", 4_999_999_999_999)
    await superuser.execute(
        """
        WITH b AS (
            INSERT INTO batches (trace_code, product_id, node_id, open_event_id, open_digest, quantity, uom)
            SELECT $1, p.id, n.id, gen_random_uuid(), $2, 1, 'KGM'
            FROM products p, nodes n WHERE p.goods_code = '21113011' AND n.code = $3
            RETURNING id, node_id
        ), h AS (INSERT INTO batch_heads (batch_id, seq, head_hash) SELECT id, 0, $2 FROM b)
        INSERT INTO batch_custody (batch_id, node_id, relation, since) SELECT id, node_id, 'holder', now() FROM b
        """,
        empty,
        chain.genesis(empty),
        world.nodes["slaughter"],
    )
    first = world.event(empty, "storing", eventTime=at(3))
    assert (await world.post("/api/v1/events", first, device, expect=201))["seq"] == 1
    row = await superuser.fetchrow(OPENED, empty)
    assert row["opened_at"] == row["event_time"] == datetime.fromisoformat(first["eventTime"])
    data = await world.post("/api/v1/events", world.event(empty, eventTime=at(28)), device, expect=422)
    assert_error(data, "invalid_field", "eventTime", "before the batch was opened")


async def test_a_late_sync_keeps_its_real_times(world: World) -> None:
    """A station offline for three days uploads its opening and its sales, each dated when it happened."""
    device = world.devices["market"]
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 30, "uom": "KGM"}, "eventTime": at(72)}
    code = (await world.post("/api/v1/batches", body, device, expect=201))["traceCode"]
    sales = [
        world.event(code, "retail_selling", eventTime=at(71 - i), quantity={"value": 1, "uom": "KGM"}) for i in range(3)
    ]
    await world.post("/api/v1/events", {"events": sales}, device, expect=201)
    stored = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    sent = [datetime.fromisoformat(e["eventTime"]) for e in sales]
    assert [datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")) for e in stored["events"][1:]] == sent


async def test_a_transformation_is_not_dated_before_its_inputs(world: World) -> None:
    device = world.devices["slaughter"]
    carcass = await world.open_batch(eventTime=at(1))
    body: dict[str, Any] = {
        "eventID": new_id(),
        "eventTime": at(48),
        "inputs": [{"traceCode": carcass, "quantity": {"value": 90.5, "uom": "KGM"}}],
        "outputs": [{"product": "21113011", "quantity": {"value": 90, "uom": "KGM"}}],
    }
    data = await world.post("/api/v1/transformations", body, device, expect=422)
    assert_error(data, "invalid_field", "eventTime", carcass)
    # Its outputs open at the transformation's time, so their sales may follow at once.
    body.update(eventID=new_id(), eventTime=at(0.5))
    child = (await world.post("/api/v1/transformations", body, device, expect=201))["outputs"][0]["traceCode"]
    await world.post("/api/v1/events", world.event(child, "shipping", eventTime=at(0.4)), device, expect=201)


async def test_query_times_are_rfc_3339_within_range(world: World) -> None:
    headers = world.auth(world.admin)
    ok = await world.client.get("/api/v1/anomalies", params={"since": "2026-11-01T00:00:00+08:00"}, headers=headers)
    assert ok.status == 200
    for raw in ["2026-11-01", "20261101T000000Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]:
        resp = await world.client.get("/api/v1/anomalies", params={"until": raw}, headers=headers)
        assert resp.status == 422
        assert_error(await resp.json(), "invalid_field", "until")
