"""Trace codes: the numbers printed on receipts and labels and typed on keypads.

A trace code is 20 decimal digits::

    AAAAAA SSSSSSSSSSSSS C
    |      |             +-- Damm check digit over the first 19 digits
    |      +---------------- 13-digit serial, unique across the whole ledger, never reused
    +----------------------- GB/T 2260 administrative area code of the issuing node (e.g. 320300 Xuzhou)

The Damm algorithm (a quasigroup of order 10, python-stdnum's ``stdnum.damm``) detects every
single-digit error and every transposition of adjacent digits, which GS1 mod-10 and Luhn do not.

Serial space: serials below ``LEASE_SERIAL_BASE`` are issued one at a time by the server; serials
from ``LEASE_SERIAL_BASE`` upwards are handed out in blocks to scanner stations so they can issue
codes offline. Both ranges come from database sequences, so a serial is never issued twice.

Area codes start with 1 to 8 (GB/T 2260), so a trace code never starts with 0 or 9; the 20-digit
Chinese drug trace codes the big query platforms accept start with 8, so a scanner must not tell
the two apart by length alone: the check digit and the lookup decide.
"""

from __future__ import annotations

import re

from stdnum import damm
from stdnum.exceptions import ValidationError

LENGTH = 20
AREA_DIGITS = 6
SERIAL_DIGITS = 13
MAX_SERIAL = 10**SERIAL_DIGITS - 1
LEASE_SERIAL_BASE = 5 * 10**12

_AREA = re.compile(r"[1-8][0-9]{5}")
_SEPARATORS = re.compile(r"[\s\-]")


class TraceCodeError(ValueError):
    """A string that is not a valid trace code; the message says why."""


def is_area_code(value: str) -> bool:
    """Whether ``value`` has the shape of a 6-digit GB/T 2260 area code."""
    return bool(_AREA.fullmatch(value))


def make(area_code: str, serial: int) -> str:
    """Build the trace code for ``serial`` issued in ``area_code``."""
    if not is_area_code(area_code):
        raise TraceCodeError(f"area code {area_code!r} is not 6 digits starting with 1-8")
    if not 0 < serial <= MAX_SERIAL:
        raise TraceCodeError(f"serial {serial} is outside 1..{MAX_SERIAL}")
    body = f"{area_code}{serial:0{SERIAL_DIGITS}d}"
    return body + str(damm.calc_check_digit(body))


def normalize(value: str) -> str:
    """Strip the spaces and dashes people type or print for readability."""
    return _SEPARATORS.sub("", value)


def validate(value: str) -> str:
    """Return the normalized trace code, or raise :class:`TraceCodeError` naming the problem."""
    code = normalize(value)
    if not code.isascii() or not code.isdigit():
        raise TraceCodeError("a trace code has digits only")
    if len(code) != LENGTH:
        raise TraceCodeError(f"a trace code has {LENGTH} digits, this has {len(code)}")
    if not is_area_code(code[:AREA_DIGITS]):
        raise TraceCodeError("a trace code starts with a 6-digit area code (first digit 1-8)")
    try:
        damm.validate(code)
    except ValidationError:
        raise TraceCodeError("the check digit does not match: a digit was mistyped or swapped") from None
    return code


def is_valid(value: str) -> bool:
    """Whether ``value`` is a valid trace code (after normalization)."""
    try:
        validate(value)
    except TraceCodeError:
        return False
    return True


def area_of(code: str) -> str:
    """The issuing node's area code."""
    return code[:AREA_DIGITS]


def serial_of(code: str) -> int:
    """The 13-digit serial as an integer."""
    return int(code[AREA_DIGITS : AREA_DIGITS + SERIAL_DIGITS])


def pretty(code: str) -> str:
    """Group the digits in fours for printing and reading aloud."""
    return " ".join(code[i : i + 4] for i in range(0, LENGTH, 4))
