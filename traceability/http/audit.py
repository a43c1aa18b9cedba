"""Recording what a request showed or did in the access log (``services.access_log``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from traceability.domain.access import Principal
from traceability.http.keys import ACCESS
from traceability.http.middleware import REQUEST_ID


def audit(request: web.Request, principal: Principal, action: str, target: str, **detail: Any) -> None:
    """Queue one access record: who (``principal``), ``action`` on ``target``, from the client's address."""
    request.app[ACCESS].record(
        principal, action, target, source=request.remote, request_id=request.get(REQUEST_ID, ""), detail=detail
    )
