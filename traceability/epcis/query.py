"""SimpleEventQuery parameters, as GS1's REST binding passes them in the query string.

Lists are pipe-delimited (``EQ_bizStep=shipping|receiving``) or the parameter repeated. Times are RFC
3339 (a ``+`` the query string turned into a space is read back as ``+``). A parameter this server does
not know, or knows but does not support, is a :class:`QueryError` naming it, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from traceability.epcis.events import bare

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_VALUES = 100

# MATCH_* parameter → the roles it looks at (EPCIS 2.0, section 8.2.7.1).
MATCH_ROLES: dict[str, tuple[str, ...]] = {
    "MATCH_epc": ("epcList", "childEPCs"),
    "MATCH_parentID": ("parentID",),
    "MATCH_inputEPC": ("inputEPCList",),
    "MATCH_outputEPC": ("outputEPCList",),
    "MATCH_anyEPC": ("epcList", "childEPCs", "parentID", "inputEPCList", "outputEPCList"),
    "MATCH_epcClass": ("quantityList", "childQuantityList"),
    "MATCH_inputEPCClass": ("inputQuantityList",),
    "MATCH_outputEPCClass": ("outputQuantityList",),
    "MATCH_anyEPCClass": ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"),
}
ALL_ROLES = tuple(dict.fromkeys(MATCH_ROLES["MATCH_anyEPC"] + MATCH_ROLES["MATCH_anyEPCClass"]))
ANY = "ANY"
"""Internal: an EPC in any role (``/epcs/{epc}/events``)."""
_LISTS: tuple[str, ...] = ("eventType", "EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_readPoint", "WD_readPoint")
_LISTS += ("EQ_bizLocation", "WD_bizLocation", "EQ_transformationID", "EQ_eventID", "EQ_errorReason")
_TIMES: tuple[str, ...] = ("GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime")
_TIMES += ("GE_errorDeclarationTime", "LT_errorDeclarationTime")
_OTHER: tuple[str, ...] = ("EXISTS_errorDeclaration", "orderBy", "orderDirection", "eventCountLimit", "maxEventCount")
_OTHER += ("perPage", "nextPageToken")
KNOWN = frozenset((*_LISTS, *_TIMES, *_OTHER, *MATCH_ROLES))
# Standard parameters this repository does not evaluate: refused by name rather than ignored.
UNSUPPORTED_PREFIXES: tuple[str, ...] = (
    "EQ_quantity",
    "GT_quantity",
    "GE_quantity",
    "LT_quantity",
    "LE_quantity",
    "EQ_persistent",
)
UNSUPPORTED_PREFIXES += ("EQ_correctiveEventID", "EQ_type", "EQ_deviceID", "EQ_dataProcessingMethod", "EQ_micro")
UNSUPPORTED_PREFIXES += ("EQ_chemical", "EQ_bizRules", "EQ_stringValue", "EQ_hexBinary", "EQ_uriValue", "EQ_boolean")
UNSUPPORTED_PREFIXES += ("GE_startTime", "LT_startTime", "GE_endTime", "LT_endTime", "EQ_ILMD_", "EQ_INNER")
UNSUPPORTED_PREFIXES += ("EXISTS_", "HASATTR_", "EQATTR_", "EQ_value", "GT_", "GE_", "LT_", "LE_", "EQ_")


class QueryError(ValueError):
    """A query parameter that is wrong or not supported; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}")


@dataclass(slots=True)
class EventQuery:
    event_types: list[str] | None = None
    actions: list[str] | None = None
    biz_steps: list[str] | None = None
    dispositions: list[str] | None = None
    read_points: list[str] | None = None
    biz_locations: list[str] | None = None
    transformation_ids: list[str] | None = None
    event_ids: list[str] | None = None
    error_reasons: list[str] | None = None
    times: dict[str, datetime] = field(default_factory=dict)
    exists_error: bool = False
    match: dict[str, list[str]] = field(default_factory=dict)
    order_by: str | None = None
    descending: bool = False
    event_count_limit: int | None = None
    max_event_count: int | None = None
    per_page: int = DEFAULT_PER_PAGE
    page_token: str | None = None

    def narrowed(self, **changes: object) -> EventQuery:
        """A copy with some parameters set (the resource routes: ``/bizSteps/{bizStep}/events``, …)."""
        copy = EventQuery(**{f: getattr(self, f) for f in self.__dataclass_fields__})
        for key, value in changes.items():
            setattr(copy, key, value)
        return copy


