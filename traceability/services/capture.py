"""Recording what happened: opening batches and capturing events onto their hash chains.

A capture request is all-or-nothing: every event is validated first, then all are written in
one transaction, or none is. Replays (an event id already recorded with the same content) are
not written again and get their original receipt; the same id with other content is a 409 for
the whole request. Row locks on the chain heads, taken in batch-id order, serialise appends to
one batch without a global lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.domain import stations, tracecode
from traceability.domain.access import Principal, split_private
from traceability.domain.batches import BatchDraft, parse_batch
from traceability.domain.events import EventDraft, parse_event_list
from traceability.domain.fields import utc_ms
from traceability.domain.supply import SALE_STEPS, check_inspection, check_key_data
from traceability.ledger import canonical, chain, sealed
from traceability.logging import get_logger
from traceability.services.validation import fields
from traceability.storage import batches_repo, events_repo, registry_repo, stations_repo
from traceability.storage.database import RETRYABLE, Database, UniqueViolation, translated

log = get_logger(__name__)
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a scanner keeps as proof that an event was accepted."""

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


def _require_device(principal: Principal) -> Principal:
    if principal.role != "device" or principal.node_id is None:
        raise errors.Forbidden("only a scanner device records events")
    return principal


def _stamp(content: dict[str, Any], device: Principal) -> dict[str, Any]:
    """Add who recorded the event and where: the device's own node, never what the client claims."""
    stamped = dict(content)
    stamped["node"] = device.node_code
    stamped["device"] = device.id
    if device.operator_code is not None and "operator" not in stamped:
        stamped["operator"] = device.operator_code
    return stamped


def _record(content: dict[str, Any], recorded_at: str) -> tuple[bytes, bytes | None]:
    """The canonical bytes to hash (commercial details sealed) and the private blob to keep beside them."""
    public, private = split_private(content)
    blob = None
    if private:
        public["sealed"], blob = sealed.seal(canonical.encode(private))
    public["recordedAt"] = recorded_at
    return canonical.encode(public), blob


def _same(stored: bytes, private: bytes | None, content: dict[str, Any]) -> bool:
    """Whether a stored event has the content of a resent one (recorded time and seal aside)."""
    previous = canonical.decode(stored)
    previous.pop("recordedAt", None)
    if previous.pop("sealed", None) is not None and private is not None:
        previous.update(canonical.decode(sealed.private_bytes(private)))
    return previous == content


# -- capture -------------------------------------------------------------------------------------


AfterAppend = Callable[[Any, list[Receipt]], Awaitable[None]]


async def capture_events(
    db: Database, principal: Principal, body: Any, max_events: int, after: AfterAppend | None = None
) -> tuple[list[Receipt], bool]:
    """Validate and record one event or a list. Returns receipts in request order, and whether a list was sent.

    ``after`` runs inside the same transaction once the events are written (a station's signed upload
    is stored that way), so it commits or rolls back with them.
    """
    device = _require_device(principal)
    now = datetime.now(UTC)
    items = body.get("events") if isinstance(body, dict) else body
    if isinstance(items, list) and len(items) > max_events:
        raise errors.TooManyEvents(
            f"the request holds {len(items)} events; at most {max_events} are accepted per request", field="events"
        )
    with fields():
        drafts, is_list = parse_event_list(body, now)
        failed = {
            i for i, d in enumerate(drafts) if check_inspection(d.content, f"events[{i}]." if is_list else "") is False
        }
    for i, d in enumerate(drafts):
        if d.node_code is not None and d.node_code != device.node_code:
            where = f"events[{i}].node" if is_list else "node"
            raise errors.Forbidden(
                f"{where}: this device records events only at its own node {device.node_code}, not {d.node_code}"
            )
    contents = [_stamp(d.content, device) for d in drafts]
    check_replays = False
    if len(drafts) == 1 and not failed and after is None and "errorDeclaration" not in drafts[0].content:
        quick = await _append_one(db, device, drafts[0], contents[0], now)
        if quick is not None:
            log.info("events.captured", count=1, replayed=0)
            return [quick], is_list
        check_replays = True  # a replay, an unknown batch or a refused sale: the general path says which
    for attempt in range(ATTEMPTS):
        try:
            with translated():
                async with db.acquire() as conn, conn.transaction():
                    receipts = await _append(conn, device, drafts, contents, now, check_replays, is_list)
                    await _hold_failed(conn, drafts, receipts, failed, now)
                    if after is not None:
                        await after(conn, receipts)
            break
        except UniqueViolation:
            # Someone recorded one of these event ids since we looked (or we did not look yet).
            check_replays = True
        except RETRYABLE:
            log.info("capture.retried", attempt=attempt)
    else:
        raise errors.StorageUnavailable("the ledger is too busy to take these events now; retry")
    new = sum(1 for r in receipts if not r.replayed)
    log.info("events.captured", count=new, replayed=len(receipts) - new)
    return receipts, is_list


