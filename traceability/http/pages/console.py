"""The regulator console (``/console``): trace search, a batch's full record and export, recalls, anomalies,
the enterprise register with credit ratings, the transparency log's state, changing one's password, and
(for administrators) the access log.

Every page needs a console session and is never cached (``Cache-Control: no-store``), its JSON twin too.
Seeing a batch's full record, exporting it and issuing a recall are recorded in the access log.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from traceability import errors
from traceability.domain import limits
from traceability.epcis import document as epcis_document
from traceability.http import schemas
from traceability.http.api import json_response
from traceability.http.audit import audit
from traceability.http.auth import source
from traceability.http.keys import DATABASE, LIMITS, LOG, SETTINGS
from traceability.http.openapi import Operation, Param, Response, declare, page
from traceability.http.pages import language, sessions, sheets
from traceability.http.pages.render import NO_STORE, Context, PageRoutes, answer, self_url
from traceability.services import accounts, epcis_query, history
from traceability.services.accounts import WebSession
from traceability.services.views import console as views
from traceability.services.views import dashboard as dashboard_views
from traceability.services.views import tables
from traceability.services.views.tables import TableOf

routes = PageRoutes()
CODE = Param("code", {"type": "string", "maxLength": 64}, "a trace code", where="path")
SESSION = ("session",)
FILTERS = (
    *(Param(k, schemas.text(100)) for k in ("product", "enterprise", "node")),
    Param("from", schemas.DAY, "from this day (China Standard Time)"),
    Param("to", schemas.DAY, "to this day"),
)
SIGN_IN = {
    "type": "object",
    "properties": {
        "csrf": {"type": "string"},
        "name": {"type": "string"},
        "password": {"type": "string"},
        "next": {"type": "string"},
    },
    "required": ["csrf", "name", "password"],
}
CSRF_ONLY = {"type": "object", "properties": {"csrf": {"type": "string"}}, "required": ["csrf"]}
PASSWORD_CHANGE = {
    "type": "object",
    "properties": {"csrf": {"type": "string"}, "current_password": {"type": "string"}, "password": {"type": "string"}},
    "required": ["csrf", "current_password", "password"],
}

# The console's sections: (path, catalogue key of its name).
NAV = (
    ("/console", "dashboard"),
    ("/console/search", "search_title"),
    ("/console/recalls", "recalls"),
    ("/console/anomalies", "anomalies"),
    ("/console/enterprises", "register"),
    ("/console/kde", "kde_title"),
    ("/console/log", "log_status"),
    ("/console/federation", "federation_witness"),
)


ADMIN_NAV = (("/console/audit", "audit"),)
"""Sections only administrators see."""


async def console_session(request: web.Request) -> WebSession:
    return await sessions.require(request, sessions.CONSOLE_COOKIE, "console", "/console/login")


def _nav(session: WebSession) -> tuple[tuple[str, str], ...]:
    return NAV + ADMIN_NAV if session.principal.role == "admin" else NAV


async def console_answer(
    request: web.Request,
    session: WebSession,
    data: Any,
    template: str,
    context: Context,
    *,
    status: int | None = None,
    table: TableOf | None = None,
) -> web.Response:
    """:func:`~traceability.http.pages.render.answer` with the console's frame (who is signed in, the sections);
    a list's ``table`` is its spreadsheet twin (``?format=csv|xlsx``)."""

    async def page() -> dict[str, Any]:
        own = await context() if callable(context) else context
        return {"session": session, "nav": _nav(session), "sheet_url": _sheet_url(request), **own}

    return await answer(request, data, template, page, status=status, headers=NO_STORE, table=table)


def _sheet_url(request: web.Request) -> Any:
    """This page's URL as a spreadsheet: ``sheet_url('xlsx')`` in a template."""
    return lambda fmt: self_url(request, format=fmt, lang=None)


def wants_sheet(request: web.Request) -> bool:
    return request.query.get("format", "") in sheets.FORMATS


