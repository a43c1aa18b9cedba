"""Recording what happened: opening batches and capturing events onto their hash chains.

A capture request is all-or-nothing: every event is validated first, then all are written in
one transaction, or none is. Replays (an event id already recorded with the same content) are
not written again and get their original receipt; the same id with other content is a 409 for
the whole request. Row locks on the chain heads, taken in batch-id order, serialise appends to
one batch without a global lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.domain import custody, stations, tracecode
from traceability.domain.access import Principal
from traceability.domain.batches import BatchDraft, parse_batch
from traceability.domain.events import EventDraft, before_opening, parse_event_list
from traceability.domain.fields import utc_ms
from traceability.domain.supply import STATUS_STEPS, check_inspection, check_key_data, closes_recall
from traceability.ledger import canonical, chain, sealed
from traceability.logging import get_logger
from traceability.services import farm
from traceability.services.appends import SingleAppends, append_now, append_together
from traceability.services.recording import (
    AfterAppend,
    Claim,
    Receipt,
    check_operator,
    enforce_custody,
    hold_descendants,
    insert_opening,
    open_digest,
    opening_content,
    record,
    refuse_other_node,
    require_device,
    stamp,
    stamped_record,
    write,
)
from traceability.services.validation import fields
from traceability.storage import batches_repo, events_repo, genealogy_repo, registry_repo, stations_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)


def _same(stored: bytes, private: bytes | None, content: dict[str, Any]) -> bool:
    """Whether a stored event has the content of a resent one (recorded time and seal aside)."""
    previous = canonical.decode(stored)
    previous.pop("recordedAt", None)
    if previous.pop("sealed", None) is not None and private is not None:
        previous.update(canonical.decode(sealed.private_bytes(private)))
    return previous == content


# -- capture -------------------------------------------------------------------------------------


async def capture_events(
    db: Database,
    principal: Principal,
    body: Any,
    max_events: int,
    after: AfterAppend | None = None,
    before: Callable[[Connection], Awaitable[None]] | None = None,
    appends: SingleAppends | None = None,
) -> tuple[list[Receipt], bool]:
    """Validate and record one event or a list. Returns receipts in request order, and whether a list was sent.

    ``after`` runs inside the same transaction once the events are written (a station's signed upload
    is stored that way), so it commits or rolls back with them; ``before`` runs in it first (a batch
    received from another ledger is registered that way). ``appends`` writes a single event together
    with the others arriving at the same time (:mod:`traceability.services.appends`).
    """
    device = require_device(principal)
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
            raise refuse_other_node(f"events[{i}]." if is_list else "", device.node_code, d.node_code)
    check_replays = False
    if (
        not failed
        and after is None
        and before is None
        and all(_plain(d, device) for d in drafts)
        and len({d.trace_code for d in drafts}) == len(drafts)
    ):
        quick = await _append_plain(db, device, drafts, now, appends)
        if quick is not None:
            log.info("events.captured", count=len(quick), replayed=0)
            return quick, is_list
        check_replays = True  # a replay, an unknown batch or a refused sale: the general path says which
    contents = [stamp(d.content, device) for d in drafts]

    async def append(conn: Connection, retried: bool) -> list[Receipt]:
        if before is not None:
            await before(conn)
        # A retry follows a collision: someone may have recorded one of these event ids since we looked.
        receipts = await _append(conn, device, drafts, contents, now, check_replays or retried, is_list)
        await _hold_failed(conn, drafts, receipts, failed, now)
        if after is not None:
            await after(conn, receipts)
        return receipts

    receipts = await write(db, append, "the ledger is too busy to take these events now; retry")
    new = sum(1 for r in receipts if not r.replayed)
    log.info("events.captured", count=new, replayed=len(receipts) - new)
    return receipts, is_list


def _plain(d: EventDraft, device: Principal) -> bool:
    """Whether an event may take the one-statement path (``events_repo.append_single``): no correction, custody
    left as it is or a receipt (``custody.single_statement``), and no operator but the device's own."""
    content = d.content
    return (
        "errorDeclaration" not in content
        and custody.single_statement(d.biz_step, content.get("disposition"))
        and content.get("operator") in (None, device.operator_code)
    )


