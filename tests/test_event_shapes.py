"""The compiled pass over capture events (traceability/domain/event_shapes.py) against the field reader it
speeds up: whatever the pass takes, the reader takes too, with the very same draft; whatever the reader
refuses or normalises, the pass leaves to it. Pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.domain import event_shapes, events
from traceability.domain.event_shapes import quick_event
from traceability.domain.events import parse_event, read_event
from traceability.domain.fields import FieldError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CODE = "32031100000000000010"
ID = "6f1c2a3e-1111-4c1d-9d2f-0a1b2c3d4e5f"
ABSENT = object()


def test_the_structs_have_exactly_the_members_the_reader_knows() -> None:
    def members(struct: type[msgspec.Struct]) -> frozenset[str]:
        return frozenset(struct.__struct_fields__)

    assert members(event_shapes.EventShape) == events.EVENT_FIELDS
    assert members(event_shapes.QuantityShape) == events.QUANTITY_FIELDS
    assert members(event_shapes.PartyShape) == events.PARTY_FIELDS
    assert members(event_shapes.DocumentShape) == events.DOCUMENT_FIELDS
    assert members(event_shapes.CommercialShape) == events.COMMERCIAL_FIELDS


SCANS = [
    {  # a wet market receiving, as bench/workloads.py sends it
        "eventID": ID,
        "type": "ObjectEvent",
        "traceCode": CODE,
        "bizStep": "receiving",
        "eventTime": "2026-11-30T18:30:00.123+08:00",
        "quantity": {"value": 45.25, "uom": "KGM"},
        "documents": [
            {"type": "quarantine_certificate", "number": "A320302-2026-0012345", "issuer": "徐州市动物卫生监督所"}
        ],
    },
    {  # a stall's sale: prices sealed, a buyer, attributes
        "eventID": ID,
        "traceCode": CODE,
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        "eventTime": "2026-11-30T10:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "operator": "320311000001-03",
        "quantity": {"value": "2.500", "uom": "KGM"},
        "commercial": {"unit_price": 26.8, "amount": "67", "buyer": "徐州市第一中学食堂"},
        "destination": {"enterprise": "91320302MA1XW0042K", "name": "食堂"},
        "attributes": {"test": "pesticide", "result": "pass", "value": 0.086, "items": [1, True, None]},
    },
    {  # shipping with a source and a commercial block that names only its currency
        "eventID": ID,
        "type": "TransactionEvent",
        "traceCode": CODE,
        "bizStep": "shipping",
        "action": "OBSERVE",
        "disposition": "in_transit",
        "eventTime": "2026-11-30T06:00:00-05:30",
        "source": {"node": "320311000001"},
        "commercial": {"currency": "USD"},
        "documents": [],
        "attributes": {},
    },
]


@pytest.mark.parametrize("scan", SCANS)
def test_the_usual_scans_take_the_compiled_pass_and_read_the_same(scan: dict[str, Any]) -> None:
    quick = quick_event(scan, NOW)
    assert quick is not None
    assert quick == read_event(scan, "", NOW) == parse_event(scan, "", NOW)


# For each member: values the pass should take, values only the reader takes (normalised), and refusals.
CHOICES: dict[str, list[Any]] = {
    "eventID": [ID, ID.upper(), f"urn:uuid:{ID}", f" {ID}", "not-a-uuid", 7, None],
    "type": [ABSENT, "ObjectEvent", "TransactionEvent", "AggregationEvent", "", " ObjectEvent", "Event", None],
    "traceCode": [CODE, "3203 1100 0000 0000 0010", "32031100000000000011", f"{CODE} ", 3.5, None],
    "bizStep": ["receiving", "shipping", "urn:epcglobal:cbv:bizstep:receiving", "commissioning", "destroying", "x", ""],
    "action": [ABSENT, "ADD", "OBSERVE", "DELETE", "", "add", None],
    "eventTime": [
        "2026-11-30T18:30:00.123+08:00",
        "2026-11-30T10:30:00Z",
        "2026-11-30t10:30:00.123456789z",
        "2026-11-30T10:30:00-00:00",
        "2026-11-30T10:30:00",
        "2026-11-30T23:30:00+08:00",  # in the future
        "1999-12-31T23:59:59Z",
        " 2026-11-30T10:30:00Z",
        "2026-02-30T10:30:00Z",
    ],
    "eventTimeZoneOffset": [ABSENT, "+08:00", "+00:00", "-05:30", "+14:00", "+15:00", "", " +08:00", "8", None],
    "disposition": [ABSENT, "active", "urn:epcglobal:cbv:disp:in_transit", "nope", "", None],
    "node": [ABSENT, "320311000001", "", " 320311000001", "x" * 41, "a\u202eb", 5, None],
    "operator": [ABSENT, "320311000001-03", "y" * 40, "   ", "y" * 41, None],
    "quantity": [
        ABSENT,
        {"value": 45.25, "uom": "KGM"},
        {"value": "12.500", "uom": "EA"},
        {"value": " 3 ", "uom": "KGM"},
        {"value": 0, "uom": "KGM"},
        {"value": -1, "uom": "KGM"},
        {"value": 1e13, "uom": "KGM"},
        {"value": "0.0000001", "uom": "KGM"},
        {"value": True, "uom": "KGM"},
        {"value": 2, "uom": "kg"},
        {"value": 2},
        {"value": 2, "uom": "KGM", "extra": 1},
        [],
        None,
    ],
    "source": [
        ABSENT,
        {"node": "320311000001"},
        {"name": " 名 "},
        {},
        {"name": ""},
        {"city": "x"},
        {"name": "z" * 201},
    ],
    "documents": [
        ABSENT,
        [],
        [{"type": "invoice", "number": "1"}],
        [{"type": "invoice", "number": "1", "issuer": "某某"}],
        [{"type": "invoice", "number": " 1"}],
        [{"type": "receipt", "number": "1"}],
        [{"type": "invoice", "number": "1", "issuer": None}],
        [{"type": "invoice", "number": "1"}] * 21,
        [{"type": "invoice"}],
        [7],
        {"type": "invoice"},
        None,
    ],
    "commercial": [
        ABSENT,
        {"unit_price": 26.8, "amount": 67},
        {"currency": "CNY"},
        {"currency": "cny"},
        {"currency": ""},
        {"buyer": "某人"},
        {},
        {"unit_price": "1e10"},
        {"amount": 1.23456},
        {"unit_price": None, "currency": None},
        None,
    ],
    "attributes": [
        ABSENT,
        {},
        {"a": 1, "b": "x", "c": [1.5, {"d": None}]},
        {"1a": 1},
        {"a": 2**70},
        {"a": 1e300},
        {"a": [[[[[1]]]]]},
        {"a": "\u202e"},
        [],
        None,
    ],
    "extra": [ABSENT, ABSENT, ABSENT, "x"],
    "errorDeclaration": [ABSENT, ABSENT, ABSENT, None, {"reason": "did_not_occur", "declaredEventID": ID}],
    "parentID": [ABSENT, ABSENT, ABSENT, "PARENT0001", None],
}


TAKEN = {  # how many of each member's first choices the compiled pass takes as they stand
    "eventID": 1,
    "type": 3,
    "traceCode": 1,
    "bizStep": 2,
    "action": 4,
    "eventTime": 2,
    "eventTimeZoneOffset": 2,
    "disposition": 2,
    "node": 2,
    "operator": 3,
    "quantity": 3,
    "source": 2,
    "documents": 4,
    "commercial": 3,
    "attributes": 3,
    "extra": 1,
    "errorDeclaration": 1,
    "parentID": 1,
}


@st.composite
def scans(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly members the pass takes, each one odd one time in ten, so both ways are walked often."""
    chosen = {}
    for key, values in CHOICES.items():
        odd = draw(st.integers(0, 9)) == 0
        chosen[key] = draw(st.sampled_from(values if odd else values[: TAKEN[key]]))
    return {key: value for key, value in chosen.items() if value is not ABSENT}