@routes.get("/console/login")
@declare(page("The console's sign-in form"))
async def console_login_form(request: web.Request) -> web.Response:
    if await sessions.current(request, sessions.CONSOLE_COOKIE, "console") is not None:
        raise web.HTTPSeeOther("/console")
    return sessions.login_page(request, "console/login.html")


@routes.post("/console/login")
@declare(page("Sign in to the console (name and password)", form=SIGN_IN))
async def console_login(request: web.Request) -> web.Response:
    form = await sessions.read_form(request)
    sessions.check_pre_csrf(request, form)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    try:
        lim = request.app[LIMITS]
        lim.take(lim.sign_in, source(request), "sign-in")
        opened = await accounts.sign_in(request.app[DATABASE], name, password, request.remote)
    except (errors.Unauthorized, errors.TooManyRequests) as exc:
        t = language.choose(request)
        message = t("login_wrong")
        if isinstance(exc, errors.LockedOut):
            message = exc.message
        elif isinstance(exc, errors.TooManyRequests):
            message = t("too_many", seconds=limits.retry_after(exc.retry_after or 1))
        page = sessions.login_page(request, "console/login.html", status=exc.status, error=message, name=name[:100])
        if exc.retry_after is not None:
            page.headers["Retry-After"] = limits.retry_after(exc.retry_after)
        return page
    response = web.HTTPSeeOther(sessions.next_path(str(form.get("next", "")), "/console", "/console"))
    lifetime = int(accounts.SESSION_LIFETIME.total_seconds())
    sessions.set_cookie(response, request, sessions.CONSOLE_COOKIE, opened.token, "/console", lifetime)
    raise response


@routes.post("/console/logout")
@declare(page("Sign out of the console", auth=SESSION, form=CSRF_ONLY))
async def console_logout(request: web.Request) -> web.Response:
    session = await console_session(request)
    sessions.check_csrf(session, await sessions.read_form(request))
    await accounts.sign_out(request.app[DATABASE], request.cookies.get(sessions.CONSOLE_COOKIE, ""))
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(sessions.CONSOLE_COOKIE, path="/console")
    raise response


SEARCH_KEYS = ("code", "product", "enterprise", "node", "from", "to")


@routes.get("/console")
@declare(
    page(
        "The dashboard: today's and this week's figures, anomalies, recalls, the map of nodes and the flows",
        auth=SESSION,
        query=(Param("code", schemas.text(100)), *FILTERS),
    )
)
async def console_dashboard(request: web.Request) -> web.StreamResponse:
    """The console's first page; a search sent here (an old link, a bookmark) goes on to the search page."""
    session = await console_session(request)
    if code := request.query.get("code", "").strip():
        try:
            raise web.HTTPSeeOther(f"/console/batches/{history.valid_code(code)}")
        except errors.TraceError:
            pass  # the search page says what is wrong with it
    if any(request.query.get(k) for k in SEARCH_KEYS):
        raise web.HTTPSeeOther(self_url(request).replace("/console", "/console/search", 1))
    data = await dashboard_views.dashboard(request.app[DATABASE])
    return await console_answer(request, session, data, "console/dashboard.html", {"d": data, "q": {}})


