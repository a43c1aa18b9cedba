"""Query parameters and path segments, bounded: every value a route reads has a type, a range and a length.

:func:`check_input` (run on every request: :mod:`.pipeline`) refuses a query parameter or path
segment that holds a character no text field accepts (NUL, other control characters, bidirectional
overrides, zero-width characters: :func:`traceability.domain.bounds.bad_character`) or is longer than
:data:`~traceability.domain.bounds.MAX_QUERY_VALUE`. The helpers below read one value each and
answer a 422 ``invalid_field`` naming the parameter when it is malformed or out of range.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from aiohttp import web

from traceability import errors
from traceability.domain import bounds
from traceability.domain.event_shapes import CANONICAL_UUID
from traceability.http.middleware import Handler


def check_input(request: web.Request) -> None:
    """Refuse unreadable query parameters and path segments before any route sees them."""
    pairs: Iterable[tuple[str, str]] = request.match_info.items()
    if request.query_string:  # most requests have none, and reading request.query parses it into a multidict
        pairs = (*request.query.items(), *pairs)
    for name, value in pairs:
        problem = bounds.text_problem(name, bounds.QUERY_TEXT) or bounds.text_problem(value, bounds.MAX_QUERY_VALUE)
        if problem is not None:
            field = name if bounds.text_problem(name, bounds.QUERY_TEXT) is None else "query"
            raise errors.InvalidField(f"{field}: {problem}", field=field)


@web.middleware
async def bounded_input(request: web.Request, handler: Handler) -> web.StreamResponse:
    """:func:`check_input` as a middleware of its own (the main app runs it in :mod:`.pipeline`)."""
    check_input(request)
    return await handler(request)


def text(request: web.Request, name: str, max_len: int = bounds.QUERY_TEXT) -> str | None:
    """The stripped text of query parameter ``name`` (None if absent or empty), at most ``max_len`` characters."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    if (problem := bounds.text_problem(raw, max_len)) is not None:
        raise errors.InvalidField(f"{name}: {problem}", field=name)
    return raw


def whole(
    request: web.Request, name: str, default: int | None = None, *, lo: int = 0, hi: int = bounds.INT64_MAX
) -> int:
    """Query parameter ``name`` as a whole number in ``lo..hi`` (ASCII digits only); ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise errors.InvalidField(f"{name}: is required", field=name)
        return default
    return _whole(name, raw, lo, hi)


def _whole(name: str, raw: str, lo: int, hi: int) -> int:
    digits = raw[1:] if raw[:1] == "-" else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise errors.InvalidField(f"{name}: must be a whole number from {lo} to {hi}", field=name)
    value = int(raw)
    if (problem := bounds.whole_problem(value, lo, hi)) is not None:
        raise errors.InvalidField(f"{name}: {problem}", field=name)
    return value


def whole_list(request: web.Request, name: str, *, lo: int = 0, hi: int = bounds.INT64_MAX) -> list[int]:
    """Every value of the repeatable query parameter ``name``, each a whole number in ``lo..hi``."""
    return [_whole(name, raw, lo, hi) for raw in request.query.getall(name, [])]


def uuid_list(request: web.Request, name: str) -> list[str]:
    """Every value of the repeatable query parameter ``name``, each a UUID in its canonical lower-case form."""
    out = []
    for raw in request.query.getall(name, []):
        try:
            out.append(str(uuid.UUID(raw.removeprefix("urn:uuid:"))))
        except ValueError:
            raise errors.InvalidField(f"{name}: must be a UUID", field=name) from None
    return out


def paging(request: web.Request, default_limit: int = 100, max_limit: int = bounds.MAX_PAGE) -> tuple[int, int]:
    """``limit`` (1..``max_limit``) and ``offset`` (0 up to a 64-bit integer) from the query string."""
    return whole(request, "limit", default_limit, lo=1, hi=max_limit), whole(request, "offset", 0)


def moment(request: web.Request, name: str) -> datetime | None:
    """Query parameter ``name`` as an RFC 3339 time within the documented range, or None when absent."""
    raw = request.query.get(name, "")
    if not raw:
        return None
    try:
        return bounds.parse_rfc3339(raw)
    except bounds.TimeFormatError as exc:
        raise errors.InvalidField(f"{name}: {exc}", field=name) from None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path (its route matches digits only), within a signed 64-bit integer."""
    return _whole(name, request.match_info[name], 1, bounds.INT64_MAX)


def path_uuid(request: web.Request, name: str) -> str:
    """A UUID from the path, in its canonical lower-case form."""
    raw = request.match_info[name]
    if CANONICAL_UUID.fullmatch(raw):  # as links and receipts write them: already in that form
        return raw
    try:
        return str(uuid.UUID(raw.removeprefix("urn:uuid:")))
    except ValueError:
        raise errors.InvalidField(f"{name}: must be a UUID", field=name) from None
