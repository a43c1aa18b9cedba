"""Writing checked EPCIS events onto the batches' hash chains, inside the capture transaction.

:class:`~traceability.services.epcis_places.Places` settles where each event happened (a node, by
GLN) and whether the credential may record there. :class:`Writer` resolves what each event names to
batches (creating those the ledger has not seen), builds the anchor and reference records
(:mod:`traceability.epcis.records`), and appends them exactly as native capture does: chain heads
locked in batch-id order, held or recalled batches refusing sales and shipments, commercial details
sealed, the records queued for the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from traceability import errors
from traceability.domain import tracecode
from traceability.domain.access import Principal
from traceability.domain.fields import utc_ms
from traceability.domain.supply import STATUS_STEPS, closes_recall
from traceability.epcis import identifiers, records
from traceability.epcis.events import EPC_ROLES, What
from traceability.ledger import chain
from traceability.services import farm
from traceability.services.epcis_prepared import EventFailed, Outcome, Prepared
from traceability.services.recording import Claim, enforce_custody, record
from traceability.storage import batches_repo, epcis_repo, events_repo
from traceability.storage.database import Connection

if TYPE_CHECKING:
    from traceability.services.epcis_places import Places


def _failed(p: Prepared, error: errors.TraceError) -> errors.TraceError:
    return EventFailed(p.index, error)


@dataclass(slots=True)
class _Batch:
    id: int
    trace_code: str
    opening: dict[str, Any] | None = None
    opened_by: int | None = None  # index of the event that creates it


class Writer:
    """Appends prepared events (new ones only: replays were answered before) in one transaction."""

    def __init__(
        self, conn: Connection, principal: Principal, now: datetime, places: Places, context: str | None
    ) -> None:
        self.conn = conn
        self.principal = principal
        self.now = now
        self.recorded_at = utc_ms(now)
        self.places = places
        self.context = context
        self.opened: list[tuple[int, int, datetime]] = []
        """Batches this capture opens, (batch, node, time): held where their first event happened."""
        self._peers: dict[int, tuple[int, ...]] = {}
        """The credential's other nodes, by the node an event happened at."""

    async def append(self, items: list[tuple[Prepared, str, Any, list[Any]]]) -> list[Outcome]:
        """``items``: (event, id suffix, node, earlier records of its eventID) for each event to record."""
        batches, heads = await self._batches(items)
        rest = sorted({b.trace_code for b in batches.values()} - heads.keys())
        heads.update({r["trace_code"]: r for r in await batches_repo.lock_heads(self.conn, rest)} if rest else {})
        state = {code: [r["id"], r["seq"], r["head_hash"]] for code, r in heads.items()}
        rows: list[tuple[Any, ...]] = []
        index: list[epcis_repo.IndexRow] = []
        what: list[tuple[int, str, str]] = []
        links: list[tuple[int, int, str, Any, str | None]] = []
        corrections: list[tuple[str, str, str]] = []
        outcomes = []
        claims: list[Claim] = []
        claimed_by: list[Prepared] = []
        device_id = self.principal.id if self.principal.role == "device" else None
        for p, suffix, node, earlier in items:
            targets = self._targets(p, batches)
            anchor_id = p.ledger_id if not suffix and p.ledger_id else records.ledger_event_id(p.uri, suffix)
            destination = self.places_party(p, "destinations")
            source = self.places_party(p, "sources")
            receipts = []
            anchor_bytes = b""
            for n, target in enumerate(targets):
                record_id = anchor_id if n == 0 else records.ledger_event_id(p.uri, f"{suffix}#{target.trace_code}")
                if n == 0:
                    content = records.anchor_content(
                        p.facets, record_id, target, p.uri, p.public_text, self.context, p.computed, p.original
                    )
                    hidden = dict(p.sealed or {}) | (destination or {})
                else:
                    content = records.reference_content(
                        p.facets, record_id, target, p.uri, targets[0].trace_code, anchor_bytes
                    )
                    hidden = dict(destination or {})
                if hidden:
                    content["destination"] = hidden
                if source:
                    content["source"] = source
                self.stamp(content, node)
                claims.append(self._claim(p, target, node, destination))  # batches it opens too: held there
                claimed_by.append(p)
                data, private = record(content, self.recorded_at)
                if n == 0:
                    anchor_bytes = data
                head = state[target.trace_code]
                self._check_status(p, heads[target.trace_code])
                prev = head[2]
                digest = chain.link(prev, data)
                head[1] += 1
                head[2] = digest
                rows.append(
                    (
                        record_id,
                        head[0],
                        head[1],
                        prev,
                        digest,
                        data,
                        p.facets.biz_step or "",
                        node["id"],
                        device_id,
                        p.facets.event_time,
                        self.now,
                        private,
                    )
                )
                receipts.append((target.trace_code, head[1], digest))
                f = p.facets
                index.append(
                    (
                        record_id,
                        anchor_id,
                        "a" if n == 0 else "r",
                        p.uri,
                        f.event_type,
                        sorted(set(target.roles)),
                        f.action,
                        f.disposition,
                        identifiers.location_key(f.read_point) if f.read_point else None,
                        identifiers.location_key(f.biz_location) if f.biz_location else None,
                        f.error.declaration_time if f.error else None,
                        f.error.reason if f.error else None,
                        p.digest,
                    )
                )
                if n > 0:  # the anchor record's own batch and roles are in its index row
                    what.extend((target.batch_id, anchor_id, role) for role in sorted(set(target.roles)))
            links.extend(self._links(p, targets, anchor_id))
            if suffix == records.DECLARATION and earlier:
                reason = p.facets.error.reason if p.facets.error and p.facets.error.reason else "unspecified"
                corrections.append((earlier[0]["event_id"], anchor_id, reason))
            code, seq, digest = receipts[0]
            outcomes.append(
                Outcome(
                    p.uri,
                    code,
                    seq,
                    digest,
                    self.recorded_at,
                    False,
                    tuple(t.trace_code for t in targets),
                    tuple(t.trace_code for t in targets if t.opening is not None),
                )
            )
        try:
            await enforce_custody(self.conn, claims, self.opened)
        except errors.CustodyRefused as exc:
            raise _failed(claimed_by[exc.index or 0], exc) from None
        await events_repo.insert_events(self.conn, rows)
        await batches_repo.update_heads(self.conn, [(h[0], h[1], h[2]) for h in state.values()])
        await epcis_repo.insert_index(self.conn, index)
        await epcis_repo.insert_what(self.conn, what)
        await events_repo.insert_corrections(self.conn, corrections)
        await epcis_repo.insert_links(self.conn, links)
        return outcomes

    def _claim(self, p: Prepared, target: records.Target, node: Any, destination: dict[str, str] | None) -> Claim:
        """What custody checks of one record; an enterprise's own systems speak for all its nodes."""
        f, peers = p.facets, self._peers.get(node["id"])
        if peers is None:
            peers = self._peers[node["id"]] = tuple(n["id"] for n in self.places.own if n["id"] != node["id"])
        content = {"bizStep": f.biz_step or "", "disposition": f.disposition, "quantity": target.quantity}
        content |= {"destination": destination} if destination else {}
        return Claim(target.batch_id, target.trace_code, node["id"], content, f.event_time, p.where(""), peers)

    def places_party(self, p: Prepared, which: str) -> dict[str, str] | None:
        pairs = p.facets.destinations if which == "destinations" else p.facets.sources
        return self.places.party(pairs) if pairs else None

    def stamp(self, content: dict[str, Any], node: Any) -> None:
        content["node"] = node["code"]
        if self.principal.role == "device":
            content["device"] = self.principal.id
            if self.principal.operator_code is not None:
                content["operator"] = self.principal.operator_code
        else:
            content["credential"] = self.principal.label

    def _check_status(self, p: Prepared, head: Any) -> None:
        step = p.facets.biz_step
        if head["status"] == "active" or step not in STATUS_STEPS:
            return
        since = head["status_since"]
        if (since is not None and p.facets.event_time < since) or closes_recall(step, p.facets.disposition):
            return  # before the hold, or sending it back (which stays possible)
        what = "recalled" if head["status"] == "recalled" else "on hold after a failed inspection"
        where, code = p.where("bizStep"), "batch_recalled" if head["status"] == "recalled" else "batch_on_hold"
        message = f"{where}: batch {head['trace_code']} is {what}; {step} it is refused"
        error = errors.BatchUnavailable(code, message, field=where) if step == "receiving" else None
        raise _failed(p, error or errors.Conflict(message, field=where))

    def _targets(self, p: Prepared, batches: dict[tuple[str, str], _Batch]) -> list[records.Target]:
        if len(p.idents) == 1:  # the common case: one batch, in the one role it is named in
            w, ident = p.idents[0]
            b = batches[_key(ident)]
            opening = b.opening if b.opened_by == p.index else None
            return [records.Target(b.trace_code, b.id, [w.role], records.quantity_of(w), opening)]
        named = [(w, batches[_key(ident)]) for w, ident in p.idents]
        order = records.anchor_order([(w, b.id) for w, b in named])
        by_id: dict[int, records.Target] = {}
        for w, b in named:
            target = by_id.get(b.id)
            if target is None:
                opening = b.opening if b.opened_by == p.index else None
                target = by_id[b.id] = records.Target(b.trace_code, b.id, opening=opening)
            target.roles.append(w.role)
            if target.quantity is None:
                target.quantity = records.quantity_of(w)
        return [by_id[i] for i in order]

    def _links(
        self, p: Prepared, targets: list[records.Target], anchor_id: str
    ) -> list[tuple[int, int, str, Any, str | None]]:
        if p.facets.event_type != "TransformationEvent":
            return []
        inputs = [t for t in targets if {"inputEPCList", "inputQuantityList"} & set(t.roles)]
        outputs = [t for t in targets if {"outputEPCList", "outputQuantityList"} & set(t.roles)]
        out = []
        for i in inputs:
            for o in outputs:
                q = o.quantity or {}
                out.append(
                    (i.batch_id, o.batch_id, anchor_id, Decimal(q["value"]) if "value" in q else None, q.get("uom"))
                )
        return out

    async def _batches(
        self, items: list[tuple[Prepared, str, Any, list[Any]]]
    ) -> tuple[dict[tuple[str, str], _Batch], dict[str, Any]]:
        """Every identifier the events name, resolved to a batch; unseen ones become batches at the event's node.

        Batches named by trace code are found by locking their chain heads (returned too): one round trip.
        """
        wanted: dict[tuple[str, str], tuple[Prepared, identifiers.Identifier, Any, What, str]] = {}
        for p, suffix, node, _ in items:
            for w, ident in p.idents:
                wanted.setdefault(_key(ident), (p, ident, node, w, suffix))
        codes = [ident.trace_code for _, ident, _, _, _ in wanted.values() if ident.trace_code]
        heads = (
            {r["trace_code"]: r for r in await batches_repo.lock_heads(self.conn, sorted(set(codes)))} if codes else {}
        )
        by_code = heads
        keys = [k for k in wanted if k[0] != "trace"]
        by_key = await epcis_repo.batches_by_key(self.conn, keys)
        out: dict[tuple[str, str], _Batch] = {}
        missing = []
        for key, (p, ident, node, w, suffix) in wanted.items():
            row = by_code.get(ident.trace_code) if ident.trace_code else None
            row = row or by_key.get(key)
            if row is not None:
                out[key] = _Batch(row["id"], row["trace_code"])
            elif ident.scheme == "trace":
                raise _failed(
                    p,
                    errors.UnknownReference(
                        f"{p.where(w.path)}: no batch has trace code {ident.trace_code}", field=p.where(w.path)
                    ),
                )
            else:
                missing.append((key, p, ident, node, w, suffix))
        if missing:
            out.update(await self._open(missing))
        return out, heads

    async def _open(self, missing: list[Any]) -> dict[tuple[str, str], _Batch]:
        await farm.check_epcis_openings(self.conn, [(m[3], m[1]) for m in missing])
        products = await epcis_repo.products_for(self.conn, [records.product_for(m[2]) for m in missing])
        serials = await epcis_repo.next_serials(self.conn, len(missing))
        made: dict[tuple[str, str], _Batch] = {}
        opened: list[tuple[str, int, datetime]] = []
        rows = []
        for (key, p, ident, node, w, suffix), serial in zip(missing, serials, strict=True):
            goods_code, gtin, _, _ = records.product_for(ident)
            product = products[gtin or goods_code]
            code = tracecode.make(node["area_code"], serial)
            amount, uom = _amount(records.quantity_of(w), ident.is_instance)
            opening: dict[str, Any] = {
                "openedBy": "epcis",
                "epc": ident.uri,
                "identifiers": [{"scheme": ident.scheme, "value": ident.value}],
                "product": product["goods_code"],
            }
            if gtin:
                opening["gtin"] = gtin
            anchor_key = _key(_anchor_ident(p))
            first = records.ledger_event_id(p.uri, suffix if key == anchor_key else f"{suffix}#{code}")
            device_id = self.principal.id if self.principal.role == "device" else None
            digest = hashlib.sha256(f"epcis\x00{p.uri}\x00{code}".encode()).digest()
            rows.append((code, product["id"], node["id"], device_id, first, digest, amount, uom, key))
            made[key] = _Batch(0, code, opening, p.index)
            opened.append((code, node["id"], p.facets.event_time))
        ids = await epcis_repo.insert_batches(self.conn, [r[:8] for r in rows])
        for batch in made.values():
            batch.id = ids[batch.trace_code]
        self.opened += [(ids[code], node_id, when) for code, node_id, when in opened]
        await epcis_repo.insert_identifiers_and_heads(
            self.conn,
            [(ids[r[0]], r[8][0], r[8][1]) for r in rows],
            [(ids[r[0]], chain.genesis(r[0])) for r in rows],
        )
        return made


def _anchor_ident(p: Prepared) -> identifiers.Identifier:
    rank = {role: i for i, role in enumerate(EPC_ROLES)}
    return min(enumerate(p.idents), key=lambda t: (rank.get(t[1][0].role, len(rank)), t[0]))[1][1]


def _key(ident: identifiers.Identifier) -> tuple[str, str]:
    return ("trace", ident.trace_code) if ident.scheme == "trace" and ident.trace_code else ident.key


def _amount(quantity: dict[str, str] | None, instance: bool) -> tuple[Decimal, str]:
    if instance:
        return Decimal(1), "H87"
    if quantity is None:
        return Decimal(0), "EA"
    return Decimal(quantity["value"]), quantity.get("uom") or "EA"