def _read(raw: Any) -> events.EventDraft | str:
    try:
        return read_event(raw, "", NOW)
    except FieldError as exc:
        return f"refused: {exc}"


@given(scans())
def test_what_the_pass_takes_the_reader_takes_alike(raw: dict[str, Any]) -> None:
    quick = quick_event(raw, NOW)
    if quick is not None:
        assert _read(raw) == quick


def test_the_members_marked_taken_are_taken() -> None:
    for key, values in CHOICES.items():
        for value in values[: TAKEN[key]]:
            raw = dict(SCANS[0])
            if value is ABSENT:
                raw.pop(key, None)
            else:
                raw[key] = value
            assert quick_event(raw, NOW) is not None, (key, value)


@given(scans())
def test_parse_event_is_the_field_reader(raw: dict[str, Any]) -> None:
    """Taken or refused, with the same draft or the same message, whichever way it went."""
    try:
        result: events.EventDraft | str = parse_event(raw, "", NOW)
    except FieldError as exc:
        result = f"refused: {exc}"
    assert result == _read(raw)


def test_not_an_object_is_the_readers_to_refuse() -> None:
    for raw in ([], "event", 3, None):
        assert quick_event(raw, NOW) is None
        with pytest.raises(FieldError, match="must be a JSON object"):
            parse_event(raw, "events[0].", NOW)
