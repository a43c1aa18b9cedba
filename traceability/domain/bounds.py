"""The bounds on what a client may send, declared once as data.

The validators in this package, the HTTP layer's query and path checks and the OpenAPI document all
read these values, and README's "Limits on input" table lists them, so a bound changes in one place.

- **Decimals** (:class:`Number`): a range, at most :data:`MAX_DIGITS` significant digits and a number
  of decimal places per field, so ``1e1000000`` and ``1e-999999`` (a megabyte of digits once written
  out canonically) are refused before anything computes with them.
- **Whole numbers** fit in a signed 64-bit integer (:data:`INT64_MAX`), what PostgreSQL's ``bigint`` holds.
- **Text** refuses :func:`bad_character`: control characters (NUL, C0, DEL, C1), Unicode format
  characters (bidirectional overrides and isolates, zero-width spaces and joiners, the BOM), line and
  paragraph separators, surrogates and private-use characters. None of them belongs in a name, a
  code or a certificate number, and each can make two different records read alike.
- **Times** are RFC 3339 with an offset and lie between :data:`EARLIEST` and :data:`LATEST`; dates
  (``YYYY-MM-DD``) between :data:`FIRST_DAY` and :data:`LAST_DAY`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

MAX_DIGITS = 18
"""Significant digits a decimal may carry (what an int64 or a numeric(18, s) column holds exactly)."""
MAX_NUMBER_TEXT = 40
"""Characters a number sent as a JSON string may have, before it is parsed at all."""
INT64_MAX = 2**63 - 1

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No event, query time or declaration is earlier (a scale whose clock battery died says 1970 or 2000)."""
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""No query time is later; event times are also at most :data:`MAX_FUTURE` ahead of the server's clock."""
MAX_FUTURE = timedelta(minutes=5)
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
OPENING_TOLERANCE = timedelta(hours=24)
"""How much earlier than its batch's opening an event may be dated: clocks of offline stations and
devices set to the wrong zone disagree by hours; a date years before the opening is an error."""


@dataclass(frozen=True, slots=True)
class Number:
    """A decimal field's bounds: ``lo <= value <= hi`` with at most ``places`` decimal places."""

    lo: Decimal
    hi: Decimal
    places: int
    digits: int = MAX_DIGITS

    def problem(self, value: Decimal) -> str | None:
        """Why ``value`` is out of bounds, or None. Safe on any finite Decimal, however large its exponent."""
        if not value.is_finite():
            return "must be a finite number"
        if value < self.lo or value > self.hi:
            if self.lo == 0 and value < 0:
                return "must not be negative"
            return f"must be between {_plain(self.lo)} and {_plain(self.hi)}"
        if value == 0:
            return None
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite
        trailing = _trailing_zeros(digits)
        places = max(0, -(exponent + trailing))
        if places > self.places:
            return f"has {places} decimal places; at most {self.places} are kept"
        if len(digits) - trailing > self.digits:
            return f"has more than {self.digits} significant digits"
        return None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this field: a JSON number or a decimal string."""
        return {
            "oneOf": [
                {"type": "number", "minimum": float(self.lo), "maximum": float(self.hi)},
                {"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": MAX_NUMBER_TEXT},
            ],
            "description": f"{_plain(self.lo)} to {_plain(self.hi)}, at most {self.places} decimal places "
            f"and {self.digits} significant digits; a JSON number or a decimal string",
        }


def _trailing_zeros(digits: tuple[int, ...]) -> int:
    n = 0
    for d in reversed(digits):
        if d != 0:
            break
        n += 1
    return n


def _plain(value: Decimal) -> str:
    return f"{value:f}" if value == value.to_integral_value() else str(value)


DECIMAL_PATTERN = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"

QUANTITY = Number(Decimal(0), Decimal(10**12), 6)
"""A batch's or an event's quantity: up to a million tonnes in kilograms, to the milligram."""
UNIT_PRICE = Number(Decimal(0), Decimal(10**9), 4)
AMOUNT = Number(Decimal(0), Decimal(10**12), 4)
LATITUDE = Number(Decimal(-90), Decimal(90), 8)
LONGITUDE = Number(Decimal(-180), Decimal(180), 8)
MEASURE = Number(Decimal(-(10**15)), Decimal(10**15), 12)
"""Numbers in ``attributes`` (a residue of 0.086 mg/kg, a temperature, a count)."""

# Text lengths, in characters.
NAME = 200
"""Names of enterprises, nodes, products, operators, devices, parties, buyers, producers, places."""
CODE = 40
"""Node, operator and package codes."""
DOCUMENT_NUMBER = 64
LONG_TEXT = 500
"""A recall's reason and scope."""
ADDRESS = 400
ATTRIBUTE_TEXT = 2000
QUERY_TEXT = 100
"""A free-text query parameter (a filter by code, name or key)."""
MAX_QUERY_VALUE = 1000
"""Any query parameter or path segment, before its route looks at it."""

