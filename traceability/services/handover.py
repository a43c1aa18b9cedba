"""Cross-city handover: the voucher a shipment to another member ledger carries, and receiving with one.

The home ledger issues the voucher (:func:`issue_voucher`, to the shipper or a regulator) once the
shipment is in its transparency log. The receiving ledger (:func:`receive`) verifies it with the home
ledger's pinned key (:mod:`traceability.ledger.voucher`), refuses it while a split view of that ledger is
open (:mod:`traceability.services.witnessing`), checks that its checkpoint is one history with the
checkpoints of that ledger it holds (its witness's, other vouchers'; an RFC 9162 consistency proof fetched
from the home ledger when no kept checkpoint has its size; a proven contradiction is kept as a split view,
a home ledger out of reach leaves the receipt to be sent again), that the destination is one of its own
nodes and the code's home is the voucher's ledger; then, in the transaction that records the receipt, it
registers the batch (its chain here continues from the shipment's hash), gives the destination custody of
it as goods in transit, and keeps the checkpoint as the latest seen. The receipt itself goes the ordinary
capture path.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import orjson

from traceability import errors, i18n
from traceability.domain import custody
from traceability.domain.access import Principal
from traceability.domain.federation import Federation, Member
from traceability.ledger import canonical, chain, merkle, sealed
from traceability.ledger import checkpoint as notes
from traceability.ledger import voucher as vouchers
from traceability.logging import get_logger
from traceability.services import capture, federation, proofs, witnessing
from traceability.services.epcis_prepared import EventFailed
from traceability.services.recording import AfterAppend, require_device
from traceability.services.transparency import Log
from traceability.storage import batches_repo, custody_repo, events_repo, federation_repo, log_repo, witness_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)


def refuse(
    reason: str, detail: str = "", status: int = 422, retry_after: float | None = None, **values: str
) -> errors.VoucherRefused:
    """The refusal of a voucher: its reason as the code, the words in both languages, the detail after them."""
    message = i18n.say(f"voucher_{reason}", detail=detail, **values)
    log.info("federation.voucher_refused", reason=reason, origin=values.get("origin"), status=status)
    return errors.VoucherRefused(reason, f"voucher: {message}", status=status, retry_after=retry_after)


# -- the home ledger: issuing ---------------------------------------------------------------------


def _may_read(principal: Principal, node_id: int, node_enterprise: int) -> bool:
    if principal.role in ("regulator", "admin"):
        return True
    if principal.role == "device":
        return principal.node_id == node_id
    return principal.role == "enterprise" and principal.enterprise_id == node_enterprise


async def issue_voucher(
    db: Database, lg: Log, fed: Federation, principal: Principal, code: str, event_id: str
) -> dict[str, Any]:
    """The handover voucher of shipment ``event_id`` of batch ``code`` to a node of another member ledger.

    For the shipper (its node's devices, its enterprise) and regulators. A shipment still waiting for the
    log's sequencer is a :class:`~traceability.errors.NotYetLogged` (retry in a second)."""
    async with db.connection() as conn:
        found = await events_repo.find_events(conn, [event_id])
        row = found[0] if found and found[0]["trace_code"] == code else None
        if row is None:
            raise errors.NotFound(f"batch {code} has no event {event_id}")
        enterprise = await federation_repo.node_enterprise(conn, row["node_id"])
        if not _may_read(principal, row["node_id"], enterprise):
            raise errors.Forbidden("a handover voucher is for the shipper and regulators")
        content = canonical.decode(row["canonical"])
        if content.get("bizStep") != "shipping" or row["private"] is None:
            raise errors.Conflict(f"event {event_id} is not a shipment naming its destination")
        private = canonical.decode(sealed.private_bytes(row["private"]))
        dest = private.get("destination", {}).get("node") if isinstance(private.get("destination"), dict) else None
        if not isinstance(dest, str) or fed.elsewhere(dest) is None:
            raise errors.Conflict(
                f"shipment {event_id} goes to a node of this ledger ({dest or 'none named'}): it needs no voucher"
            )
        # A batch this ledger received with a voucher itself is passed on with that voucher inside this one.
        received = await federation_repo.foreign_voucher(conn, code)
        previous = orjson.loads(received["voucher"]) if received is not None else None
        if previous is not None and _hops(previous) >= vouchers.MAX_HOPS:
            raise errors.Conflict(f"batch {code} has passed through {vouchers.MAX_HOPS} ledgers with vouchers")
        if row["seq"] > vouchers.MAX_CHAIN:
            raise errors.Conflict(f"batch {code} has {row['seq']} events before this shipment; a voucher holds 256")
        rows = await log_repo.find_batch_proofs(conn, code, 0, row["seq"], merkle.TILE_WIDTH)
    try:
        proof = await proofs.prove_inclusion(db, lg, event_id)
    except errors.NotFound as exc:
        raise errors.NotYetLogged(f"shipment {event_id} is recorded and waiting to enter the log; retry") from exc
    assert rows and rows[0]["prev_hash"] == (received["last_hash"] if received is not None else chain.genesis(code))
    return vouchers.build(
        lg.origin,
        code,
        event_id,
        [r["canonical"] for r in rows],
        row["hash"],
        row["private"],
        proof["leaf_index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        proof["checkpoint"],
        previous,
    )


def _hops(voucher: dict[str, Any]) -> int:
    """Ledgers a voucher (as stored) has carried its batch through before this one."""
    inner = voucher.get("previous")
    return 1 + (_hops(inner) if isinstance(inner, dict) else 0)


def destination_of(v: dict[str, Any]) -> str | None:
    """The node a voucher's shipment names as its destination (from its seal opening)."""
    try:
        private = canonical.decode(sealed.private_bytes(bytes.fromhex(v["sealed"])))
    except (ValueError, KeyError, TypeError):
        return None
    party = private.get("destination")
    node = party.get("node") if isinstance(party, dict) else None
    return node if isinstance(node, str) else None


# -- the receiving ledger: verifying and receiving ------------------------------------------------


def check_voucher(fed: Federation, raw: Any) -> tuple[Member, vouchers.Verified]:
    """Verify a voucher on its own and against the federation: a member's, that member's code, its key."""
    origin = raw.get("origin") if isinstance(raw, dict) else None
    member = fed.member(origin) if isinstance(origin, str) else None
    if member is None or member.origin == fed.own:
        raise refuse("unknown_ledger", origin=str(origin)[:200])

    def key_of(origin: str) -> notes.Verifier | None:
        found = fed.member(origin)
        return federation.verifier(found) if found is not None else None

    try:
        verified = vouchers.verify(raw, federation.verifier(member), key_of)
    except vouchers.VoucherError as exc:
        raise refuse(exc.reason, exc.detail, origin=member.origin) from None
    home = fed.home_of(verified.trace_code)
    if home is None or home.origin != verified.home:
        raise refuse("wrong_home", code=verified.trace_code, origin=verified.home)
    hops = verified.hops
    for inner, outer in itertools.pairwise(hops):  # each ledger passed on what was shipped to it
        went = fed.home_of(inner.destination or "")
        if went is None or went.origin != outer.origin:
            raise refuse("wrong_destination", node=str(inner.destination))
    return member, verified


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


async def _register(
    conn: Connection, device: Principal | None, v: vouchers.Verified, raw: bytes, dest_node: int, now: datetime
) -> None:
    """The received batch: its row, its chain head at the shipment's hash, the destination's custody."""
    found = await federation_repo.find_foreign(conn, v.trace_code)
    if found is not None:
        if found["shipment_event_id"] == v.event_id:
            return  # this very shipment: a receipt resent, or a second receipt of the same goods
        raise refuse("already_received", code=v.trace_code)
    if await batches_repo.find_head(conn, v.trace_code) is not None:
        raise refuse("already_received", code=v.trace_code)
    batch: dict[str, Any] = v.opening["batch"] if isinstance(v.opening.get("batch"), dict) else {}
    goods = batch.get("product")
    product = await federation_repo.find_product(conn, goods) if isinstance(goods, str) else None
    if product is None:
        raise refuse("unknown_product", product=str(goods)[:64])
    quantity: dict[str, Any] = v.opening["quantity"] if isinstance(v.opening.get("quantity"), dict) else {}
    try:
        amount = Decimal(str(quantity.get("value", "0")))
    except InvalidOperation:
        amount = Decimal(0)
    if not amount.is_finite() or amount < 0:
        amount = Decimal(0)
    row = await batches_repo.insert_batch(
        conn,
        trace_code=v.trace_code,
        product_id=product["id"],
        node_id=dest_node,
        device_id=device.id if device is not None else None,
        open_event_id=v.event_id,
        open_digest=v.event_hash,
        quantity=amount,
        uom=str(quantity.get("uom") or "KGM")[:8],
        produced_on=_day(batch.get("producedOn")),
        expires_on=_day(batch.get("expiresOn")),
    )
    await batches_repo.insert_head(conn, row["id"], 0, v.event_hash)
    in_transit = custody.amount(v.shipment.get("quantity"))
    await custody_repo.write(conn, [(row["id"], dest_node, custody.DESTINATION, in_transit, now)])
    await federation_repo.insert_foreign(
        conn,
        row["id"],
        v.origin,
        v.trace_code,
        v.event_id,
        v.seq,
        v.event_hash,
        v.leaf_index,
        v.checkpoint.size,
        raw,
        now,
    )


Prepare = Callable[[Connection], Awaitable[None]]


def _expanded(raw: Any) -> Any:
    if isinstance(raw, str):  # read from the QR code that travels with the goods
        try:
            return vouchers.expand(raw[: 4 * vouchers.MAX_EXPANDED])
        except vouchers.VoucherError as exc:
            raise refuse(exc.reason, exc.detail) from None
    return raw


async def admit(db: Database, fed: Federation, principal: Principal, raw: Any) -> tuple[vouchers.Verified, Prepare]:
    """Verify a voucher for a receipt here (everything that needs no transaction, the member's consistency
    proof fetched if needed), and the work that registers its batch in the receipt's transaction."""
    voucher = _expanded(raw)
    member, v = check_voucher(fed, voucher)
    dest = v.destination
    async with db.connection() as conn:
        split = await witness_repo.open_split_view(conn, member.origin)
        node = await federation_repo.find_node(conn, dest) if dest else None
        seen = await witness_repo.latest_checkpoint(conn, member.origin)
        # Every checkpoint kept of a member was proved one history with the largest before it, so one of the
        # voucher's size decides without asking the member (vouchers carry the member's latest checkpoint,
        # which its witness here has often fetched already): the receipt needs no network then.
        same = await witness_repo.checkpoint_at(conn, member.origin, v.checkpoint.size) if seen else None
    if split is not None:
        raise refuse("split_view", f"#{split['id']}", 409, origin=member.origin)
    if node is None or fed.elsewhere(dest or "") is not None:
        raise refuse("wrong_destination", node=str(dest))
    if seen is not None:
        await _one_history(db, member, same or seen, v.checkpoint, voucher["checkpoint"])
    now = datetime.now(UTC)
    stored = orjson.dumps(voucher)
    device = principal if principal.role == "device" else None

    async def prepare(conn: Connection) -> None:
        await federation_repo.lock_member(conn, member.origin)
        latest = await witness_repo.latest_checkpoint(conn, member.origin)
        if (latest and (latest["size"], latest["root"])) != (seen and (seen["size"], seen["root"])):
            # The witness (or another voucher) kept a newer checkpoint meanwhile: prove it against that one.
            raise refuse("unverified", "a newer checkpoint was kept meanwhile; retry", 503, 1, origin=member.origin)
        if seen is None or v.checkpoint.size > seen["size"]:
            await federation_repo.insert_checkpoint(
                conn, member.origin, v.checkpoint.size, v.checkpoint.root, voucher["checkpoint"]
            )
        await _register(conn, device, v, stored, node["id"], now)

    return v, prepare


async def _one_history(db: Database, member: Member, seen: Record, cp: notes.Checkpoint, note: str) -> None:
    """The voucher's checkpoint and the largest one kept of its member are one history (the member's proof
    fetched when the sizes differ); proven otherwise, the evidence is kept and the member's vouchers refused
    from then on; a member that cannot be reached leaves the receipt to be sent again later (503)."""
    try:
        async with aiohttp.ClientSession(timeout=witnessing.FETCH_TIMEOUT) as http:
            await witnessing.one_history(http, member, seen["size"], seen["root"], cp)
    except witnessing.Unreachable as exc:
        log.info("federation.voucher_unverified", origin=member.origin, problem=str(exc)[:200])
        raise refuse("unverified", str(exc)[:200], 503, 60, origin=member.origin) from None
    except witnessing.Proven as exc:
        log.warning("federation.inconsistent", origin=member.origin, seen=seen["size"], size=cp.size)
        await witnessing.record_split_view(db, member.origin, seen["note"], note, exc, "voucher")
        raise refuse("inconsistent", exc.detail, 409, origin=member.origin) from None


async def receive(
    db: Database,
    fed: Federation,
    principal: Principal,
    body: Any,
    max_events: int,
    after: AfterAppend | None = None,
) -> dict[str, Any]:
    """Record the receipt of goods shipped from another member ledger, with the shipment's voucher.

    ``body``: ``{"voucher": {...}, "event": {...}}``, the event as ``POST /api/v1/events`` takes it
    (``bizStep`` receiving; ``traceCode`` the voucher's, or left out). ``after`` as for
    :func:`~traceability.services.capture.capture_events` (a station's signed upload is kept that way)."""
    device = require_device(principal)
    if not isinstance(body, dict) or set(body) != {"voucher", "event"} or not isinstance(body["event"], dict):
        raise errors.InvalidField('the body is {"voucher": {...}, "event": {...}}', field="event")
    v, prepare = await admit(db, fed, device, body["voucher"])
    event = dict(body["event"])
    event.setdefault("traceCode", v.trace_code)
    if event["traceCode"] != v.trace_code or event.get("bizStep") != "receiving":
        raise errors.InvalidField(f"event: a receiving event of batch {v.trace_code}", field="event.bizStep")
    receipts, _ = await capture.capture_events(db, device, event, max_events, after=after, before=prepare)
    log.info("federation.received", origin=v.origin, trace_code=v.trace_code, size=v.checkpoint.size)
    return {
        **receipts[0].as_json(),
        "origin": v.origin,
        "shipment": v.event_id,
        "shipmentHash": v.event_hash.hex(),
        "checkpointSize": v.checkpoint.size,
    }


VOUCHER_KEY = re.compile(r"(?:^|[:/#])handoverVoucher$")
"""An EPCIS extension field holding a handover voucher (any namespace prefix): JSON, or the QR code's line."""


async def epcis_handovers(
    db: Database, fed: Federation, principal: Principal, prepared: Sequence[Any]
) -> Prepare | None:
    """The registrations of the batches that an EPCIS document's receiving events received with a voucher.

    Each voucher is verified as for ``POST /api/v1/handovers``; the event must be a receiving event naming
    the batch (by its home ledger's ``/t/{code}`` URL). A refusal fails that event (``EventFailed``)."""
    works = []
    for p in prepared:
        key = next((k for k in p.event if k.endswith("handoverVoucher") and VOUCHER_KEY.search(k)), None)
        if key is None:
            continue
        try:
            if p.facets.biz_step != "receiving":
                raise errors.InvalidField(f"{p.where(key)}: a voucher goes with a receiving event", field=p.where(key))
            v, work = await admit(db, fed, principal, p.event[key])
            if not any(ident.trace_code == v.trace_code for _, ident in p.idents):
                where = p.where("epcList")
                raise errors.InvalidField(f"{where}: the event does not name batch {v.trace_code}", field=where)
        except errors.TraceError as exc:
            raise EventFailed(p.index, exc) from None
        works.append(work)
    if not works:
        return None

    async def register(conn: Connection) -> None:
        for work in works:
            await work(conn)

    return register
