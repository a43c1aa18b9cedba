"""What a capture event may hold: the CBV 2.0 vocabularies, the members each object may have, and the
same shapes as typed structs, read in one compiled pass (:func:`quick_event`).

:func:`traceability.domain.events.parse_event` reads a well-formed event through these structs
(``msgspec`` checks the types, the unknown members and the nesting in one compiled pass) and falls back
to its field-by-field reader, which names the field and the problem, for anything the structs do not
take as it is. The structs are therefore no looser than the member sets below: tests/test_event_shapes.py
holds the two together.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec

from traceability.domain import bounds, tracecode
from traceability.domain.fields import (
    FieldError,
    Fields,
    canonical_object,
    decimal_text,
    offset_text,
    to_decimal,
    utc_ms,
)

EVENT_TYPES = frozenset({"ObjectEvent", "TransactionEvent", "AggregationEvent"})
ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})

# CBV 2.0 business steps (https://ref.gs1.org/cbv/BizStep-...).
BIZ_STEPS = frozenset(
    {
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    }
)

# CBV 2.0 dispositions (https://ref.gs1.org/cbv/Disp-...).
DISPOSITIONS = frozenset(
    {
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_instance",
        "mismatch_class",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    }
)

# UN/ECE Recommendation 20 units (and Rec. 21 package codes with the X prefix) that the nodes use.
UNITS = frozenset(
    {"KGM", "GRM", "TNE", "LTR", "MLT", "H87", "EA", "C62", "HEA", "XBX", "XCT", "XCS", "XBG", "XCR", "XPK", "XBO"}
)

# Reference documents that travel with a batch (卡单同行) and the certificates the city plans name.
DOCUMENT_TYPES = frozenset(
    {
        "quarantine_certificate",
        "meat_inspection_certificate",
        "origin_certificate",
        "vegetable_test_certificate",
        "pesticide_residue_report",
        "trade_voucher",
        "sale_voucher",
        "invoice",
        "purchase_order",
        "despatch_advice",
        "drug_inspection_report",
        "other",
    }
)

BIZSTEP_PREFIXES = ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-")
DISP_PREFIXES = ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-")
DEFAULT_ACTION = {"commissioning": "ADD", "destroying": "DELETE", "decommissioning": "DELETE"}


# What each object of a capture request may hold; any other member is refused by name (422).
EVENT_FIELDS = frozenset(
    {"eventID", "type", "traceCode", "bizStep", "action", "eventTime", "eventTimeZoneOffset", "disposition", "node"}
    | {"operator", "quantity", "source", "destination", "documents", "commercial", "attributes", "errorDeclaration"}
    | {"parentID", "childEPCs"}
)
QUANTITY_FIELDS = frozenset({"value", "uom"})
PARTY_FIELDS = frozenset({"enterprise", "node", "name", "operator"})
DOCUMENT_FIELDS = frozenset({"type", "number", "issuer"})
COMMERCIAL_FIELDS = frozenset({"unit_price", "amount", "currency", "buyer"})
DECLARATION_FIELDS = frozenset({"declarationTime", "reason", "declaredEventID", "correctiveEventIDs"})


@dataclass(slots=True)
class EventDraft:
    """A validated event before the server adds node, device and recorded time.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which made building one
    cost about four times as much (one per event of a capture). Nothing changes a draft once built."""

    event_id: str
    trace_code: str
    node_code: str | None
    biz_step: str
    event_time: datetime
    content: dict[str, Any]


CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@functools.lru_cache(maxsize=65_536)
def trace_code(value: str) -> str:
    """A validated trace code; cached, since one upload names the same few batches many times."""
    try:
        return tracecode.validate(value)
    except tracecode.TraceCodeError as exc:
        raise ValueError(str(exc)) from None


# -- the same shapes as structs ------------------------------------------------------------------------------
#
# Each text member is held to what Fields.text takes as it stands: a string within the field's length here,
# then (_plain) printable, so free of every refused character (bounds.bad_character: control and format
# characters, separators, surrogates, private use are all unprintable), and with no space around it.
# Whatever needs normalising (a prefixed business step, a trace code with spaces, a UUID in capitals) or
# refusing fails a check and is the field reader's.

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=bounds.CODE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=bounds.NAME)]
DocumentNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=bounds.DOCUMENT_NUMBER)]
NumberValue = int | float | str


class QuantityShape(msgspec.Struct, forbid_unknown_fields=True):
    value: NumberValue
    uom: str


class PartyShape(msgspec.Struct, forbid_unknown_fields=True):
    enterprise: Name | None = None
    node: Name | None = None
    name: Name | None = None
    operator: Name | None = None


class DocumentShape(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    number: DocumentNumber
    issuer: Name | None = None


class CommercialShape(msgspec.Struct, forbid_unknown_fields=True):
    unit_price: NumberValue | None = None
    amount: NumberValue | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")] | None = None
    buyer: Name | None = None


class EventShape(msgspec.Struct, forbid_unknown_fields=True):
    """One capture event as a scanner sends it; ``errorDeclaration`` and the aggregation members are taken
    loosely here: an event that has them is the field reader's."""

    eventID: str
    traceCode: Code
    bizStep: str
    eventTime: str
    type: str | None = None
    action: str | None = None
    eventTimeZoneOffset: str | None = None
    disposition: str | None = None
    node: Code | None = None
    operator: Code | None = None
    quantity: QuantityShape | None = None
    source: PartyShape | None = None
    destination: PartyShape | None = None
    documents: Annotated[list[DocumentShape], msgspec.Meta(max_length=bounds.MAX_DOCUMENTS)] | None = None
    commercial: CommercialShape | None = None
    attributes: dict[str, Any] | None = None
    errorDeclaration: Any = None
    parentID: Any = None
    childEPCs: Any = None