async def _append_one(
    db: Database, device: Principal, d: EventDraft, content: dict[str, Any], now: datetime
) -> Receipt | None:
    """The common case, one new event, in one autocommitted statement; None when the general path must decide."""
    assert device.node_id is not None  # _require_device admitted only devices bound to a node
    recorded_at = utc_ms(now)
    data, private = _record(content, recorded_at)
    try:
        with translated():
            async with db.acquire() as conn:
                row = await events_repo.append_one(
                    conn,
                    d.trace_code,
                    d.event_id,
                    data,
                    d.biz_step,
                    device.node_id,
                    device.id,
                    d.event_time,
                    now,
                    private,
                    d.biz_step in SALE_STEPS,
                    chain.CHAIN_TAG,
                )
    except (UniqueViolation, *RETRYABLE):
        return None
    if row is None:
        return None
    return Receipt(d.event_id, d.trace_code, row["seq"], row["hash"], row["prev_hash"], recorded_at)


async def _append(
    conn: Any,
    device: Principal,
    drafts: list[EventDraft],
    contents: list[dict[str, Any]],
    now: datetime,
    check_replays: bool,
    is_list: bool,
) -> list[Receipt]:
    receipts: list[Receipt | None] = [None] * len(drafts)
    todo = list(range(len(drafts)))
    if check_replays:
        stored = {r["event_id"]: r for r in await events_repo.find_events(conn, [d.event_id for d in drafts])}
        todo = []
        for i, d in enumerate(drafts):
            row = stored.get(d.event_id)
            if row is None:
                todo.append(i)
                continue
            if not _same(row["canonical"], row["private"], contents[i]):
                where = f"events[{i}].eventID" if is_list else "eventID"
                raise errors.EventConflict(
                    f"{where}: event {d.event_id} was already recorded with different content", field=where
                )
            receipts[i] = Receipt(
                d.event_id,
                row["trace_code"],
                row["seq"],
                row["hash"],
                row["prev_hash"],
                utc_ms(row["recorded_at"]),
                replayed=True,
            )
    if todo:
        codes = sorted({drafts[i].trace_code for i in todo})
        locked = {r["trace_code"]: r for r in await batches_repo.lock_heads(conn, codes)}
        heads = {code: [r["id"], r["seq"], r["head_hash"]] for code, r in locked.items()}
        recorded_at = utc_ms(now)
        rows = []
        for i in todo:
            d = drafts[i]
            head = heads.get(d.trace_code)
            if head is None:
                where = f"events[{i}].traceCode" if is_list else "traceCode"
                raise errors.UnknownReference(f"{where}: no batch has trace code {d.trace_code}", field=where)
            _check_status(locked[d.trace_code], d, i, is_list)
            data, private = _record(contents[i], recorded_at)
            prev = head[2]
            digest = chain.link(prev, data)
            head[1] += 1
            head[2] = digest
            rows.append(
                (
                    d.event_id,
                    head[0],
                    head[1],
                    prev,
                    digest,
                    data,
                    d.biz_step,
                    device.node_id,
                    device.id,
                    d.event_time,
                    now,
                    private,
                )
            )
            receipts[i] = Receipt(d.event_id, d.trace_code, head[1], digest, prev, recorded_at)
        await _check_corrections(conn, device, drafts, todo, is_list)
        await events_repo.insert_events(conn, rows)
        await batches_repo.update_heads(conn, [(h[0], h[1], h[2]) for h in heads.values()])
        corrections = [
            (
                drafts[i].content["errorDeclaration"]["declaredEventID"],
                drafts[i].event_id,
                drafts[i].content["errorDeclaration"]["reason"],
            )
            for i in todo
            if "errorDeclaration" in drafts[i].content
        ]
        await events_repo.insert_corrections(conn, corrections)
    return [r for r in receipts if r is not None]


