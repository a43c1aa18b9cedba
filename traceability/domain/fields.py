"""Field-by-field validation of JSON bodies, with errors that name the field and the problem.

Domain code raises :class:`FieldError`; the service layer turns it into a 422 for the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

from traceability.domain import bounds

T = TypeVar("T")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class FieldError(ValueError):
    """``field`` (a path such as ``events[3].quantity.value``) is missing or wrong; ``message`` says how."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number or numeric string as a Decimal, or None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # shortest repr: 12.1 stays 12.1
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def decimal_text(value: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros, ``0`` not ``-0``."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


class Fields:
    """Reads typed fields from one JSON object; every failure names ``prefix + key``."""

    __slots__ = ("data", "prefix")

    def __init__(self, data: Any, prefix: str = "") -> None:
        self.prefix = prefix
        if not isinstance(data, Mapping):
            self.fail("", "must be a JSON object")
        self.data: Mapping[str, Any] = data

    def path(self, key: str) -> str:
        if not key:
            return self.prefix.rstrip(".") or "body"
        return f"{self.prefix}{key}"

    def fail(self, key: str, message: str) -> NoReturn:
        raise FieldError(self.path(key), message)

    def get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            self.fail(key, "is required")
        return value

    def text(self, key: str, *, required: bool = True, max_len: int = 200) -> Any:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string")
        value = value.strip()
        if not value:
            if required:
                self.fail(key, "must not be empty")
            return None
        if (problem := bounds.text_problem(value, max_len)) is not None:
            self.fail(key, problem)
        return value

    def choice(self, key: str, choices: Mapping[str, Any] | set[str] | frozenset[str], *, required: bool = True) -> Any:
        value = self.text(key, required=required, max_len=64)
        if value is not None and value not in choices:
            self.fail(key, f"must be one of: {', '.join(sorted(choices))}")
        return value

    def integer(
        self, key: str, *, required: bool = True, lo: int = -bounds.INT64_MAX - 1, hi: int = bounds.INT64_MAX
    ) -> Any:
        """A whole number in ``lo..hi`` (by default anything a signed 64-bit integer holds)."""
        value = self.get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be a whole number")
        if value < lo:
            self.fail(key, f"must be at least {lo}")
        if value > hi:
            self.fail(key, f"must be at most {hi}")
        return value

    def number(self, key: str, bound: bounds.Number, *, required: bool = True) -> Decimal | None:
        """A decimal within ``bound`` (range, decimal places, significant digits), from a JSON number or string."""
        value = self.get(key, required)
        if value is None:
            return None
        if isinstance(value, str) and len(value) > bounds.MAX_NUMBER_TEXT:
            self.fail(key, f"must be a number of at most {bounds.MAX_NUMBER_TEXT} characters")
        d = to_decimal(value)
        if d is None:
            self.fail(key, "must be a number")
        if (problem := bound.problem(d)) is not None:
            self.fail(key, problem)
        return d

    def obj(self, key: str, *, required: bool = True) -> Any:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.fail(key, "must be a JSON object")
        return value

    def array(self, key: str, *, required: bool = True, max_items: int = 100) -> Any:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(key, "must be a JSON array")
        if len(value) > max_items:
            self.fail(key, f"must have at most {max_items} items")
        return value

    def sub(self, key: str, *, required: bool = True) -> Fields | None:
        value = self.obj(key, required=required)
        return None if value is None else Fields(value, f"{self.path(key)}.")

    def only(self, known: frozenset[str]) -> None:
        """Refuse a member this object does not define: nothing a client sends is silently dropped."""
        if self.data.keys() <= known:
            return
        key = next(str(k) for k in self.data if k not in known)
        hint = " (EPCIS events with extension fields go to POST /epcis/capture, which keeps them)" if ":" in key else ""
        self.fail(key, f"is not a field this API knows; known here: {', '.join(sorted(known))}{hint}")

    def check(self, key: str, value: T, validator: Callable[[T], T]) -> T:
        try:
            return validator(value)
        except ValueError as exc:
            self.fail(key, str(exc))


_OFFSET_TEXTS: dict[timedelta, str] = {}


def offset_text(moment: datetime) -> str:
    """``+08:00``: the offset of an aware time (``+00:00`` for UTC and naive times)."""
    delta = moment.utcoffset() or timedelta(0)
    text = _OFFSET_TEXTS.get(delta)
    if text is None:
        minutes = int(delta.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        text = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        if len(_OFFSET_TEXTS) < 4096:  # a few dozen zones in use; the bound keeps odd offsets from piling up
            _OFFSET_TEXTS[delta] = text
    return text


def canonical_value(f: Fields, key: str, value: Any, depth: int) -> Any:
    """An ``attributes`` value in canonical form: text, booleans and null as they are, numbers bounded."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if (problem := bounds.text_problem(value, bounds.ATTRIBUTE_TEXT)) is not None:
            f.fail(key, problem)
        return value
    if isinstance(value, int):
        if (problem := bounds.whole_problem(value, -bounds.INT64_MAX - 1)) is not None:
            f.fail(key, problem)
        if abs(value) > 2**53:
            return str(value)
        return value
    if isinstance(value, float):
        d = to_decimal(value)
        if d is None:
            f.fail(key, "must be a finite number")
        if (problem := bounds.MEASURE.problem(d)) is not None:
            f.fail(key, problem)
        return decimal_text(d)
    if depth >= bounds.MAX_ATTRIBUTE_DEPTH:
        f.fail(key, f"nests too deep (at most {bounds.MAX_ATTRIBUTE_DEPTH} levels)")
    if isinstance(value, list):
        if len(value) > bounds.MAX_ATTRIBUTE_ITEMS:
            f.fail(key, f"must have at most {bounds.MAX_ATTRIBUTE_ITEMS} items")
        return [canonical_value(f, f"{key}[{i}]", v, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return canonical_object(f, key, value, depth + 1)
    f.fail(key, "has a value of an unsupported type")


def canonical_object(f: Fields, key: str, value: dict[str, Any], depth: int) -> dict[str, Any]:
    if len(value) > bounds.MAX_ATTRIBUTE_KEYS:
        f.fail(key, f"must have at most {bounds.MAX_ATTRIBUTE_KEYS} keys")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not _KEY.fullmatch(k):
            f.fail(f"{key}.{k}", "keys must start with a letter and hold only A-Z, a-z, 0-9 and _")
        out[k] = canonical_value(f, f"{key}.{k}", v, depth)
    return out


BEIJING = timezone(timedelta(hours=8))
"""Beijing time (China Standard Time, UTC+8, no daylight saving): the clock and calendar vendors and
regulators read, whose days expiry dates, harvests, credit months and exports are counted in."""


def utc_ms(moment: datetime) -> str:
    """UTC RFC 3339 with milliseconds and ``Z``: ``2026-11-22T03:04:05.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # without its "+00:00"
