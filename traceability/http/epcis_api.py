"""GS1's EPCIS 2.0 REST binding, mounted at /epcis: capture, capture jobs, discovery.

Queries and the resource routes are in :mod:`traceability.http.epcis_query_api`. Every answer under
/epcis carries GS1's version headers; errors are RFC 7807 problems (:mod:`traceability.epcis.binding`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from traceability import errors
from traceability.epcis import binding, document
from traceability.epcis import xml as epcis_xml
from traceability.http.audit import audit
from traceability.http.auth import optional_principal, require, require_capture
from traceability.http.keys import DATABASE, FEDERATION, SETTINGS
from traceability.http.metrics import METRICS
from traceability.http.openapi import GS1_BINDING, TRACE_CODE_PATH, Operation, Param, Response, declare
from traceability.services import epcis_capture, epcis_query, history
from traceability.services.epcis_prepared import EventFailed

routes = web.RouteTableDef()
JSON_TYPES = ("application/json", "application/ld+json")
XML_TYPES = ("application/xml", "text/xml")
TOP_LEVEL = [
    "events",
    "eventTypes",
    "epcs",
    "bizSteps",
    "bizLocations",
    "readPoints",
    "dispositions",
    "capture",
    "queries",
]


def gs1_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers={**binding.HEADERS, **(headers or {})},
    )


def options(allow: str, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=204, headers={"Allow": allow, **binding.HEADERS, **(extra or {})})


class InvalidDocument(errors.BadRequest):
    """The body is not an EPCIS document GS1's schema (or XSD) accepts."""

    code = "invalid_document"


def _problem_error(exc: document.DocumentError, schema: str) -> errors.TraceError:
    first = exc.problems[0]
    message = "; ".join(p.as_text() for p in exc.problems[:5])
    if len(exc.problems) > 5:
        message += f"; and {len(exc.problems) - 5} more"
    return InvalidDocument(f"the document does not validate against {schema}: {message}", field=first.path)


async def read_document(request: web.Request, *, single_event: bool, lenient: bool = False) -> document.Received:
    """The body as a checked EPCIS document (JSON, JSON-LD, or XML converted to the JSON form)."""
    ctype = request.content_type
    body = await request.read()
    if not body:
        raise errors.InvalidJSON("the request has no body; send an EPCIS document")
    max_events = request.app[SETTINGS].max_events_per_request
    xml = ctype in XML_TYPES
    try:
        if xml:
            return epcis_xml.read(body, single_event=single_event, max_events=max_events, lenient=lenient)
        if ctype in JSON_TYPES or ctype == "application/octet-stream":
            return document.read(body, single_event=single_event, max_events=max_events, lenient=lenient)
    except document.DocumentError as exc:
        # XML: the XSD of its version (1.2 or 2.0), then the JSON schema on its JSON form
        raise _problem_error(exc, "GS1's EPCIS schemas" if xml else "GS1's EPCIS 2.0 schema") from None
    raise web.HTTPUnsupportedMediaType(reason="send application/json, application/ld+json or application/xml")


def _behaviour(request: web.Request) -> str:
    value = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").strip().lower()
    if value not in binding.CAPTURE_BEHAVIOURS:
        raise errors.InvalidField(
            "GS1-Capture-Error-Behaviour must be rollback or proceed", field="GS1-Capture-Error-Behaviour"
        )
    return value


@routes.view("/epcis")
@routes.view("/epcis/")
async def top(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "OPTIONS"])
    return gs1_json({"@context": document.CONTEXT_URL, "type": "Collection", "member": TOP_LEVEL})