async def _append_plain(
    db: Database,
    device: Principal,
    drafts: list[EventDraft],
    now: datetime,
    appends: SingleAppends | None,
) -> list[Receipt] | None:
    """The common case, new events each on a batch of its own, in one autocommitted statement: a single event
    shared with the others arriving at the same time, a request's events all or none. None when the general
    path must decide."""
    node_id = device.node_id
    assert node_id is not None  # require_device admitted only devices bound to a node
    recorded_at = utc_ms(now)
    singles = []
    for d in drafts:
        data, private = stamped_record(d.content, device, recorded_at)
        step = d.biz_step
        received = custody.amount(d.content.get("quantity")) if step == "receiving" else None
        singles.append(
            events_repo.Single(
                d.trace_code,
                d.event_id,
                data,
                step,
                node_id,
                device.id,
                d.event_time,
                now,
                private,
                received,
            )
        )
    try:
        if len(singles) > 1:
            rows = await append_together(db, singles)
        elif appends is not None:
            rows = {singles[0].event_id: row} if (row := await appends.append(singles[0])) is not None else {}
        else:
            rows = await append_now(db, singles)
    except errors.Contention:  # a collision, or an event id already taken: the general path decides
        return None
    if len(rows) != len(singles):
        return None
    receipts = []
    for d in drafts:
        row = rows[d.event_id]
        receipts.append(Receipt(d.event_id, d.trace_code, row["seq"], row["hash"], row["prev_hash"], recorded_at))
    return receipts


