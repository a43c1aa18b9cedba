"""Canonical bytes: the exact bytes that are stored and hashed.

JSON, UTF-8, object keys sorted, no insignificant whitespace, non-ASCII characters not escaped.
Object keys are ASCII. Values are only strings, integers, booleans, null, arrays and objects:
decimals travel as strings ("12.5") and times as UTC RFC 3339 strings with milliseconds and "Z",
so that no number formatting can differ between two implementations. See docs/ledger.md.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS


class CanonicalError(ValueError):
    """A value that has no canonical form (a float, a non-ASCII key, ...)."""


def encode(value: dict[str, Any]) -> bytes:
    """Return the canonical bytes of ``value`` (already reduced to canonical types)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError as exc:  # orjson raises its JSONEncodeError, a TypeError, on unsupported types
        raise CanonicalError(str(exc)) from None


def decode(data: bytes) -> dict[str, Any]:
    """Parse canonical bytes back into Python values."""
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise CanonicalError("canonical record is not a JSON object")
    return value


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` re-encodes to itself (what an auditor checks before hashing)."""
    try:
        return encode(decode(data)) == data
    except (CanonicalError, orjson.JSONDecodeError):
        return False
