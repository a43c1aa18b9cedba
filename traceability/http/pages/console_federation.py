"""The federation in the console: how witnessing each other member ledger goes, and the split views proven
(a member that showed two histories: both of its signed checkpoints, and whether an administrator cleared it).

Registered on the console's route table (:data:`traceability.http.pages.console.routes`).
"""

from __future__ import annotations

from aiohttp import web

from traceability.http.keys import DATABASE, FEDERATION
from traceability.http.openapi import declare, page
from traceability.http.pages.console import SESSION, console_answer, console_session, routes
from traceability.services import split_views


@routes.get("/console/federation")
@declare(page("Witnessing the other member ledgers, and the split views proven", auth=SESSION))
async def console_federation(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    data = await split_views.overview(request.app[DATABASE], request.app[FEDERATION])
    return await console_answer(request, session, data, "console/federation.html", {"fed": data})
