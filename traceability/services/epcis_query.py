"""Answering EPCIS queries over the whole ledger, and exporting batches as EPCIS documents.

Every event is queryable: events captured through EPCIS come back as they were sent (plus
``recordTime`` and, when the server computed it, ``eventID``); native events are written in EPCIS
form (:mod:`traceability.epcis.export`). Each reader sees what is theirs: the public sees what the
consumer page shows (no sealed destinations or commercial details), regulators everything, an
enterprise the full record of the events it took part in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from traceability import errors
from traceability.domain.access import Principal, involved
from traceability.domain.fields import utc_ms
from traceability.epcis import document, export, identifiers
from traceability.epcis.query import ALL_ROLES, ANY, MATCH_ROLES, EventQuery, QueryError
from traceability.epcis.records import DECLARATION, ledger_event_id
from traceability.ledger import canonical, sealed
from traceability.services.epcis_prepared import full_event
from traceability.storage import epcis_query_repo, genealogy_repo
from traceability.storage.database import Connection, Database
from traceability.storage.epcis_query_repo import Filters


class QueryParameterError(errors.InvalidField):
    """A query parameter is wrong or not supported."""

    code = "query_parameter"


class QueryTooLarge(errors.TraceError):
    """The query would return more events than maxEventCount allows."""

    status = 413
    code = "query_too_large"


def per_page(params: Any) -> int:
    from traceability.epcis.query import per_page as parse_per_page

    try:
        return parse_per_page(params.get("perPage"))
    except QueryError as exc:
        raise QueryParameterError(exc.message, field=exc.parameter) from None


def _refs(
    uris: list[str], param: str, public_url: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    keys: list[tuple[str, str]] = []
    prefixes: list[tuple[str, str]] = []
    codes: list[str] = []
    hosts = identifiers.hosts([public_url])
    for uri in uris:
        try:
            ident = identifiers.parse(uri, hosts)
        except identifiers.IdentifierError as exc:
            raise QueryParameterError(f"{param}: {exc}", field=param) from None
        if ident.trace_code:
            codes.append(ident.trace_code)
        if ident.scheme == "gtin":
            prefixes += [("sgtin", f"{ident.value}/"), ("gs1", f"{ident.value}/")]
        if ident.scheme != "trace":
            keys.append(ident.key)
    return keys, prefixes, codes


def _places(uris: list[str]) -> tuple[list[str], list[str]]:
    keys = [identifiers.location_key(u) for u in uris]
    glns = [g for u in uris if (g := identifiers.location_gln(u)) and "/" not in identifiers.location_key(u)]
    return keys, glns


def _token(value: str | None) -> tuple[Any, int, int]:
    if not value:
        return None, 0, 0
    try:
        stamp, last, count = bytes.fromhex(value).decode().split("|")
        return (datetime.fromisoformat(stamp) if stamp else None), int(last), int(count)
    except ValueError:
        raise QueryParameterError("nextPageToken is not one this server issued", field="nextPageToken") from None


async def _filters(conn: Connection, q: EventQuery, public_url: str) -> Filters:
    f = Filters(
        event_types=q.event_types,
        actions=q.actions,
        biz_steps=q.biz_steps,
        dispositions=q.dispositions,
        transformation_ids=q.transformation_ids,
        error_reasons=q.error_reasons,
        times=dict(q.times),
        exists_error=q.exists_error,
        order_by=q.order_by,
        descending=q.descending,
    )
    if q.read_points is not None:
        f.read_points = _places(q.read_points)
    if q.biz_locations is not None:
        f.biz_locations = _places(q.biz_locations)
    if q.event_ids is not None:
        # Records are found by the ledger ids their eventIDs map to: the event and its error declaration.
        f.event_ids = [i for uri in q.event_ids for i in (ledger_event_id(uri), ledger_event_id(uri, DECLARATION))]
    for param, uris in q.match.items():
        keys, prefixes, codes = _refs(uris, param, public_url)
        roles = ALL_ROLES if param == ANY else MATCH_ROLES[param]
        f.match.append((await epcis_query_repo.batch_ids(conn, keys, prefixes, codes), list(roles)))
    return f


def _sees(viewer: Principal | None, row: Any, content: dict[str, Any], private: dict[str, Any]) -> bool:
    """Whether this reader sees the event's sealed part: regulators always, an enterprise where it took part."""
    if viewer is None:
        return False
    if viewer.role in ("regulator", "admin"):
        return True
    parties = {row["node_uscc"]} | involved(content) | involved(private)
    return viewer.uscc is not None and viewer.uscc in parties


