"""The console's first page: what happened today and this week, what needs attention, where, and how goods flowed.

The figures are data (the JSON twin) plus the geometry the page draws them with: the map places each node
by its latitude and longitude, the flow diagram lays kinds of node out by their stage in the chain and
draws each flow as wide as the number of batches it carried. The page draws both as inline SVG; nothing
is fetched from another host.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, time, timedelta
from typing import Any

from traceability import i18n
from traceability.domain import anomalies as anomaly_rules
from traceability.domain import registry
from traceability.domain.fields import BEIJING
from traceability.services import analyzer
from traceability.storage import dashboard_repo
from traceability.storage.database import Database

WEEK = 7
MAP = {"width": 640, "height": 440, "pad": 24}
FLOW = {"width": 640, "height": 340, "bar": 14, "gap": 12, "pad": 8}
# The stage of each kind of node in the chain: the flow diagram's columns, left to right.
STAGE = {
    "farm": 0,
    "pasture": 0,
    "drug_manufacturer": 0,
    "milk_station": 1,
    "dairy_plant": 2,
    "slaughterhouse": 1,
    "processor": 1,
    "wholesale_market": 2,
    "wholesaler": 2,
    "drug_distributor": 2,
    "wet_market": 3,
    "supermarket": 3,
    "canteen": 3,
    "pharmacy": 3,
    "hospital": 3,
}
STATES = ("recalled", "on_hold", "anomaly", "active", "quiet")


def _state(row: Any) -> str:
    return next(s for s in STATES if s == "quiet" or row[s])


async def dashboard(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """Today's and this week's figures, anomalies by kind and severity, recalls, the map and the flows."""
    now = (now or datetime.now(UTC)).astimezone(BEIJING)
    today = datetime.combine(now.date(), time(), BEIJING)
    week = today - timedelta(days=WEEK - 1)
    tomorrow = today + timedelta(days=1)
    async with db.connection() as conn:
        counts = dict(await dashboard_repo.counts(conn, today, week, tomorrow))
        states = await dashboard_repo.anomaly_states(conn)
        recalls = await dashboard_repo.recalls(conn, 10)
        nodes = await dashboard_repo.nodes(conn, week)
        flows = await dashboard_repo.flows(conn, week, tomorrow)
    days = {"today": today.date().isoformat(), "week": week.date().isoformat()}
    open_by: dict[tuple[str, str], int] = {}  # (kind, severity) → open anomalies
    for row in states:
        if row["status"] in anomaly_rules.OPEN:
            key = (row["kind"], row["severity"] or anomaly_rules.default_severity(row["kind"]))
            open_by[key] = open_by.get(key, 0) + row["n"]
    anomalies = [
        {"kind": kind, **i18n.name_fields("anomaly", kind), "severity": severity, "count": n}
        for (kind, severity), n in sorted(
            open_by.items(),
            key=lambda item: (anomaly_rules.SEVERITIES.index(item[0][1]), analyzer.KINDS.index(item[0][0])),
        )
    ]
    return {
        "as_of": now.isoformat(),
        "days": days,
        "counts": {
            key: {"today": counts[f"{key}_today"], "week": counts[f"{key}_week"]}
            for key in ("events", "batches", "receipts", "inspections")
        },
        "anomalies": anomalies,
        "severities": {s: sum(a["count"] for a in anomalies if a["severity"] == s) for s in anomaly_rules.SEVERITIES},
        "recalls": [
            {
                "id": r["id"],
                "trace_code": r["trace_code"],
                "level": r["level"],
                "reason": r["reason"],
                "issued_at": r["issued_at"].isoformat(),
                "product": r["product"],
                "product_en": r["product_en"],
                "affected": r["affected"],
                "closed": r["closed"],
                "progress": round(100 * r["closed"] / r["affected"]) if r["affected"] else 0,
            }
            for r in recalls
        ],
        "map": node_map([dict(n) for n in nodes]),
        "flows": flow_diagram([dict(f) for f in flows]),
    }


def node_map(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Each node at its place (an equirectangular projection, fitted to the nodes), coloured by its state."""
    w, h, pad = MAP["width"], MAP["height"], MAP["pad"]
    if not nodes:
        return {**MAP, "nodes": [], "states": {s: 0 for s in STATES}}
    lats = [n["latitude"] for n in nodes]
    lons = [n["longitude"] for n in nodes]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))  # a degree of longitude is shorter up north
    span_x = max((max(lons) - min(lons)) * squeeze, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    scale = min((w - 2 * pad) / span_x, (h - 2 * pad) / span_y)
    off_x = (w - span_x * scale) / 2
    off_y = (h - span_y * scale) / 2
    placed = []
    for n in nodes:
        state = _state(n)
        placed.append(
            {
                "code": n["code"],
                "name": n["name"],
                "name_en": n["name_en"],
                "type": n["node_type"],
                "type_name": i18n.name_fields("node_type", n["node_type"])["name"],
                "type_name_en": i18n.name_fields("node_type", n["node_type"])["name_en"],
                "state": state,
                "x": round(off_x + (n["longitude"] - min(lons)) * squeeze * scale, 1),
                "y": round(off_y + (max(lats) - n["latitude"]) * scale, 1),
                "r": 5 if STAGE.get(n["node_type"]) == 3 else 8,
            }
        )
    # Draw the quiet ones first so a node that needs attention is never hidden under one that does not.
    placed.sort(key=lambda p: STATES.index(p["state"]), reverse=True)
    states = {s: sum(1 for p in placed if p["state"] == s) for s in STATES}
    return {**MAP, "nodes": placed, "states": states}


def flow_diagram(flows: list[dict[str, Any]]) -> dict[str, Any]:
    """A Sankey-like diagram: kinds of node in columns by stage, a band per flow as wide as its batches."""
    by_types: dict[tuple[str, str], int] = {}
    by_areas: dict[tuple[str, str], int] = {}
    backward = 0  # returns and moves within one stage: counted, not drawn (a band would run back on itself)
    for f in flows:
        key = (f["from_type"], f["to_type"])
        if STAGE.get(key[0], 1) < STAGE.get(key[1], 1):
            by_types[key] = by_types.get(key, 0) + f["batches"]
        else:
            backward += f["batches"]
        if f["from_area"] != f["to_area"]:
            area_key = (f["from_area"], f["to_area"])
            by_areas[area_key] = by_areas.get(area_key, 0) + f["batches"]
    w, h, bar, gap, pad = FLOW["width"], FLOW["height"], FLOW["bar"], FLOW["gap"], FLOW["pad"]
    out_total: dict[str, int] = {}
    in_total: dict[str, int] = {}
    for (a, b), n in by_types.items():
        out_total[a] = out_total.get(a, 0) + n
        in_total[b] = in_total.get(b, 0) + n
    kinds = sorted(set(out_total) | set(in_total), key=lambda k: (STAGE.get(k, 1), k))
    size = {k: max(out_total.get(k, 0), in_total.get(k, 0)) for k in kinds}
    columns: dict[int, list[str]] = {}
    for k in kinds:
        columns.setdefault(STAGE.get(k, 1), []).append(k)
    top = sorted(by_areas.items(), key=lambda item: (-item[1], item[0]))[:10]
    short = _districts({code for pair, _ in top for code in pair})
    districts = [
        {
            "from": a,
            "to": b,
            "from_name": short[a],
            "from_name_en": registry.short_area_name_en(a, short[a]),
            "to_name": short[b],
            "to_name_en": registry.short_area_name_en(b, short[b]),
            "batches": n,
        }
        for (a, b), n in top
    ]
    if not kinds:
        return {**FLOW, "bars": [], "links": [], "districts": districts, "not_drawn": backward}
    tallest = max(sum(size[k] for k in col) for col in columns.values())
    most = max(len(col) for col in columns.values())
    scale = (h - 2 * pad - gap * (most - 1)) / tallest
    stages = max(columns) if columns else 1
    bars: dict[str, dict[str, Any]] = {}
    for stage, col in columns.items():
        x = pad + stage * (w - 2 * pad - bar) / max(stages, 1)
        y = float(pad)
        for k in col:
            height = max(size[k] * scale, 2.0)
            bars[k] = {"type": k, **i18n.name_fields("node_type", k), "x": round(x, 1), "y": round(y, 1),
                       "height": round(height, 1), "batches": size[k], "out": y, "in": y}  # fmt: skip
            y += height + gap
    links = []
    for (a, b), n in sorted(by_types.items(), key=lambda item: (STAGE.get(item[0][0], 1), -item[1])):
        thick = max(n * scale, 1.0)
        src, dst = bars[a], bars[b]
        y0 = src["out"] + thick / 2
        y1 = dst["in"] + thick / 2
        src["out"] += thick
        dst["in"] += thick
        x0, x1 = src["x"] + bar, dst["x"]
        mid = (x0 + x1) / 2
        links.append(
            {
                "from": a,
                "to": b,
                "batches": n,
                "width": round(thick, 1),
                "path": f"M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}",
                "from_name": i18n.name_fields("node_type", a),
                "to_name": i18n.name_fields("node_type", b),
            }
        )
    for b_ in bars.values():
        del b_["out"], b_["in"]
    return {**FLOW, "bars": list(bars.values()), "links": links, "districts": districts, "not_drawn": backward}


def _districts(codes: set[str]) -> dict[str, str]:
    """Districts' names without the province and city they all share (``江苏省徐州市鼓楼区`` → ``鼓楼区``)."""
    names = {c: registry.area_name(c) or c for c in codes}
    # by character on purpose: the names share their leading characters, not path segments
    shared = os.path.commonprefix(list(names.values())) if len(names) > 1 else ""  # noqa: RUF071
    cut = max(shared.rfind("省"), shared.rfind("市")) + 1
    return {c: name[cut:] or name for c, name in names.items()}
