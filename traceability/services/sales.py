"""Selling with a receipt code: one operation that cuts the receipt from its source batch.

:func:`sell` records, in one transaction, the ``retail_selling`` event on the source batch's chain
(naming the receipt code), the receipt batch's opening (naming its source), and the genealogy link
source → receipt with the quantity sold. So a receipt is never without its source, and a recall or
hold of the source (or of anything upstream) reaches every receipt cut from it: both are appended
to every descendant's chain. Whichever way the records arrive (the API, a station's signed upload,
a resend after a lost answer), the sale's ``eventID`` names one sale: a resend with the same content
gets the original receipts, with other content a 409.

Rules: the source must exist and be open for sale (a held or recalled batch is refused, unless the
sale happened before the hold or recall and a station is only now syncing it: then it is accepted,
the receipt inherits the status at once, and the analyzer flags the late sale); what all sales and
transformations take from a batch stays within its quantity (the category's tolerance, as for splits).

Stations that queued a sale before this operation existed upload it as an opening whose
``attributes.soldFrom`` names the source, then the sale event:
:func:`traceability.services.capture.open_batch` links such a receipt to its source when it is
opened, so their receipts lead back to the farm too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.domain import tracecode
from traceability.domain.access import Principal
from traceability.domain.batches import BatchDraft
from traceability.domain.events import before_opening
from traceability.domain.fields import utc_ms
from traceability.domain.sales import SaleDraft, parse_sale, receipt_event_id, sale_opening
from traceability.domain.supply import mass_balance
from traceability.ledger import canonical, chain, sealed
from traceability.logging import get_logger
from traceability.services.capture import leased_code
from traceability.services.recording import (
    AfterAppend,
    Claim,
    Receipt,
    append_status_events,
    check_operator,
    enforce_custody,
    insert_opening,
    record,
    require_device,
    stamp,
    status_event,
    write,
)
from traceability.services.validation import fields
from traceability.storage import batches_repo, events_repo, genealogy_repo, sales_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Sold:
    """A recorded sale: the receipt's trace code and page, and the receipts of both records."""

    trace_code: str
    source: str
    url: str
    receipt: Receipt
    """The receipt batch's opening (seq 1 of the receipt's chain)."""
    sale: Receipt
    """The ``retail_selling`` event on the source's chain."""

    @property
    def replayed(self) -> bool:
        return self.receipt.replayed

    def as_json(self) -> dict[str, Any]:
        return {
            "traceCode": self.trace_code,
            "source": self.source,
            "url": self.url,
            "receipt": self.receipt.as_json(),
            "sale": self.sale.as_json(),
            "replayed": self.replayed,
        }


async def sell(
    db: Database, principal: Principal, body: Any, public_url: str, after: AfterAppend | None = None
) -> Sold:
    """Record a sale with its receipt code (issued here, or leased to the station that sold).

    ``after`` runs inside the same transaction with both receipts (a station's signed upload is kept that way).
    """
    device = require_device(principal)
    now = datetime.now(UTC)
    with fields():
        draft = parse_sale(body, now)

    async def sell_or_replay(conn: Connection, retried: bool) -> Sold:
        done = await events_repo.find_events(conn, [draft.event_id, receipt_event_id(draft.event_id)])
        if done:
            sold = _replayed(done, draft, device, public_url)
        else:
            sold = await _sell(conn, device, draft, now, public_url)
        if after is not None:
            await after(conn, [sold.sale, sold.receipt])
        return sold

    return await write(db, sell_or_replay, "could not record the sale; retry")


def _check_status(head: Record, draft: SaleDraft) -> None:
    """A held or recalled source is refused, unless the sale happened before (a station syncing late)."""
    if head["status"] == "active":
        return
    since = head["status_since"]
    if since is not None and draft.event.event_time < since:
        return
    what = "recalled" if head["status"] == "recalled" else "on hold after a failed inspection"
    raise errors.Conflict(
        f"source: batch {draft.source} is {what} since {utc_ms(since) if since else '?'}; selling it is refused",
        field="source",
    )


