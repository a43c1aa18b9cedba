"""The OpenAPI 3.1 document of the native API, built from what each handler declares beside itself.

Each route handler carries its operation, so the document cannot forget a route or drift from it::

    @routes.get("/api/v1/recalls")
    @operation("List recalls", tags=("supply",), query=PAGING, responses={200: ok("RecallList")})
    async def recalls(request: web.Request) -> web.Response: ...

:func:`document` walks the application's router and joins each route (method and path, as
registered) with its declaration; the request and response schemas are components in
:mod:`traceability.http.schemas`, whose bounds come from :mod:`traceability.domain.bounds`, the same
values the validators enforce. :func:`undocumented` names the routes without a declaration; a test
keeps it empty, validates real responses against the document and fuzzes the app with it.

Path templates: aiohttp's ``{name:regex}`` becomes OpenAPI's ``{name}`` (with the regex as its pattern
unless the operation declares the parameter); a variable whose regex is a
list of words (``{kind:enterprises|nodes}``) is expanded into one path per word, and ``variants``
gives each word its own operation (each registry kind has its own body).

Every operation answers errors in the one error shape (``4XX`` and ``503``, :data:`ERROR`);
``auth`` names the credentials that may call it (``bearer``, ``signature``, ``session``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from traceability.http import federation_schemas, schemas

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__openapi__"
ERROR = {"description": "the error shape", "content": {"application/json": {"schema": schemas.ref("Error")}}}
PAGE_ERROR = {
    "description": "the page naming the problem, or the error shape on its JSON twin",
    "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": schemas.ref("Error")}},
}


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or path) parameter."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False
    where: str = "query"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": self.where, "schema": dict(self.schema)}
        if self.description:
            out["description"] = self.description
        if self.required or self.where == "path":
            out["required"] = True
        return out


@dataclass(frozen=True, slots=True)
class Response:
    description: str
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    html: bool = False
    """A page: the answer is HTML, or its JSON twin (``schema``) with ``?format=json``."""
    sheets: bool = False
    """A list: also a spreadsheet with ``?format=csv`` or ``?format=xlsx``."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.schema is not None:
            out["content"] = {self.media_type: {"schema": dict(self.schema)}}
        if self.html:
            out.setdefault("content", {})["text/html"] = {"schema": {"type": "string"}}
        if self.sheets:
            out.setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
            xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            out["content"][xlsx] = {"schema": {"type": "string", "format": "binary"}}
        if self.headers:
            out["headers"] = {k: {"description": v, "schema": {"type": "string"}} for k, v in self.headers.items()}
        return out


def ok(component: str | None = None, description: str = "done", **kw: Any) -> Response:
    """A JSON success answer whose body is the component ``component`` (or no body)."""
    return Response(description, schemas.ref(component) if component else None, **kw)


@dataclass(frozen=True, slots=True)
class Operation:
    """What one route does, for the document: summary, who may call it, parameters, body, answers."""

    summary: str
    tags: tuple[str, ...]
    responses: Mapping[int, Response]
    auth: tuple[str, ...] = ()
    query: tuple[Param, ...] = ()
    path: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None
    body_type: str = "application/json"
    description: str = ""
    page: bool = False
    """Errors come as a page (HTML) unless the JSON twin was asked for."""
    external: str = ""
    """Where the operation is specified in full (GS1's EPCIS binding for ``/epcis``)."""

    def as_json(self, method: str, path: str, variables: Mapping[str, str]) -> dict[str, Any]:
        declared = {p.name: p for p in self.path}
        parameters = [
            (declared[name] if name in declared else Param(name, {"type": "string", "pattern": f"^{regex}$"})).as_json()
            | {"in": "path", "required": True}
            for name, regex in variables.items()
        ]
        parameters += [p.as_json() for p in self.query]
        slug = re.sub(r"[^A-Za-z0-9]+", "_", path.strip("/")).strip("_") or "root"
        out: dict[str, Any] = {
            "operationId": f"{method.lower()}_{slug}",
            "summary": self.summary,
            "tags": list(self.tags),
            "parameters": parameters,
            "responses": {str(status): r.as_json() for status, r in sorted(self.responses.items())}
            | ({"4XX": PAGE_ERROR, "503": PAGE_ERROR} if self.page else {"4XX": ERROR, "503": ERROR}),
        }
        if self.description:
            out["description"] = self.description
        if self.external:
            out["externalDocs"] = {"url": self.external}
        if self.auth:
            out["security"] = [{scheme: []} for scheme in self.auth]
        else:
            out["security"] = []
        if self.body is not None:
            out["requestBody"] = {"required": True, "content": {self.body_type: {"schema": dict(self.body)}}}
        return out


