"""Canonical bytes: the exact bytes that are stored and hashed.

JSON, UTF-8, object keys sorted, no insignificant whitespace, non-ASCII characters not escaped.
Object keys are ASCII. Values are only strings, integers, booleans, null, arrays and objects:
decimals travel as strings ("12.5") and times as UTC RFC 3339 strings with milliseconds and "Z",
so that no number formatting can differ between two implementations. See docs/ledger.md.

:func:`encode` refuses anything else (a float, a non-ASCII or non-string key, a tuple, a
``Decimal``) with :class:`CanonicalError`, so a value that has no canonical form never reaches
the hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

_plain: Callable[[Any], bool] | None
try:  # the walk compiled (traceability/_canonical.c), where the install could build it
    from traceability._canonical import plain as _plain
except ImportError:  # pragma: no cover - an install without a C compiler
    _plain = None

_OPTIONS = orjson.OPT_SORT_KEYS
_INT64 = 1 << 63


class CanonicalError(ValueError):
    """A value that has no canonical form (a float, a non-ASCII key, ...)."""


def _check(value: dict[str, Any]) -> None:
    """Walk ``value`` once (iteratively: nesting depth cannot exhaust the stack) and refuse the first
    value without a canonical form."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            for key, child in item.items():
                if type(key) is not str or not key.isascii():
                    raise CanonicalError(f"object key {key!r} is not an ASCII string")
                kind = type(child)
                if kind is str:
                    continue
                if kind is dict or kind is list:
                    stack.append(child)
                elif kind is int:
                    if not -_INT64 <= child < _INT64:
                        raise CanonicalError(f"{key}: integer outside the signed 64-bit range")
                elif kind is not bool and child is not None:
                    raise CanonicalError(f"{key}: a {kind.__name__} has no canonical form")
        else:  # a list
            for child in item:
                kind = type(child)
                if kind is str:
                    continue
                if kind is dict or kind is list:
                    stack.append(child)
                elif kind is int:
                    if not -_INT64 <= child < _INT64:
                        raise CanonicalError("integer outside the signed 64-bit range")
                elif kind is not bool and child is not None:
                    raise CanonicalError(f"a {kind.__name__} in an array has no canonical form")


def encode(value: dict[str, Any]) -> bytes:
    """Return the canonical bytes of ``value`` (already reduced to canonical types)."""
    if type(value) is not dict:
        raise CanonicalError("a canonical record is a JSON object")
    # The compiled walk only ever passes a value _check passes; whatever it does not pass, _check walks again
    # and refuses with the name of the first value without a canonical form.
    if _plain is None or not _plain(value):
        _check(value)
    return orjson.dumps(value, option=_OPTIONS)


def decode(data: bytes) -> dict[str, Any]:
    """Parse canonical bytes back into Python values."""
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise CanonicalError("canonical record is not a JSON object")
    return value


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is a canonical record: it parses, holds only canonical values, and re-encodes to itself
    (what an auditor checks before hashing)."""
    try:
        return encode(decode(data)) == data
    except (CanonicalError, orjson.JSONDecodeError):
        return False
