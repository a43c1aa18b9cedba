"""The federation in the console: how witnessing each other member ledger goes, and the split views proven
(a member that showed two histories: both of its signed checkpoints, and whether an administrator cleared it;
an administrator clears one here, the clearance kept with who, why and when).

Registered on the console's route table (:data:`traceability.http.pages.console.routes`).
"""

from __future__ import annotations

from aiohttp import web

from traceability import errors
from traceability.domain import bounds
from traceability.http.keys import DATABASE, FEDERATION
from traceability.http.openapi import Param, declare, page
from traceability.http.pages import sessions
from traceability.http.pages.console import SESSION, console_answer, console_session, routes
from traceability.http.pages.render import wants_json
from traceability.services import split_views

SPLIT_ID = Param("id", {"type": "integer", "minimum": 1, "maximum": bounds.INT64_MAX}, "a split view", where="path")


@routes.get("/console/federation")
@declare(page("Witnessing the other member ledgers, and the split views proven", auth=SESSION))
async def console_federation(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    data = await split_views.overview(request.app[DATABASE], request.app[FEDERATION])
    return await console_answer(request, session, data, "console/federation.html", {"fed": data})


@routes.post(r"/console/federation/split-views/{id:\d+}/clear")
@declare(
    page(
        "Clear a split view once dealt with (administrators): the member's vouchers are taken again",
        auth=SESSION,
        path=(SPLIT_ID,),
        form={
            "type": "object",
            "properties": {"csrf": {"type": "string"}, "reason": {"type": "string", "maxLength": 500}},
            "required": ["csrf", "reason"],
        },
    )
)
async def console_clear_split_view(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    form = await sessions.read_form(request)
    sessions.check_csrf(session, form)
    if session.principal.role != "admin":
        raise errors.Forbidden("only an administrator clears a split view")
    split_id = int(request.match_info["id"][:19])
    reason = str(form.get("reason", "")).strip()
    problem = bounds.text_problem(reason, 500) if reason else "required, a text"
    if problem is not None:
        raise errors.InvalidField(f"reason: {problem}", field="reason")
    cleared = await split_views.clear(request.app[DATABASE], session.principal, split_id, reason)
    if not wants_json(request):
        raise web.HTTPSeeOther("/console/federation")
    return await console_answer(request, session, cleared, "console/federation.html", {})
