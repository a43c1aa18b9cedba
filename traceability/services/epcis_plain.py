"""The common EPCIS capture, each event on a known batch of its own, written with one statement.

A document whose every event names exactly one batch by its trace code, each a different batch, on a
device's credential, with no ``errorDeclaration`` and a step that leaves custody as it is or is a
receipt (``custody.single_statement``), is written like a native list on batches of their own
(``events_repo.APPEND_ALL``: custody, status and chaining checked in PostgreSQL, all or none), with its
index rows and its capture job in the same statement (``epcis_repo.APPEND_INDEXED``): one round trip, one
commit. When the statement writes nothing (an unknown batch, a held one, no custody, an eventID already
taken, a head another transaction holds) the general path decides, looking first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from traceability import errors
from traceability.domain import bounds, custody
from traceability.domain.access import Principal
from traceability.epcis import identifiers, records
from traceability.ledger import chain
from traceability.services.epcis_ledger import Writer
from traceability.services.epcis_places import Places
from traceability.services.epcis_prepared import Outcome, Prepared
from traceability.services.recording import record
from traceability.storage import epcis_repo, events_repo
from traceability.storage.database import Database, translating


def qualifies(principal: Principal, prepared: list[Prepared]) -> bool:
    """Whether a document may take the one-statement path (see the module's text)."""
    if principal.role != "device" or principal.node_id is None or not prepared:
        return False
    codes = set()
    for p in prepared:
        f = p.facets
        if f.error is not None or len(p.idents) != 1:
            return False
        ident = p.idents[0][1]
        if ident.scheme != "trace" or not ident.trace_code:
            return False
        if not custody.single_statement(f.biz_step or "", f.disposition):
            return False
        codes.add(ident.trace_code)
    return len(codes) == len(prepared)


async def write(
    db: Database,
    principal: Principal,
    prepared: list[Prepared],
    now: datetime,
    context: str | None,
    job: epcis_repo.Job | None,
) -> list[Outcome] | None:
    """Write a qualifying document and its ``job`` in one statement; None (nothing written) when the
    general path must decide."""
    async with db.connection() as conn:
        places = await Places.load(conn, principal, prepared)
        writer = Writer(conn, principal, now, places, context)
        nodes = [places.node_of(p) for p in prepared]
        if any(node["id"] != principal.node_id for node in nodes):  # APPEND_ALL takes one node for all
            return None
        singles, index = _rows(writer, prepared, nodes)
        if job is not None:
            job.finished_at = datetime.now(UTC)
        try:
            with translating():
                rows = await epcis_repo.append_indexed(
                    conn, singles, index, job, chain.CHAIN_TAG, bounds.OPENING_TOLERANCE
                )
        except errors.Contention:  # an eventID already taken, a collision: the general path decides
            return None
    if len(rows) != len(singles):
        return None
    outcomes = []
    for p, s in zip(prepared, singles, strict=True):
        row = rows[s.event_id]
        code = s.trace_code
        outcomes.append(Outcome(p.uri, code, row["seq"], row["hash"], writer.recorded_at, False, (code,), ()))
    return outcomes


def _rows(
    writer: Writer, prepared: list[Prepared], nodes: list[Any]
) -> tuple[list[events_repo.Single], epcis_repo.Indexed]:
    """Each event's anchor record, as Writer.append builds it for an event on one batch, and its index row.

    What is the same for every event of the document is worked out once: the stamp (write() admitted one
    node, the device's own) and each place's index key."""
    singles = []
    index = epcis_repo.Indexed()
    device_id = writer.principal.id
    node_id = nodes[0]["id"] if nodes else None
    stamp: dict[str, Any] = {}
    if nodes:
        writer.stamp(stamp, nodes[0])
    now, recorded_at, context = writer.now, writer.recorded_at, writer.context
    locations: dict[str, str] = {}
    for p, node in zip(prepared, nodes, strict=True):
        w, ident = p.idents[0]
        f = p.facets
        code = ident.trace_code
        assert code is not None  # qualifies() admitted only trace codes
        assert node["id"] == node_id  # write() sent every other node to the general path
        quantity = records.quantity_of(w)
        target = records.Target(code, 0, [w.role], quantity, None)
        record_id = p.ledger_id or records.ledger_event_id(p.uri, "")
        content = records.anchor_content(f, record_id, target, p.uri, p.public_text, context, p.computed, p.original)
        destination = writer.places_party(p, "destinations") if f.destinations else None
        if p.sealed or destination:
            content["destination"] = dict(p.sealed or {}) | (destination or {})
        if f.sources and (source := writer.places_party(p, "sources")):
            content["source"] = source
        content.update(stamp)
        data, private = record(content, recorded_at)
        step = f.biz_step or ""
        receiving = step == "receiving"
        singles.append(
            events_repo.Single(
                code,
                record_id,
                data,
                step,
                node_id,
                device_id,
                f.event_time,
                now,
                private,
                custody.amount(quantity) if receiving else None,
            )
        )
        index.uri.append(p.uri)
        index.event_type.append(f.event_type)
        index.role.append(w.role)
        index.action.append(f.action)
        index.disposition.append(f.disposition)
        index.read_point.append(_location(locations, f.read_point))
        index.biz_location.append(_location(locations, f.biz_location))
        index.digest.append(p.digest)
    return singles, index


def _location(seen: dict[str, str], uri: str | None) -> str | None:
    """A place's index key, worked out once for each place a document names."""
    if not uri:
        return None
    key = seen.get(uri)
    if key is None:
        key = seen[uri] = identifiers.location_key(uri)
    return key
