"""One EPCIS event's facets: what the ledger reads from it, never a replacement for it.

:func:`facets` reads an event (already checked against GS1's schema) into :class:`Facets`: its type
and action, when, what (every EPC and class, with its role and quantity), where (read point, business
location), why (business step, disposition, sources and destinations) and any error declaration.
Vocabulary values are compared in their bare CBV form whichever way they were written
(``shipping``, ``urn:epcglobal:cbv:bizstep:shipping``, ``https://ref.gs1.org/cbv/BizStep-shipping``).
The event itself is stored as it came (:mod:`traceability.epcis.document`); facets only index it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from traceability.domain.fields import decimal_text

MAX_FUTURE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_QUANTITY = Decimal("1e12")
MAX_WHAT = 10_000

# Which lists hold what, in the order the ledger picks the batch that keeps the event's record.
EPC_ROLES = ("parentID", "epcList", "childEPCs", "inputEPCList", "outputEPCList")
CLASS_ROLES = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")

_VOCABULARY = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-", "https://gs1.org/voc/BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-", "https://gs1.org/voc/Disp-"),
    "reason": ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-", "https://gs1.org/voc/ER-"),
    "type": ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-", "https://gs1.org/voc/SDT-"),
}


def bare(kind: str, value: str) -> str:
    """A CBV value in its bare form (``shipping``); other URIs unchanged."""
    if ":" not in value:  # every prefix holds a colon: the bare form, as most events write it
        return value
    for prefix in _VOCABULARY[kind]:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


class EventError(ValueError):
    """A field of a schema-valid event that the ledger cannot take, with its path inside the event."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class What(NamedTuple):
    """One thing an event names: its role (``epcList``, ``inputQuantityList``, …) and URI.

    A named tuple rather than a frozen dataclass: a document makes one or more per event, and a frozen
    dataclass sets each field through ``object.__setattr__`` (about three times the cost)."""

    role: str
    uri: str
    quantity: str | None = None
    """Canonical decimal text of a quantity element's quantity, or None."""
    uom: str | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class ErrorDeclaration:
    declaration_time: datetime
    reason: str | None
    corrective: tuple[str, ...]


@dataclass(slots=True)
class Facets:
    event_type: str
    event_time: datetime
    offset: str
    event_id: str | None
    action: str | None = None
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    transformation_id: str | None = None
    what: list[What] = field(default_factory=list)
    sources: Sequence[tuple[str, str]] = ()
    destinations: Sequence[tuple[str, str]] = ()
    """Sources and destinations (type, URI); an empty tuple, not a list, when there are none: one object less
    a document keeps for each event."""
    error: ErrorDeclaration | None = None
    ilmd: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str | None:
        """Where the event happened for the ledger: the business location, else the read point."""
        return self.biz_location or self.read_point


def parse_time(value: str, field: str, now: datetime) -> datetime:
    """An RFC 3339 date-time (the schema checked its form) within the ledger's bounds."""
    return _moment(value, field, now + MAX_FUTURE)


def _moment(value: str, field: str, latest: datetime) -> datetime:
    """:func:`parse_time` with its latest allowed moment worked out once for a whole event.

    The moment comes back in UTC: the event keeps its own offset in ``eventTimeZoneOffset``, and every
    comparison, conversion and encoding after this one is quicker between moments sharing one tzinfo
    (an offset of its own costs a call to it at each, about a microsecond an event in all)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventError(field, f"{value!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise EventError(field, "must carry a time zone (Z or an offset such as +08:00)")
    moment = moment.astimezone(UTC)
    if moment > latest:
        raise EventError(field, "is more than five minutes in the future")
    if moment < EARLIEST:
        raise EventError(field, "is before 1970")
    return moment


def _quantity(value: Any, field: str) -> str | None:
    if value is None:
        return None
    kind = type(value)
    if kind is float or kind is int:  # what JSON numbers parse to: the same few values recur, so remember them
        text = _number_text(value)
        if text.startswith("!"):
            raise EventError(field, text[1:])
        return text
    return _quantity_text(value, field)


@functools.lru_cache(maxsize=4096, typed=True)
def _number_text(value: float | int) -> str:
    """A quantity's canonical decimal text, or ``!`` and why it is refused (a cache holds only strings)."""
    try:
        return _quantity_text(value, "")
    except EventError as exc:
        return "!" + exc.message


def _quantity_text(value: Any, field: str) -> str:
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise EventError(field, "must be a number") from None
    if not d.is_finite() or d < 0:
        raise EventError(field, "must be a finite number, not negative")
    if d > MAX_QUANTITY:
        raise EventError(field, "is implausibly large (at most 10^12)")
    return decimal_text(d)


def facets(event: dict[str, Any], now: datetime, latest: datetime | None = None) -> Facets:
    """Read one schema-valid event. Raises :class:`EventError` naming the field for what the ledger refuses.

    ``latest``: ``now`` plus :data:`MAX_FUTURE`, when the caller reads many events against the same ``now``."""
    if latest is None:
        latest = now + MAX_FUTURE
    get = event.get
    biz_step = get("bizStep")
    disposition = get("disposition")
    read_point = get("readPoint")
    biz_location = get("bizLocation")
    what: list[What] = []
    out = Facets(
        event_type=str(event["type"]),
        event_time=_moment(event["eventTime"], "eventTime", latest),
        offset=str(event["eventTimeZoneOffset"]),
        event_id=get("eventID"),
        action=get("action"),
        biz_step=bare("bizStep", biz_step) if isinstance(biz_step, str) else None,
        disposition=bare("disposition", disposition) if isinstance(disposition, str) else None,
        read_point=read_point.get("id") if read_point else None,
        biz_location=biz_location.get("id") if biz_location else None,
        transformation_id=get("transformationID"),
        what=what,
        ilmd=get("ilmd") or {},
    )
    for role in EPC_ROLES:
        value = get(role)
        if value is None:
            continue
        if isinstance(value, str):
            what.append(What(role, value, path=role))
        elif isinstance(value, list):
            what.extend(What(role, uri, path=f"{role}[{i}]") for i, uri in enumerate(value) if isinstance(uri, str))
    for role in CLASS_ROLES:
        elements = get(role)
        if not elements:
            continue
        for i, element in enumerate(elements):
            path = f"{role}[{i}]"
            quantity = element.get("quantity")
            what.append(
                What(
                    role,
                    element["epcClass"],
                    None if quantity is None else _quantity(quantity, f"{path}.quantity"),
                    element.get("uom"),
                    path,
                )
            )
    if len(what) > MAX_WHAT:
        raise EventError("epcList", f"an event names at most {MAX_WHAT} EPCs and classes")
    if sources := get("sourceList"):
        out.sources = [(bare("type", s["type"]), s["source"]) for s in sources]
    if destinations := get("destinationList"):
        out.destinations = [(bare("type", d["type"]), d["destination"]) for d in destinations]
    declaration = get("errorDeclaration")
    if isinstance(declaration, dict):
        out.error = ErrorDeclaration(
            _moment(declaration["declarationTime"], "errorDeclaration.declarationTime", latest),
            bare("reason", declaration["reason"]) if isinstance(declaration.get("reason"), str) else None,
            tuple(declaration.get("correctiveEventIDs") or ()),
        )
    return out
