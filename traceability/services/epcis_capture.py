"""Capturing EPCIS 2.0 documents onto the ledger, with the same rules as the native API.

A document is checked whole before anything is written (GS1's schema, then each event's facets,
identifiers and eventID), then written in one transaction, or not at all (GS1's ``rollback``). Each
event becomes records on the chains of the batches it names (:mod:`traceability.epcis.records`):
identifiers resolve to batches through the identifier table, and an EPC or lot the ledger has not
seen becomes a batch at the capturing node, whose first record says so. Locations resolve to nodes by
GLN. A device records at its own node; an enterprise credential at its own enterprise's nodes.

Replays are idempotent: an eventID already recorded with the same event text returns its receipt.
The same eventID with an ``errorDeclaration`` added is the EPCIS way to declare that event wrong: it
is recorded as a new record and indexed as a correction. Any other difference is a conflict.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any, NamedTuple

from traceability import errors
from traceability.domain.access import Principal
from traceability.domain.federation import Federation
from traceability.domain.fields import utc_ms
from traceability.epcis import binding, document, hashing, identifiers, records
from traceability.epcis.events import MAX_FUTURE, EventError, What, facets
from traceability.logging import get_logger
from traceability.services import epcis_ledger, epcis_places, epcis_plain, epcis_prepared, handover
from traceability.services.epcis_prepared import EventFailed, Outcome, Prepared
from traceability.services.recording import write as write_ledger
from traceability.storage import epcis_repo
from traceability.storage.database import Connection, Database

log = get_logger(__name__)
NO_FEDERATION = Federation()
MAX_EVENT_CHARS = 1 << 20


def _prepare_one(
    received: document.Received,
    i: int,
    plain: dict[str, Any],
    exact: dict[str, Any],
    context: Any,
    now: datetime,
    hosts: tuple[str, ...],
    latest: datetime,
) -> Prepared:
    kind = received.kind
    path = document.event_path(kind, i)
    try:
        f = facets(plain, now, latest)
    except EventError as exc:
        where = f"{path}.{exc.field}" if path else exc.field
        raise errors.InvalidField(f"{where}: {exc.message}", field=where) from None
    computed = f.event_id is None
    if computed and i in received.computed_ids:
        uri = received.computed_ids[i]
    elif computed:
        try:
            uri = hashing.event_hash(plain, context)
        except hashing.HashError as exc:
            where = f"{path}.eventID" if path else "eventID"
            raise errors.InvalidField(f"{where}: {exc}", field=where) from None
    else:
        uri = str(f.event_id)
    public, sealed = records.split_destinations(exact)
    text = document.dumps_exact(exact)
    if len(text) > MAX_EVENT_CHARS:
        where = path or "body"
        raise errors.InvalidField(f"{where}: an event's JSON text is at most {MAX_EVENT_CHARS} characters", field=where)
    p = Prepared(
        i,
        path,
        f,
        uri,
        computed,
        plain,
        text,
        text if sealed is None else document.dumps_exact(public),
        sealed,
        hashlib.sha256(text.encode()).digest(),
        original=received.originals.get(i),
        ledger_id=records.ledger_event_id(uri),
    )
    for w in f.what:
        try:
            p.idents.append((w, identifiers.parse(w.uri, hosts)))
        except identifiers.IdentifierError as exc:
            raise errors.InvalidField(f"{p.where(w.path)}: {exc}", field=p.where(w.path)) from None
    if not p.idents:
        p.idents.append(_place(p, hosts))
    return p


def _place(p: Prepared, hosts: tuple[str, ...]) -> tuple[What, identifiers.Identifier]:
    """Where an event that names no object goes: on the chain of the place it happened at (its business
    location, else its read point), an identifier like any other. Sensor readings in a cold room, say, are
    kept on the room's chain, which its first reading opens at the room's node; only that node speaks for
    it from then on. An event naming no place either has no chain to go on."""
    uri = p.facets.location
    role = "bizLocation" if p.facets.biz_location else "readPoint"
    if uri is None:
        where = p.where("epcList")
        raise errors.InvalidField(
            f"{where}: the event names no EPC or class, nor a readPoint or bizLocation; the ledger keeps each "
            "event on the chain of a batch or a place it names",
            field=where,
        )
    w = What(role, uri, path=f"{role}.id")
    try:
        return w, identifiers.parse(uri, hosts)
    except identifiers.IdentifierError as exc:
        raise errors.InvalidField(f"{p.where(w.path)}: {exc}", field=p.where(w.path)) from None


def prepare(
    received: document.Received, now: datetime, public_url: str, members: tuple[str, ...] = ()
) -> list[Prepared]:
    """Check every event of a document without the database (may compute CBV hashes: run off the event loop).

    ``members``: the base URLs of the other ledgers of a federation, whose ``/t/{code}`` name trace codes too."""
    hosts = identifiers.hosts([public_url, *members])
    context = None if received.context is None else document.loads_exact(received.context)
    latest = now + MAX_FUTURE
    prepared = [
        _prepare_one(received, i, plain, exact, context, now, hosts, latest) for i, plain, exact in received.events
    ]
    seen: dict[str, int] = {}
    declared: set[str] = set()
    for p in prepared:
        # An event and then its errorDeclaration (the same event, so the same eventID, with the declaration added)
        # may come in one document, as in GS1's AssociationEvent examples; anything else is the same eventID twice.
        if p.uri in seen and (p.facets.error is None or p.uri in declared):
            where = p.where("eventID")
            raise errors.InvalidField(f"{where}: the same eventID as event {seen[p.uri]} of this document", field=where)
        if p.facets.error is not None:
            declared.add(p.uri)
        seen.setdefault(p.uri, p.index)
    return prepared


async def capture(
    db: Database,
    principal: Principal,
    received: document.Received,
    public_url: str,
    job: epcis_repo.Job | None = None,
    fed: Federation = NO_FEDERATION,
) -> list[Outcome]:
    """Record every event of a checked document in one transaction; raise the first event's error otherwise.

    ``job``, a capture job that succeeds whole, is kept in the same transaction. A receiving event
    with a handover voucher (``…:handoverVoucher``) registers the batch it received from another member
    ledger first, once the voucher verifies (:func:`traceability.services.handover.epcis_handovers`)."""
    if principal.role not in ("device", "enterprise"):
        raise errors.Forbidden("EPCIS capture takes a scanner device's or an enterprise's credential")
    now = datetime.now(UTC)
    if any(plain.get("eventID") is None and i not in received.computed_ids for i, plain, _ in received.events):
        prepared = await asyncio.to_thread(prepare, received, now, public_url, fed.urls)
    else:
        prepared = prepare(received, now, public_url, fed.urls)
    before = await handover.epcis_handovers(db, fed, principal, prepared) if received.vouchers else None
    return await write(db, principal, prepared, now, received.context, job, before)


async def write(
    db: Database,
    principal: Principal,
    prepared: list[Prepared],
    now: datetime,
    context: str | None,
    job: epcis_repo.Job | None = None,
    before: handover.Prepare | None = None,
) -> list[Outcome]:
    """The writing transaction on the shared write path, run again while concurrent writers collide
    (a retry finds what a concurrent capture of the same eventIDs recorded, and answers it as a replay).
    A document on known batches of their own is tried with one statement first (:mod:`epcis_plain`)."""
    looked = False
    if before is None and epcis_plain.qualifies(principal, prepared):
        quick = await epcis_plain.write(db, principal, prepared, now, context, job)
        if quick is not None:
            log.info("epcis.captured", count=len(quick), replayed=0)
            return quick
        looked = True  # a replay, an unknown batch, a refusal: the general path looks first and says which

    async def work(conn: Connection, retried: bool) -> list[Outcome]:
        if before is not None:
            await before(conn)
        outcomes = await _write(conn, principal, prepared, now, context, retried or looked)
        if job is not None:  # kept in the events' transaction: one commit, not two
            await epcis_repo.keep_job(conn, job, datetime.now(UTC), sum(1 for o in outcomes if not o.replayed))
        return outcomes

    outcomes = await write_ledger(db, work, "the ledger is too busy to take these events now; retry")
    new = sum(1 for o in outcomes if not o.replayed)
    log.info("epcis.captured", count=new, replayed=len(outcomes) - new)
    return outcomes


def _fail(p: Prepared, error: errors.TraceError) -> EventFailed:
    return EventFailed(p.index, error)


async def _write(
    conn: Connection,
    principal: Principal,
    prepared: list[Prepared],
    now: datetime,
    context: str | None,
    retried: bool = False,
) -> list[Outcome]:
    events = {p.uri for p in prepared if p.facets.error is None}
    declaring = [p for p in prepared if p.facets.error is not None and p.uri in events]
    if declaring:  # an event and its error declaration in one document: the event first, then the declaration finds it
        first = [p for p in prepared if p not in declaring]
        done = await _write(conn, principal, first, now, context, retried)
        done += await _write(conn, principal, declaring, now, context, True)
        by_index = {p.index: o for p, o in zip([*first, *declaring], done, strict=True)}
        return [by_index[p.index] for p in prepared]
    places = await epcis_places.Places.load(conn, principal, prepared)
    nodes = {p.index: places.node_of(p) for p in prepared}
    outcomes: dict[int, Outcome] = {}
    todo: list[tuple[Prepared, str]] = []  # (event, suffix of its ledger ids)
    by_uri: dict[str, list[Any]] = {}
    # New events are the common case: the first run writes without asking what the eventIDs already hold.
    # An eventID recorded before (a replay, a conflict, a native event's id) then meets the unique event id
    # as a Contention, and the run that follows looks first. An error declaration always looks first.
    look = retried or any(p.facets.error is not None for p in prepared)
    ids = {p.ledger_id: p for p in prepared} if look else {}
    ids.update({records.ledger_event_id(p.uri, records.DECLARATION): p for p in prepared} if look else {})
    for row in await epcis_repo.recorded(conn, list(ids)) if ids else ():
        p = ids[row["event_id"]]
        if row["kind"] is None:
            where = p.where("eventID")
            raise EventFailed(
                p.index,
                errors.EventConflict(
                    f"{where}: {p.uri} is the id of an event recorded through the native API", field=where
                ),
            )
        if row["kind"] == "a":
            by_uri.setdefault(p.uri, []).append(row)
    for p in prepared:
        decided = _replay(p, by_uri.get(p.uri, []))
        if isinstance(decided, Outcome):
            outcomes[p.index] = decided
        else:
            todo.append((p, decided))
    if todo:
        ledger = epcis_ledger.Writer(conn, principal, now, places, context)
        try:
            written = await ledger.append([(p, suffix, nodes[p.index], by_uri.get(p.uri, [])) for p, suffix in todo])
        except errors.Contention:
            raise
        except errors.TraceError:
            if look:
                raise
            raise errors.Contention() from None  # a replay may answer this event: run again, looking first
        for (p, _), outcome in zip(todo, written, strict=True):
            outcomes[p.index] = outcome
    return [outcomes[p.index] for p in prepared]


def _replay(p: Prepared, stored: list[Any]) -> Outcome | str:
    """An earlier record of the same event (a replay), or the suffix the new records' ids take."""
    for row in stored:
        if row["digest"] == p.digest:
            return Outcome(p.uri, row["trace_code"], row["seq"], row["hash"], utc_ms(row["recorded_at"]), True)
    if not stored:
        return ""
    original = stored[0]
    if p.facets.error is not None and original["declared_at"] is None and len(stored) == 1:
        if _same_apart_from_declaration(p, original):
            return records.DECLARATION
    where = p.where("eventID")
    raise _fail(
        p,
        errors.EventConflict(
            f"{where}: event {p.uri} was already recorded with different content (an error declaration repeats "
            "the event exactly and adds errorDeclaration)",
            field=where,
        ),
    )