# -- the compiled pass ---------------------------------------------------------------------------------------

_QUICK_TYPES = frozenset({"ObjectEvent", "TransactionEvent"})
_ATTRIBUTES = Fields({}, "attributes.")


def _plain(text: str) -> bool:
    """Whether a non-empty ``text`` is printable with no space at either end: then it holds no refused character
    and :meth:`Fields.text` takes it as it stands (the only printable white space is the ASCII space)."""
    return text.isprintable() and text[0] != " " and text[-1] != " "


def _decimal_reader(bound: bounds.Number) -> Callable[[NumberValue], str | None]:
    @functools.lru_cache(maxsize=16_384, typed=True)
    def read(value: NumberValue) -> str | None:
        """The canonical text :meth:`Fields.number` gives ``value`` under ``bound``, or None where it refuses it
        (cached: quantities and prices repeat)."""
        if isinstance(value, str) and len(value) > bounds.MAX_NUMBER_TEXT:
            return None
        d = to_decimal(value)
        if d is None or bound.problem(d) is not None:
            return None
        return decimal_text(d)

    return read


_quantity, _unit_price, _amount = (_decimal_reader(b) for b in (bounds.QUANTITY, bounds.UNIT_PRICE, bounds.AMOUNT))


@functools.lru_cache(maxsize=16_384)
def _time_facts(raw: str) -> tuple[datetime, str, str] | None:
    """An event time as ``parse_time`` reads it, its UTC text and its offset; None where it refuses it (the
    bound on the future aside, which depends on the clock). What the strict RFC 3339 pattern takes is plain text."""
    try:
        moment = bounds.parse_rfc3339(raw)
    except bounds.TimeFormatError:
        return None
    return moment, utc_ms(moment), offset_text(moment)


def _party(party: PartyShape) -> dict[str, str] | None:
    out = {}
    if (enterprise := party.enterprise) is not None:
        if not _plain(enterprise):
            return None
        out["enterprise"] = enterprise
    if (node := party.node) is not None:
        if not _plain(node):
            return None
        out["node"] = node
    if (name := party.name) is not None:
        if not _plain(name):
            return None
        out["name"] = name
    if (operator := party.operator) is not None:
        if not _plain(operator):
            return None
        out["operator"] = operator
    return out or None