def _check_status(head: Any, d: EventDraft, i: int, is_list: bool) -> None:
    """Selling or shipping a held or recalled batch is refused, unless it happened before the hold
    (a station syncing late): that sale is accepted, and the analyzer flags it for the regulator."""
    if head["status"] == "active" or d.biz_step not in SALE_STEPS:
        return
    since = head["status_since"]
    if since is not None and d.event_time < since:
        return
    where = f"events[{i}].traceCode" if is_list else "traceCode"
    what = "recalled" if head["status"] == "recalled" else "on hold after a failed inspection"
    raise errors.Conflict(
        f"{where}: batch {d.trace_code} is {what} since {utc_ms(since) if since else '?'}; "
        f"{d.biz_step.replace('_', ' ')} it is refused",
        field=where,
    )


async def _hold_failed(
    conn: Any, drafts: list[EventDraft], receipts: list[Receipt], failed: set[int], now: datetime
) -> None:
    """A failed inspection puts the batch and everything made from it on hold, in the same transaction."""
    from traceability.services.genealogy import hold_descendants  # genealogy builds on capture

    for i in sorted(failed):
        if receipts[i].replayed:
            continue
        head = (await batches_repo.lock_heads(conn, [drafts[i].trace_code]))[0]
        await hold_descendants(conn, head["id"], drafts[i].trace_code, drafts[i].event_id, now)


async def _check_corrections(
    conn: Any, device: Principal, drafts: list[EventDraft], todo: list[int], is_list: bool
) -> None:
    """A correction names an event of the same batch, recorded at the declaring device's own node."""
    declaring = [i for i in todo if "errorDeclaration" in drafts[i].content]
    if not declaring:
        return
    declared = {
        r["event_id"]: r
        for r in await events_repo.find_events(
            conn, [drafts[i].content["errorDeclaration"]["declaredEventID"] for i in declaring]
        )
    }
    for i in declaring:
        target = drafts[i].content["errorDeclaration"]["declaredEventID"]
        where = f"events[{i}].errorDeclaration.declaredEventID" if is_list else "errorDeclaration.declaredEventID"
        row = declared.get(target)
        if row is None or row["trace_code"] != drafts[i].trace_code:
            raise errors.UnknownReference(f"{where}: batch {drafts[i].trace_code} has no event {target}", field=where)
        if row["node_id"] != device.node_id:
            raise errors.Forbidden(f"{where}: only the node that recorded event {target} may declare it wrong")


# -- opening a batch -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    trace_code: str
    receipt: Receipt
    url: str

    def as_json(self) -> dict[str, Any]:
        return {
            "traceCode": self.trace_code,
            "url": self.url,
            "receipt": self.receipt.as_json(),
            "replayed": self.receipt.replayed,
        }


def _open_digest(draft: BatchDraft, device: Principal) -> bytes:
    request = dict(draft.content, product=draft.product, gtin=draft.gtin, device=device.id)
    return hashlib.sha256(canonical.encode(request)).digest()


async def open_batch(
    db: Database, principal: Principal, body: Any, public_url: str, after: AfterAppend | None = None
) -> Opened:
    """Issue a trace code for a new batch (or take a station's leased one) and record its commissioning event as seq 1.

    ``after`` runs inside the same transaction with the opening's receipt, as for :func:`capture_events`.
    """
    device = _require_device(principal)
    now = datetime.now(UTC)
    with fields():
        draft = parse_batch(body, now)
    digest = _open_digest(draft, device)
    for _attempt in range(ATTEMPTS):
        try:
            with translated():
                async with db.acquire() as conn, conn.transaction():
                    existing = await batches_repo.find_opened(conn, draft.event_id)
                    if existing is not None:
                        opened = _replayed_open(existing, digest, draft, public_url)
                    else:
                        opened = await _open(conn, device, draft, digest, now, public_url)
                    if after is not None:
                        await after(conn, [opened.receipt])
                    return opened
        except UniqueViolation as exc:
            if getattr(exc, "constraint_name", None) == "events_event_id_key":
                raise errors.EventConflict(
                    f"eventID: {draft.event_id} is already the id of another event", field="eventID"
                ) from None
            continue  # the same opening raced us (by event id or leased code); the next attempt finds it
    raise errors.StorageUnavailable("could not open the batch; retry")


