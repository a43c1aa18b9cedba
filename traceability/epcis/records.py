"""How an EPCIS event becomes ledger records: which batch keeps it, and what each record says.

An event goes on the chain of every batch it names. The first batch it names (in the order
``parentID``, ``epcList``, ``childEPCs``, ``inputEPCList``, ``outputEPCList``, then the quantity
lists) keeps the **anchor** record, whose hashed bytes hold the event's whole JSON text
(``epcis.event``). Each other batch gets a **reference** record that commits to the anchor record's
canonical bytes by their SHA-256 (``epcis.record.digest``). Both carry the fields the native API reads
(type, action, bizStep, disposition, times, the batch's quantity), derived from the event.

Ledger event ids are UUIDs. ``urn:uuid:…`` eventIDs keep theirs; any other eventID (a CBV hash, a
URL) is mapped to a UUIDv5 in :data:`NAMESPACE`, and each reference record's id is derived from the
eventID and the batch's trace code, so a retry finds every record it made.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from traceability import i18n
from traceability.domain.event_shapes import CANONICAL_UUID
from traceability.domain.fields import utc_ms
from traceability.epcis.document import dumps_exact, loads_exact
from traceability.epcis.events import EPC_ROLES, Facets, What
from traceability.epcis.identifiers import Identifier

NAMESPACE = uuid.UUID("6c1b0f5e-6b8e-5d35-9a59-3b1c2f1d8e47")
DECLARATION = "#errorDeclaration"
_NAMESPACE_BYTES = NAMESPACE.bytes

# Schemes of identifiers without a GTIN whose unseen items get a product of their own (named in the
# catalogue, code set ``epc_product``).
PRODUCT_SCHEMES = frozenset({"sscc", "ai8003", "ai8004", "ai253", "ai414", "ai417", "uri"})


def ledger_event_id(event_uri: str, suffix: str = "") -> str:
    """The ledger's UUID for an EPCIS eventID (``suffix`` tells apart the records one event makes)."""
    if not suffix and event_uri[:9].lower() == "urn:uuid:":
        tail = event_uri[9:]
        if CANONICAL_UUID.fullmatch(tail):
            return tail  # already as str(uuid.UUID(tail)) writes it
        try:
            return str(uuid.UUID(tail))
        except ValueError:
            pass
    # uuid.uuid5, without building UUID objects: SHA-1 of namespace and name, version 5, RFC 4122 variant.
    b = bytearray(hashlib.sha1(_NAMESPACE_BYTES + (event_uri + suffix).encode()).digest()[:16])  # noqa: S324
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


KEY_PRODUCT_PREFIX = "EPC-"
"""The goods code of the product :func:`product_for` registers for a key without a GTIN (a place, a logistic unit,
an asset, a document): no food or drug, so a consumer page speaks of it in use words, not eat words."""


def product_for(ident: Identifier) -> tuple[str, str | None, str, str]:
    """(goods code, GTIN, Chinese name, English name) of the product an unseen identifier's batch is of."""
    gtin = ident.gtin
    if gtin is not None:
        return (
            f"GTIN-{gtin}",
            gtin,
            i18n.words("zh")("epc_product_gtin", gtin=gtin),
            i18n.words("en")("epc_product_gtin", gtin=gtin),
        )
    scheme = ident.scheme if ident.scheme in PRODUCT_SCHEMES else "uri"
    zh, en = i18n.names("epc_product", scheme) or (scheme, scheme)
    return f"{KEY_PRODUCT_PREFIX}{scheme.upper()}", None, zh, en


@dataclass(slots=True)
class Target:
    """One batch an event names: its trace code, the roles it appears in, its quantity in this event."""

    trace_code: str
    batch_id: int
    roles: list[str] = field(default_factory=list)
    quantity: dict[str, str] | None = None
    opening: dict[str, Any] | None = None
    """For a batch this event creates: what its first record says about it."""


def anchor_order(what: list[tuple[What, int]]) -> list[int]:
    """Batch ids in the order that picks the anchor: EPC roles first (in :data:`EPC_ROLES` order), then classes."""
    order: list[int] = []
    rank = {role: i for i, role in enumerate(EPC_ROLES)}
    for _, batch_id in sorted(what, key=lambda t: rank.get(t[0].role, len(rank))):
        if batch_id not in order:
            order.append(batch_id)
    return order


def quantity_of(w: What) -> dict[str, str] | None:
    if w.quantity is None:
        return None
    return {"value": w.quantity, "uom": w.uom} if w.uom else {"value": w.quantity}


def base_content(f: Facets, record_id: str, target: Target, event_uri: str) -> dict[str, Any]:
    """The derived fields every record of the event carries (the native API's names)."""
    roles = target.roles
    content: dict[str, Any] = {
        "eventID": record_id,
        "type": f.event_type,
        "traceCode": target.trace_code,
        "eventTime": utc_ms(f.event_time),
        "eventTimeZoneOffset": f.offset,
        "epcis": {"id": event_uri, "role": [roles[0]] if len(roles) == 1 else sorted(set(roles))},
    }
    if f.action:
        content["action"] = f.action
    if f.biz_step:
        content["bizStep"] = f.biz_step
    if f.disposition:
        content["disposition"] = f.disposition
    if target.quantity:
        content["quantity"] = target.quantity
    if target.opening:
        content["batch"] = target.opening
    return content


def anchor_content(
    f: Facets,
    record_id: str,
    target: Target,
    event_uri: str,
    text: str,
    context: str | None,
    computed: bool,
    original: str | None = None,
) -> dict[str, Any]:
    """The record that holds the event's JSON text (``text``: the public part, destinations sealed apart) and,
    for an event that came as XML, that XML (canonical XML of the event element)."""
    content = base_content(f, record_id, target, event_uri)
    content["epcis"]["event"] = text
    if original is not None:
        content["epcis"]["xml"] = original
    if context is not None:
        content["epcis"]["context"] = context
    if computed:
        content["epcis"]["computedID"] = True
    return content


def reference_content(
    f: Facets, record_id: str, target: Target, event_uri: str, anchor_code: str, anchor_bytes: bytes
) -> dict[str, Any]:
    """A record on another batch's chain, committing to the anchor record's canonical bytes."""
    content = base_content(f, record_id, target, event_uri)
    content["epcis"]["record"] = {"traceCode": anchor_code, "digest": hashlib.sha256(anchor_bytes).hexdigest()}
    return content


def split_destinations(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The event without ``destinationList`` (what the public reads) and the sealed part (the list's JSON text and
    its place among the event's members).

    Who receives the goods is sealed like a native event's destination (docs/ledger.md §1.1).
    """
    if "destinationList" not in event:
        return event, None
    keys = list(event)
    public = {k: v for k, v in event.items() if k != "destinationList"}
    text = dumps_exact(event["destinationList"])
    return public, {"epcisDestinationList": text, "epcisPosition": keys.index("destinationList")}


def join_destinations(public: dict[str, Any], sealed: dict[str, Any] | None) -> dict[str, Any]:
    """The whole event again, ``destinationList`` back in its place."""
    if not sealed or "epcisDestinationList" not in sealed:
        return public
    items = list(public.items())
    position = int(sealed.get("epcisPosition", len(items)))
    items.insert(min(position, len(items)), ("destinationList", loads_exact(sealed["epcisDestinationList"])))
    return dict(items)