def _same_apart_from_declaration(p: Prepared, original: Any) -> bool:
    full = epcis_prepared.full_event(original["canonical"], original["private"])
    mine = {k: v for k, v in document.loads_exact(p.text).items() if k not in ("errorDeclaration", "recordTime")}
    theirs = {k: v for k, v in full.items() if k not in ("errorDeclaration", "recordTime")}
    return bool(document.dumps_exact(mine) == document.dumps_exact(theirs) or mine == theirs)


# -- capture jobs (GS1's /capture) ---------------------------------------------------------------


def problem(error: errors.TraceError, index: int | None = None) -> dict[str, Any]:
    return binding.problem(error.status, error.code, error.message, field=error.field, index=index)


async def capture_job(
    db: Database,
    principal: Principal,
    received: document.Received,
    behaviour: str,
    public_url: str,
    fed: Federation = NO_FEDERATION,
) -> Ran:
    """Run a capture job to its end and keep it; the answer is the job GS1's ``/capture/{id}`` shows, with
    how many of its events were recorded and how many were retries of recorded ones.

    ``rollback`` (the default): all events or none. ``proceed``: every event that can be recorded is, each
    refused one is reported with its index. Problems found before writing with ``rollback`` are raised
    (the binding answers those with 400 at once).
    """
    if principal.role not in ("device", "enterprise"):
        raise errors.Forbidden("EPCIS capture takes a scanner device's or an enterprise's credential")
    created = datetime.now(UTC)
    problems = [
        problem(errors.InvalidField(pr.as_text(), field=pr.path), i)
        for i, found in received.refused.items()
        for pr in found
    ]
    captured = replayed = 0
    job_id = secrets.token_hex(10)
    # A job whose events all go in is kept with them; one with problems is kept once it is over.
    job = None if problems else epcis_repo.Job(job_id, principal.label, behaviour, created, received.count)
    try:
        if received.events:
            outcomes = await capture(db, principal, received, public_url, job=job, fed=fed)
            replayed = sum(1 for o in outcomes if o.replayed)
            captured = len(outcomes) - replayed
            if job is not None and job.finished_at is not None:
                return Ran(job_json(job_id, behaviour, created, job.finished_at, True, []), captured, replayed)
    except EventFailed as exc:
        if behaviour == "rollback":
            problems.append(problem(exc.error, exc.index))
        else:
            captured, replayed, more = await _one_by_one(db, principal, received, public_url, fed)
            problems.extend(more)
    except errors.InvalidField:
        if behaviour == "rollback":
            raise
        captured, replayed, more = await _one_by_one(db, principal, received, public_url, fed)
        problems.extend(more)
    problems.sort(key=lambda pr: pr.get("eventIndex", -1))
    finished = datetime.now(UTC)
    async with db.connection() as conn:
        await epcis_repo.insert_job(
            conn,
            job_id,
            principal.label,
            behaviour,
            created,
            finished,
            not problems,
            received.count,
            captured,
            problems,
        )
    return Ran(job_json(job_id, behaviour, created, finished, not problems, problems), captured, replayed)


