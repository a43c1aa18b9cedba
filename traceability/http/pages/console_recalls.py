"""Recalls in the console: a preview of everything a recall would reach, its confirmation with the level chosen
explicitly, and the recall's own page (how far it has got, every batch, place, stall and receipt it reached).

Registered on the console's route table (:data:`traceability.http.pages.console.routes`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from traceability import errors
from traceability.http.audit import audit
from traceability.http.keys import DATABASE, FEDERATION, LOG
from traceability.http.openapi import Param, declare, page
from traceability.http.pages import sessions
from traceability.http.pages.console import CODE, CSRF_ONLY, SESSION, console_answer, console_session, routes
from traceability.http.pages.render import wants_json
from traceability.services import federated_recall, history
from traceability.services.views import console as views
from traceability.services.views import recall as recall_views

RECALL_FIELDS: dict[str, dict[str, Any]] = {
    "level": {"enum": ["I", "II", "III"]},
    "reason": {"type": "string", "maxLength": 500},
    "scope": {"type": "string", "maxLength": 500},
}
RECALL_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "a recall's id", where="path")


def _fields(source: Any) -> dict[str, str]:
    return {k: str(source.get(k, ""))[:1000] for k in ("level", "reason", "scope")}  # bounded again by the recall


@routes.get("/console/batches/{code}/recall")
@declare(
    page(
        "Before a recall: everything it would reach, and the form that confirms it",
        auth=SESSION,
        path=(CODE,),
        query=tuple(Param(k, v) for k, v in RECALL_FIELDS.items()),
        sheet=True,
    )
)
async def console_recall_preview(request: web.Request) -> web.StreamResponse:
    """What a recall of this batch would reach: batches down to each receipt, places, stalls, quantities."""
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    reached = await recall_views.reach(request.app[DATABASE], code)
    audit(request, session.principal, "trace", code, direction="forward", via="console", purpose="recall preview")
    context = {"p": reached, "form": _fields(request.query), "error": None}
    table = recall_views.reach_table(reached, f"recall-preview-{code}")
    return await console_answer(request, session, reached, "console/recall_preview.html", context, table=table)


@routes.post("/console/batches/{code}/recall")
@declare(
    page(
        "Recall this batch and everything made from it (after its preview: confirm=yes)",
        status=201,
        auth=SESSION,
        path=(CODE,),
        form={
            **CSRF_ONLY,
            "properties": {"csrf": {"type": "string"}, "confirm": {"enum": ["yes"]}, **RECALL_FIELDS},
            "required": ["csrf", "level", "reason", "confirm"],
        },
    )
)
async def console_recall(request: web.Request) -> web.StreamResponse:
    """Issue a recall the regulator has previewed and confirmed; the recall's page follows."""
    session = await console_session(request)
    form = await sessions.read_form(request)
    sessions.check_csrf(session, form)
    code = history.valid_code(request.match_info["code"])
    fields = _fields(form)
    db = request.app[DATABASE]
    try:
        if str(form.get("confirm", "")) != "yes":
            raise errors.InvalidField("confirm: check the reach above and confirm the recall", field="confirm")
        result = await views.issue_recall(db, session.principal, {"code": code, **fields})
    except errors.InvalidField as exc:
        problem = exc.message

        async def preview_again() -> dict[str, Any]:  # the preview again, the problem by the form
            reached = await recall_views.reach(db, code)
            return {"p": reached, "form": fields, "error": problem}

        return await console_answer(request, session, exc, "console/recall_preview.html", preview_again)
    audit(request, session.principal, "recall", code, level=result["level"], batches=len(result["batches"]),
          via="console")  # fmt: skip
    result["notices"] = await federated_recall.send_notices(db, request.app[LOG], request.app[FEDERATION], result)
    if not wants_json(request):
        raise web.HTTPSeeOther(f"/console/recalls/{result['recall_id']}")
    return await console_answer(request, session, result, "console/recall.html", {}, status=201)


@routes.get("/console/recalls/{id}")
@declare(page("A recall: how far it has got, and every batch, place, stall and receipt it reached",
              auth=SESSION, path=(RECALL_ID,), sheet=True))  # fmt: skip
async def console_recall_page(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise errors.InvalidField("id: a recall's number", field="id")
    data = await recall_views.recall_page(request.app[DATABASE], int(raw))
    table = recall_views.reach_table(data, f"recall-{data['id']}")
    return await console_answer(request, session, data, "console/recall.html", {"r": data}, table=table)
