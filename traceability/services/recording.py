"""The write path every use case that records on the ledger shares.

Capturing events, opening batches, transformations, holds and recalls, and the demo's scale path all
build their records here: who may record (:func:`require_device`) and about which batch (custody:
:func:`enforce_custody`, :func:`check_operator`), what the server stamps on a record
(:func:`stamp`), the exact bytes that are hashed and the sealed commercial details kept beside them
(:func:`record`), a batch's opening (:func:`opening_content`, :func:`open_digest`,
:func:`insert_opening`), the events the ledger appends itself (:func:`append_status_events`,
:func:`hold_descendants`), and how a write is retried when concurrent writers collide
(:func:`write`). So a record means the same bytes whichever path wrote it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from traceability import errors, i18n
from traceability.domain import custody
from traceability.domain.access import Principal, split_private
from traceability.domain.batches import BatchDraft
from traceability.domain.fields import utc_ms
from traceability.ledger import canonical, chain, sealed
from traceability.logging import get_logger
from traceability.storage import batches_repo, custody_repo, events_repo, federation_repo, genealogy_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

ATTEMPTS = 5
"""How often a ledger write runs before concurrent writers' collisions become a 503."""
T = TypeVar("T")


@dataclass(slots=True)
class Receipt:
    """What a scanner keeps as proof that an event was accepted.

    Not frozen, as :class:`~traceability.domain.events.EventDraft`: a capture builds one per event, and a
    frozen dataclass sets each field through ``object.__setattr__``. Nothing changes a receipt once built."""

    event_id: str
    trace_code: str
    seq: int
    hash: bytes
    prev_hash: bytes
    recorded_at: str
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "eventID": self.event_id,
            "traceCode": self.trace_code,
            "seq": self.seq,
            "hash": self.hash.hex(),
            "prevHash": self.prev_hash.hex(),
            "recordedAt": self.recorded_at,
            "replayed": self.replayed,
        }


AfterAppend = Callable[[Connection, list[Receipt]], Awaitable[None]]
"""Work that commits or rolls back with the events just written (a station's signed upload)."""


async def write(db: Database, work: Callable[[Connection, bool], Awaitable[T]], busy: str) -> T:
    """Run ``work(conn, retried)`` as one transaction, again while concurrent writers collide with it.

    ``retried`` is true on every run after the first: a concurrent writer may have recorded the
    very thing this one is writing (the same event id, the same opening), so the work looks for it
    and answers as a replay. After :data:`ATTEMPTS` runs the client gets a 503 saying ``busy``.
    """
    runs = 0

    async def once(conn: Connection) -> T:
        nonlocal runs
        runs += 1
        return await work(conn, runs > 1)

    try:
        return await db.transaction(once, attempts=ATTEMPTS)
    except errors.Contention:
        raise errors.Contention(busy) from None


def require_device(principal: Principal) -> Principal:
    """The principal, if it is a scanner device bound to a node: only devices record events."""
    if principal.role != "device" or principal.node_id is None:
        raise errors.Forbidden("only a scanner device records events")
    return principal


def stamp(content: dict[str, Any], device: Principal) -> dict[str, Any]:
    """Add who recorded the event and where: the device's own node, never what the client claims."""
    stamped = dict(content)
    _stamp_into(stamped, device)
    return stamped


def _stamp_into(content: dict[str, Any], device: Principal) -> None:
    content["node"] = device.node_code
    content["device"] = device.id
    if device.operator_code is not None and "operator" not in content:
        content["operator"] = device.operator_code


def record(content: dict[str, Any], recorded_at: str) -> tuple[bytes, bytes | None]:
    """The canonical bytes to hash (commercial details sealed) and the private blob to keep beside them."""
    public, private = split_private(content)
    return _sealed(public, private, recorded_at)


def stamped_record(content: dict[str, Any], device: Principal, recorded_at: str) -> tuple[bytes, bytes | None]:
    """``record(stamp(content, device), recorded_at)``, copying the content once instead of twice (what the
    server stamps is never private)."""
    public, private = split_private(content)
    _stamp_into(public, device)
    return _sealed(public, private, recorded_at)


def _sealed(public: dict[str, Any], private: dict[str, Any], recorded_at: str) -> tuple[bytes, bytes | None]:
    blob = None
    if private:
        public["sealed"], blob = sealed.seal(canonical.encode(private))
    public["recordedAt"] = recorded_at
    return canonical.encode(public), blob


# -- openings -------------------------------------------------------------------------------------


def open_digest(draft: BatchDraft, device: Principal) -> bytes:
    """What a retried opening is compared with: the request as the device sent it."""
    request = dict(draft.content, product=draft.product, gtin=draft.gtin, device=device.id)
    return hashlib.sha256(canonical.encode(request)).digest()


