"""The exact reader (msgspec) gives what the standard library's reader gives, number texts included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from traceability.epcis import document

EXAMPLES = sorted((Path(__file__).parent / "epcis" / "examples").glob("*.json*"))


def _reference(data: bytes | str) -> Any:
    return json.loads(data, parse_float=document.Number, parse_constant=document._refuse_constant)


def _shape(value: Any) -> Any:
    """Values with their types and, for numbers with a fraction or exponent, their text."""
    if isinstance(value, document.Number):
        return ("Number", value.text)
    if isinstance(value, dict):
        return ("dict", [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_shape(v) for v in value])
    return (type(value).__name__, value)


CASES = [
    b'{"a": 1, "a": 2, "b": 3}',
    b"[18446744073709551615, -9223372036854775808, 18446744073709551616, -0]",
    b"[-0.0, 1e-400, 26.50, 1.0E2, 0.1, 1e5, -1e+5, 1.5e308, 123456789012345678901234567890.5]",
    '["\\ud83d\\ude00", "\\u00e9", "\u4e2d", "\\/", "a\\nb"]'.encode(),
    b' {"x": [ ] , "y" : {} , "z": [true, false, null]} ',
]


@pytest.mark.parametrize("data", CASES + [p.read_bytes() for p in EXAMPLES])
def test_the_exact_reader_matches_the_standard_library(data: bytes) -> None:
    assert _shape(document.loads_exact(data)) == _shape(_reference(data))
    assert _shape(document.loads_exact(data.decode())) == _shape(_reference(data.decode()))


@pytest.mark.parametrize("data", [b'["\\ud800"]', b"[NaN]", b"[1e400]", b"[1, 2"])
def test_what_msgspec_refuses_is_decided_as_before(data: bytes) -> None:
    try:
        expected: Any = _shape(_reference(data))
    except ValueError as exc:
        with pytest.raises(type(exc)):
            document.loads_exact(data)
        return
    assert _shape(document.loads_exact(data)) == expected


def _old_texts(body: bytes) -> list[str]:
    _, events = document._events_of(_reference(body))
    return [document.dumps_exact(e) for e in events]


def _compact(value: Any) -> bytes:
    return orjson.dumps(value)


VARIANTS = [
    # (body, parsed once)
    (b'{"a":[1.5,45.25,3.0,-0.0,100000.0,1e+16,1e-7]}', True),
    (b'{"a":[1e16]}', False),
    (b'{"a":[26.50]}', False),
    (b'{"a":[1E5]}', False),
    (b'{"a": [1.5]}', False),
    (b'{"a":["\\u00e9"]}', False),
    (b'{"a":[18446744073709551616]}', False),
    (b'{"a":1,"a":2}', False),
]


@pytest.mark.parametrize(("body", "once"), VARIANTS)
def test_a_compact_body_is_its_own_exact_values(body: bytes, once: bool) -> None:
    plain = orjson.loads(body)
    exact = document._exact_values(body, plain)
    assert (exact is plain) is once
    if once:
        assert document.dumps_exact(exact) == document.dumps_exact(_reference(body))
    else:
        assert _shape(exact) == _shape(_reference(body))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_read_stores_the_same_texts_whether_the_body_is_compact_or_not(path: Path) -> None:
    raw = path.read_bytes()
    for body in (raw, _compact(orjson.loads(raw))):
        try:
            received = document.read(body, single_event=document._events_of(orjson.loads(body))[0] == "event")
        except document.DocumentError:
            continue
        texts = _old_texts(body)
        assert [document.dumps_exact(exact) for _, _, exact in received.events] == [
            texts[i] for i, _, _ in received.events
        ]


@pytest.mark.parametrize(("number", "accepted"), [(18446744073709551615, True), (18446744073709551616, False)])
def test_an_integer_past_64_bits_is_refused_naming_its_event(number: int, accepted: bool) -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-21T06:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2018"],
        "example:count": number,
    }
    body = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"example": "http://ex.com/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-21T06:00:00+08:00",
        "epcisBody": {"eventList": [dict(event, **{"example:count": 1}), event]},
    }
    data = json.dumps(body).encode()
    if accepted:  # stored and hashed as it was written
        assert f'"example:count":{number}' in document.dumps_exact(document.read(data).events[1][2])
        return
    with pytest.raises(document.DocumentError) as refused:
        document.read(data)
    assert [(p.path, p.message) for p in refused.value.problems] == [
        ("epcisBody.eventList[1]", "holds an integer beyond 64 bits; send it as a decimal or a string")
    ]