async def _sell(conn: Connection, device: Principal, draft: SaleDraft, now: datetime, public_url: str) -> Sold:
    assert device.area_code is not None and device.node_id is not None
    locked = await batches_repo.lock_heads(conn, [draft.source])
    if not locked:
        raise errors.UnknownReference(f"source: no batch has trace code {draft.source}", field="source")
    head = locked[0]
    _check_status(head, draft)
    # Only a node that holds (or held) the source sells from it, and a stall's scale as its own stall.
    await check_operator(conn, device, [(draft.event.content.get("operator"), "")])
    await enforce_custody(
        conn, [Claim(head["id"], draft.source, device.node_id, draft.event.content, draft.event.event_time)]
    )
    if (problem := before_opening(draft.event.event_time, head["opened_at"])) is not None:
        raise errors.InvalidField(f"eventTime: {problem}", field="eventTime")
    source = await sales_repo.find_source(conn, head["id"])
    assert source is not None
    whole = {"value": format(source["quantity"].normalize(), "f"), "uom": source["uom"]}
    taken = await sales_repo.taken_from(conn, head["id"])
    if mass_balance([whole], [*taken, draft.quantity], source["category"]) is not None:
        raise errors.Conflict(
            f"quantity: {draft.quantity['value']} {draft.quantity['uom']} is more than is left of batch "
            f"{draft.source} ({whole['value']} {whole['uom']}, of which {len(taken)} sales and transformations "
            "have taken their part)",
            field="quantity",
        )
    if draft.receipt_code is None:
        code = tracecode.make(device.area_code, await batches_repo.next_serial(conn))
    else:
        code = await leased_code(conn, device, draft.receipt_code)
    produced = source["produced_on"].isoformat() if source["produced_on"] else None
    expires = source["expires_on"].isoformat() if source["expires_on"] else None
    opening = stamp(sale_opening(draft, code, source["goods_code"], produced, expires), device)
    receipt_draft = BatchDraft(
        receipt_event_id(draft.event_id),
        source["goods_code"],
        None,
        draft.quantity,
        source["produced_on"],
        source["expires_on"],
        [],
        draft.event.event_time,
        opening,
        code,
    )
    digest = hashlib.sha256(canonical.encode(opening)).digest()
    receipt_id, receipt = await insert_opening(
        conn,
        device,
        receipt_draft,
        source["product_id"],
        code,
        opening,
        "retail_selling",
        draft.event.event_time,
        now,
        digest,
    )
    content = _sale_content(draft, device, code)
    recorded_at = utc_ms(now)
    data, private = record(content, recorded_at)
    digest = chain.link(head["head_hash"], data)
    seq = head["seq"] + 1
    row = (
        draft.event_id,
        head["id"],
        seq,
        head["head_hash"],
        digest,
        data,
        "retail_selling",
        device.node_id,
        device.id,
        draft.event.event_time,
        now,
        private,
    )
    await events_repo.insert_events(conn, [row])
    await batches_repo.update_heads(conn, [(head["id"], seq, digest)])
    await genealogy_repo.insert_links(
        conn, draft.event_id, [(head["id"], receipt_id, Decimal(draft.quantity["value"]), draft.quantity["uom"])]
    )
    if head["status"] != "active":  # a late-synced sale: the receipt is what the source has become
        await _inherit_status(conn, receipt_id, head, draft, now)
    sale = Receipt(draft.event_id, draft.source, seq, digest, head["head_hash"], recorded_at)
    log.info("batch.sold", source=draft.source, trace_code=code)
    return Sold(code, draft.source, f"{public_url}/t/{code}", receipt, sale)


def _sale_content(draft: SaleDraft, device: Principal, code: str) -> dict[str, Any]:
    content = stamp(draft.event.content, device)
    content["attributes"] = {**content.get("attributes", {}), "receiptCode": code}
    return content


async def _inherit_status(conn: Connection, receipt_id: int, head: Record, draft: SaleDraft, now: datetime) -> None:
    """A receipt cut (before a recall or hold) from a batch now recalled or held gets the same status at once."""
    recalled = head["status"] == "recalled"
    detail = {"source": draft.source, "sale": draft.event_id}
    await append_status_events(
        conn,
        [receipt_id],
        head["status"],
        lambda h: status_event(
            "recall" if recalled else "hold", h, now, detail, "recalled" if recalled else "non_conformant"
        ),
        now,
    )


def _replayed(done: list[Record], draft: SaleDraft, device: Principal, public_url: str) -> Sold:
    """A resent sale: the original receipts if it is the same sale, else a 409."""
    by_id = {r["event_id"]: r for r in done}
    stored = by_id.get(draft.event_id)
    opening = by_id.get(receipt_event_id(draft.event_id))
    if stored is None or opening is None or stored["trace_code"] != draft.source:
        raise errors.EventConflict(f"eventID: {draft.event_id} is already the id of another event", field="eventID")
    previous = canonical.decode(stored["canonical"])
    previous.pop("recordedAt", None)
    if previous.pop("sealed", None) is not None and stored["private"] is not None:
        previous.update(canonical.decode(sealed.private_bytes(stored["private"])))
    code = opening["trace_code"]
    if previous != _sale_content(draft, device, code) or draft.receipt_code not in (None, code):
        raise errors.EventConflict(
            f"eventID: sale {draft.event_id} was already recorded with different content", field="eventID"
        )

    def receipt(r: Record) -> Receipt:
        return Receipt(
            r["event_id"], r["trace_code"], r["seq"], r["hash"], r["prev_hash"], utc_ms(r["recorded_at"]), True
        )

    return Sold(code, draft.source, f"{public_url}/t/{code}", receipt(opening), receipt(stored))