# Lists and objects.
MAX_LIST = 100
MAX_DOCUMENTS = 20
MAX_ATTRIBUTE_KEYS = 100
MAX_ATTRIBUTE_ITEMS = 200
MAX_ATTRIBUTE_DEPTH = 4
MAX_PAGE = 1000
"""The largest ``limit`` of a paged list."""

_BAD = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # Cc: C0, DEL, C1
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"  # Cf
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"  # Cf: zero-width, bidi, BOM
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"  # Cf
    "\U000e0001\U000e0020-\U000e007f"  # Cf: tags
    "\u2028\u2029"  # Zl, Zp
    "\ud800-\udfff"  # Cs
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"  # Co
    "]"
)


TEXT_PATTERN = (
    "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891"
    "\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\u2028\\u2029"
    "\\ufeff\\ufff9-\\ufffb\\ud800-\\uf8ff]*$"
)
"""The same refusal as a JSON Schema pattern (the characters of the Basic Multilingual Plane)."""


def bad_character(text: str) -> str | None:
    """A description of the first character text fields refuse (``U+202E``), or None if there is none."""
    found = _BAD.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X}"


def text_problem(text: str, max_len: int) -> str | None:
    """Why ``text`` is not acceptable in a field of at most ``max_len`` characters, or None."""
    if len(text) > max_len:
        return f"must be at most {max_len} characters"
    if text.isascii() and text.isprintable():
        return None  # the only refused characters below U+0080 are C0 and DEL, which are not printable
    found = _BAD.search(text)
    if found is not None:
        return (
            "must not contain control or invisible formatting characters "
            f"(found U+{ord(found.group()):04X} at position {found.start()})"
        )
    return None


def whole_problem(value: int, lo: int = 0, hi: int = INT64_MAX) -> str | None:
    """Why a whole number is out of ``lo..hi`` (by default a non-negative 64-bit integer), or None."""
    if value < lo or value > hi:
        return f"must be a whole number from {lo} to {hi}"
    return None


_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
_RFC3339_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class TimeFormatError(ValueError):
    """Not an RFC 3339 time, or outside the documented range; the message says which."""


@functools.lru_cache(maxsize=65_536)
def parse_rfc3339(raw: str) -> datetime:
    """``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`` as an aware datetime (cached: uploads repeat times).

    Only RFC 3339's internet date-time: basic formats (``20261130T140933+0000``), week dates
    (``2026-W48-1``), truncated times (``2026-11-30T14+00:00``) and local times are refused.
    Fractions beyond microseconds are cut to microseconds (the ledger keeps milliseconds).
    """
    match = _RFC3339.fullmatch(raw)
    if match is None:
        if _RFC3339_LOCAL.fullmatch(raw):
            raise TimeFormatError("must include a time zone offset such as +08:00 (or Z for UTC)")
        raise TimeFormatError("must be an RFC 3339 time such as 2026-11-22T08:30:00+08:00")
    day, time, fraction, zone = match.groups()
    utc = zone in ("Z", "z")
    if not utc and not OFFSET.fullmatch(zone):
        raise TimeFormatError("has an offset outside -14:00..+14:00")
    if raw[10] == "T" and zone != "z" and (fraction is None or len(fraction) <= 7):
        text = raw  # already a form fromisoformat reads alike
    else:
        text = f"{day}T{time}{(fraction or '')[:7]}{'+00:00' if utc else zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TimeFormatError("is not a real date and time (check the month, day and hour)") from None
    if moment < EARLIEST or moment >= LATEST:
        raise TimeFormatError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return moment


OFFSET = re.compile(r"[+-](?:0\d|1[0-3]):[0-5]\d|[+-]14:00")


def parse_day(raw: str) -> date:
    """``YYYY-MM-DD`` between :data:`FIRST_DAY` and :data:`LAST_DAY`."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise TimeFormatError("must be a date such as 2026-11-22")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise TimeFormatError("is not a real date (check the month and day)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise TimeFormatError(f"must lie between {FIRST_DAY} and {LAST_DAY}")
    return day