@routes.options("/epcis/capture")
async def capture_options(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return options(
        "OPTIONS, POST, GET",
        {
            "GS1-EPCIS-Capture-Limit": str(settings.max_events_per_request),
            "GS1-EPCIS-Capture-File-Size-Limit": str(settings.max_body_bytes),
            "GS1-Capture-Error-Behaviour": "all",
        },
    )


@routes.post("/epcis/capture")
async def capture(request: web.Request) -> web.Response:
    """GS1's asynchronous capture: the job is finished when the 202 is sent; its status stays at Location."""
    principal = await require_capture(request, "device", "enterprise")
    behaviour = _behaviour(request)
    received = await read_document(request, single_event=False, lenient=behaviour == "proceed")
    settings = request.app[SETTINGS]
    ran = await epcis_capture.capture_job(
        request.app[DATABASE], principal, received, behaviour, settings.public_url, request.app[FEDERATION]
    )
    request.app[METRICS].captured("epcis", ran.new, ran.replayed)
    return gs1_json(ran.job, status=202, headers={"Location": f"/epcis/capture/{ran.job['captureID']}"})


@routes.get("/epcis/capture")
async def list_jobs(request: web.Request) -> web.Response:
    principal = await require(request, "device", "enterprise", "regulator", "admin")
    per_page = epcis_query.per_page(request.query)
    after = None
    if token := request.query.get("nextPageToken"):
        try:
            stamp, _, job_id = bytes.fromhex(token).decode().partition("|")
            after = (datetime.fromisoformat(stamp), job_id)
        except ValueError:
            raise errors.InvalidField("nextPageToken is not one this server issued", field="nextPageToken") from None
    jobs = await epcis_capture.list_jobs(request.app[DATABASE], principal, after, per_page + 1)
    headers = {}
    if len(jobs) > per_page:
        jobs = jobs[:per_page]
        last = jobs[-1]
        token = f"{last['createdAt'].replace('Z', '+00:00')}|{last['captureID']}".encode().hex()
        headers["Link"] = f'</epcis/capture?perPage={per_page}&nextPageToken={token}>; rel="next"'
    return gs1_json(jobs, headers=headers)


@routes.view("/epcis/capture/{capture_id}")
async def capture_job(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "OPTIONS"])
    principal = await require(request, "device", "enterprise", "regulator", "admin")
    return gs1_json(await epcis_capture.find_job(request.app[DATABASE], principal, request.match_info["capture_id"]))


@routes.post("/epcis/events")
async def capture_event(request: web.Request) -> web.Response:
    """GS1's synchronous capture of one event: 201 and its Location, or the binding's error."""
    principal = await require_capture(request, "device", "enterprise")
    received = await read_document(request, single_event=True)
    settings = request.app[SETTINGS]
    try:
        (outcome,) = await epcis_capture.capture(
            request.app[DATABASE], principal, received, settings.public_url, fed=request.app[FEDERATION]
        )
    except EventFailed as exc:
        raise exc.error from None
    request.app[METRICS].captured("epcis", int(not outcome.replayed), int(outcome.replayed))
    location = f"/epcis/events/{quote(outcome.event_id, safe='')}"
    return gs1_json(outcome.as_json(), status=200 if outcome.replayed else 201, headers={"Location": location})


@routes.get("/api/v1/batches/{trace_code}/epcis")
@declare(
    Operation(
        "A batch's history (with its genealogy on request) as an EPCIS 2.0 EPCISDocument",
        ("epcis",),
        {200: Response("the EPCISDocument (an attachment)", {"type": "object"}, "application/ld+json")},
        path=(TRACE_CODE_PATH,),
        query=(Param("trace", {"enum": ["backward", "forward", "both"]}, "forward and both are for regulators"),),
        external=GS1_BINDING,
    )
)
async def export_batch(request: web.Request) -> web.Response:
    """A batch's history (``?trace=backward|forward|both`` adds its genealogy) as an EPCIS 2.0 EPCISDocument."""
    code = history.valid_code(request.match_info["trace_code"])
    trace = request.query.get("trace")
    if trace not in (None, "backward", "forward", "both"):
        raise errors.InvalidField("trace must be backward, forward or both", field="trace")
    viewer = await optional_principal(request)
    if trace in ("forward", "both") and (viewer is None or viewer.role not in ("regulator", "admin")):
        raise errors.Forbidden("tracing forward to every buyer is for regulators")
    doc = await epcis_query.export_batch(request.app[DATABASE], viewer, code, trace, request.app[SETTINGS].public_url)
    if viewer is not None:
        audit(request, viewer, "export", code, format="epcis", trace=trace or "none", via="api")
    name = f"{code}{'-' + trace if trace else ''}.epcis.jsonld"
    return web.Response(
        body=document.dumps_exact(doc).encode(),
        content_type="application/ld+json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-cache"},
    )