def operation(
    summary: str = "",
    *,
    tags: tuple[str, ...] = (),
    responses: Mapping[int, Response] | None = None,
    variants: Mapping[str, Operation] | None = None,
    **kw: Any,
) -> Callable[[F], F]:
    """Declare the operation a handler serves (or, with ``variants``, one per word of its path's word list)."""
    declared: Operation | Mapping[str, Operation] = (
        variants if variants is not None else Operation(summary, tags, responses or {200: ok()}, **kw)
    )

    def attach(handler: F) -> F:
        setattr(handler, ATTRIBUTE, declared)
        return handler

    return attach


def declare(declared: Operation | Mapping[str, Operation]) -> Callable[[F], F]:
    """Declare a handler's operation built elsewhere (:func:`page`), or one per word of its path's word list."""

    def attach(handler: F) -> F:
        setattr(handler, ATTRIBUTE, declared)
        return handler

    return attach


# -- the document ----------------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Za-z0-9_\-]+(?:\|[A-Za-z0-9_\-]+)+")


def _groups(pattern: str) -> dict[str, str]:
    """The named groups of a route's compiled pattern: ``(?P<id>\\d+)`` → ``{"id": "\\d+"}``."""
    out: dict[str, str] = {}
    for start in (m.end() for m in re.finditer(r"\(\?P<", pattern)):
        name_end = pattern.index(">", start)
        depth, i = 1, name_end + 1
        while depth:
            if pattern[i] == "\\":
                i += 2
                continue
            depth += {"(": 1, ")": -1}.get(pattern[i], 0)
            i += 1
        out[pattern[start:name_end]] = pattern[name_end + 1 : i - 1]
    return out


def expand(formatter: str, variables: Mapping[str, str]) -> list[tuple[str, str | None, dict[str, str]]]:
    """``/a/{kind}/{id}`` with ``kind`` = ``x|y`` → ``[("/a/x/{id}", "x", {"id": …}), ("/a/y/{id}", "y", {…})]``."""
    words = {name: regex.split("|") for name, regex in variables.items() if _WORDS.fullmatch(regex)}
    rest = {name: regex for name, regex in variables.items() if name not in words}
    if not words:
        return [(formatter, None, rest)]
    if len(words) > 1:
        raise ValueError(f"{formatter}: at most one path variable may be a list of words")
    ((name, values),) = words.items()
    return [(formatter.replace("{" + name + "}", word), word, rest) for word in values]


ELSEWHERE = ("/epcis",)
"""Paths described by another document: the EPCIS 2.0 REST binding is GS1's own OpenAPI document
(``epcis-openapi.yaml``), which the ``/epcis`` routes follow as published."""
GS1_BINDING = "https://ref.gs1.org/standards/epcis/2.0.0/"


def _routes(app: web.Application) -> list[tuple[str, str, dict[str, str], Any]]:
    out = []
    for route in app.router.routes():
        resource = route.resource
        if route.method in ("HEAD", "*") or resource is None or isinstance(resource, web.StaticResource):
            continue
        if resource.canonical.startswith("/static/"):  # the pages' style and scripts, served from memory
            continue
        if any(resource.canonical == p or resource.canonical.startswith(p + "/") for p in ELSEWHERE):
            continue
        info = resource.get_info()
        variables = _groups(info["pattern"].pattern) if "pattern" in info else {}
        out.append((route.method, resource.canonical, variables, route.handler))
    return out


