"""An EPCIS event checked for capture (:class:`Prepared`), what became of it (:class:`Outcome`), the error
one event of a document met (:class:`EventFailed`), and a stored event read back whole (:func:`full_event`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from traceability import errors
from traceability.epcis import document, identifiers, records
from traceability.epcis.events import Facets, What
from traceability.ledger import canonical, sealed


@dataclass(slots=True)
class Prepared:
    """One event of a document, checked, before the database is asked anything."""

    index: int
    path: str
    facets: Facets
    uri: str
    computed: bool
    event: dict[str, Any]
    text: str
    public_text: str
    sealed: dict[str, Any] | None
    digest: bytes
    idents: list[tuple[What, identifiers.Identifier]] = field(default_factory=list)
    original: str | None = None
    """The event as it came when that was not JSON (canonical XML)."""
    ledger_id: str = ""
    """The ledger id of the event's anchor record (:func:`records.ledger_event_id` of its eventID)."""

    def where(self, inner: str) -> str:
        return f"{self.path}.{inner}" if self.path else inner


@dataclass(slots=True)
class Outcome:
    """What happened to one event: its eventID and the record that holds it.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which made building one
    cost about four times as much (one per event of a document)."""

    event_id: str
    trace_code: str
    seq: int
    hash: bytes
    recorded_at: str
    replayed: bool
    batches: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "eventID": self.event_id,
            "traceCode": self.trace_code,
            "seq": self.seq,
            "hash": self.hash.hex(),
            "recordTime": self.recorded_at,
            "replayed": self.replayed,
            "batches": list(self.batches),
            "opened": list(self.opened),
        }


class EventFailed(errors.TraceError):
    """Wraps the error one event of a document met, with that event's place."""

    def __init__(self, index: int, error: errors.TraceError) -> None:
        self.index = index
        self.error = error
        self.status = error.status
        self.code = error.code
        super().__init__(error.message, field=error.field)


def full_event(canonical_bytes: bytes, private: bytes | None) -> dict[str, Any]:
    """The whole event a record holds, exact numbers and all, sealed destinations put back."""
    content = canonical.decode(canonical_bytes)
    public = document.loads_exact(content["epcis"]["event"])
    if private is None:
        return dict(public)
    hidden = canonical.decode(sealed.private_bytes(private)).get("destination")
    return records.join_destinations(public, hidden)
