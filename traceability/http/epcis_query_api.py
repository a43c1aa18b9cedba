"""GS1's EPCIS 2.0 REST binding: queries (``GET /epcis/events``) and the resource routes.

``/events/{eventID}``, ``/eventTypes``, ``/epcs``, ``/bizSteps``, ``/bizLocations``, ``/readPoints`` and
``/dispositions`` each list their members and answer ``…/{member}/events`` with the events about that
member. Reading needs no credential: the public sees what the consumer pages show.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from traceability.domain.access import Principal
from traceability.domain.events import BIZ_STEPS, DISPOSITIONS
from traceability.epcis import binding, document, identifiers
from traceability.epcis.query import EventQuery, QueryError, definition_pairs, parse
from traceability.http.api import read_json
from traceability.http.audit import audit
from traceability.http.auth import optional_principal, require
from traceability.http.epcis_api import gs1_json, options
from traceability.http.keys import DATABASE, SETTINGS
from traceability.services import epcis_query

routes = web.RouteTableDef()
EVENT_TYPES = ["ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"]


def _query(request: web.Request, drop: tuple[str, ...] = ()) -> EventQuery:
    try:
        return parse([(k, v) for k, v in request.query.items() if k not in drop])
    except QueryError as exc:
        raise epcis_query.parameter_error(exc) from None


def _collection(members: list[str], headers: dict[str, str] | None = None) -> web.Response:
    return gs1_json({"@context": document.CONTEXT_URL, "type": "Collection", "member": members}, headers=headers)


def _audit_query(request: web.Request, viewer: Principal | None, doc: dict[str, Any]) -> None:
    """A query answered for a credential may show full records: the access log keeps who asked what."""
    if viewer is not None:
        found = len(doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
        audit(request, viewer, "view", request.path_qs[:300], events=found, via="epcis")


async def answer(request: web.Request, q: EventQuery) -> web.Response:
    viewer = await optional_principal(request)
    doc, token = await epcis_query.query(request.app[DATABASE], viewer, q, request.app[SETTINGS].public_url)
    _audit_query(request, viewer, doc)
    headers: dict[str, str] = {}
    if token is not None:
        params = [(k, v) for k, v in request.query.items() if k != "nextPageToken"] + [("nextPageToken", token)]
        headers["Link"] = f'<{request.path}?{urlencode(params)}>; rel="next"'
    headers["Cache-Control"] = "private, no-cache" if viewer is not None else "no-cache"
    response = gs1_json({}, headers=headers)
    response.body = document.dumps_exact(doc).encode()
    if "application/ld+json" in request.headers.get("Accept", ""):
        response.content_type = "application/ld+json"
    return response


@routes.options("/epcis/events")
async def events_options(request: web.Request) -> web.Response:
    return options("OPTIONS, GET, POST")


@routes.get("/epcis/events")
async def events(request: web.Request) -> web.Response:
    """SimpleEventQuery over every event of the ledger."""
    return await answer(request, _query(request))


@routes.view(r"/epcis/events/{event_id:.+}")
async def event(request: web.Request) -> web.Response:
    """One event by its eventID, with any error declaration recorded for it."""
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "OPTIONS"])
    event_id = request.match_info["event_id"]
    q = _query(request, drop=("EQ_eventID",)).narrowed(event_ids=[event_id])
    viewer = await optional_principal(request)
    doc, _ = await epcis_query.query(request.app[DATABASE], viewer, q, request.app[SETTINGS].public_url)
    _audit_query(request, viewer, doc)
    if not doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]:
        from traceability import errors

        raise errors.NotFound(f"no event has eventID {event_id}")
    response = gs1_json({})
    response.body = document.dumps_exact(doc).encode()
    return response


# -- resources --------------------------------------------------------------------------------------

_NARROW: dict[str, tuple[str, str]] = {
    # resource → (query field, parameter it stands for)
    "eventTypes": ("event_types", "eventType"),
    "bizSteps": ("biz_steps", "EQ_bizStep"),
    "dispositions": ("dispositions", "EQ_disposition"),
    "bizLocations": ("biz_locations", "EQ_bizLocation"),
    "readPoints": ("read_points", "EQ_readPoint"),
}


async def _members(request: web.Request, resource: str) -> list[str]:
    if resource == "eventTypes":
        return EVENT_TYPES
    if resource == "bizSteps":
        return sorted(BIZ_STEPS)
    if resource == "dispositions":
        return sorted(DISPOSITIONS)
    return [identifiers.gln_uri(g) for g in await epcis_query.locations(request.app[DATABASE])]


def _resource_route(resource: str) -> None:
    field, param = _NARROW[resource]

    @routes.view(f"/epcis/{resource}")
    async def listing(request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            return options("OPTIONS, GET")
        if request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "OPTIONS"])
        return _collection(await _members(request, resource))

    @routes.view(f"/epcis/{resource}/{{member:.+}}/events")
    async def member_events(request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            return options("OPTIONS, GET")
        if request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "OPTIONS"])
        q = _query(request, drop=(param,))
        value: Any = [request.match_info["member"]]
        if resource == "bizSteps":
            value = [v.rsplit("-", 1)[-1] if v.startswith("https://ref.gs1.org/cbv/BizStep-") else v for v in value]
        return await answer(request, q.narrowed(**{field: value}))

    @routes.view(f"/epcis/{resource}/{{member:.+}}")
    async def member(request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            return options("OPTIONS, GET")
        return _collection(["events"])


for _resource in _NARROW:
    _resource_route(_resource)


@routes.view("/epcis/epcs")
async def epcs(request: web.Request) -> web.Response:
    """EPCs and classes the ledger's batches carry, as GS1 Digital Link URIs (for regulators: a list of every
    identifier would let anyone enumerate the ledger)."""
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    await require(request, "regulator", "admin")
    members, token = await epcis_query.epcs(
        request.app[DATABASE], request.query.get("nextPageToken"), epcis_query.per_page(request.query)
    )
    headers = {}
    if token:
        headers["Link"] = f'</epcis/epcs?{urlencode({"nextPageToken": token})}>; rel="next"'
    return _collection(members, headers)


@routes.view(r"/epcis/epcs/{epc:.+}/events")
async def epc_events(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    epc = request.match_info["epc"]
    q = _query(request, drop=("MATCH_anyEPC", "MATCH_anyEPCClass"))
    both = await epcis_query.any_match(q, epc)
    return await answer(request, both)


@routes.view(r"/epcis/epcs/{epc:.+}")
async def epc(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    return _collection(["events"], {"Location": f"/epcis/epcs/{quote(request.match_info['epc'], safe='')}/events"})


# -- named queries ----------------------------------------------------------------------------------


@routes.view("/epcis/queries")
async def queries(request: web.Request) -> web.Response:
    """GS1's named queries: ``POST {"name", "query"}`` keeps one for this credential; ``GET`` lists them."""
    if request.method == "OPTIONS":
        return options("OPTIONS, GET, POST")
    owner = await require(request, "device", "enterprise", "regulator", "admin")
    db = request.app[DATABASE]
    if request.method == "POST":
        name = await epcis_query.create_query(db, owner, await read_json(request))
        return gs1_json({"name": name}, status=201, headers={"Location": f"/epcis/queries/{quote(name, safe='')}"})
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "OPTIONS"])
    return _collection(await epcis_query.named_queries(db, owner))


