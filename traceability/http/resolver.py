"""GS1 Digital Link resolution: every printed label and receipt URL leads to its batch.

``GET /01/{gtin}/10/{lot}``, ``/01/{gtin}/21/{serial}`` and the other primary keys (``/00/{sscc}``,
``/414/{gln}``, ``/8003/…``, with key qualifiers in the path and data attributes such as ``?17=YYMMDD``
in the query) resolve to the batch the identifier belongs to, the way a GS1 resolver does:

===================================  ==================================================================
``linkType``                         answer
===================================  ==================================================================
(none), ``gs1:defaultLink``,         307 to the consumer page ``/t/{trace code}``
``gs1:pip``, ``gs1:traceability``
``gs1:epcis``                        307 to the EPCIS events about the identifier (``/epcis/epcs/…``)
``gs1:jsonView`` (or ``json``)       307 to the batch's JSON view ``/api/v1/batches/{trace code}``
``all`` (or ``linkset``)             200, an RFC 9264 linkset of the links above
===================================  ==================================================================

An identifier no batch carries gets the friendly not-found page. ``/p/{code}`` does the same for a
package code (a case, box or unit of a drug lot), and ``/.well-known/gs1resolver`` describes the
resolver as GS1's resolver standard asks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from traceability import errors, i18n
from traceability.http.keys import DATABASE, SETTINGS
from traceability.http.openapi import Operation, Param, Response, declare, ok
from traceability.services import epcis_query

routes = web.RouteTableDef()
PRIMARY_KEYS = ("01", "00", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017", "8018")
DEFAULT_LINKS = (None, "", "gs1:defaultLink", "gs1:pip", "gs1:traceability", "gs1:defaultLinkMulti")
RESOLVED = {
    307: Response("to the consumer page, the EPCIS events or the JSON view, as linkType asks"),
    200: Response("an RFC 9264 linkset of every link (linkType=all)", {"type": "object"}, "application/linkset+json"),
}
LINK_TYPE = Param("linkType", {"type": "string", "maxLength": 100}, "gs1:pip (default), gs1:epcis, gs1:jsonView, all")


def _links(public_url: str, code: str, uri: str) -> dict[str, str]:
    return {
        "gs1:pip": f"{public_url}/t/{code}",
        "gs1:traceability": f"{public_url}/t/{code}",
        "gs1:epcis": f"{public_url}/epcis/epcs/{quote(uri, safe='')}/events",
        "gs1:jsonView": f"{public_url}/api/v1/batches/{code}",
    }


def _linkset(uri: str, links: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"anchor": uri}
    for rel, href in links.items():
        entry[f"https://gs1.org/voc/{rel.split(':', 1)[1]}"] = [{"href": href, "type": "text/html"}]
    entry["https://gs1.org/voc/defaultLink"] = [{"href": links["gs1:pip"]}]
    return {"linkset": [entry]}


async def _answer(request: web.Request, code: str | None, uri: str) -> web.StreamResponse:
    if code is None:
        raise errors.NotFound(i18n.say("dl_not_found"))
    public_url = request.app[SETTINGS].public_url
    links = _links(public_url, code, uri)
    link_type = request.query.get("linkType")
    if link_type in ("all", "linkset") or "application/linkset+json" in request.headers.get("Accept", ""):
        return web.Response(
            body=orjson.dumps(_linkset(uri, links)),
            content_type="application/linkset+json",
            headers={"Link": f'<{links["gs1:pip"]}>; rel="gs1:defaultLink"'},
        )
    if link_type in DEFAULT_LINKS:
        target = links["gs1:pip"]
    elif link_type in ("gs1:jsonView", "json"):
        target = links["gs1:jsonView"]
    elif link_type == "gs1:epcis":
        target = links["gs1:epcis"]
    else:
        raise errors.NotFound(f"linkType {link_type} is not offered here; try gs1:pip, gs1:epcis, gs1:jsonView or all")
    return web.Response(status=307, headers={"Location": target, "Vary": "Accept", "Cache-Control": "no-cache"})


def _register(primary: str) -> None:
    @routes.get(f"/{primary}/{{rest:.+}}")
    @declare(
        Operation(
            f"Resolve a GS1 Digital Link with primary key {primary} (qualifiers in the path, attributes in the query)",
            ("resolver",),
            RESOLVED,
            query=(LINK_TYPE,),
            path=(
                Param("rest", {"type": "string", "maxLength": 500}, "the identifier and its qualifiers", where="path"),
            ),
            page=True,
        )
    )
    async def resolve(request: web.Request) -> web.StreamResponse:
        public_url = request.app[SETTINGS].public_url
        uri = f"{public_url}{request.path_qs}"
        code = await epcis_query.resolve(request.app[DATABASE], uri, public_url)
        return await _answer(request, code, uri)


for _primary in PRIMARY_KEYS:
    _register(_primary)


@routes.get("/p/{code}")
@declare(
    Operation(
        "Resolve a package code (case, box or unit) to its batch",
        ("resolver",),
        RESOLVED,
        query=(LINK_TYPE,),
        path=(Param("code", {"type": "string", "maxLength": 64}, where="path"),),
        page=True,
    )
)
async def package(request: web.Request) -> web.StreamResponse:
    """A package code (case, box or unit) to its batch's consumer page."""
    code = await epcis_query.package_code(request.app[DATABASE], request.match_info["code"])
    return await _answer(request, code, f"{request.app[SETTINGS].public_url}{request.path}")


@routes.get("/.well-known/gs1resolver")
@declare(Operation("What this resolver supports (GS1 resolver standard 1.1)", ("resolver",), {200: ok()}))
async def description(request: web.Request) -> web.Response:
    """What GS1's resolver standard (1.1, section 6) asks a resolver to say about itself."""
    public_url = request.app[SETTINGS].public_url
    body = {
        "name": "traceability",
        "resolverRoot": public_url,
        "supportsSemanticWeb": False,
        "linkTypeDefaultCanBeLinkset": False,
        "supportedPrimaryKeys": list(PRIMARY_KEYS),
        "supportedLinkType": [
            {"namespace": "https://gs1.org/voc/", "prefix": "gs1:", "profile": "https://gs1.org/voc/?show=linktypes"}
        ],
        "linkTypes": ["gs1:pip", "gs1:traceability", "gs1:epcis", "gs1:jsonView", "all"],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")
