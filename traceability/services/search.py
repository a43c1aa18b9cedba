"""What the web pages show, built once per request and rendered either as HTML or as its JSON twin.

Each function returns plain JSON-ready data. The consumer record wraps the same batch view the
API serves (``history.read_batch``) with what a person needs first: the status (recalled, on
hold), the journey by node, the stall that sold it, and the canonical bytes the browser hashes to
check the chain and the Merkle proofs itself.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from traceability import errors
from traceability.domain.access import Principal
from traceability.domain.registry import NODE_TYPES, area_name
from traceability.services import analyzer, credit, genealogy, history, stations, transparency
from traceability.storage import credit_repo, search_repo
from traceability.storage.database import Connection, Database

RETAIL_NODES = frozenset({"wet_market", "supermarket", "canteen", "pharmacy", "hospital"})
HOLD_DISPOSITIONS = frozenset({"non_conformant", "damaged", "expired", "stolen", "no_pedigree_match"})


# -- pure helpers ---------------------------------------------------------------------------------


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


def journey(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's path as stops: the origin, then each node in the order the batch reached it."""
    stops: list[dict[str, Any]] = []
    origin = view.get("origin") or {}
    if origin:
        stops.append(
            {
                "kind": "origin",
                "type": "origin",
                "type_name": "产地",
                "type_name_en": "Origin",
                "name": origin.get("producer") or origin.get("place"),
                "name_en": None,
                "place": _origin_place(origin),
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
                "enterprise": node.get("enterprise"),
                "first": e.get("eventTime"),
                "last": e.get("eventTime"),
                "steps": [step],
            }
        )
    return stops


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
        entry = out.setdefault((c["type"], c["number"]), {**c, "nodes": []})
        if c["node"] not in entry["nodes"]:
            entry["nodes"].append(c["node"])
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
                "declared_wrong": bool(e.get("declared_wrong")),
            }
        )
    return out


def export_csv(view: dict[str, Any]) -> str:
    """A batch's events as a sortable spreadsheet (one row per event), for a regulator's request."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "trace_code",
            "product",
            "goods_code",
            "seq",
            "event_time",
            "time_zone",
            "biz_step",
            "disposition",
            "node_code",
            "node_name",
            "node_type",
            "area_code",
            "enterprise",
            "quantity",
            "uom",
            "documents",
            "source",
            "destination",
            "commercial",
            "declared_wrong",
            "event_id",
            "hash",
            "prev_hash",
        ]
    )
    for e in view["events"]:
        q = e.get("quantity") or {}
        node = e["node"]
        w.writerow(
            [
                view["trace_code"],
                view["product"]["name"],
                view["product"]["goods_code"],
                e["seq"],
                e.get("eventTime"),
                e.get("eventTimeZoneOffset"),
                e.get("bizStep"),
                e.get("disposition"),
                node["code"],
                node["name"],
                node["type"],
                node["area_code"],
                node.get("enterprise"),
                q.get("value"),
                q.get("uom"),
                "; ".join(f"{d['type']}:{d['number']}" for d in e.get("documents", ())),
                _compact(e.get("source")),
                _compact(e.get("destination")),
                _compact(e.get("commercial")),
                e.get("declared_wrong", {}).get("reason", "") if e.get("declared_wrong") else "",
                e["event_id"],
                e["hash"],
                e["prev_hash"],
            ]
        )
    # Spreadsheet programs open UTF-8 CSV correctly only with a byte-order mark.
    return "\ufeff" + _neutralise_formulas(buf.getvalue())


def _compact(value: Any) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _neutralise_formulas(text: str) -> str:
    """Cells starting with = + - @ are run as formulas by spreadsheets; prefix them so they stay text."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        w.writerow([("'" + c) if c[:1] in ("=", "+", "-", "@") and not _is_number(c) else c for c in row])
    return out.getvalue()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- consumer -------------------------------------------------------------------------------------


async def find_lease(db: Database, code: str) -> dict[str, Any] | None:
    """Which station a not-yet-synced code was leased to (its records are still on the way), or None."""
    return await stations.find_lease(db, code)


async def _credit(conn: Connection, uscc: str) -> dict[str, Any] | None:
    """The enterprise's current credit rating (信用评价): grade and score over the rating window."""
    ent = await credit_repo.enterprise(conn, uscc)
    if ent is None:
        return None
    now = datetime.now(UTC)
    value, _ = credit.score(await credit_repo.record(conn, ent["id"], now - credit.WINDOW, now))
    return {"grade": credit.grade(value), "score": value, "uscc": uscc}