def registered(app: web.Application) -> list[tuple[str, str]]:
    """Every (METHOD, OpenAPI path) the app serves, word lists expanded; static files, HEAD and the paths
    :data:`ELSEWHERE` describes aside."""
    return [(method, path) for method, formatter, found, _ in _routes(app) for path, _, _ in expand(formatter, found)]


def undocumented(app: web.Application) -> list[str]:
    """The routes (``METHOD /path``) whose handler declares no operation."""
    return [f"{m} {p}" for m, p, _, h in _routes(app) if getattr(h, ATTRIBUTE, None) is None]


def document(app: web.Application, *, title: str = "traceability", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    for method, formatter, found, handler in _routes(app):
        declared = getattr(handler, ATTRIBUTE, None)
        if declared is None:
            continue
        for path, word, variables in expand(formatter, found):
            op = declared[word] if isinstance(declared, Mapping) else declared
            if op is None:
                continue
            paths.setdefault(path, {})[method.lower()] = op.as_json(method, path, variables)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "summary": "Food and drug traceability ledger: batches, hash-chained events, a Merkle transparency log.",
            "license": {"name": "GPL-3.0-or-later", "identifier": "GPL-3.0-or-later"},
            "description": "The native API, the health check, the pages with their JSON twins and the GS1 "
            "Digital Link resolver. The EPCIS 2.0 capture and query interface under /epcis follows GS1's own "
            "OpenAPI binding of EPCIS 2.0 and is described there.",
        },
        "externalDocs": {"description": "GS1 EPCIS 2.0 and its REST binding", "url": GS1_BINDING},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**schemas.COMPONENTS, **federation_schemas.COMPONENTS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a device (tdv_…) or API (tak_…) credential",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "a scanner station's Ed25519 signature (docs/scanners.md)",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "trace_console",
                    "description": "a console or vendor page session",
                },
            },
        },
    }


# -- parameters several routes share ---------------------------------------------------------------


def page_params(default: int = 100, maximum: int = 1000) -> tuple[Param, Param]:
    from traceability.domain import bounds

    return (
        Param("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}, "page size"),
        Param("offset", {"type": "integer", "minimum": 0, "maximum": bounds.INT64_MAX, "default": 0}, "items to skip"),
    )


PAGING = page_params()
TWIN = (
    Param("format", {"enum": ["json"]}, "the page's JSON twin instead of the page"),
    Param("lang", {"enum": ["zh", "en"]}, "the page's language (remembered in a cookie)"),
)
SHEET_TWIN = (
    Param("format", {"enum": ["json", "csv", "xlsx"]}, "the page's JSON twin, or its list as a spreadsheet"),
    TWIN[1],
)
SEE_OTHER = Response("redirected (a signed-in form, a typed code, a page that needs signing in first)")


def page(
    summary: str,
    twin: str | None = None,
    *,
    status: int = 200,
    auth: tuple[str, ...] = (),
    query: tuple[Param, ...] = (),
    path: tuple[Param, ...] = (),
    form: Mapping[str, Any] | None = None,
    form_type: str = "application/x-www-form-urlencoded",
    more: Mapping[int, Response] | None = None,
    sheet: bool = False,
) -> Operation:
    """A page: HTML, or its JSON twin (the component ``twin``) with ``?format=json``; may redirect (303).

    A form a page posts is ``form`` (its fields; every form carries the session's ``csrf`` token).
    ``sheet``: the page is a list, also served as CSV and XLSX (``?format=csv|xlsx``)."""
    answer = Response(
        "the page, or its JSON twin", schemas.ref(twin) if twin else {"type": "object"}, html=True, sheets=sheet
    )
    return Operation(
        summary,
        ("pages",),
        {status: answer, 303: SEE_OTHER, **(more or {})},
        auth=auth,
        query=(*query, *(SHEET_TWIN if sheet else TWIN)),
        path=path,
        body=form,
        body_type=form_type if form is not None else "application/json",
        page=True,
    )


TRACE_CODE_PATH = Param("trace_code", schemas.TRACE_CODE_IN, "a trace code", where="path")
