"""Events: what a scanner says happened to a batch, in the GS1 EPCIS 2.0 / CBV 2.0 vocabulary.

:func:`parse_event` turns one JSON object from a client into an :class:`EventDraft` whose
``content`` is already reduced to canonical types (decimals as strings, UTC times). The service
adds what only the server knows (node, device, recorded time) and encodes the canonical bytes.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from traceability.domain import bounds
from traceability.domain.event_shapes import (
    ACTIONS,
    BIZ_STEPS,
    BIZSTEP_PREFIXES,
    CANONICAL_UUID,
    COMMERCIAL_FIELDS,
    DECLARATION_FIELDS,
    DEFAULT_ACTION,
    DISP_PREFIXES,
    DISPOSITIONS,
    DOCUMENT_FIELDS,
    DOCUMENT_TYPES,
    EVENT_FIELDS,
    EVENT_TYPES,
    PARTY_FIELDS,
    QUANTITY_FIELDS,
    UNITS,
    EventDraft,
    quick_event,
    trace_code,
)
from traceability.domain.fields import FieldError, Fields, canonical_object, decimal_text, offset_text, utc_ms

__all__ = [
    "ACTIONS",
    "BIZ_STEPS",
    "COMMERCIAL_FIELDS",
    "DECLARATION_FIELDS",
    "DEFAULT_ACTION",
    "DISPOSITIONS",
    "DOCUMENT_FIELDS",
    "DOCUMENT_TYPES",
    "EARLIEST",
    "ERROR_REASONS",
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "MAX_FUTURE",
    "PARTY_FIELDS",
    "QUANTITY_FIELDS",
    "UNITS",
    "EventDraft",
    "before_opening",
    "parse_aggregation",
    "parse_commercial",
    "parse_documents",
    "parse_error_declaration",
    "parse_event",
    "parse_event_list",
    "parse_party",
    "parse_quantity",
    "parse_time",
    "read_event",
]

_PACKAGE_CODE = re.compile(r"[0-9A-Za-z]{8,40}")
MAX_FUTURE = bounds.MAX_FUTURE
EARLIEST = bounds.EARLIEST


def _strip_prefix(value: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def parse_time(f: Fields, key: str, now: datetime) -> datetime:
    """An RFC 3339 time with a zone offset, from 2000 on, not more than five minutes in the future."""
    raw = f.text(key, max_len=40)
    try:
        moment = bounds.parse_rfc3339(raw)
    except bounds.TimeFormatError as exc:
        f.fail(key, str(exc))
    if moment > now + MAX_FUTURE:
        f.fail(key, "is more than five minutes in the future")
    return moment


def before_opening(event_time: datetime, opened_at: datetime | None) -> str | None:
    """Why an event is dated too long before its batch's opening (by the opening's own stated time), or None.

    Clocks disagree: a station that recorded offline keeps its own times, and a device set to the wrong
    zone is hours off, so up to :data:`~traceability.domain.bounds.OPENING_TOLERANCE` earlier is accepted.
    A batch with no first event yet (``opened_at`` None: an EPCIS capture opening it) sets no bound.
    """
    if opened_at is None or event_time >= opened_at - bounds.OPENING_TOLERANCE:
        return None
    hours = int(bounds.OPENING_TOLERANCE.total_seconds() // 3600)
    return (
        f"is {utc_ms(event_time)}, more than {hours} hours before the batch was opened ({utc_ms(opened_at)}); "
        "check the device's clock and time zone"
    )


def parse_quantity(f: Fields, key: str = "quantity", *, required: bool = False) -> dict[str, str] | None:
    """``{"value": 12.5, "uom": "KGM"}`` → ``{"value": "12.5", "uom": "KGM"}``."""
    q = f.sub(key, required=required)
    if q is None:
        return None
    q.only(QUANTITY_FIELDS)
    value = q.number("value", bounds.QUANTITY)
    assert value is not None
    uom = q.text("uom", max_len=16)
    if uom not in UNITS:
        q.fail("uom", f"must be a UN/ECE unit code: {', '.join(sorted(UNITS))}")
    return {"value": decimal_text(value), "uom": uom}


def parse_party(f: Fields, key: str) -> dict[str, str] | None:
    """Who a batch came from or goes to: an enterprise (USCC), a node code and/or a name."""
    p = f.sub(key, required=False)
    if p is None:
        return None
    p.only(PARTY_FIELDS)
    out = {
        k: v
        for k in ("enterprise", "node", "name", "operator")
        if (v := p.text(k, required=False, max_len=200)) is not None
    }
    if not out:
        p.fail("", "must name at least one of enterprise, node, name or operator")
    return out


def parse_documents(f: Fields, key: str = "documents") -> list[dict[str, str]] | None:
    items = f.array(key, required=False, max_items=20)
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        d = Fields(item, f"{f.path(key)}[{i}].")
        d.only(DOCUMENT_FIELDS)
        doc = {"type": d.choice("type", DOCUMENT_TYPES), "number": d.text("number", max_len=64)}
        if (issuer := d.text("issuer", required=False, max_len=200)) is not None:
            doc["issuer"] = issuer
        out.append(doc)
    return out


def parse_commercial(f: Fields) -> dict[str, str] | None:
    """Prices and buyer identity: shown to regulators and the enterprises involved, never the public."""
    c = f.sub("commercial", required=False)
    if c is None:
        return None
    c.only(COMMERCIAL_FIELDS)
    out: dict[str, str] = {}
    for k, bound in (("unit_price", bounds.UNIT_PRICE), ("amount", bounds.AMOUNT)):
        if (n := c.number(k, bound, required=False)) is not None:
            out[k] = decimal_text(n)
    currency = c.text("currency", required=False, max_len=3)
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        c.fail("currency", "must be an ISO 4217 code such as CNY")
    if out or currency:
        out["currency"] = currency or "CNY"
    if (buyer := c.text("buyer", required=False, max_len=200)) is not None:
        out["buyer"] = buyer
    return out or None


def parse_event(raw: Any, path: str, now: datetime) -> EventDraft:
    """Validate one event from a capture request. ``path`` prefixes every field name in errors.

    An event in the form a scanner normally sends is read through :class:`EventShape` in one compiled pass
    (:func:`_quick_event`); anything that pass does not take exactly as it stands (a value to normalise, a
    wrong type, an unknown member, a bound crossed) is read field by field (:func:`read_event`), which
    normalises it or names the field and the problem. Both give the same draft for an event both take.
    """
    draft = quick_event(raw, now)
    return draft if draft is not None else read_event(raw, path, now)


def read_event(raw: Any, path: str, now: datetime) -> EventDraft:
    """:func:`parse_event` field by field: every normalisation, every refusal with the field's path."""
    f = Fields(raw, path)
    f.only(EVENT_FIELDS)
    event_id = _uuid(f, "eventID")
    event_type = f.text("type", required=False, max_len=40) or "ObjectEvent"
    if event_type not in EVENT_TYPES:
        f.fail("type", f"must be one of: {', '.join(sorted(EVENT_TYPES))}")
    code = f.check("traceCode", f.text("traceCode", max_len=40), trace_code)
    biz_step = _strip_prefix(f.text("bizStep", max_len=80), BIZSTEP_PREFIXES)
    if biz_step not in BIZ_STEPS:
        f.fail("bizStep", "must be a CBV 2.0 business step such as receiving, shipping or retail_selling")
    action = f.text("action", required=False, max_len=10) or DEFAULT_ACTION.get(biz_step, "OBSERVE")
    if action not in ACTIONS:
        f.fail("action", "must be ADD, OBSERVE or DELETE")
    event_time = parse_time(f, "eventTime", now)
    offset = f.text("eventTimeZoneOffset", required=False, max_len=6) or offset_text(event_time)
    if not bounds.OFFSET.fullmatch(offset):
        f.fail("eventTimeZoneOffset", "must be an offset from -14:00 to +14:00 such as +08:00")
    if event_time.utcoffset() and offset != offset_text(event_time):
        # A time in UTC (Z) may say in which zone it happened; a local time must not contradict it.
        f.fail("eventTimeZoneOffset", f"is {offset}, but eventTime is given at {offset_text(event_time)}")
    content: dict[str, Any] = {
        "eventID": event_id,
        "type": event_type,
        "action": action,
        "traceCode": code,
        "bizStep": biz_step,
        "eventTime": utc_ms(event_time),
        "eventTimeZoneOffset": offset,
    }
    if (disp := f.text("disposition", required=False, max_len=80)) is not None:
        disp = _strip_prefix(disp, DISP_PREFIXES)
        if disp not in DISPOSITIONS:
            f.fail("disposition", "must be a CBV 2.0 disposition such as active, in_transit or retail_sold")
        content["disposition"] = disp
    node = f.text("node", required=False, max_len=40)
    if (operator := f.text("operator", required=False, max_len=40)) is not None:
        content["operator"] = operator
    data = f.data
    optional: dict[str, Any] = {}
    # Only the fields a scan carries are looked at: most carry two or three of these.
    if data.get("quantity") is not None:
        optional["quantity"] = parse_quantity(f)
    for party in ("source", "destination"):
        if data.get(party) is not None:
            optional[party] = parse_party(f, party)
    if data.get("documents") is not None:
        optional["documents"] = parse_documents(f)
    if data.get("commercial") is not None:
        optional["commercial"] = parse_commercial(f)
    if data.get("attributes") is not None:
        attrs = f.obj("attributes")
        if attrs:
            optional["attributes"] = canonical_object(f, f.path("attributes"), dict(attrs), 1)
    if data.get("errorDeclaration") is not None:
        optional["errorDeclaration"] = parse_error_declaration(f, now, event_id, event_time)
    if event_type == "AggregationEvent":
        optional.update(parse_aggregation(f, action))
    content.update({k: v for k, v in optional.items() if v})
    return EventDraft(event_id, code, node, biz_step, event_time, content)


