"""A batch seen with everything it came from: the journey, certificates, inspections and state of its lineage.

A receipt or a joint of pork is a batch of its own, cut from another (a sale, a split); what a shopper
needs to know about it mostly happened to its ancestors: the farm, the slaughter, the tests, the
wholesale market. These pure functions merge the public views of a batch and of its ancestors
(:func:`traceability.services.history.read_batch`) into one account. From an ancestor they take what
happened before this batch was cut from it, and not its other sales (those are other shoppers'
receipts), nor the hold and recall events the ledger appended (those reach this batch's own chain).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from traceability.services.views.batch import batch_status, certificates, inspections, journey, named_origins

SALES = frozenset({"retail_selling", "dispensing"})
STATES = ("recalled", "on_hold", "expired", "ok")
"""From worst to best: the state a batch shows is the worst of its own and its ancestors'."""


def _appended(event: dict[str, Any]) -> bool:
    """A hold or recall the ledger appended to every descendant's chain."""
    return "recall" in event or "hold" in event


def ancestor_events(view: dict[str, Any], cut: str | None) -> list[dict[str, Any]]:
    """An ancestor's events up to ``cut`` (when the batch was cut from it), without sales and appended statuses."""
    return [
        e
        for e in view["events"]
        if e.get("bizStep") not in SALES and not _appended(e) and (cut is None or (e.get("eventTime") or "") <= cut)
    ]


def cut_at(own: dict[str, Any]) -> str | None:
    """When the batch was cut from the ones it came from (its first event's time): what of theirs it shows."""
    return own["events"][0].get("eventTime") if own["events"] else None


def merged_journey(own: dict[str, Any], ancestors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Origins first (each distinct one), then each ancestor's stops (farthest first, each in chain order), then the
    batch's own; a step shown once per stop (a split is recorded on both sides)."""
    cut = cut_at(own)
    stops: list[dict[str, Any]] = []
    for view in [*ancestors, own]:
        if view.get("origin"):  # a joint names the farm its carcass came from: one stop for one origin
            for stop in journey({**view, "events": []}):
                if stop["kind"] == "origin" and all(
                    (o["name"], o["place"]) != (stop["name"], stop["place"]) for o in stops
                ):
                    stops.append(stop)
    events = [e for view in ancestors for e in ancestor_events(view, cut)] + list(own["events"])
    for stop in journey({"events": events}):
        seen: set[tuple[Any, Any]] = set()
        steps = []
        for step in stop["steps"]:
            key = (step["bizStep"], step["eventTime"])
            if key not in seen:
                seen.add(key)
                steps.append(step)
        stop["steps"] = steps
        stops.append(stop)
    return named_origins(stops)


def merged_certificates(own: dict[str, Any], ancestors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every certificate of the lineage once, the oldest batch's first."""
    return certificates({"certificates": [c for view in [*ancestors, own] for c in view["certificates"]]})


def merged_inspections(own: dict[str, Any], ancestors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [i for view in [*ancestors, own] for i in inspections(view)]
    return sorted(out, key=lambda i: i.get("eventTime") or "")


def expiry(own: dict[str, Any], ancestors: list[dict[str, Any]]) -> str | None:
    """The batch's own expiry date, else the nearest ancestor's (ancestors come nearest last)."""
    for view in [own, *reversed(ancestors)]:
        if view.get("expires_on"):
            return str(view["expires_on"])
    return None


def merged_status(own: dict[str, Any], ancestors: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """The batch's state as of ``today`` (Beijing): the worst of its own chain's and its ancestors', and
    ``expired`` when its shelf life (or an ancestor's) is over; with what says so."""
    own_status = batch_status(own)
    states = [own_status["state"], *(batch_status(v)["state"] for v in ancestors)]
    state = min(states, key=STATES.index)
    expires_on = expiry(own, ancestors)
    expired = expires_on is not None and date.fromisoformat(expires_on) < today
    if state == "ok" and expired:
        state = "expired"
    failed = [
        i
        for i in merged_inspections(own, ancestors)
        if not i["declared_wrong"] and (i["disposition"] == "non_conformant" or i["result"] == "fail")
    ]
    inherited = [v["trace_code"] for v in ancestors if batch_status(v)["state"] != "ok"]
    return {
        **own_status,
        "state": state,
        "expired": expired,
        "expires_on": expires_on,
        "failed": failed,
        "inherited_from": inherited,
    }


def this_sale(own: dict[str, Any]) -> dict[str, Any] | None:
    """For a receipt (a batch opened by a sale): the batch it was cut from, the weight and the time."""
    first = own["events"][0] if own["events"] else {}
    sold_from = first.get("soldFrom")
    if not isinstance(sold_from, dict):
        return None
    node = first["node"]
    return {
        "source": sold_from.get("traceCode"),
        "quantity": first.get("quantity"),
        "eventTime": first.get("eventTime"),
        "offset": first.get("eventTimeZoneOffset"),
        "node": node["name"],
        "node_en": node.get("name_en"),
        "node_code": node["code"],
        "operator": first.get("operator"),
    }