@routes.view("/epcis/queries/{name}/events")
async def named_query_events(request: web.Request) -> web.Response:
    """Run a named query (``perPage`` and ``nextPageToken`` in the query string)."""
    if request.method == "OPTIONS":
        return options("OPTIONS, GET")
    owner = await require(request, "device", "enterprise", "regulator", "admin")
    definition = await epcis_query.named_query(request.app[DATABASE], owner, request.match_info["name"])
    extra = [(k, v) for k, v in request.query.items() if k in ("perPage", "nextPageToken")]
    if set(request.query) - {"perPage", "nextPageToken"}:
        raise epcis_query.QueryParameterError(
            "a named query's parameters are in its definition; only perPage and nextPageToken go here",
            field=sorted(set(request.query) - {"perPage", "nextPageToken"})[0],
        )
    try:
        q = parse([*definition_pairs(definition["query"]), *extra])
    except QueryError as exc:
        raise epcis_query.parameter_error(exc) from None
    return await answer(request, q)


@routes.view("/epcis/queries/{name}")
async def named_query(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return options("OPTIONS, GET, DELETE")
    owner = await require(request, "device", "enterprise", "regulator", "admin")
    db = request.app[DATABASE]
    if request.method == "DELETE":
        await epcis_query.delete_query(db, owner, request.match_info["name"])
        return web.Response(status=204, headers=dict(binding.HEADERS))
    if request.method != "GET":
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "DELETE", "OPTIONS"])
    return gs1_json(await epcis_query.named_query(db, owner, request.match_info["name"]))
