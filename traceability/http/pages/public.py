"""The public information page (``/public``), its Atom feed and its open data.

==============================================  ===================================================================
``/public``                                     recalls, failed inspections, credit grades; search; JSON twin
``/public/feed.atom``                           recalls and failed tests as an Atom 1.0 feed
``/public/{recalls|failed-tests|credit}.csv``   the same lists as open data (stable columns, docs/open-data.md)
``/public/{recalls|failed-tests|credit}.json``  the same rows as JSON
==============================================  ===================================================================

No sign-in, nothing sealed or personal. Every answer carries an ETag computed from what the lists are read
from (the newest event, anomaly and recall, the register's size), the day in Beijing, the request and the
language, so a reader who asks again while nothing moved gets a 304 without any list being read. (Renaming an
enterprise or a stall in place, with nothing else recorded, does not move the tag until the next event.)
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from aiohttp import web

from traceability import errors, i18n
from traceability.domain.fields import BEIJING
from traceability.http import schemas
from traceability.http.api import json_response
from traceability.http.keys import DATABASE, SETTINGS
from traceability.http.openapi import Operation, Param, Response, declare, page
from traceability.http.pages import language, sheets
from traceability.http.pages.render import PageRoutes, answer, json_error, self_url, wants_json
from traceability.services.views import public as views
from traceability.services.views import public_data
from traceability.services.views.tables import number

routes = PageRoutes()
CACHE = {"Cache-Control": "public, max-age=0, must-revalidate"}
ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50
SEARCH = (
    Param("q", schemas.text(views.SEARCH_TEXT), "a name: an enterprise, a market or shop, a stall"),
    Param("district", schemas.text(views.SEARCH_TEXT), "a district: its name (泉山区) or its 6-digit area code"),
    Param("product", schemas.text(views.SEARCH_TEXT), "a product's name or goods code"),
)
PAGE_PARAMS = (
    *SEARCH,
    Param("list", {"enum": list(views.LISTS)}, "only this list, to page through it"),
    Param("page", {"type": "integer", "minimum": 1, "maximum": views.MAX_PAGE, "default": 1}, "the page"),
)
NOT_MODIFIED = {304: Response("not modified (the ETag sent in If-None-Match still holds)")}


async def _etag(request: web.Request, variant: str) -> tuple[str, web.Response | None]:
    """This answer's ETag, and a 304 when the reader holds it already."""
    mark = await views.fingerprint(request.app[DATABASE])
    day = datetime.now(BEIJING).date().isoformat()
    query = urlencode(sorted(request.query.items()))
    key = f"{mark}|{day}|{request.path}|{query}|{variant}"
    tag = f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'
    held = {x.strip() for x in request.headers.get("If-None-Match", "").split(",")}
    if tag in held or "*" in held:
        return tag, web.Response(status=304, headers={"ETag": tag, **CACHE})
    return tag, None


@routes.get("/public")
@declare(page("Public information: recalls, failed inspections, credit grades; search", query=PAGE_PARAMS,
              more=NOT_MODIFIED))  # fmt: skip
async def public_page(request: web.Request) -> web.StreamResponse:
    """Recalls in progress and past, failed inspections and credit grades, searchable by name, district, product."""
    t = language.choose(request)
    tag, unchanged = await _etag(request, "json" if wants_json(request) else t.lang)
    if unchanged is not None:
        return unchanged
    db = request.app[DATABASE]
    try:
        data = await views.page(db, dict(request.query), request.app[SETTINGS].public_url)
    except errors.InvalidField as exc:
        refused = {"search": dict(request.query), "districts": await views.districts(db)}
        context = {"d": refused, "error": exc.field or "query"}
        return await answer(request, exc, "public.html", context, t=t, headers={"Cache-Control": "no-cache"})

    def page_url(**changes: str | None) -> str:
        return self_url(request, format=None, **changes)

    shown = {"d": data, "error": None, "page_url": page_url}
    return await answer(request, data, "public.html", shown, t=t, headers={"ETag": tag, **CACHE})


@routes.get("/public/feed.atom")
@declare(
    Operation(
        "Recalls and failed tests, newest first, as an Atom 1.0 feed (RFC 4287)",
        ("pages",),
        {200: Response("the feed", {"type": "string"}, media_type="application/atom+xml"), **NOT_MODIFIED},
        query=(Param("lang", {"enum": list(i18n.LANGS)}, "the feed's language"),),
        page=True,
    )
)
async def public_feed(request: web.Request) -> web.StreamResponse:
    t = language.choose(request)
    views.read_search(dict(request.query), ("lang",))
    tag, unchanged = await _etag(request, t.lang)
    if unchanged is not None:
        return unchanged
    db, base = request.app[DATABASE], request.app[SETTINGS].public_url
    found = views.NO_FILTERS
    recalls = await views.recalls(db, found, FEED_SIZE, 0, base)
    failed = await views.failed_inspections(db, found, FEED_SIZE, 0, base)
    entries = public_data.feed_entries(recalls, failed, t)[:FEED_SIZE]
    body = atom(entries, t, base, self_url(request))
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8",
                        headers={"ETag": tag, **CACHE, "Content-Language": t.html_lang,
                                 "Vary": "Accept-Language, Cookie"})  # fmt: skip