def parse_aggregation(f: Fields, action: str) -> dict[str, Any]:
    """EPCIS AggregationEvent: ``parentID`` (a case or box code, SSCC or drug code) and its ``childEPCs``.

    ADD packs the children into the parent, DELETE unpacks them (the drug hierarchy case → box → unit).
    """
    parent = f.text("parentID", max_len=40)
    if not _PACKAGE_CODE.fullmatch(parent):
        f.fail("parentID", "must be a package code of 8-40 letters and digits (SSCC, drug code, GTIN+serial)")
    children = f.array("childEPCs", max_items=1000)
    if not children:
        f.fail("childEPCs", "must name at least one child package or unit")
    seen: set[str] = set()
    for i, child in enumerate(children):
        if not isinstance(child, str) or not _PACKAGE_CODE.fullmatch(child) or child == parent:
            f.fail(f"childEPCs[{i}]", "must be a package code of 8-40 letters and digits, not the parent's")
        if child in seen:
            f.fail(f"childEPCs[{i}]", "appears twice")
        seen.add(child)
    if action == "OBSERVE":
        f.fail("action", "an AggregationEvent here packs (ADD) or unpacks (DELETE)")
    return {"parentID": parent, "childEPCs": list(children)}


ERROR_REASONS = frozenset({"did_not_occur", "incorrect_data"})
_REASON_PREFIXES = ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-")


