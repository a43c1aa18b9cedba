"""The bounds themselves (traceability/domain/bounds.py), as pure functions: they never raise on what they judge,
what they accept has a short canonical form, and the refused characters are exactly the Unicode categories named."""

from __future__ import annotations

import re
import sys
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from traceability.domain import bounds, tracecode
from traceability.domain.events import parse_event
from traceability.domain.fields import decimal_text

BOUNDS = [bounds.QUANTITY, bounds.UNIT_PRICE, bounds.AMOUNT, bounds.LATITUDE, bounds.LONGITUDE, bounds.MEASURE]
REFUSED = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


@given(st.decimals(allow_nan=False, allow_infinity=False), st.sampled_from(BOUNDS))
def test_a_bound_judges_any_decimal_and_what_it_accepts_is_short(value: Decimal, bound: bounds.Number) -> None:
    if bound.problem(value) is None:
        text = decimal_text(value)
        assert len(text) <= 1 + 16 + 1 + bound.places  # sign, integer digits, point, places
        assert bound.lo <= Decimal(text) <= bound.hi and Decimal(text) == value


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-(10**6), max_value=10**6))
def test_huge_exponents_are_judged_without_arithmetic(digits: int, exponent: int) -> None:
    value = Decimal(f"{digits}e{exponent}")
    problem = bounds.QUANTITY.problem(value)
    if abs(exponent) > 20 and digits not in (0,):
        assert problem is not None


def test_places_and_digits() -> None:
    q = bounds.QUANTITY
    assert q.problem(Decimal("12.500000000")) is None  # trailing zeros are not places
    assert q.problem(Decimal("1E+3")) is None
    assert q.problem(Decimal("0.0000001")) == "has 7 decimal places; at most 6 are kept"
    assert q.problem(Decimal("123456789012.123456")) is None  # 18 digits: the most a decimal has
    assert bounds.MEASURE.problem(Decimal("1234567.123456789012")) == "has more than 18 significant digits"
    assert q.problem(Decimal("-0.5")) == "must not be negative"
    assert q.problem(Decimal("1e1000000")) == "must be between 0 and 1000000000000"


def test_refused_characters_are_exactly_the_categories_named() -> None:
    """Over every code point: the fast pattern and Unicode's own categories agree (unassigned ones aside)."""
    pattern = re.compile(bounds.TEXT_PATTERN)
    mismatched = []
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        if category == "Cn":
            continue
        refused = bounds.bad_character(char) is not None
        if refused != (category in REFUSED):
            mismatched.append(f"U+{cp:04X} {category}")
        if cp <= 0xFFFF and refused != (pattern.fullmatch(char) is None):
            mismatched.append(f"U+{cp:04X} pattern")
    assert mismatched == []


def test_text_problem_refuses_what_bad_character_finds() -> None:
    """Its shortcut for ASCII text must not let through a character the pattern refuses, alone or among others."""
    for cp in range(0x100):
        for text in (chr(cp), f"ab{chr(cp)}cd"):
            assert (bounds.text_problem(text, 200) is None) == (bounds.bad_character(text) is None), f"U+{cp:04X}"


def test_text_problems_name_the_character() -> None:
    assert bounds.text_problem("徐州\u202e肉联厂", 200) == (
        "must not contain control or invisible formatting characters (found U+202E at position 2)"
    )
    assert bounds.text_problem("x" * 201, 200) == "must be at most 200 characters"
    assert bounds.text_problem("王记鲜肉 A-012 (东门)", 200) is None


def test_event_ids_come_back_in_one_canonical_form() -> None:
    """Whatever way a client writes a UUID, the event records it lowercase with hyphens (the shortcut included)."""
    canonical = "0190f6a2-7c3e-7a1b-8c2d-3e4f5a6b7c8d"
    now = datetime(2026, 1, 20, tzinfo=UTC)
    for written in (canonical, canonical.upper(), f"urn:uuid:{canonical}", canonical.replace("-", "")):
        body = {"eventID": written, "traceCode": tracecode.make("320311", 7), "bizStep": "receiving"}
        draft = parse_event({**body, "eventTime": "2026-01-19T08:00:00+08:00"}, "", now)
        assert draft.event_id == draft.content["eventID"] == canonical