async def consumer_record(db: Database, code: str, viewer: Principal | None = None) -> tuple[dict[str, Any], str]:
    """The consumer page's data and its ETag: the public batch view plus status, journey, stall and ledger bytes."""
    view, tag = await history.read_batch(db, code, viewer)
    async with db.connection() as conn:
        rows = await search_repo.list_canonical(conn, code)
        vendor = None
        sold_at = next((e for e in reversed(view["events"]) if e["node"]["type"] in RETAIL_NODES), None)
        if sold_at is not None and isinstance(sold_at.get("operator"), str):
            op = await search_repo.find_operator(conn, sold_at["node"]["code"], sold_at["operator"])
            if op is not None:
                vendor = {
                    "operator": op["code"],
                    "name": op["name"],
                    "stall_no": op["stall_no"],
                    "node": op["node_name"],
                    "node_en": op["node_name_en"],
                    "node_code": op["node_code"],
                    "node_type": op["node_type"],
                    "place": area_name(op["area_code"]),
                    "enterprise": op["enterprise_name"],
                    "credit": await _credit(conn, op["enterprise_uscc"]),
                }
        if vendor is None and sold_at is not None:
            node = sold_at["node"]
            vendor = {
                "operator": None,
                "name": None,
                "stall_no": None,
                "node": node["name"],
                "node_en": node.get("name_en"),
                "node_code": node["code"],
                "node_type": node["type"],
                "place": node.get("area_name"),
                "enterprise": node.get("enterprise"),
                "credit": None,
            }
    ledger = {
        "trace_code": view["trace_code"],
        "events": [
            {
                "seq": r["seq"],
                "event_id": r["event_id"],
                "hash": r["hash"].hex(),
                "prev_hash": r["prev_hash"].hex(),
                "canonical": base64.b64encode(r["canonical"]).decode(),
            }
            for r in rows
        ],
        "public_key_url": "/api/v1/log/public-key",
        "proof_url": "/api/v1/events/{event_id}/proof",
    }
    record = {
        "batch": view,
        "status": batch_status(view),
        "journey": journey(view),
        "inspections": inspections(view),
        "certificates": certificates(view),
        "vendor": vendor,
        "ledger": ledger,
    }
    return record, tag


# -- console --------------------------------------------------------------------------------------


