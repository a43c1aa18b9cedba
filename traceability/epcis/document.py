"""EPCIS 2.0 JSON / JSON-LD documents: strict parsing, GS1's JSON schema, and each event's exact text.

A body is parsed strictly (orjson: UTF-8, no NaN, no lone surrogates) into plain values, which GS1's
JSON schema checks (jsonschema-rs, formats included: every ``uri`` and ``date-time``) and from which the
ledger reads what it needs. The ledger also keeps every JSON number exactly as written: a decimal such
as ``26.50`` in a sensor report or ``200.5`` in a quantity stays those characters, so the event's text
that the ledger stores, hashes and returns is the client's event, member by member, in the client's
order, with the client's numbers. When the body is its plain values written compactly, number for
number (orjson's own text, as most clients send), the plain values are the exact values and the body
is parsed once; otherwise it is parsed a second time keeping each number's text (msgspec, or the
standard library's reader for what msgspec refuses). See docs/epcis.md, "What is stored and hashed".
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
import orjson

GS1_DIR = Path(__file__).parent / "gs1"
SCHEMA_FILE = GS1_DIR / "EPCIS-JSON-Schema.json"
CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document: where (``epcisBody.eventList[2].eventTime``) and what."""

    path: str
    message: str

    def as_text(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DocumentError(ValueError):
    """The body is not an EPCIS document this server accepts; ``problems`` says why, each with its place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.as_text() for p in problems))


class Number(float):
    """A JSON number with a fraction or exponent, keeping the exact text it was written with."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Number:
        number = super().__new__(cls, text)
        number.text = text
        return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_EXACT = msgspec.json.Decoder(float_hook=Number)


def loads_exact(data: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number's text (as :class:`Number`).

    msgspec gives the same values as ``json.loads`` for every text it takes (tests/test_epcis_exact_numbers.py
    holds the two together); what it refuses (a lone surrogate, NaN) goes to ``json.loads``, which
    decides as before.
    """
    try:
        return _EXACT.decode(data)
    except msgspec.DecodeError:
        return json.loads(data, parse_float=Number, parse_constant=_refuse_constant)


def _fragment(value: Any) -> Any:
    if isinstance(value, Number):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps_exact(value: Any) -> str:
    """Compact JSON text, members in their order, numbers as they were written, non-ASCII as itself."""
    return orjson.dumps(value, default=_fragment).decode()


@functools.cache
def _validator() -> jsonschema_rs.Draft7Validator:
    return jsonschema_rs.Draft7Validator(orjson.loads(SCHEMA_FILE.read_bytes()), validate_formats=True)


@functools.cache
def _query_validator() -> jsonschema_rs.Draft7Validator:
    return jsonschema_rs.Draft7Validator(
        orjson.loads((GS1_DIR / "query-schema.json").read_bytes()), validate_formats=True
    )


def validate_query(value: Any) -> list[Problem]:
    """Problems GS1's EPCIS query schema finds in a named query's definition."""
    return [Problem(_path(e.instance_path), said(e.message)) for e in _query_validator().iter_errors(value)][
        :MAX_PROBLEMS
    ]


def said(message: str, limit: int = 300) -> str:
    """A validator's message in at most ``limit`` characters. It quotes the value first and says what is wrong
    with it last (``[...] has non-unique elements``), so a long one keeps both ends."""
    if len(message) <= limit:
        return message
    return f"{message[: limit - 123]} … {message[-120:]}"


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(value: Any) -> list[Problem]:
    """Problems GS1's EPCIS 2.0 JSON schema finds (formats checked), at most twenty; empty when valid."""
    validator = _validator()
    if validator.is_valid(value):
        return []
    problems = []
    for error in validator.iter_errors(value):
        problems.append(Problem(_path(error.instance_path), said(error.message)))
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems


@dataclass(frozen=True, slots=True)
class Received:
    """A checked document: its kind, its JSON-LD context and its events (plain values and exact values)."""

    kind: str
    """``EPCISDocument``, ``EPCISQueryDocument`` or ``event`` (one event posted on its own)."""
    context: str | None
    """The document's ``@context`` as compact JSON text (extension prefixes live here), or None."""
    events: list[tuple[int, dict[str, Any], dict[str, Any]]]
    """Each event (its index in the document) twice: plain values for reading, exact values for storing."""
    refused: dict[int, list[Problem]]
    """With ``lenient``: events the schema refused, by index (left out of ``events``)."""
    count: int = 0
    """How many events the document holds."""
    computed_ids: dict[int, str] = field(default_factory=dict)
    """CBV 2.0 event hashes already computed from the original form (XML), by index."""
    originals: dict[int, str] = field(default_factory=dict)
    """The original form of each event when it was not JSON (an XML event's canonical XML), by index."""
    vouchers: bool = True
    """Whether a member may be a handover voucher (``…handoverVoucher``); False only when the body's text
    cannot hold that name (it is not there, and no ``\\u`` escape could spell it), so no event is looked through."""


def _events_of(value: dict[str, Any]) -> tuple[str, list[Any]]:
    kind = value.get("type")
    body = value.get("epcisBody") or {}
    if kind == "EPCISDocument":
        return kind, list(body.get("eventList", []))
    if kind == "EPCISQueryDocument":
        results = (body.get("queryResults") or {}).get("resultsBody") or {}
        return kind, list(results.get("eventList", []))
    return "event", [value]


def _event_index(path: str) -> int | None:
    for prefix in ("epcisBody.eventList[", "epcisBody.queryResults.resultsBody.eventList["):
        if path.startswith(prefix):
            return int(path[len(prefix) : path.index("]", len(prefix))])
    return None


def _exact_values(body: bytes, plain: Any) -> Any:
    """The body's exact values; its plain values when the body is those values written compactly by orjson.

    Then every number's text is the one orjson writes for its value, so the plain values serialize to the
    same text as the exact ones would, and the body is parsed once (most clients send compact JSON).
    Anything else (spaces, escapes, ``26.50``, integers orjson reads as floats) is parsed again exactly.
    """
    try:
        if orjson.dumps(plain) == body:
            return plain
    except orjson.JSONEncodeError:
        pass
    return loads_exact(body)


def read(body: bytes, *, single_event: bool = False, max_events: int = 1000, lenient: bool = False) -> Received:
    """Parse and check a document (or, with ``single_event``, one event); raise :class:`DocumentError`.

    ``lenient`` (GS1's ``proceed``): events the schema refuses are set aside in ``refused``; only problems
    outside any event refuse the document.
    """
    try:
        plain = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DocumentError([Problem("", f"the body is not valid JSON: {exc}")]) from None
    if not isinstance(plain, dict) or not isinstance(plain.get("type"), str):
        raise DocumentError([Problem("type", "an EPCIS document or event is a JSON object with a type")])
    kind, events = _events_of(plain)
    if single_event and kind != "event":
        raise DocumentError([Problem("type", "POST /epcis/events takes one event; send documents to /epcis/capture")])
    if not single_event and kind == "event":
        raise DocumentError(
            [Problem("type", "must be EPCISDocument or EPCISQueryDocument; post a single event to /epcis/events")]
        )
    if len(events) > max_events:
        raise DocumentError([Problem("epcisBody.eventList", f"holds {len(events)} events; at most {max_events}")])
    problems = validate(plain)
    refused: dict[int, list[Problem]] = {}
    if problems and lenient and kind != "event":
        for problem in problems:
            index = _event_index(problem.path)
            if index is None:
                raise DocumentError(problems)
            refused.setdefault(index, []).append(problem)
    elif problems:
        raise DocumentError(problems)
    if not events:
        raise DocumentError([Problem("epcisBody.eventList", "holds no event")])
    exact = _exact_values(body, plain)
    _, exact_events = _events_of(exact)
    # The plain values themselves (orjson wrote each of their integers) hold none past 64 bits.
    if exact is not plain and _LONG_DIGITS.search(body):
        _refuse_wide_integers(kind, exact_events, refused)
    context = plain.get("@context")
    received = Received(
        kind,
        orjson.dumps(context).decode() if context is not None else None,
        [],
        refused,
        len(events),
        vouchers=b"handoverVoucher" in body or b"\\u" in body,
    )
    for i, (event, exact_event) in enumerate(zip(events, exact_events, strict=True)):
        if i not in refused:
            received.events.append((i, event, exact_event))
    return received


_LONG_DIGITS = re.compile(rb"\d{19}")
"""A run of 19 digits: the shortest text of an integer that may not fit in 64 bits."""


def _refuse_wide_integers(kind: str, events: list[Any], refused: dict[int, list[Problem]]) -> None:
    """Refuse an event holding an integer past 64 bits: it could be neither stored as sent nor hashed."""
    for i, event in enumerate(events):
        if i in refused:
            continue
        try:
            dumps_exact(event)
        except orjson.JSONEncodeError:
            raise DocumentError(
                [Problem(event_path(kind, i), "holds an integer beyond 64 bits; send it as a decimal or a string")]
            ) from None


def event_path(kind: str, i: int) -> str:
    """Where event ``i`` sits in a document of ``kind``, for error messages."""
    if kind == "event":
        return ""
    if kind == "EPCISQueryDocument":
        return f"epcisBody.queryResults.resultsBody.eventList[{i}]"
    return f"epcisBody.eventList[{i}]"
