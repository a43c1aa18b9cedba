"""An event's quantities as the ledger reads them: canonical decimal text, and the same refusal every time a
refused value comes again (the values seen are remembered)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from traceability.epcis.events import EventError, facets

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def event(quantity: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-30T19:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "quantityList": [{"epcClass": "urn:epc:class:lgtin:6901234.000001.L1", "quantity": quantity, "uom": "KGM"}],
    }


@pytest.mark.parametrize(
    ("quantity", "text"), [(45.25, "45.25"), (200, "200"), (2.5e3, "2500"), (0.0, "0"), (1e-7, "0.0000001")]
)
def test_quantities_read_as_canonical_decimal_text(quantity: Any, text: str) -> None:
    for _ in range(2):  # the first reading and the remembered one agree
        assert facets(event(quantity), NOW).what[0].quantity == text


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (-1, "must be a finite number, not negative"),
        (-0.5, "must be a finite number, not negative"),
        (1e13, "is implausibly large (at most 10^12)"),
        (10**13, "is implausibly large (at most 10^12)"),
    ],
)
def test_a_refused_quantity_is_refused_each_time_with_its_place(quantity: Any, message: str) -> None:
    for _ in range(2):
        with pytest.raises(EventError) as caught:
            facets(event(quantity), NOW)
        assert caught.value.field == "quantityList[0].quantity" and caught.value.message == message


def test_an_event_time_past_five_minutes_ahead_is_refused() -> None:
    late = dict(event(1), eventTime="2026-11-30T12:06:00Z")
    with pytest.raises(EventError, match="more than five minutes in the future"):
        facets(late, NOW)
    assert facets(dict(late, eventTime="2026-11-30T12:04:59Z"), NOW).event_time.minute == 4