def opening_content(
    draft: BatchDraft, device: Principal, code: str, goods_code: str, gtin: str | None, now: datetime
) -> tuple[dict[str, Any], datetime]:
    """A batch's commissioning event as recorded (stamped, its trace code and product filled in) and its time."""
    content = stamp(draft.content, device)
    content["traceCode"] = code
    content["batch"] = dict(content["batch"], product=goods_code)
    if gtin:
        content["batch"]["gtin"] = gtin
    event_time = draft.event_time or now
    content.setdefault("eventTime", utc_ms(event_time))
    content.setdefault("eventTimeZoneOffset", "+00:00" if draft.event_time is None else content["eventTimeZoneOffset"])
    return content, event_time


async def insert_opening(
    conn: Connection,
    device: Principal,
    draft: BatchDraft,
    product_id: int,
    code: str,
    content: dict[str, Any],
    biz_step: str,
    event_time: datetime,
    now: datetime,
    digest_of_request: bytes,
) -> tuple[int, Receipt]:
    """Write a new batch, its identifiers, its chain head and its first event (seq 1, linked to the genesis)."""
    assert device.node_id is not None
    recorded_at = utc_ms(now)
    data, private = record(content, recorded_at)
    prev = chain.genesis(code)
    digest = chain.link(prev, data)
    batch = await batches_repo.insert_batch(
        conn,
        trace_code=code,
        product_id=product_id,
        node_id=device.node_id,
        device_id=device.id,
        open_event_id=draft.event_id,
        open_digest=digest_of_request,
        quantity=Decimal(draft.quantity["value"]),
        uom=draft.quantity["uom"],
        produced_on=draft.produced_on,
        expires_on=draft.expires_on,
    )
    await batches_repo.insert_identifiers(conn, batch["id"], [(i.scheme, i.value) for i in draft.identifiers])
    await batches_repo.insert_head(conn, batch["id"], 1, digest, event_time)
    await custody_repo.write(conn, [(batch["id"], device.node_id, custody.HOLDER, Decimal(0), event_time)])
    await events_repo.insert_events(
        conn,
        [
            (
                draft.event_id,
                batch["id"],
                1,
                prev,
                digest,
                data,
                biz_step,
                device.node_id,
                device.id,
                event_time,
                now,
                private,
            )
        ],
    )
    return batch["id"], Receipt(draft.event_id, code, 1, digest, prev, recorded_at)


# -- custody ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """One event about to be written: node ``node_id`` says ``content`` about batch ``batch_id``.

    ``where`` prefixes the field names of a refusal (``events[3].``)."""

    batch_id: int
    trace_code: str
    node_id: int
    content: dict[str, Any]
    event_time: datetime
    where: str = ""
    peers: tuple[int, ...] = ()
    """An enterprise's other nodes, when its own systems record (see ``custody.Relations.check``)."""


def refused(
    refusal: custody.Refusal, where: str, code: str, node: str, field: str = "traceCode", index: int | None = None
) -> errors.CustodyRefused:
    """The 403 a custody refusal is: its rule as the code, the rule's words in both languages as the message."""
    message = i18n.say(f"custody_{refusal.rule}", code=code, node=node, **refusal.values)
    return errors.CustodyRefused(refusal.rule, f"{where}{field}: {message}", field=f"{where}{field}", index=index)


def refuse_other_node(where: str, own: str | None, claimed: str) -> errors.CustodyRefused:
    """A device names another node than its own as where the event happened."""
    refusal = custody.Refusal("not_own_node", {"own": own or "-", "claimed": claimed})
    message = i18n.say("custody_not_own_node", code="", node=claimed, **refusal.values)
    return errors.CustodyRefused("not_own_node", f"{where}node: {message}", field=f"{where}node")


async def check_operator(conn: Connection, device: Principal, claims: list[tuple[str | None, str]]) -> None:
    """A stall's device records as its own operator; a node's shared device names only its node's operators.

    ``claims``: (the operator an event names, the field prefix) for each event."""
    assert device.node_id is not None
    for claimed, where in claims:
        if claimed is None or claimed == device.operator_code:
            continue
        registered = device.operator_code is None and await custody_repo.has_operator(conn, device.node_id, claimed)
        refusal = custody.operator_refusal(device.operator_code, claimed, registered)
        if refusal is not None:
            raise refused(refusal, where, "", device.node_code or "", "operator")


