"""The regulator's workspace beside the console's lists: a batch's trace backward or forward as a list, the key
data element export by product (or category) and date range, and an anomaly's triage.

Registered on the console's route table (:data:`traceability.http.pages.console.routes`): the same
session, frame and spreadsheet twins as every console page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from traceability import errors
from traceability.domain import anomalies as anomaly_rules
from traceability.domain import registry
from traceability.http import schemas
from traceability.http.audit import audit
from traceability.http.keys import DATABASE, FEDERATION, LOG
from traceability.http.openapi import Param, declare, page
from traceability.http.pages import sessions
from traceability.http.pages.console import CODE, SESSION, console_answer, console_session, routes, wants_sheet
from traceability.http.pages.render import wants_json
from traceability.services import federated_trace, history, kde, triage
from traceability.services.views import console as views
from traceability.services.views import tables

KDE_QUERY = (
    Param("product", schemas.text(100), "a goods code, GTIN or part of a product's name"),
    Param("category", {"enum": sorted(registry.PRODUCT_CATEGORIES)}, "a product category"),
    Param("from", schemas.DAY, "from this day (China Standard Time)"),
    Param("to", schemas.DAY, "to this day, at most 366 days after from"),
)
PREVIEW = 100


@routes.get("/console/batches/{code}/{direction:backward|forward}")
@declare(
    {
        direction: page(f"A batch's trace {direction}, every batch it reached", auth=SESSION, path=(CODE,), sheet=True)
        for direction in ("backward", "forward")
    }
)
async def console_trace(request: web.Request) -> web.StreamResponse:
    """Every batch the trace reaches from this one, with where each went, as a list (and a spreadsheet)."""
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    direction = request.match_info["direction"]
    app = request.app
    trace = await federated_trace.trace_across(app[DATABASE], app[LOG], app[FEDERATION], code, direction)
    action = "export" if wants_sheet(request) else "trace"
    audit(request, session.principal, action, code, direction=direction, via="console")
    table = tables.trace_table(trace)
    return await console_answer(request, session, trace, "console/trace.html", {"tr": trace}, table=table)


@routes.get("/console/kde")
@declare(
    page(
        "Key data elements: every critical tracking event of a product or category over a date range",
        auth=SESSION,
        query=KDE_QUERY,
        sheet=True,
    )
)
async def console_kde(request: web.Request) -> web.StreamResponse:
    """The key data element export: the page previews it, ``?format=csv|xlsx`` downloads every row."""
    session = await console_session(request)
    query = dict(request.query)
    try:
        data = await kde.export(request.app[DATABASE], query)
    except errors.TraceError as exc:
        empty = {"query": query, "ready": False, "rows": [], "count": 0}
        refused = {"data": empty, "error": exc.message, "categories": sorted(registry.PRODUCT_CATEGORIES)}
        return await console_answer(request, session, exc, "console/kde.html", refused)
    if data["ready"] and wants_sheet(request):
        audit(request, session.principal, "export", "kde", format=request.query["format"], rows=data["count"],
              via="console")  # fmt: skip
    context: dict[str, Any] = {
        "data": data,
        "error": None,
        "preview": data["rows"][:PREVIEW],
        "categories": sorted(registry.PRODUCT_CATEGORIES),
    }
    return await console_answer(request, session, data, "console/kde.html", context, table=kde.table(data))


ANOMALY_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "an anomaly's id", where="path")
TRIAGE_FORM = {
    "type": "object",
    "properties": {
        "csrf": {"type": "string"},
        "severity": {"enum": list(anomaly_rules.SEVERITIES)},
        "status": {"enum": list(anomaly_rules.STATUSES)},
        "assignee": {"type": "string", "maxLength": triage.ASSIGNEE_MAX},
        "note": {"type": "string", "maxLength": triage.NOTE_MAX},
    },
    "required": ["csrf"],
}


def _anomaly_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise errors.InvalidField("id: an anomaly's number", field="id")
    return int(raw)


@routes.get("/console/anomalies/{id}")
@declare(page("An anomaly: its explanation, triage state and history, and the triage form", auth=SESSION,
              path=(ANOMALY_ID,)))  # fmt: skip
async def console_anomaly(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    data = await triage.anomaly(request.app[DATABASE], _anomaly_id(request))
    return await console_answer(request, session, data, "console/anomaly.html", {"a": data, "error": None})


@routes.post("/console/anomalies/{id}")
@declare(page("Triage an anomaly: severity, status, assignee, a note (kept as history)", auth=SESSION,
              path=(ANOMALY_ID,), form=TRIAGE_FORM))  # fmt: skip
async def console_triage(request: web.Request) -> web.StreamResponse:
    """Record a triage step; the page shows the anomaly again with its history, or the problem by the form."""
    session = await console_session(request)
    form = await sessions.read_form(request)
    sessions.check_csrf(session, form)
    anomaly_id = _anomaly_id(request)
    fields = {k: str(form[k])[:4000] for k in ("severity", "status", "assignee", "note") if k in form}
    db = request.app[DATABASE]
    try:
        data = await triage.triage(db, session.principal, anomaly_id, fields)
    except errors.InvalidField as exc:
        again = await triage.anomaly(db, anomaly_id)
        return await console_answer(request, session, exc, "console/anomaly.html", {"a": again, "error": exc.message})
    if not wants_json(request):
        raise web.HTTPSeeOther(f"/console/anomalies/{anomaly_id}?saved=1")
    return await console_answer(request, session, data, "console/anomaly.html", {"a": data, "error": None})


@routes.get("/console/stalls/{node}/{code}")
@declare(
    page(
        "A stall's (operator's) credit rating with its factors and history",
        auth=SESSION,
        path=(
            Param("node", {"type": "string", "maxLength": 20}, "the node's code", where="path"),
            Param("code", {"type": "string", "maxLength": 40}, "the stall's operator code", where="path"),
        ),
        sheet=True,
    )
)
async def console_stall(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    node, code = request.match_info["node"][:20], request.match_info["code"][:40]
    rating = await views.stall_credit(request.app[DATABASE], node, code)
    table = tables.credit_table(rating)
    return await console_answer(request, session, rating, "console/credit.html", {"c": rating}, table=table)