def parse_error_declaration(f: Fields, now: datetime, event_id: str, event_time: datetime) -> dict[str, Any] | None:
    """EPCIS ``errorDeclaration``: this event declares an earlier one wrong; events are never edited.

    ``declaredEventID`` names the event declared wrong (EPCIS repeats the erroneous event instead;
    docs/api.md shows the mapping). ``correctiveEventIDs`` may name the events that replace it.
    ``declarationTime`` defaults to the declaring event's own ``eventTime``, never to the server's
    clock, so a resent declaration is the same event and replays as one.
    """
    e = f.sub("errorDeclaration", required=False)
    if e is None:
        return None
    e.only(DECLARATION_FIELDS)
    reason = _strip_prefix(e.text("reason", max_len=80), _REASON_PREFIXES)
    if reason not in ERROR_REASONS:
        e.fail("reason", "must be did_not_occur or incorrect_data")
    declared = _uuid(e, "declaredEventID")
    if declared == event_id:
        e.fail("declaredEventID", "an event cannot declare itself wrong")
    out: dict[str, Any] = {
        "declarationTime": utc_ms(parse_time(e, "declarationTime", now))
        if e.data.get("declarationTime")
        else utc_ms(event_time),
        "reason": reason,
        "declaredEventID": declared,
    }
    corrective = e.array("correctiveEventIDs", required=False, max_items=20)
    if corrective:
        out["correctiveEventIDs"] = [
            _uuid(Fields({"id": c}, f"{e.path('correctiveEventIDs')}[{i}]."), "id") for i, c in enumerate(corrective)
        ]
    return out


def _uuid(f: Fields, key: str) -> str:
    raw: str = f.text(key, max_len=64)
    if CANONICAL_UUID.fullmatch(raw):
        return raw  # already what str(uuid.UUID(raw)) gives back, without building the UUID
    if raw.startswith("urn:uuid:"):
        raw = raw[len("urn:uuid:") :]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        f.fail(key, "must be a UUID")


def parse_event_list(body: Any, now: datetime) -> tuple[list[EventDraft], bool]:
    """One event object, or ``{"events": [...]}``, or a bare list. Returns the drafts and whether it was a list."""
    if isinstance(body, dict) and "events" in body:
        items, is_list = body["events"], True
        prefix = "events"
        if not isinstance(items, list):
            raise FieldError("events", "must be a JSON array of events")
    elif isinstance(body, list):
        items, is_list, prefix = body, True, ""
    else:
        return [parse_event(body, "", now)], False
    if not items:
        raise FieldError(prefix or "body", "must hold at least one event")
    drafts = []
    for i, item in enumerate(items):  # parse_event, with the path built only for an event the quick pass leaves
        draft = quick_event(item, now)
        drafts.append(draft if draft is not None else read_event(item, f"{prefix}[{i}].", now))
    if len({d.event_id for d in drafts}) < len(drafts):
        seen: set[str] = set()
        for i, d in enumerate(drafts):
            if d.event_id in seen:
                raise FieldError(f"{prefix}[{i}].eventID", "appears twice in this request")
            seen.add(d.event_id)
    return drafts, is_list