def _values(key: str, raw: list[str]) -> list[str]:
    values = [v.strip() for item in raw for v in item.split("|") if v.strip()]
    if not values:
        raise QueryError(key, "needs at least one value")
    if len(values) > MAX_VALUES:
        raise QueryError(key, f"takes at most {MAX_VALUES} values")
    return values


def parse_time(key: str, value: str) -> datetime:
    text = value.strip().replace(" ", "+")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(key, f"{value!r} is not an RFC 3339 date-time such as 2026-11-22T08:00:00+08:00") from None
    if moment.tzinfo is None:
        raise QueryError(key, "needs a time zone (Z or an offset such as +08:00)")
    return moment


def _integer(key: str, value: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise QueryError(key, "must be a whole number") from None
    if not lo <= number <= hi:
        raise QueryError(key, f"must be between {lo} and {hi}")
    return number


def per_page(value: str | None) -> int:
    return DEFAULT_PER_PAGE if value is None else _integer("perPage", value, 1, MAX_PER_PAGE)


def parse(params: Mapping[str, str] | list[tuple[str, str]]) -> EventQuery:
    """Read the query string (a multi-dict's items, or a mapping) into an :class:`EventQuery`."""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    q = EventQuery()
    for key, raw in grouped.items():
        if key not in KNOWN:
            if key.startswith(UNSUPPORTED_PREFIXES) or key.startswith("MATCH_"):
                raise QueryError(key, "is an EPCIS query parameter this repository does not support")
            raise QueryError(key, "is not an EPCIS query parameter")
        if key in MATCH_ROLES:
            q.match[key] = _values(key, raw)
        elif key in _LISTS:
            values = _values(key, raw)
            if key == "eventType":
                q.event_types = values
            elif key == "EQ_action":
                bad = [v for v in values if v not in ("ADD", "OBSERVE", "DELETE")]
                if bad:
                    raise QueryError(key, "takes ADD, OBSERVE or DELETE")
                q.actions = values
            elif key == "EQ_bizStep":
                q.biz_steps = [bare("bizStep", v) for v in values]
            elif key == "EQ_disposition":
                q.dispositions = [bare("disposition", v) for v in values]
            elif key in ("EQ_readPoint", "WD_readPoint"):
                q.read_points = (q.read_points or []) + values
            elif key in ("EQ_bizLocation", "WD_bizLocation"):
                q.biz_locations = (q.biz_locations or []) + values
            elif key == "EQ_transformationID":
                q.transformation_ids = values
            elif key == "EQ_eventID":
                q.event_ids = values
            else:
                q.error_reasons = [bare("reason", v) for v in values]
        elif key in _TIMES:
            q.times[key] = parse_time(key, raw[-1])
        elif key == "EXISTS_errorDeclaration":
            q.exists_error = raw[-1].strip().lower() == "true"
        elif key == "orderBy":
            if raw[-1] not in ("eventTime", "recordTime"):
                raise QueryError(key, "this repository orders by eventTime or recordTime")
            q.order_by = raw[-1]
            q.descending = True
        elif key == "orderDirection":
            if raw[-1] not in ("ASC", "DESC"):
                raise QueryError(key, "must be ASC or DESC")
        elif key == "eventCountLimit":
            q.event_count_limit = _integer(key, raw[-1], 1, 1_000_000)
        elif key == "maxEventCount":
            q.max_event_count = _integer(key, raw[-1], 1, 1_000_000)
        elif key == "perPage":
            q.per_page = per_page(raw[-1])
        elif key == "nextPageToken":
            q.page_token = raw[-1]
    if "orderDirection" in grouped:
        if q.order_by is None:
            raise QueryError("orderDirection", "needs orderBy")
        q.descending = grouped["orderDirection"][-1] == "DESC"
    if q.event_count_limit is not None and q.max_event_count is not None:
        raise QueryError("eventCountLimit", "and maxEventCount cannot both be given")
    if q.event_count_limit is not None and q.order_by is None:
        raise QueryError("eventCountLimit", "needs orderBy")
    return q


def definition_pairs(query: Mapping[str, object]) -> list[tuple[str, str]]:
    """A named query's definition (GS1's query schema: parameter names to values or lists) as query-string
    pairs, lists pipe-delimited."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if key in ("perPage", "nextPageToken"):
            raise QueryError(key, "belongs in the request that runs the query, not in its definition")
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, list):
            pairs.append((key, "|".join(str(v) for v in value)))
        elif isinstance(value, str | int | float):
            pairs.append((key, str(value)))
        else:
            raise QueryError(key, "must be a string, a number, a boolean or a list of strings")
    return pairs


def from_definition(query: Mapping[str, object]) -> EventQuery:
    """A named query's definition as an EventQuery."""
    return parse(definition_pairs(query))