async def enforce_custody(
    conn: Connection, claims: list[Claim], opened: list[tuple[int, int, datetime]] | None = None
) -> None:
    """Check every claim against custody, in order, and write what they change, in the caller's transaction.

    The caller has locked the batches' chain heads (``FOR UPDATE``), which serialises every writer of
    their custody. ``opened``: (batch, node, time) of batches this very transaction opens, held there.
    A refusal is a 403 naming the rule (:data:`traceability.domain.custody.RULES`).
    """
    if not claims and not opened:
        return
    destinations = sorted(
        {
            c.content["destination"]["node"]
            for c in claims
            if c.content.get("bizStep") == "shipping"
            and isinstance(c.content.get("destination"), dict)
            and isinstance(c.content["destination"].get("node"), str)
        }
    )
    node_rows = await custody_repo.nodes(conn, sorted({c.node_id for c in claims}), destinations)
    by_id = {r["id"]: r for r in node_rows}
    by_code = {r["code"]: r["id"] for r in node_rows}
    batch_ids = sorted({c.batch_id for c in claims})
    nodes = {c.node_id for c in claims} | {p for c in claims for p in c.peers} | set(by_code.values())
    rows = await custody_repo.relations(conn, batch_ids, sorted(nodes))
    state = custody.Relations({(r["batch_id"], r["node_id"]): [r["relation"], r["in_transit"]] for r in rows})
    for batch, node, since in opened or ():
        state.open(batch, node, since)
    for n, c in enumerate(claims):
        destination = None
        if c.content.get("bizStep") == "shipping" and isinstance(party := c.content.get("destination"), dict):
            named = party.get("node")
            if isinstance(named, str):
                destination = by_code.get(named)
                # A node of another member ledger: the goods leave this ledger with a handover voucher.
                if destination is None and await federation_repo.home_elsewhere(conn, named) is None:
                    raise errors.UnknownReference(
                        f"{c.where}destination.node: no registered node has code {named}",
                        field=f"{c.where}destination.node",
                    )
        where_at = by_id.get(c.node_id)
        refusal = state.admit(
            c.batch_id,
            c.node_id,
            where_at["node_type"] if where_at else None,
            c.content,
            destination,
            c.event_time,
            c.peers,
        )
        if refusal is not None:
            field = "traceCode"
            if refusal.rule == "status_reserved":
                field = "bizStep" if c.content.get("bizStep") in custody.RESERVED_STEPS else "disposition"
            raise refused(refusal, c.where, c.trace_code, where_at["code"] if where_at else "?", field, n)
    await custody_repo.write(
        conn, [(b, n, ch.relation, ch.in_transit, ch.since) for (b, n), ch in state.changes.items()]
    )


# -- events the ledger appends itself: holds and recalls ------------------------------------------


async def append_status_events(
    conn: Connection,
    batch_ids: list[int],
    status: str,
    make: Callable[[Record], dict[str, Any]],
    now: datetime,
    skip: set[int] | None = None,
) -> list[Receipt]:
    """Append one event to each batch's chain (a hold or a recall) and set the batches' status.

    ``make(batch_row) -> content`` builds each event; batches in ``skip`` get the status only.
    """
    heads = await genealogy_repo.lock_heads_by_id(conn, batch_ids)
    recorded_at = utc_ms(now)
    rows, new_heads, receipts = [], [], []
    for head in heads:
        if skip and head["id"] in skip:
            new_heads.append((head["id"], head["seq"], head["head_hash"]))
            continue
        content = make(head)
        data, private = record(content, recorded_at)
        digest = chain.link(head["head_hash"], data)
        rows.append(
            (
                content["eventID"],
                head["id"],
                head["seq"] + 1,
                head["head_hash"],
                digest,
                data,
                content["bizStep"],
                head["node_id"],
                None,
                now,
                now,
                private,
            )
        )
        new_heads.append((head["id"], head["seq"] + 1, digest))
        receipts.append(
            Receipt(content["eventID"], head["trace_code"], head["seq"] + 1, digest, head["head_hash"], recorded_at)
        )
    if rows:
        await events_repo.insert_events(conn, rows)
    await genealogy_repo.set_heads_and_status(conn, new_heads, status, now)
    return receipts


def status_event(kind: str, head: Record, now: datetime, detail: dict[str, Any], disposition: str) -> dict[str, Any]:
    """A hold or recall event on one batch's chain, recorded at the node that opened the batch."""
    return {
        "eventID": str(uuid.uuid4()),
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "holding",
        "disposition": disposition,
        "traceCode": head["trace_code"],
        "eventTime": utc_ms(now),
        "eventTimeZoneOffset": "+00:00",
        "node": head["node_code"],
        kind: detail,
    }


async def hold_descendants(conn: Connection, batch_id: int, code: str, inspection_event: str, now: datetime) -> int:
    """A failed inspection holds the batch and everything made from it (disposition non_conformant)."""
    depth = await genealogy_repo.related(conn, batch_id, "forward")
    detail = {"inspection": inspection_event, "source": code}
    receipts = await append_status_events(
        conn,
        sorted(depth),
        "on_hold",
        lambda head: status_event("hold", head, now, detail, "non_conformant"),
        now,
        skip={batch_id},
    )
    log.info("batches.held", source=code, batches=len(depth))
    return len(receipts) + 1
