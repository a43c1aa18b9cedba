"""A batch view shaped for people: its status, its journey by node, its inspections and certificates (the
spreadsheet a regulator exports is in :mod:`.tables`). Pure functions of the view
:func:`traceability.services.history.read_batch` returns; the consumer page and the console both build on them.
"""

from __future__ import annotations

from typing import Any

from traceability import i18n
from traceability.domain import dairy
from traceability.domain.registry import area_name, area_name_en

RETAIL_NODES = frozenset({"wet_market", "supermarket", "canteen", "pharmacy", "hospital"})
HOLD_DISPOSITIONS = frozenset({"non_conformant", "damaged", "expired", "stolen", "no_pedigree_match"})


def batch_status(view: dict[str, Any]) -> dict[str, Any]:
    """``recalled``, ``on_hold`` or ``ok``, with the events that say so (events declared wrong do not count)."""
    recalled, held = [], []
    for e in view["events"]:
        if e.get("declared_wrong") or e.get("errorDeclaration"):
            continue
        disposition = e.get("disposition")
        if disposition == "recalled":
            recalled.append(_status_event(e))
        elif disposition in HOLD_DISPOSITIONS or e.get("bizStep") == "holding":
            held.append(_status_event(e))
    state = "recalled" if recalled else "on_hold" if held else "ok"
    # A recall or hold of a batch this one came from reaches it as an event on its own chain (genealogy).
    return {"state": state, "recalled": recalled, "held": held}


def _status_event(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": e["seq"],
        "bizStep": e.get("bizStep"),
        "disposition": e.get("disposition"),
        "eventTime": e.get("eventTime"),
        "node": e["node"]["name"],
        "node_en": e["node"].get("name_en"),
    }


def named_origins(stops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An origin's producer is free text in the batch's first record, in Chinese; when it is a node of the
    journey by its registered name (a farm that opened the batch itself), the origin takes that node's
    English name, so an English page does not name the same farm in two languages."""
    english = {s["name"]: s["name_en"] for s in stops if s["kind"] == "node" and s.get("name_en")}
    for stop in stops:
        if stop["kind"] == "origin" and not stop.get("name_en") and stop.get("name") in english:
            stop["name_en"] = english[stop["name"]]
    return stops


def journey(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's path as stops: the origin, then each node in the order the batch reached it."""
    stops: list[dict[str, Any]] = []
    origin = view.get("origin") or {}
    if origin:
        stops.append(
            {
                "kind": "origin",
                "type": "origin",
                "type_name": i18n.words("zh")("origin"),
                "type_name_en": i18n.words("en")("origin"),
                "name": origin.get("producer") or origin.get("place"),
                "name_en": None,
                "place": _origin_place(origin),
                "place_en": area_name_en(origin.get("areaCode", "")),
                "first": view.get("produced_on"),
                "last": view.get("produced_on"),
                "steps": [],
            }
        )
    for e in view["events"]:
        node = e["node"]
        step = {
            "seq": e["seq"],
            "bizStep": e.get("bizStep"),
            "disposition": e.get("disposition"),
            "eventTime": e.get("eventTime"),
            "offset": e.get("eventTimeZoneOffset"),
            "declared_wrong": bool(e.get("declared_wrong")),
        }
        if stops and stops[-1].get("code") == node["code"]:
            stops[-1]["steps"].append(step)
            stops[-1]["last"] = e.get("eventTime")
            continue
        stops.append(
            {
                "kind": "node",
                "code": node["code"],
                "type": node["type"],
                "type_name": node["type_name"],
                "type_name_en": node["type_name_en"],
                "name": node["name"],
                "name_en": node.get("name_en"),
                "place": node.get("area_name"),
                "place_en": node.get("area_name_en"),
                "enterprise": node.get("enterprise"),
                "first": e.get("eventTime"),
                "last": e.get("eventTime"),
                "steps": [step],
            }
        )
    return named_origins(stops)


def _origin_place(origin: dict[str, Any]) -> str | None:
    """The area's name, then the place as typed unless it repeats the area or the producer."""
    area = area_name(origin.get("areaCode", "")) or ""
    place = origin.get("place") or ""
    name = origin.get("producer") or place
    extra = place if place and place != name and place not in area else ""
    return " ".join(p for p in (area, extra) if p) or None


def certificates(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Certificates and vouchers, each once, with every node that recorded it (a voucher travels with the goods)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for c in view["certificates"]:
        entry = out.setdefault((c["type"], c["number"]), {**c, "nodes": [], "seen": []})
        if c["node"] not in entry["nodes"]:
            entry["nodes"].append(c["node"])
            entry["seen"].append({"name": c["node"], "name_en": c.get("node_en"), "seq": c["seq"]})
    return list(out.values())


def inspections(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Inspection and test events with their outcome."""
    out = []
    for e in view["events"]:
        if e.get("bizStep") not in ("inspecting", "sampling"):
            continue
        attrs = e.get("attributes") or {}
        out.append(
            {
                "seq": e["seq"],
                "eventTime": e.get("eventTime"),
                "node": e["node"]["name"],
                "node_en": e["node"].get("name_en"),
                "disposition": e.get("disposition"),
                "test": attrs.get("test"),
                "result": attrs.get("result"),
                "value": attrs.get("value"),
                "limit": attrs.get("limit"),
                "method": attrs.get("method"),
                "measures": dairy.raw_milk_measures(attrs) if attrs.get("test") == "raw_milk" else [],
                "declared_wrong": bool(e.get("declared_wrong")),
            }
        )
    return out
