"""Opening a batch: the commissioning event that gives a batch its trace code.

The opening request becomes event ``seq = 1`` of the batch's chain (bizStep ``commissioning``,
action ``ADD``), so product, quantity, origin and dates are on the ledger, not only in a table.
A scanner station may name the batch's ``traceCode`` itself, from a block of codes leased to it
(docs/scanners.md); otherwise the server issues the code.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from traceability.domain import bounds, tracecode
from traceability.domain.events import parse_documents, parse_quantity, parse_time
from traceability.domain.fields import Fields, canonical_object, offset_text, utc_ms
from traceability.domain.registry import area_name, validate_gtin

IDENTIFIER_SCHEMES = {
    "gs1": "GS1 GTIN + batch/lot (AI 01 + AI 10)",
    "drug_code": "20-digit Chinese drug trace code (药品追溯码)",
    "city_batch": "a city platform's own batch id",
    "enterprise": "an enterprise's own batch or lot number",
}


@dataclass(frozen=True, slots=True)
class Identifier:
    scheme: str
    value: str

    def as_json(self) -> dict[str, str]:
        return {"scheme": self.scheme, "value": self.value}


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A validated batch opening, before the server assigns the trace code."""

    event_id: str
    product: str | None
    gtin: str | None
    quantity: dict[str, str]
    produced_on: date | None
    expires_on: date | None
    identifiers: list[Identifier]
    event_time: datetime | None
    content: dict[str, Any]
    trace_code: str | None = None
    """A code the station issued from a block leased to it; None lets the server issue one."""


BATCH_FIELDS = frozenset(
    {"eventID", "product", "gtin", "traceCode", "quantity", "produced_on", "expires_on", "eventTime", "origin"}
    | {"identifiers", "documents", "attributes", "insist"}
)
ORIGIN_FIELDS = frozenset({"area_code", "place", "node", "producer", "unit"})
IDENTIFIER_FIELDS = frozenset({"scheme", "gtin", "lot", "value"})
_UNIT_CODE = re.compile(r"[0-9A-Za-z\-_.]{1,40}")


def parse_identifier(f: Fields) -> Identifier:
    """``{"scheme": "gs1", "gtin": ..., "lot": ...}`` or ``{"scheme": ..., "value": ...}``."""
    f.only(IDENTIFIER_FIELDS)
    scheme = f.choice("scheme", IDENTIFIER_SCHEMES)
    if scheme == "gs1":
        gtin = f.check("gtin", f.text("gtin", max_len=14), validate_gtin)
        lot = f.text("lot", max_len=20)
        return Identifier(scheme, f"{gtin}/{lot}")
    value = f.text("value", max_len=64)
    if scheme == "drug_code" and not (value.isdigit() and len(value) == 20):
        f.fail("value", "a drug trace code has 20 digits")
    return Identifier(scheme, value)


def date_field(f: Fields, key: str) -> date | None:
    """The optional ISO date under ``key`` (YYYY-MM-DD), or a field error naming it."""
    raw = f.text(key, required=False, max_len=10)
    if raw is None:
        return None
    try:
        return bounds.parse_day(raw)
    except bounds.TimeFormatError as exc:
        f.fail(key, str(exc))


def parse_batch(body: Any, now: datetime) -> BatchDraft:
    """Validate a batch opening request."""
    f = Fields(body)
    f.only(BATCH_FIELDS)
    try:
        event_id = str(uuid.UUID(f.text("eventID", max_len=64)))
    except ValueError:
        f.fail("eventID", "must be a UUID (it makes retries safe)")
    product = f.text("product", required=False, max_len=32)
    gtin = f.text("gtin", required=False, max_len=14)
    if product is None and gtin is None:
        f.fail("product", "is required: a registered goods code (or give gtin)")
    trace_code = f.text("traceCode", required=False, max_len=40)
    if trace_code is not None:
        try:
            trace_code = tracecode.validate(trace_code)
        except tracecode.TraceCodeError as exc:
            f.fail("traceCode", str(exc))
        if tracecode.serial_of(trace_code) < tracecode.LEASE_SERIAL_BASE:
            f.fail("traceCode", "is not from a station's leased block; leave it out and the server issues one")
    if gtin is not None:
        gtin = f.check("gtin", gtin, validate_gtin)
    quantity = parse_quantity(f, required=True)
    assert quantity is not None
    produced_on = date_field(f, "produced_on")
    expires_on = date_field(f, "expires_on")
    if produced_on and produced_on > now.date():
        f.fail("produced_on", "is in the future")
    if produced_on and expires_on and expires_on < produced_on:
        f.fail("expires_on", "is before produced_on")
    event_time = parse_time(f, "eventTime", now) if f.data.get("eventTime") is not None else None
    batch: dict[str, Any] = {}
    origin = f.sub("origin", required=False)
    if origin is not None:
        origin.only(ORIGIN_FIELDS)
        o: dict[str, str] = {}
        if (area := origin.text("area_code", required=False, max_len=6)) is not None:
            if area_name(area) is None:
                origin.fail("area_code", "must be a 6-digit GB/T 2260 administrative area code")
            o["areaCode"] = area
        for key, out in (("place", "place"), ("node", "node"), ("producer", "producer")):
            if (v := origin.text(key, required=False, max_len=200)) is not None:
                o[out] = v
        if (unit := origin.text("unit", required=False, max_len=bounds.CODE)) is not None:
            if not _UNIT_CODE.fullmatch(unit):
                origin.fail("unit", "names the plot, pen or herd: letters, digits, '-', '_' and '.' only")
            o["unit"] = unit
        if o:
            batch["origin"] = o
    if produced_on:
        batch["producedOn"] = produced_on.isoformat()
    if expires_on:
        batch["expiresOn"] = expires_on.isoformat()
    items = f.array("identifiers", required=False, max_items=20) or []
    identifiers = [parse_identifier(Fields(item, f"identifiers[{i}].")) for i, item in enumerate(items)]
    if identifiers:
        batch["identifiers"] = [i.as_json() for i in identifiers]
    content: dict[str, Any] = {
        "eventID": event_id,
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantity": quantity,
        "batch": batch,
    }
    if trace_code is not None:
        content["traceCode"] = trace_code
    if event_time is not None:
        content["eventTime"] = utc_ms(event_time)
        content["eventTimeZoneOffset"] = offset_text(event_time)
    if (docs := parse_documents(f)) is not None:
        content["documents"] = docs
    insist = f.sub("insist", required=False)
    if insist is not None:
        insist.only(frozenset({"reason"}))
        content["insist"] = {"reason": insist.text("reason", max_len=bounds.LONG_TEXT)}
    attrs = f.obj("attributes", required=False)
    if attrs:
        content["attributes"] = canonical_object(f, "attributes", dict(attrs), 1)
    return BatchDraft(
        event_id, product, gtin, quantity, produced_on, expires_on, identifiers, event_time, content, trace_code
    )