def render(
    rows: list[Any], viewer: Principal | None, public_url: str, glns: dict[str, str]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows as EPCIS events (exact numbers kept), and the extra ``@context`` they need."""
    events: list[dict[str, Any]] = []
    contexts: list[str | None] = []
    for row in rows:
        content = canonical.decode(row["canonical"])
        private = canonical.decode(sealed.private_bytes(row["private"])) if row["private"] else {}
        full = _sees(viewer, row, content, private)
        if row["kind"] == "a":
            event = full_event(row["canonical"], row["private"] if full else None)
            if "eventID" not in event:
                event = {"eventID": row["event_uri"], **event}
            event["recordTime"] = utc_ms(row["recorded_at"])
            contexts.append(content["epcis"].get("context"))
        else:
            shown = {**content, **private} if full else content
            node = export.node_uri(public_url, row["node_code"], _gln_uri(row["node_gln"]))
            nodes = {code: identifiers.gln_uri(gln) for code, gln in glns.items()}
            event = export.native_event(
                shown,
                event_id=row["event_id"],
                trace_code=row["trace_code"],
                recorded_at=row["recorded_at"],
                public_url=public_url,
                node=node,
                nodes=nodes,
                full=full,
            )
            contexts.append(None)
        events.append(event)
    extra, clashing = export.merge_contexts(contexts, public_url)
    for i in clashing:
        text = contexts[i]
        assert text is not None
        events[i] = {"@context": document.loads_exact(text), **events[i]}
    return events, extra


def _gln_uri(gln: str | None) -> str | None:
    return identifiers.gln_uri(gln) if gln else None


def _other_nodes(rows: list[Any]) -> list[str]:
    codes = set()
    for row in rows:
        if row["kind"] is None:
            content = canonical.decode(row["canonical"])
            for key in ("source", "destination"):
                party = content.get(key)
                if isinstance(party, dict) and isinstance(party.get("node"), str):
                    codes.add(party["node"])
    return sorted(codes)


def _scope(viewer: Principal | None, q: EventQuery, f: Filters) -> None:
    """Who may ask what: regulators anything; anyone about a named identifier or eventID (what a consumer
    page shows, for a code one holds); an enterprise or device, otherwise, about its own enterprise's events."""
    if q.match or q.event_ids is not None or (viewer is not None and viewer.role in ("regulator", "admin")):
        return
    if viewer is None or viewer.enterprise_id is None:
        raise errors.Forbidden(
            "a query without a credential names what it is about: MATCH_epc, MATCH_epcClass, MATCH_anyEPC, … "
            "or EQ_eventID (or GET /epcis/epcs/{epc}/events)"
        )
    f.enterprise_id = viewer.enterprise_id


async def query(
    db: Database, viewer: Principal | None, q: EventQuery, public_url: str
) -> tuple[dict[str, Any], str | None]:
    """An EPCISQueryDocument with one page of results, and the token of the next page (or None)."""
    stamp, last, served = _token(q.page_token)
    limit = q.per_page
    if q.event_count_limit is not None:
        limit = min(limit, q.event_count_limit - served)
    async with db.connection() as conn:
        f = await _filters(conn, q, public_url)
        _scope(viewer, q, f)
        if q.max_event_count is not None and not q.page_token:
            found = await epcis_query_repo.count_events(conn, f, q.max_event_count + 1)
            if found > q.max_event_count:
                raise QueryTooLarge(f"the query matches more than maxEventCount={q.max_event_count} events")
        rows: list[Any] = []
        if limit > 0:
            f.after = (stamp, last) if q.page_token else None
            f.limit = limit + 1
            rows = await epcis_query_repo.find_events(conn, f)
        glns = await epcis_query_repo.node_glns(conn, _other_nodes(rows))
    more = len(rows) > limit
    rows = rows[:limit]
    events, extra = render(rows, viewer, public_url, glns)
    token = None
    if more and rows:
        key = {"eventTime": "event_time", "recordTime": "recorded_at"}.get(q.order_by or "")
        value = rows[-1][key].isoformat() if key else ""
        token = f"{value}|{rows[-1]['id']}|{served + len(rows)}".encode().hex()
    return export.query_document(events, extra, public_url, datetime.now(UTC)), token


async def export_batches(
    db: Database, viewer: Principal | None, batch_ids: list[int], public_url: str, limit: int = 100_000
) -> dict[str, Any]:
    """Every event of these batches (and every EPCIS event naming them) as one EPCISDocument, in record order."""
    async with db.connection() as conn:
        rows = await epcis_query_repo.find_events(conn, Filters(batch_ids=batch_ids, limit=limit))
        glns = await epcis_query_repo.node_glns(conn, _other_nodes(rows))
    events, extra = render(rows, viewer, public_url, glns)
    return export.epcis_document(events, extra, public_url, datetime.now(UTC))


def parameter_error(exc: QueryError) -> QueryParameterError:
    return QueryParameterError(
        exc.message if exc.message.startswith(exc.parameter) else f"{exc.parameter} {exc.message}", field=exc.parameter
    )


async def any_match(q: EventQuery, epc: str) -> EventQuery:
    """``/epcs/{epc}/events``: the events naming ``epc`` in any role, as an instance or as a class."""
    return q.narrowed(match={**q.match, ANY: [epc]})


async def locations(db: Database) -> list[str]:
    """GLNs of registered nodes (the business locations and read points the ledger knows)."""
    async with db.connection() as conn:
        return await epcis_query_repo.locations(conn, None, 10_000)


async def epcs(db: Database, token: str | None, limit: int) -> tuple[list[str], str | None]:
    """One page of the identifiers batches carry, as GS1 Digital Link URIs (other URIs as they are)."""
    after = None
    if token:
        try:
            scheme, _, value = bytes.fromhex(token).decode().partition("|")
        except ValueError:
            raise QueryParameterError("nextPageToken is not one this server issued", field="nextPageToken") from None
        after = (scheme, value)
    async with db.connection() as conn:
        rows = await epcis_query_repo.identifiers(conn, after, limit + 1)
    members = [_identifier_uri(r["scheme"], r["value"]) for r in rows[:limit]]
    more = f"{rows[limit - 1]['scheme']}|{rows[limit - 1]['value']}".encode().hex() if len(rows) > limit else None
    return [m for m in members if m], more


def _identifier_uri(scheme: str, value: str) -> str | None:
    if scheme == "uri":
        return value
    if scheme in ("gs1", "sgtin"):
        gtin, _, rest = value.partition("/")
        return f"{identifiers.GS1_RESOLVER}/01/{gtin}/{'10' if scheme == 'gs1' else '21'}/{rest}"
    if scheme == "gtin":
        return f"{identifiers.GS1_RESOLVER}/01/{value}"
    if scheme == "sscc":
        return f"{identifiers.GS1_RESOLVER}/00/{value}"
    if scheme.startswith("ai"):
        return f"{identifiers.GS1_RESOLVER}/{scheme[2:]}/{value}"
    return None


async def resolve(db: Database, uri: str, public_url: str) -> str | None:
    """The trace code of the batch a GS1 Digital Link, EPC URN or trace URL names, or None.

    A lot that is one of our trace codes (what the stations print) names that batch; otherwise the
    identifier table decides. A serial the ledger has not seen falls back to its GTIN + lot, if the
    link carries one.
    """
    try:
        ident = identifiers.parse(uri, identifiers.hosts([public_url]))
    except identifiers.IdentifierError:
        return None
    async with db.connection() as conn:
        if ident.trace_code:
            found = await epcis_query_repo.batch_ids(conn, [], [], [ident.trace_code])
            if found:
                return ident.trace_code
        keys = [ident.key]
        lot = dict(ident.elements).get("10")
        if ident.scheme == "sgtin" and lot is not None and ident.gtin:
            keys.append(("gs1", f"{ident.gtin}/{lot}"))
        for key in keys:
            code = await epcis_query_repo.code_for_key(conn, key)
            if code is not None:
                return code
    return None


async def package_code(db: Database, code: str) -> str | None:
    """The trace code of the batch a package code belongs to, or None."""
    async with db.connection() as conn:
        return await epcis_query_repo.package_batch(conn, code)


async def export_batch(
    db: Database, viewer: Principal | None, code: str, trace: str | None, public_url: str
) -> dict[str, Any]:
    """A batch's whole history as an EPCISDocument; with ``trace`` (backward, forward or both) also the
    histories of every batch it came from or went into."""
    async with db.connection() as conn:
        batch = await genealogy_repo.batch_id(conn, code)
        if batch is None:
            raise errors.NotFound(f"no batch has trace code {code}")
        ids = {batch}
        for direction in ("backward", "forward") if trace == "both" else (trace,) if trace else ():
            ids |= set(await genealogy_repo.related(conn, batch, direction))
    return await export_batches(db, viewer, sorted(ids), public_url)


# -- named queries (GS1's /queries) -------------------------------------------------------------

QUERY_NAME = r"[A-Za-z0-9_.\-]{1,64}"


def _definition(body: Any) -> tuple[str, dict[str, Any]]:
    import re

    from traceability.epcis.query import from_definition

    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("query"), dict):
        raise errors.InvalidField('a named query is {"name": "...", "query": {...}}', field="name")
    name = body["name"]
    if not re.fullmatch(QUERY_NAME, name):
        raise errors.InvalidField("name: 1-64 letters, digits, '_', '.' or '-'", field="name")
    extra = set(body) - {"name", "query"}
    if extra:
        raise errors.InvalidField(
            f"{sorted(extra)[0]}: a named query holds only name and query", field=sorted(extra)[0]
        )
    problems = document.validate_query(body["query"])
    if problems:
        raise QueryParameterError(f"query: {problems[0].as_text()}", field=f"query.{problems[0].path}".rstrip("."))
    try:
        from_definition(body["query"])
    except QueryError as exc:
        raise QueryParameterError(f"query.{exc.parameter}: {exc.message}", field=f"query.{exc.parameter}") from None
    return name, body["query"]