@routes.get("/console/search")
@declare(
    page(
        "Search batches by code, product, enterprise, node and dates",
        auth=SESSION,
        query=(Param("code", schemas.text(100)), *FILTERS),
        sheet=True,
    )
)
async def console_search(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    try:
        result = await views.search_batches(request.app[DATABASE], dict(request.query))
    except errors.TraceError as exc:
        empty = {"query": dict(request.query), "results": [], "searched": False}
        return await console_answer(
            request, session, exc, "console/search.html", {"result": empty, "error": exc.message}
        )
    if result["redirect"]:
        raise web.HTTPSeeOther(f"/console/batches/{result['redirect']}")
    return await console_answer(
        request,
        session,
        result,
        "console/search.html",
        {"result": result, "error": None},
        table=tables.search_table(result),
    )


@routes.get("/console/batches/{code}")
@declare(
    page("A batch's full record: events with prices, genealogy, recall form", auth=SESSION, path=(CODE,), sheet=True)
)
async def console_batch(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    record = await views.console_record(request.app[DATABASE], code, session.principal)
    if wants_sheet(request):
        audit(request, session.principal, "export", code, format=request.query["format"], via="console")
    else:
        audit(request, session.principal, "view", code, view="full", via="console")
    return await console_answer(
        request,
        session,
        record,
        "console/batch.html",
        {"r": record, "b": record["batch"]},
        table=tables.record_table(record["batch"]),
    )


@routes.get("/console/batches/{code}/export.{fmt:csv|xlsx|json}")
@declare(
    {
        fmt: Operation(
            f"A batch's record as {fmt.upper()} for a regulator's request",
            ("pages",),
            {
                200: Response(
                    "the export (an attachment)",
                    {"type": "object"} if fmt == "json" else {"type": "string"},
                    media_type=media,
                ),
                303: Response("sign in first"),
            },
            auth=SESSION,
            path=(CODE,),
            page=True,
        )
        for fmt, media in (*sheets.FORMATS.items(), ("json", "application/json"))
    }
)
async def console_export(request: web.Request) -> web.Response:
    """The batch's events as a download: a sortable spreadsheet (CSV, XLSX; the record page's own
    ``?format=csv|xlsx``) or the full view (JSON)."""
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    record = await views.console_record(request.app[DATABASE], code, session.principal)
    audit(request, session.principal, "export", code, format=request.match_info["fmt"], via="console")
    headers = {
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="batch-{code}.{request.match_info["fmt"]}"',
    }
    fmt = request.match_info["fmt"]
    if fmt in sheets.FORMATS:
        t = language.choose(request)
        return sheets.response(tables.record_table(record["batch"])(t), fmt, t, NO_STORE)
    return json_response(record["batch"], headers=headers)


@routes.get("/console/batches/{code}/export.epcis.jsonld")
@declare(
    Operation(
        "A batch and its genealogy as an EPCIS 2.0 EPCISDocument (the full view)",
        ("pages", "epcis"),
        {
            200: Response("the EPCISDocument (an attachment)", {"type": "object"}, media_type="application/ld+json"),
            303: Response("sign in first"),
        },
        auth=SESSION,
        path=(CODE,),
        page=True,
    )
)
async def console_export_epcis(request: web.Request) -> web.Response:
    """The batch, every batch it came from and went into, as an EPCIS 2.0 EPCISDocument (the full view)."""
    session = await console_session(request)
    code = history.valid_code(request.match_info["code"])
    doc = await epcis_query.export_batch(
        request.app[DATABASE], session.principal, code, "both", request.app[SETTINGS].public_url
    )
    audit(request, session.principal, "export", code, format="epcis", via="console")
    return web.Response(
        body=epcis_document.dumps_exact(doc).encode(),
        content_type="application/ld+json",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="batch-{code}.epcis.jsonld"'},
    )


@routes.get("/console/enterprises")
@declare(page("The enterprise register with credit ratings", auth=SESSION, sheet=True))
async def console_register(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    overview = await views.register_overview(request.app[DATABASE])
    table = tables.register_table(overview["items"])
    return await console_answer(
        request, session, overview, "console/register.html", {"overview": overview}, table=table
    )


@routes.get("/console/log")
@declare(page("The transparency log's state: checkpoints, witnesses, backlog", auth=SESSION))
async def console_log(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    status = await views.log_status(request.app[DATABASE], request.app[LOG])
    return await console_answer(request, session, status, "console/log.html", {"log": status})


@routes.get("/console/recalls")
@declare(page("Recalls issued", auth=SESSION, sheet=True))
async def console_recalls(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    data = await views.list_recalls(request.app[DATABASE])
    table = tables.recalls_table(data["recalls"])
    return await console_answer(request, session, data, "console/recalls.html", {"data": data}, table=table)


@routes.get("/console/anomalies")
@declare(
    page(
        "Anomalies, by kind, node, enterprise, trace code and day",
        auth=SESSION,
        query=(Param("kind", schemas.text(40)), Param("code", schemas.text(100)), *FILTERS),
        sheet=True,
    )
)
async def console_anomalies(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    try:
        data = await views.list_anomalies(request.app[DATABASE], dict(request.query))
    except errors.TraceError as exc:
        empty = {"query": dict(request.query), "anomalies": [], "kinds": [], "error": exc.message}
        return await console_answer(request, session, exc, "console/anomalies.html", {"data": empty})
    table = tables.anomalies_table(data["anomalies"])
    return await console_answer(request, session, data, "console/anomalies.html", {"data": data}, table=table)


@routes.get("/console/enterprises/{uscc}")
@declare(
    page(
        "An enterprise's credit rating with its factors",
        auth=SESSION,
        path=(Param("uscc", {"type": "string", "maxLength": 18}, where="path"),),
        sheet=True,
    )
)
async def console_enterprise(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    rating = await views.enterprise_credit(request.app[DATABASE], request.match_info["uscc"][:18])
    table = tables.credit_table(rating)
    return await console_answer(request, session, rating, "console/credit.html", {"c": rating}, table=table)


@routes.get("/console/audit")
@declare(
    page(
        "The access log (administrators)",
        "AccessLog",
        auth=SESSION,
        query=(
            Param("action", {"enum": ["view", "trace", "export", "recall"]}),
            Param("target", schemas.text(100)),
            Param("before", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
        ),
    )
)
async def console_audit(request: web.Request) -> web.StreamResponse:
    """The access log, for administrators: who saw full records, traced forward, exported, recalled."""
    session = await console_session(request)
    if session.principal.role != "admin":
        raise errors.Forbidden("the access log is for administrators")
    try:
        data = await views.access_records(request.app[DATABASE], dict(request.query))
    except errors.TraceError as exc:
        empty: dict[str, Any] = {"query": dict(request.query), "actions": (), "items": [], "next": None}
        empty["error"] = exc.message
        return await console_answer(request, session, exc, "console/audit.html", {"data": empty})
    return await console_answer(request, session, data, "console/audit.html", {"data": {**data, "error": None}})


@routes.get("/console/password")
@declare(page("The form to change one's own password", auth=SESSION))
async def console_password_form(request: web.Request) -> web.StreamResponse:
    session = await console_session(request)
    return await console_answer(
        request, session, {"user": session.principal.id}, "console/password.html", {"error": None}
    )


@routes.post("/console/password")
@declare(page("Change one's own password (the current one proves it)", auth=SESSION, form=PASSWORD_CHANGE))
async def console_password(request: web.Request) -> web.StreamResponse:
    """Change one's own password: the current one proves it; every other session of the user ends."""
    session = await console_session(request)
    form = await sessions.read_form(request)
    sessions.check_csrf(session, form)
    current, new = str(form.get("current_password", ""))[:2000], str(form.get("password", ""))[:2000]
    db = request.app[DATABASE]
    try:
        lim = request.app[LIMITS]
        lim.take(lim.sign_in, source(request), "password change")
        await accounts.change_password(db, session.principal.id, current, new)
    except (errors.InvalidField, errors.TooManyRequests) as exc:
        return await console_answer(request, session, exc, "console/password.html", {"error": exc.message})
    # Changing the password ended every session, this one too: open a fresh one for this browser.
    opened = await accounts.sign_in(db, session.principal.name, new, request.remote)
    response = await console_answer(
        request, opened.session, {"changed": True}, "console/password.html", {"error": None, "changed": True}
    )
    lifetime = int(accounts.SESSION_LIFETIME.total_seconds())
    sessions.set_cookie(response, request, sessions.CONSOLE_COOKIE, opened.token, "/console", lifetime)
    return response