async def _one_by_one(
    db: Database, principal: Principal, received: document.Received, public_url: str, fed: Federation
) -> tuple[int, int, list[dict[str, Any]]]:
    """GS1's ``proceed``: each event in its own transaction; what fails is reported, the rest recorded (how
    many were, how many of those were retries, and the problems)."""
    captured = replayed = 0
    problems = []
    for i, plain, exact in received.events:
        one = document.Received(
            received.kind,
            received.context,
            [(i, plain, exact)],
            {},
            1,
            received.computed_ids,
            received.originals,
            received.vouchers,
        )
        try:
            outcomes = await capture(db, principal, one, public_url, fed=fed)
            again = sum(1 for o in outcomes if o.replayed)
            captured, replayed = captured + len(outcomes) - again, replayed + again
        except EventFailed as exc:
            problems.append(problem(exc.error, i))
        except (errors.InvalidField, errors.VoucherRefused) as exc:
            problems.append(problem(exc, i))
    return captured, replayed, problems


class Ran(NamedTuple):
    """A capture job that ran: the job as GS1's ``/capture/{id}`` shows it, the events it recorded and the
    retries among its events (answered by what was recorded before)."""

    job: dict[str, Any]
    new: int
    replayed: int


def job_json(
    job_id: str, behaviour: str, created: datetime, finished: datetime, success: bool, problems: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "captureID": job_id,
        "createdAt": utc_ms(created),
        "finishedAt": utc_ms(finished),
        "running": False,
        "success": success,
        "captureErrorBehaviour": behaviour,
        "errors": problems,
    }


async def find_job(db: Database, principal: Principal, job_id: str) -> dict[str, Any]:
    """A capture job, for the credential that ran it (and regulators and administrators)."""
    async with db.connection() as conn:
        row = await epcis_repo.find_job(conn, job_id)
    if row is None or (row["principal"] != principal.label and principal.role not in ("regulator", "admin")):
        raise errors.NotFound(f"no capture job {job_id}")
    return _job_row(row)


def _job_row(row: Any) -> dict[str, Any]:
    return job_json(row["id"], row["behaviour"], row["created_at"], row["finished_at"], row["success"], row["errors"])


async def list_jobs(
    db: Database, principal: Principal, after: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The credential's own capture jobs, newest first."""
    async with db.connection() as conn:
        rows = await epcis_repo.list_jobs(conn, principal.label, after, limit)
    return [_job_row(r) for r in rows]