async def create_query(db: Database, owner: Principal, body: Any) -> str:
    """Keep a named query for this credential; 409 if it already has one by that name."""
    name, definition = _definition(body)
    async with db.connection() as conn:
        if not await epcis_query_repo.insert_query(conn, owner.label, name, definition):
            raise errors.AlreadyExists(f"a query named {name} already exists", field="name")
    return name


async def named_query(db: Database, owner: Principal, name: str) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await epcis_query_repo.find_query(conn, owner.label, name)
    if row is None:
        raise errors.NotFound(f"no query named {name}")
    return {"name": row["name"], "query": row["query"], "createdAt": utc_ms(row["created_at"])}


async def named_queries(db: Database, owner: Principal) -> list[str]:
    async with db.connection() as conn:
        return [r["name"] for r in await epcis_query_repo.list_queries(conn, owner.label)]


async def delete_query(db: Database, owner: Principal, name: str) -> None:
    async with db.connection() as conn:
        if not await epcis_query_repo.delete_query(conn, owner.label, name):
            raise errors.NotFound(f"no query named {name}")


async def trace_code_for_scan(db: Database, text: str, public_url: str) -> str:
    """The trace code of what a vendor typed or scanned: our code, our page's URL or label, and also any GS1
    identifier a batch carries (a Digital Link, an EPC URN, a GS1-128 / DataMatrix element string), resolved
    through the identifier table. Raises InvalidField saying why in both languages."""
    from traceability.domain import scans

    try:
        return scans.trace_code_of(text, base_urls=[public_url])
    except scans.ScanError as exc:
        refused = exc
    cleaned = text.strip()
    uri: str | None = None
    if cleaned.lower().startswith(("urn:epc:id:", "urn:epc:class:", "urn:epc:idpat:")):
        uri = cleaned
    elif refused.code == "not_a_trace_code":
        scan = scans.parse_scan(cleaned, base_urls=[public_url])
        if scan.url is not None:
            uri = scan.url
        elif scan.gs1 is not None:
            try:
                uri = identifiers.from_element_strings(scan.gs1.elements).uri
            except identifiers.IdentifierError:
                uri = None
    if uri is None:
        raise errors.InvalidField(f"code: {refused} ({refused.message_zh})", field="code")
    code = await resolve(db, uri, public_url)
    if code is None:
        raise errors.InvalidField(f"code: no batch carries {uri} (没有批次带有这个标识)", field="code")
    return code