def _documents(documents: list[DocumentShape]) -> list[dict[str, str]] | None:
    out = []
    for d in documents:
        if d.type not in DOCUMENT_TYPES or not _plain(d.number):
            return None
        if d.issuer is None:
            out.append({"type": d.type, "number": d.number})
        elif _plain(d.issuer):
            out.append({"type": d.type, "number": d.number, "issuer": d.issuer})
        else:
            return None
    return out


def _commercial(c: CommercialShape) -> dict[str, str] | None:
    """``parse_commercial``'s result, or None where the field reader must look (nothing given is ``{}``)."""
    out: dict[str, str] = {}
    if c.unit_price is not None:
        if (price := _unit_price(c.unit_price)) is None:
            return None
        out["unit_price"] = price
    if c.amount is not None:
        if (amount := _amount(c.amount)) is None:
            return None
        out["amount"] = amount
    if out or c.currency is not None:
        out["currency"] = c.currency or "CNY"
    if (buyer := c.buyer) is not None:
        if not _plain(buyer):
            return None
        out["buyer"] = buyer
    return out


def quick_event(raw: Any, now: datetime) -> EventDraft | None:
    """The draft ``read_event`` gives an event it takes exactly as it stands, or None (then it must read it)."""
    try:
        e = msgspec.convert(raw, EventShape)
    except msgspec.ValidationError:
        return None
    if e.errorDeclaration is not None or e.parentID is not None or e.childEPCs is not None:
        return None
    event_type, biz_step, action = e.type or "ObjectEvent", e.bizStep, e.action
    if event_type not in _QUICK_TYPES or biz_step not in BIZ_STEPS or not CANONICAL_UUID.fullmatch(e.eventID):
        return None
    if action is None:
        action = DEFAULT_ACTION.get(biz_step, "OBSERVE")
    elif action not in ACTIONS:
        return None
    if not _plain(code := e.traceCode):
        return None
    try:
        code = trace_code(code)
    except ValueError:
        return None
    facts = _time_facts(e.eventTime)
    if facts is None or facts[0] > now + bounds.MAX_FUTURE:
        return None
    event_time, utc_text, offset = facts
    if (given := e.eventTimeZoneOffset) is not None and given != offset:
        # A time in UTC may say in which zone it happened (a local time must not contradict it).
        if event_time.utcoffset() or not bounds.OFFSET.fullmatch(given):
            return None
        offset = given
    content: dict[str, Any] = {
        "eventID": e.eventID,
        "type": event_type,
        "action": action,
        "traceCode": code,
        "bizStep": biz_step,
        "eventTime": utc_text,
        "eventTimeZoneOffset": offset,
    }
    if (disposition := e.disposition) is not None:
        if disposition not in DISPOSITIONS:
            return None
        content["disposition"] = disposition
    if (node := e.node) is not None and not _plain(node):
        return None
    if (operator := e.operator) is not None:
        if not _plain(operator):
            return None
        content["operator"] = operator
    if (q := e.quantity) is not None:
        value = _quantity(q.value)
        if value is None or q.uom not in UNITS:
            return None
        content["quantity"] = {"value": value, "uom": q.uom}
    if e.source is not None:
        if (source := _party(e.source)) is None:
            return None
        content["source"] = source
    if e.destination is not None:
        if (destination := _party(e.destination)) is None:
            return None
        content["destination"] = destination
    if e.documents is not None:
        if (documents := _documents(e.documents)) is None:
            return None
        if documents:
            content["documents"] = documents
    if e.commercial is not None:
        if (commercial := _commercial(e.commercial)) is None:
            return None
        if commercial:
            content["commercial"] = commercial
    if e.attributes:
        try:
            content["attributes"] = canonical_object(_ATTRIBUTES, "attributes", dict(e.attributes), 1)
        except FieldError:
            return None
    return EventDraft(e.eventID, code, node, biz_step, event_time, content)