async def _leased_code(conn: Any, device: Principal, code: str) -> str:
    """A code the station issued offline: it must lie in a block leased to this very station."""
    block_no = stations.block_of(code)
    lease = None if block_no is None else await stations_repo.find_block(conn, block_no)
    if lease is None or lease["device_id"] != device.id or lease["area_code"] != tracecode.area_of(code):
        raise errors.Forbidden(
            f"traceCode: {code} is not in a block of codes leased to this station", field="traceCode"
        )
    if await batches_repo.find_head(conn, code) is not None:
        raise errors.AlreadyExists(
            f"traceCode: {code} already names a batch opened by another event", field="traceCode"
        )
    return code


def _replayed_open(row: Any, digest: bytes, draft: BatchDraft, public_url: str) -> Opened:
    if row["open_digest"] != digest:
        raise errors.EventConflict(
            f"eventID: batch opening {draft.event_id} was already recorded with different content", field="eventID"
        )
    code = row["trace_code"]
    receipt = Receipt(
        draft.event_id, code, row["seq"], row["hash"], row["prev_hash"], utc_ms(row["recorded_at"]), replayed=True
    )
    return Opened(code, receipt, f"{public_url}/t/{code}")


async def _open(
    conn: Any, device: Principal, draft: BatchDraft, digest: bytes, now: datetime, public_url: str
) -> Opened:
    products = await registry_repo.find_products(conn, draft.product, draft.gtin)
    if len(products) != 1:
        field = "product" if draft.product else "gtin"
        if not products:
            raise errors.UnknownReference(f"{field}: no registered product {draft.product or draft.gtin}", field=field)
        raise errors.InvalidField("product and gtin name two different products", field="gtin")
    product = products[0]
    with fields():
        check_key_data(product["category"], draft.content)
    assert device.area_code is not None and device.node_id is not None
    if draft.trace_code is None:
        code = tracecode.make(device.area_code, await batches_repo.next_serial(conn))
    else:
        code = await _leased_code(conn, device, draft.trace_code)
    content = _stamp(draft.content, device)
    content["traceCode"] = code
    content["batch"] = dict(content["batch"], product=product["goods_code"])
    if product["gtin"]:
        content["batch"]["gtin"] = product["gtin"]
    event_time = draft.event_time or now
    content.setdefault("eventTime", utc_ms(event_time))
    content.setdefault("eventTimeZoneOffset", "+00:00" if draft.event_time is None else content["eventTimeZoneOffset"])
    _, receipt = await insert_opening(
        conn, device, draft, product["id"], code, content, "commissioning", event_time, now, digest
    )
    log.info("batch.opened", trace_code=code)
    return Opened(code, receipt, f"{public_url}/t/{code}")


async def insert_opening(
    conn: Any,
    device: Principal,
    draft: BatchDraft,
    product_id: int,
    code: str,
    content: dict[str, Any],
    biz_step: str,
    event_time: datetime,
    now: datetime,
    open_digest: bytes,
) -> tuple[int, Receipt]:
    """Write a new batch, its identifiers, its chain head and its first event (seq 1, linked to the genesis)."""
    assert device.node_id is not None
    recorded_at = utc_ms(now)
    data, private = _record(content, recorded_at)
    prev = chain.genesis(code)
    digest = chain.link(prev, data)
    batch = await batches_repo.insert_batch(
        conn,
        trace_code=code,
        product_id=product_id,
        node_id=device.node_id,
        device_id=device.id,
        open_event_id=draft.event_id,
        open_digest=open_digest,
        quantity=Decimal(draft.quantity["value"]),
        uom=draft.quantity["uom"],
        produced_on=draft.produced_on,
        expires_on=draft.expires_on,
    )
    try:
        await batches_repo.insert_identifiers(conn, batch["id"], [(i.scheme, i.value) for i in draft.identifiers])
    except UniqueViolation:
        raise errors.AlreadyExists(
            "identifiers: one of these identifiers already names another batch", field="identifiers"
        ) from None
    await batches_repo.insert_head(conn, batch["id"], 1, digest)
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
