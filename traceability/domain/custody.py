"""Custody: only the node that holds a batch speaks for it.

A batch is held by the node that opened it. A shipment names its destination node and puts that
quantity in transit there; receiving makes the destination a holder; a transformation's outputs are
held where it happened. A device records about a batch only at its own node, and only where that node
holds or held the batch, or is the named destination of a shipment in transit (which may record the
arrival: receiving, an entry inspection). Inspections also come from a registered testing body.
Holds and recalls are the ledger's own events (after a failed inspection, or by a regulator): nobody
records them through capture. A stall's device records as its own operator only.

The rules are pure: :class:`Relations` is the custody of one request's batches as the storage layer
read it (under the batches' chain-head locks), and :meth:`Relations.admit` checks and applies one event.
The bulk loader runs the same rules in memory.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

HOLDER = "holder"
DESTINATION = "destination"
TESTING_BODY = "testing_lab"

RESERVED_STEPS = frozenset({"holding"})
"""Business steps only the ledger records (a hold after a failed inspection, a regulator's recall)."""
RESERVED_DISPOSITIONS = frozenset({"recalled"})
"""Dispositions only the ledger records; ``non_conformant`` comes only with an inspection (which holds)."""
TESTING_STEPS = frozenset({"inspecting", "sampling"})
ARRIVAL_STEPS = frozenset({"receiving", "arriving", "accepting", "unloading", "inspecting", "sampling"})
"""What the destination of a shipment in transit may record before it has received the batch."""
CUSTODY_STEPS = frozenset({"shipping", "receiving"})
"""Steps that change who holds a batch. The single-statement capture path takes a receipt (one row of
the receiving node's custody changes) and leaves a shipment (its destination named by code) to the
general one."""

KILOGRAMS: dict[str, Decimal] = {"KGM": Decimal(1), "GRM": Decimal("0.001"), "TNE": Decimal(1000)}

RULES = (
    "not_own_node",
    "not_holder",
    "not_destination",
    "not_own_operator",
    "status_reserved",
    "testing_body_only_tests",
)
"""The rule a refusal names (the error's ``code``); its message is ``custody_<rule>`` in traceability/i18n."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event may not be recorded: the rule (the error code) and the words that fill its message."""

    rule: str
    values: dict[str, str]


def reserved(step: str | None, disposition: str | None) -> Refusal | None:
    """A hold, a recall, or a non-conformant verdict outside an inspection: the ledger's alone to record."""
    if step in RESERVED_STEPS:
        return Refusal("status_reserved", {"what": f"bizStep {step}"})
    if disposition in RESERVED_DISPOSITIONS:
        return Refusal("status_reserved", {"what": f"disposition {disposition}"})
    if disposition == "non_conformant" and step != "inspecting":
        return Refusal("status_reserved", {"what": "disposition non_conformant (only an inspection's verdict)"})
    return None


@functools.lru_cache(maxsize=1024)
def single_statement(step: str, disposition: str | None) -> bool:
    """Whether an event may take the one-statement capture path, which admits only a holder's events
    that leave custody as it is, and receipts by a holder or a shipment's destination (anything else
    goes the general path, which says why it refuses). Remembered: a capture asks it for every event, and
    the events repeat a few steps and dispositions."""
    return step != "shipping" and reserved(step, disposition) is None


def operator_refusal(device_operator: str | None, claimed: str | None, node_has_operator: bool) -> Refusal | None:
    """A stall's device records as its own operator only; a node's shared device may name one of its own
    node's operators (``node_has_operator``: the claimed code is registered at the device's node)."""
    if claimed is None:
        return None
    if device_operator is not None and claimed != device_operator:
        return Refusal("not_own_operator", {"claimed": claimed, "own": device_operator})
    if device_operator is None and not node_has_operator:
        return Refusal("not_own_operator", {"claimed": claimed, "own": "-"})
    return None


def amount(quantity: dict[str, str] | None) -> Decimal:
    """A shipment's quantity as kept in transit: kilograms for masses, else the number in its unit."""
    if not quantity or quantity.get("value") is None:
        return Decimal(0)  # a count of instances (EPCIS epcList) or a class without a quantity
    return _amount(quantity["value"], quantity.get("uom") or "")


@functools.lru_cache(maxsize=4096)
def _amount(value: str, uom: str) -> Decimal:
    """Remembered by value and unit: a capture's receipts repeat a few quantities."""
    return Decimal(value) * KILOGRAMS.get(uom, Decimal(1))


@dataclass(slots=True)
class Change:
    """A custody row to write: (batch, node) becomes ``relation``, with ``in_transit`` there now."""

    relation: str
    in_transit: Decimal
    since: datetime


@dataclass(slots=True)
class Relations:
    """The custody of some batches: ``rows[(batch, node)] = [relation, in_transit]``.

    Holds only the rows the caller loaded (the recording node's, and those of shipments' destinations).
    ``changes`` collects what :meth:`admit` changed, for the storage layer to write in the same transaction.
    """

    rows: dict[tuple[int, int], list[Any]] = field(default_factory=dict)
    changes: dict[tuple[int, int], Change] = field(default_factory=dict)

    def relation(self, batch: int, node: int) -> str | None:
        row = self.rows.get((batch, node))
        return None if row is None else str(row[0])

    def _set(self, batch: int, node: int, relation: str, in_transit: Decimal, since: datetime) -> None:
        self.rows[(batch, node)] = [relation, in_transit]
        self.changes[(batch, node)] = Change(relation, in_transit, since)

    def open(self, batch: int, node: int, since: datetime) -> None:
        """A batch opened (or made by a transformation) at ``node``: that node holds it."""
        self._set(batch, node, HOLDER, Decimal(0), since)

    def check(
        self,
        batch: int,
        node: int,
        node_type: str | None,
        step: str,
        disposition: str | None,
        peers: Sequence[int] = (),
    ) -> Refusal | None:
        """Why ``node`` may not record ``step`` about ``batch``, or None. ``node_type`` is the recording node's.

        ``peers``: the other nodes of an enterprise whose own systems record (an EPCIS capture with the
        enterprise's credential): goods its nodes hold move between them as the enterprise's own business.
        """
        if (refusal := reserved(step, disposition)) is not None:
            return refusal
        relation = self.relation(batch, node)
        if relation == HOLDER or any(self.relation(batch, p) == HOLDER for p in peers):
            return None
        if node_type == TESTING_BODY:
            if step in TESTING_STEPS:
                return None
            return Refusal("testing_body_only_tests", {"step": step})
        if relation == DESTINATION:
            if step in ARRIVAL_STEPS:
                return None
            return Refusal("not_holder", {"step": step})
        if step == "receiving":
            return Refusal("not_destination", {"step": step})
        return Refusal("not_holder", {"step": step})

    def admit(
        self,
        batch: int,
        node: int,
        node_type: str | None,
        content: dict[str, Any],
        destination: int | None,
        when: datetime,
        peers: Sequence[int] = (),
    ) -> Refusal | None:
        """Check one event (``content`` as parsed) and apply what it does to custody.

        ``destination``: the node id a shipment names as its destination (None when it names no
        registered node: the goods leave the ledger's nodes). ``peers`` as for :meth:`check`; an event at
        a node whose peer holds the batch makes that node a holder too."""
        step = content.get("bizStep", "")
        refusal = self.check(batch, node, node_type, step, content.get("disposition"), peers)
        if refusal is not None:
            return refusal
        if self.relation(batch, node) != HOLDER and any(self.relation(batch, p) == HOLDER for p in peers):
            row = self.rows.get((batch, node))
            self._set(batch, node, HOLDER, row[1] if row else Decimal(0), when)
        quantity = amount(content.get("quantity"))
        if step == "shipping" and destination is not None and destination != node:
            row = self.rows.get((batch, destination))
            relation = HOLDER if row is not None and row[0] == HOLDER else DESTINATION
            self._set(batch, destination, relation, (row[1] if row else Decimal(0)) + quantity, when)
        elif step == "receiving":
            row = self.rows.get((batch, node))
            if row is not None and row[0] == DESTINATION:
                self._set(batch, node, HOLDER, max(Decimal(0), row[1] - quantity), when)
            elif row is not None and row[1] > 0:
                self._set(batch, node, HOLDER, max(Decimal(0), row[1] - quantity), when)
        return None
