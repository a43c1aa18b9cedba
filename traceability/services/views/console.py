"""What the regulator console shows, and its JSON twins: search, a batch's full record with its genealogy,
recalls, anomalies, the enterprise register with credit ratings, and the transparency log's state.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.domain import anomalies as anomaly_rules
from traceability.domain import bounds, registry
from traceability.domain.access import Principal
from traceability.domain.fields import BEIJING
from traceability.domain.registry import NODE_TYPES
from traceability.services import access_log, analyzer, credit, genealogy, history, transparency
from traceability.services.views.batch import batch_status, certificates, inspections, journey
from traceability.storage import analysis_repo, search_repo
from traceability.storage.database import Database


def _day(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        return bounds.parse_day(raw)
    except bounds.TimeFormatError as exc:
        raise errors.InvalidField(f"{field}: {exc}", field=field) from None


def _filters(query: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    """The console's filters, stripped; one longer than a filter may be is refused, not cut short."""
    q = {k: (query.get(k) or "").strip() for k in keys}
    for k, v in q.items():
        if (problem := bounds.text_problem(v, bounds.QUERY_TEXT)) is not None:
            raise errors.InvalidField(f"{k}: {problem}", field=k)
    return q


async def search_batches(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """Batches matching a regulator's filters (product, enterprise, node, dates); a trace code goes straight to it."""
    q = _filters(query, ("code", "product", "enterprise", "node", "from", "to"))
    if q["code"]:
        return {"query": q, "redirect": history.valid_code(q["code"]), "results": []}
    since, until = _day(q["from"], "from"), _day(q["to"], "to")
    if since and until and until < since:
        raise errors.InvalidField("to is before from", field="to")
    # Dates are Beijing days, the nodes' own.
    start = datetime.combine(since, time(), BEIJING) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), BEIJING) if until else None
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
            "produced_on": r["produced_on"].isoformat() if r["produced_on"] else None,
            "opened_on": r["opened_time"].isoformat() if r["opened_time"] else None,
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
        "certificates": certificates(view),
        "genealogy": {"backward": backward, "forward": forward},
    }


async def issue_recall(db: Database, regulator: Principal, form: dict[str, str]) -> dict[str, Any]:
    """A regulator's recall from the console: the same use case as POST /api/v1/recalls."""
    body = {"traceCode": form.get("code", ""), "level": form.get("level", ""), "reason": form.get("reason", "")}
    if form.get("scope", "").strip():
        body["scope"] = form["scope"]
    return await genealogy.recall(db, regulator, body)


async def list_recalls(db: Database) -> dict[str, Any]:
    """The recalls as regulators see them: the authority that issued each, and the account."""
    return {"recalls": await genealogy.list_recalls(db, 200, 0, oversight=True)}


async def access_records(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """The access log page: newest first, filtered by action and trace code, 100 a page (``before`` pages back)."""
    q = {k: (query.get(k) or "").strip()[:100] for k in ("action", "target", "before")}
    found = await access_log.list_access(db, {k: v for k, v in q.items() if v}, limit=100)
    return {"query": q, "actions": access_log.ACTIONS, **found}


async def list_anomalies(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """Anomalies with their triage, filtered by status, severity, kind, district, node, enterprise, trace code and
    detection date; ``status=open`` is new and investigating together."""
    q = _filters(query, ("status", "severity", "kind", "district", "node", "enterprise", "code", "from", "to"))
    if q["kind"] and q["kind"] not in analyzer.KINDS:
        raise errors.InvalidField(f"kind must be one of: {', '.join(analyzer.KINDS)}", field="kind")
    if q["status"] and q["status"] not in (*anomaly_rules.STATUSES, "open"):
        raise errors.InvalidField(f"status must be open or one of: {', '.join(anomaly_rules.STATUSES)}", field="status")
    if q["severity"] and q["severity"] not in anomaly_rules.SEVERITIES:
        raise errors.InvalidField(f"severity must be one of: {', '.join(anomaly_rules.SEVERITIES)}", field="severity")
    since, until = _day(q["from"], "from"), _day(q["to"], "to")
    uscc = len(q["enterprise"]) == 18 and q["enterprise"].isalnum()  # a USCC; anything else is part of a name
    items = await analyzer.list_anomalies(
        db,
        kind=q["kind"] or None,
        node=q["node"] or None,
        enterprise=q["enterprise"] if uscc else None,
        enterprise_name=q["enterprise"] if q["enterprise"] and not uscc else None,
        trace_code=history.valid_code(q["code"]) if q["code"] else None,
        since=datetime.combine(since, time(), BEIJING) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), BEIJING) if until else None,
        statuses=anomaly_rules.OPEN if q["status"] == "open" else ((q["status"],) if q["status"] else None),
        severity=q["severity"] or None,
        district=q["district"] or None,
        limit=200,
        offset=0,
    )
    async with db.connection() as conn:
        areas = await analysis_repo.anomaly_districts(conn)
    return {
        "query": q,
        "anomalies": items,
        "kinds": [{"kind": k, **i18n.name_fields("anomaly", k)} for k in analyzer.KINDS],
        "statuses": [{"status": s, **i18n.name_fields("triage_status", s)} for s in anomaly_rules.STATUSES],
        "severities": [{"severity": s, **i18n.name_fields("severity", s)} for s in anomaly_rules.SEVERITIES],
        "districts": [
            {"code": a, "name": registry.area_name(a) or a, "name_en": registry.short_area_name_en(a, _county(a))}
            for a in areas
        ],
    }


def _county(area: str) -> str:
    """The last part of an area's name (``江苏省徐州市鼓楼区`` → ``鼓楼区``)."""
    name = registry.area_name(area) or area
    cut = max(name.rfind("省"), name.rfind("市", 0, len(name) - 1)) + 1
    return name[cut:] or name


async def enterprise_credit(db: Database, uscc: str) -> dict[str, Any]:
    """An enterprise's credit rating with every factor, its history month by month and its stalls' ratings."""
    return await credit.rating(db, uscc)


async def stall_credit(db: Database, node: str, code: str) -> dict[str, Any]:
    """A stall's credit rating, by the same rules over what its own scanners and scales recorded."""
    return await credit.stall_rating(db, node, code)


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
                {"type": t, **i18n.name_fields("node_type", t)}
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