async def _append(
    conn: Connection,
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
            if (problem := before_opening(d.event_time, locked[d.trace_code]["opened_at"])) is not None:
                where = f"events[{i}].eventTime" if is_list else "eventTime"
                raise errors.InvalidField(f"{where}: {problem}", field=where)
            data, private = record(contents[i], recorded_at)
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
        await check_operator(
            conn, device, [(drafts[i].content.get("operator"), f"events[{i}]." if is_list else "") for i in todo]
        )
        assert device.node_id is not None
        await enforce_custody(
            conn,
            [
                Claim(
                    heads[drafts[i].trace_code][0],
                    drafts[i].trace_code,
                    device.node_id,
                    drafts[i].content,
                    drafts[i].event_time,
                    f"events[{i}]." if is_list else "",
                )
                for i in todo
            ],
        )
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


def _check_status(head: Record, d: EventDraft, i: int, is_list: bool) -> None:
    """Selling, shipping or receiving a held or recalled batch is refused, unless it happened before the hold
    (a station syncing late): that event is accepted, and the analyzer flags it for the regulator."""
    if head["status"] == "active" or d.biz_step not in STATUS_STEPS:
        return
    if closes_recall(d.biz_step, d.content.get("disposition")):
        return  # sending it back stays possible
    since = head["status_since"]
    if since is not None and d.event_time < since:
        return
    where = f"events[{i}].traceCode" if is_list else "traceCode"
    what = "recalled" if head["status"] == "recalled" else "on hold after a failed inspection"
    if d.biz_step == "receiving":
        raise errors.BatchUnavailable(
            "batch_recalled" if head["status"] == "recalled" else "batch_on_hold",
            f"{where}: batch {d.trace_code} is {what} since {utc_ms(since) if since else '?'}; "
            "receiving it is refused: send it back or hand it to the regulator",
            field=where,
        )
    raise errors.Conflict(
        f"{where}: batch {d.trace_code} is {what} since {utc_ms(since) if since else '?'}; "
        f"{d.biz_step.replace('_', ' ')} it is refused",
        field=where,
    )


async def _hold_failed(
    conn: Connection, drafts: list[EventDraft], receipts: list[Receipt], failed: set[int], now: datetime
) -> None:
    """A failed inspection puts the batch and everything made from it on hold, in the same transaction."""
    for i in sorted(failed):
        if receipts[i].replayed:
            continue
        head = (await batches_repo.lock_heads(conn, [drafts[i].trace_code]))[0]
        await hold_descendants(conn, head["id"], drafts[i].trace_code, drafts[i].event_id, now)


async def _check_corrections(
    conn: Connection, device: Principal, drafts: list[EventDraft], todo: list[int], is_list: bool
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


async def open_batch(
    db: Database, principal: Principal, body: Any, public_url: str, after: AfterAppend | None = None
) -> Opened:
    """Issue a trace code for a new batch (or take a station's leased one) and record its commissioning event as seq 1.

    ``after`` runs inside the same transaction with the opening's receipt, as for :func:`capture_events`.
    """
    device = require_device(principal)
    now = datetime.now(UTC)
    with fields():
        draft = parse_batch(body, now)
    digest = open_digest(draft, device)

    async def open_or_replay(conn: Connection, retried: bool) -> Opened:
        existing = await batches_repo.find_opened(conn, draft.event_id)
        if existing is not None:
            opened = _replayed_open(existing, digest, draft, public_url)
        else:
            # A retry follows a collision: the same opening raced us (found above), or the event id
            # already names another event.
            if retried and await events_repo.find_events(conn, [draft.event_id]):
                raise errors.EventConflict(
                    f"eventID: {draft.event_id} is already the id of another event", field="eventID"
                )
            opened = await _open(conn, device, draft, digest, now, public_url)
        if after is not None:
            await after(conn, [opened.receipt])
        return opened

    return await write(db, open_or_replay, "could not open the batch; retry")


async def leased_code(conn: Connection, device: Principal, code: str) -> str:
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


def _replayed_open(row: Record, digest: bytes, draft: BatchDraft, public_url: str) -> Opened:
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
    conn: Connection, device: Principal, draft: BatchDraft, digest: bytes, now: datetime, public_url: str
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
    rule = await farm.check_opening(conn, device, draft, product["category"], draft.event_time or now)
    assert device.area_code is not None and device.node_id is not None
    if draft.trace_code is None:
        code = tracecode.make(device.area_code, await batches_repo.next_serial(conn))
    else:
        code = await leased_code(conn, device, draft.trace_code)
    content, event_time = opening_content(draft, device, code, product["goods_code"], product["gtin"], now)
    if rule is not None:
        content["production"] = rule.production
    batch_id, receipt = await insert_opening(
        conn, device, draft, product["id"], code, content, "commissioning", event_time, now, digest
    )
    await farm.after_opening(conn, rule, batch_id, draft.event_id, code)
    await _link_queued_receipt(conn, device, batch_id, content, event_time)
    log.info("batch.opened", trace_code=code)
    return Opened(code, receipt, f"{public_url}/t/{code}")


async def _link_queued_receipt(
    conn: Connection, device: Principal, receipt_id: int, content: dict[str, Any], when: datetime
) -> None:
    """Link a receipt a station queued before sales were one operation (an opening naming
    ``attributes.soldFrom``, then a sale event) to its source, so it leads back to the farm too; only a
    node that holds (or held) the source cuts a receipt from it (custody)."""
    source = (content.get("attributes") or {}).get("soldFrom")
    if not isinstance(source, str) or not tracecode.is_valid(source):
        return
    source = tracecode.normalize(source)
    locked = await batches_repo.lock_heads(conn, [source])
    parent = locked[0]["id"] if locked else None
    if parent is None or parent == receipt_id:
        return
    assert device.node_id is not None
    sale = {"bizStep": "retail_selling", "quantity": content["quantity"]}
    await enforce_custody(conn, [Claim(parent, source, device.node_id, sale, when)])
    q = content["quantity"]
    await genealogy_repo.insert_links(conn, content["eventID"], [(parent, receipt_id, Decimal(q["value"]), q["uom"])])