def atom(entries: list[dict[str, Any]], t: i18n.Words, base: str, path: str) -> bytes:
    """An Atom 1.0 document: the feed's id, title, updated, author and self link; each entry's id, title,
    updated, summary and link to the batch's public page."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": t.html_lang})
    sub(feed, "id", f"{base}/public/feed.atom")
    sub(feed, "title", t("public_feed_title"))
    newest = entries[0]["updated"] if entries else datetime.now(BEIJING).isoformat(timespec="seconds")
    sub(feed, "updated", newest)
    author = sub(feed, "author")
    sub(author, "name", t("site"))
    sub(feed, "link", rel="self", href=f"{base}{path}", type="application/atom+xml")
    sub(feed, "link", rel="alternate", href=f"{base}/public?lang={t.lang}", type="text/html")
    for e in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", e["id"])
        sub(entry, "title", e["title"])
        sub(entry, "updated", e["updated"])
        sub(entry, "category", term=e["category"])
        sub(entry, "summary", e["summary"])
        sub(entry, "link", rel="alternate", href=e["link"], type="text/html")
    text: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return text


OPEN_PARAMS = (
    *SEARCH,
    Param("limit", {"type": "integer", "minimum": 1, "maximum": views.MAX_LIMIT, "default": 100}, "rows"),
    Param("offset", {"type": "integer", "minimum": 0, "maximum": 10**6, "default": 0}, "rows to skip"),
)


def _open_data(fmt: str, media: str, schema: dict[str, Any]) -> dict[str, Operation]:
    return {
        name: Operation(
            f"Open data: the public {name.replace('-', ' ')} as {fmt.upper()} (stable columns, docs/open-data.md)",
            ("pages",),
            {
                200: Response(f"the rows as {fmt.upper()}", schema, media_type=media),
                **NOT_MODIFIED,
            },
            query=OPEN_PARAMS,
            page=True,
        )
        for name in public_data.OPEN_DATA
    }


@routes.get("/public/{list:recalls|failed-tests|credit}.csv")
@declare(_open_data("csv", "text/csv", {"type": "string"}))
async def open_data_csv(request: web.Request) -> web.StreamResponse:
    """A public list as CSV: a header row of the documented columns, then a row per item."""
    return await open_data(request, "csv")


@routes.get("/public/{list:recalls|failed-tests|credit}.json")
@declare(_open_data("json", "application/json", {"type": "object"}))
async def open_data_json(request: web.Request) -> web.StreamResponse:
    """A public list as JSON: the columns, the rows as objects with those keys, and the next page's URL; a
    refused search is the API's error shape, as a program reading JSON expects."""
    try:
        return await open_data(request, "json")
    except errors.InvalidField as exc:
        return json_error(request, exc)


async def open_data(request: web.Request, fmt: str) -> web.StreamResponse:
    """A public list as open data: the same rows as CSV or JSON, with the columns docs/open-data.md describes."""
    name = request.match_info["list"]
    db, base = request.app[DATABASE], request.app[SETTINGS].public_url
    search = views.read_search(dict(request.query), ("q", "district", "product", "limit", "offset"))
    limit = views.whole(dict(request.query), "limit", 100, views.MAX_LIMIT)
    offset = views.whole(dict(request.query), "offset", 0, 10**6, lo=0)
    tag, unchanged = await _etag(request, fmt)
    if unchanged is not None:
        return unchanged
    found = await views.filters(db, search)
    kind, columns, to_row = public_data.OPEN_DATA[name]
    if kind == "recalls":
        items = await views.recalls(db, found, limit + 1, offset, base)
    elif kind == "failed":
        items = await views.failed_inspections(db, found, limit + 1, offset, base)
    else:
        items = await views.ratings(db, found, limit + 1, offset)
    rows = [to_row(i) for i in items[:limit]]
    headers = {"ETag": tag, **CACHE, "Access-Control-Allow-Origin": "*"}
    if fmt == "json":
        more = len(items) > limit
        following = self_url(request, offset=str(offset + limit)) if more else None
        return json_response({"list": name, "columns": list(columns), "items": rows, "limit": limit,
                              "offset": offset, "next": following}, headers=headers)  # fmt: skip
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return web.Response(body=("\ufeff" + buf.getvalue()).encode(), content_type="text/csv", charset="utf-8",
                        headers=headers)  # fmt: skip


def _cell(value: Any) -> str:
    """A CSV cell: numbers as numbers, text guarded against formula injection (``sheets.csv_text``)."""
    if isinstance(value, str) and (n := number(value)) is not None and value.lstrip("-").replace(".", "").isdigit():
        return sheets.csv_text(n)
    return sheets.csv_text(value)
