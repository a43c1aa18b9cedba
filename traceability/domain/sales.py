"""Retail sales that issue a receipt code (a stall's scale, a supermarket till, a pharmacy counter).

The receipt a shopper takes home carries a trace code of its own: a batch holding the quantity sold,
a child of the batch it was cut from (a link in the genealogy, like a split, with mass balance). One
sale request records both sides: the ``retail_selling`` event on the source batch's chain, naming the
receipt code, and the receipt batch's opening, naming its source. Both are written in one
transaction, so neither exists without the other, and the sale's ``eventID`` makes a resend safe.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceability.domain import tracecode
from traceability.domain.events import EventDraft, parse_event, parse_quantity
from traceability.domain.fields import Fields

SALE_FIELDS = frozenset(
    {"eventID", "source", "traceCode", "quantity", "eventTime", "eventTimeZoneOffset", "operator"}
    | {"commercial", "documents", "attributes"}
)
"""What a sale request may hold; any other member is refused by name (422)."""


@dataclass(frozen=True, slots=True)
class SaleDraft:
    """A validated sale before the server checks the source batch and issues (or takes) the receipt code."""

    event_id: str
    """The id of the ``retail_selling`` event on the source's chain; the receipt's opening id derives from it."""
    source: str
    receipt_code: str | None
    """A code from a block leased to the selling station; None lets the server issue one."""
    quantity: dict[str, str]
    event: EventDraft
    """The sale event on the source's chain, without its ``attributes.receiptCode`` (known once the code is)."""


def receipt_event_id(sale_id: str) -> str:
    """The id of the receipt batch's opening event: derived from the sale's, so a resent sale is recognised."""
    return str(uuid.uuid5(uuid.UUID(sale_id), "receipt"))


def _code(f: Fields, key: str) -> str:
    raw = f.text(key, max_len=40)
    try:
        return tracecode.validate(raw)
    except tracecode.TraceCodeError as exc:
        f.fail(key, str(exc))


def parse_sale(body: Any, now: datetime) -> SaleDraft:
    """``{"eventID", "source", "quantity", "eventTime"[, "traceCode", "operator", "commercial", "documents",
    "attributes"]}``: the source batch, the quantity sold, when (required, so a resend is the same sale),
    and (from a station) the leased receipt code."""
    f = Fields(body)
    f.only(SALE_FIELDS)
    source = _code(f, "source")
    receipt_code = None
    if f.data.get("traceCode") is not None:
        receipt_code = _code(f, "traceCode")
        if tracecode.serial_of(receipt_code) < tracecode.LEASE_SERIAL_BASE:
            f.fail("traceCode", "is not from a station's leased block; leave it out and the server issues one")
        if receipt_code == source:
            f.fail("traceCode", "is the source batch's own code; a receipt needs a code of its own")
    quantity = parse_quantity(f, required=True)
    assert quantity is not None
    attributes = f.obj("attributes", required=False)
    if isinstance(attributes, dict) and "receiptCode" in attributes:
        f.fail("attributes.receiptCode", "is set by the server from the receipt's trace code")
    event_body: dict[str, Any] = {
        k: f.data[k]
        for k in ("eventID", "eventTime", "eventTimeZoneOffset", "operator", "commercial", "documents", "attributes")
        if f.data.get(k) is not None
    }
    event_body.update(traceCode=source, bizStep="retail_selling", disposition="retail_sold", quantity=quantity)
    event = parse_event(event_body, "", now)
    return SaleDraft(event.event_id, source, receipt_code, quantity, event)


def sale_opening(
    draft: SaleDraft, code: str, goods_code: str, produced_on: str | None, expires_on: str | None
) -> dict[str, Any]:
    """The receipt batch's first event (before the server stamps node and device): the sale seen from the
    receipt's side, naming the batch and the sale event it came from."""
    sale = draft.event.content
    batch: dict[str, Any] = {"product": goods_code}
    if produced_on:
        batch["producedOn"] = produced_on
    if expires_on:
        batch["expiresOn"] = expires_on
    content: dict[str, Any] = {
        "eventID": receipt_event_id(draft.event_id),
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        "traceCode": code,
        "eventTime": sale["eventTime"],
        "eventTimeZoneOffset": sale["eventTimeZoneOffset"],
        "quantity": draft.quantity,
        "batch": batch,
        "soldFrom": {"traceCode": draft.source, "eventID": draft.event_id},
    }
    if "operator" in sale:
        content["operator"] = sale["operator"]
    return content