def _day(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise errors.InvalidField(f"{field} must be a date such as 2026-11-22", field=field) from None


async def search_batches(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """Batches matching a regulator's filters (product, enterprise, node, dates); a trace code goes straight to it."""
    q = {k: (query.get(k) or "").strip()[:100] for k in ("code", "product", "enterprise", "node", "from", "to")}
    if q["code"]:
        return {"query": q, "redirect": history.valid_code(q["code"]), "results": []}
    since, until = _day(q["from"], "from"), _day(q["to"], "to")
    if since and until and until < since:
        raise errors.InvalidField("to is before from", field="to")
    china = timedelta(hours=8)  # dates are read as China Standard Time, the local day of the nodes
    start = datetime.combine(since, time(), UTC) - china if since else None
    end = datetime.combine(until + timedelta(days=1), time(), UTC) - china if until else None
    if not any((q["product"], q["enterprise"], q["node"], start, end)):
        return {"query": q, "redirect": None, "results": [], "searched": False}
    async with db.connection() as conn:
        rows = await search_repo.search_batches(
            conn,
            product=q["product"] or None,
            enterprise=q["enterprise"] or None,
            node=q["node"] or None,
            since=start,
            until=end,
            limit=200,
        )
    results = [
        {
            "trace_code": r["trace_code"],
            "product": r["product_name"],
            "product_en": r["product_name_en"],
            "goods_code": r["goods_code"],
            "category": r["category"],
            "quantity": format(r["quantity"].normalize(), "f"),
            "uom": r["uom"],
            "opened_at": r["created_at"].isoformat(),
            "opened_by": r["node_name"],
            "opened_by_en": r["node_name_en"],
            "events": r["events"],
        }
        for r in rows
    ]
    return {"query": q, "redirect": None, "results": results, "searched": True, "limit": 200}


async def console_record(db: Database, code: str, viewer: Principal) -> dict[str, Any]:
    """A batch's full record for a regulator: the full view (commercial details included), status and journey."""
    view, _ = await history.read_batch(db, code, viewer)
    backward = await genealogy.trace(db, code, "backward")
    forward = await genealogy.trace(db, code, "forward")
    return {
        "batch": view,
        "status": batch_status(view),
        "journey": journey(view),
        "inspections": inspections(view),
        "genealogy": {"backward": backward, "forward": forward},
    }


async def issue_recall(db: Database, regulator: Principal, form: dict[str, str]) -> dict[str, Any]:
    """A regulator's recall from the console: the same use case as POST /api/v1/recalls."""
    body = {"traceCode": form.get("code", ""), "level": form.get("level", ""), "reason": form.get("reason", "")}
    if form.get("scope", "").strip():
        body["scope"] = form["scope"]
    return await genealogy.recall(db, regulator, body)


async def list_recalls(db: Database) -> dict[str, Any]:
    return {"recalls": await genealogy.list_recalls(db, 200, 0)}


async def list_anomalies(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """Anomalies the analyzer found, filtered by kind, node, enterprise, trace code and detection date."""
    q = {k: (query.get(k) or "").strip()[:100] for k in ("kind", "node", "enterprise", "code", "from", "to")}
    if q["kind"] and q["kind"] not in analyzer.KINDS:
        raise errors.InvalidField(f"kind must be one of: {', '.join(analyzer.KINDS)}", field="kind")
    since, until = _day(q["from"], "from"), _day(q["to"], "to")
    china = timedelta(hours=8)
    items = await analyzer.list_anomalies(
        db,
        kind=q["kind"] or None,
        node=q["node"] or None,
        enterprise=q["enterprise"] or None,
        trace_code=history.valid_code(q["code"]) if q["code"] else None,
        since=datetime.combine(since, time(), UTC) - china if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) - china if until else None,
        limit=200,
        offset=0,
    )
    kinds = [{"kind": k, "name": v[0], "name_en": v[1]} for k, v in analyzer.KINDS.items()]
    return {"query": q, "anomalies": items, "kinds": kinds}


async def enterprise_credit(db: Database, uscc: str) -> dict[str, Any]:
    """An enterprise's credit rating with every factor and its six-month history."""
    return await credit.rating(db, uscc)


async def register_overview(db: Database, limit: int = 200, offset: int = 0) -> dict[str, Any]:
    """The enterprise register: who runs which nodes and how much they recorded."""
    async with db.connection() as conn:
        rows = await search_repo.list_register(conn, limit, offset)
    grades = {r["uscc"]: r for r in await credit.ratings(db, limit, offset)}
    items = [
        {
            "uscc": r["uscc"],
            "name": r["name"],
            "name_en": r["name_en"],
            "registered": r["created_at"].isoformat(),
            "nodes": r["nodes"],
            "node_types": [
                {"type": t, "name": NODE_TYPES[t][0], "name_en": NODE_TYPES[t][1]}
                for t in (r["node_types"] or "").split(",")
                if t in NODE_TYPES
            ],
            "events": r["events"],
            "credit": {"grade": grades[r["uscc"]]["grade"], "score": grades[r["uscc"]]["score"]}
            if r["uscc"] in grades
            else None,
        }
        for r in rows
    ]
    return {"items": items, "limit": limit, "offset": offset}


async def log_status(db: Database, lg: transparency.Log) -> dict[str, Any]:
    """The transparency log as a regulator checks it: latest checkpoints, witnesses, backlog."""
    checkpoints = await transparency.list_checkpoints(db, lg, None, 5)
    async with db.connection() as conn:
        witnesses = await search_repo.list_witnesses(conn)
        backlog = await search_repo.log_backlog(conn)
    return {
        "origin": lg.origin,
        "log_id": lg.log_id,
        "public_key": lg.verifier_key,
        "latest": checkpoints[0] if checkpoints else None,
        "recent": checkpoints,
        "witnesses": [
            {
                "name": w["name"],
                "verifier_key": w["verifier_key"],
                "since": w["created_at"].isoformat(),
                "revoked": w["revoked_at"].isoformat() if w["revoked_at"] else None,
            }
            for w in witnesses
        ],
        "backlog": backlog,
        # TODO(transparency): the last independent audit (consistency checked by an auditor) once recorded.
        "last_audit": None,
    }
