"""The demo's scale path: millions of events through the same validation, stamping, sealing and chaining.

Going through the services one request at a time manages a few thousand events a second; a scale test
wants ten million. This path takes whole batch lives from :mod:`traceability.demo.lives` and builds
every record with the code the API runs: ``parse_batch`` and ``parse_event`` to validate and
normalise, ``check_key_data`` and ``check_inspection``, and the write path of
:mod:`traceability.services.recording` (``opening_content``, ``stamp``, ``record``, ``open_digest``)
for the content, the canonical bytes and the sealed commercial details, ``chain`` for the hashes.
Custody is checked with the same rules (:mod:`traceability.domain.custody`, the operator and
destination checks of the write path) in memory, since every batch of a chunk is new, and the
custody rows are written with the chunk. :func:`write` puts a built chunk in the ledger in one
transaction with COPY; the events' statement trigger queues every one for the transparency log, so a
running server's sequencer integrates them. :mod:`traceability.demo.scale` cuts a load into parts
and spreads generating, building and writing them over processes.

tests/test_demo.py checks that a bulk opening and an API opening of the same body give the same
canonical content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.demo.city import City
from traceability.demo.lives import Life
from traceability.domain import custody, tracecode
from traceability.domain.batches import parse_batch
from traceability.domain.events import parse_event
from traceability.domain.fields import utc_ms
from traceability.domain.supply import check_inspection, check_key_data
from traceability.ledger import chain
from traceability.services.recording import open_digest, opening_content, record, refused, stamp
from traceability.services.validation import fields
from traceability.storage import bulk_repo, custody_repo, events_repo
from traceability.storage.database import Connection


@dataclass(slots=True)
class Chunk:
    batches: list[tuple[Any, ...]] = field(default_factory=list)
    identifiers: list[tuple[str, str, int]] = field(default_factory=list)
    heads: list[tuple[int, int, bytes, datetime]] = field(default_factory=list)  # with the opening time
    events: list[tuple[Any, ...]] = field(default_factory=list)
    custody: list[tuple[int, int, str, Decimal, datetime]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Registered:
    """What custody needs to know of the city: node ids by code, node types by id, each node's operators."""

    node_ids: dict[str, int]
    node_types: dict[int, str]
    operators: set[tuple[int, str]]

    @classmethod
    def of(cls, city: City) -> Registered:
        nodes = [n for n in city.nodes.values() if n.device is not None]
        return cls(
            {n.code: n.scanner.node_id for n in nodes if n.scanner.node_id is not None},
            {n.scanner.node_id: n.node_type for n in nodes if n.scanner.node_id is not None},
            {(n.scanner.node_id, s.code) for n in nodes for s in n.stalls if n.scanner.node_id is not None},
        )


def _custody(
    held: custody.Relations,
    known: Registered,
    batch_id: int,
    code: str,
    who: Any,
    content: dict[str, Any],
    when: datetime,
) -> None:
    """The write path's custody checks, in memory: operator, destination, holder (a 403 on a broken rule)."""
    claimed = content.get("operator")
    node = who.node_id
    if claimed not in (None, who.operator_code):
        refusal = custody.operator_refusal(who.operator_code, claimed, (node, claimed) in known.operators)
        if refusal is not None:
            raise refused(refusal, "", code, who.node_code or "", "operator")
    destination = None
    party = content.get("destination")
    if content.get("bizStep") == "shipping" and isinstance(party, dict) and isinstance(party.get("node"), str):
        destination = known.node_ids.get(party["node"])
        if destination is None:
            raise errors.UnknownReference(f"destination.node: no registered node has code {party['node']}")
    refusal = held.admit(batch_id, node, known.node_types.get(node), content, destination, when)
    if refusal is not None:
        raise refused(refusal, "", code, who.node_code or "")


def build(lives: list[Life], serials: list[int], ids: list[int], city: City, now: datetime) -> Chunk:
    """Every record of a chunk, validated, stamped, sealed and chained as capture does it."""
    out = Chunk()
    recorded_at = utc_ms(now)
    known = Registered.of(city)
    with fields():  # a FieldError anywhere in the chunk is a 422 naming its field, as capture's
        for life, serial, batch_id in zip(lives, serials, ids, strict=True):
            device, product = life.opener, life.product
            assert device.area_code is not None and device.node_id is not None
            draft = parse_batch(life.opening, now)
            check_key_data(product.category, draft.content)
            code = tracecode.make(device.area_code, serial)
            content, event_time = opening_content(draft, device, code, product.goods_code, product.gtin, now)
            data, private = record(content, recorded_at)
            prev = chain.genesis(code)
            head = chain.link(prev, data)
            out.batches.append(
                (
                    batch_id,
                    code,
                    city.product_ids[product.key],
                    device.node_id,
                    device.id,
                    draft.event_id,
                    open_digest(draft, device),
                    Decimal(draft.quantity["value"]),
                    draft.quantity["uom"],
                    draft.produced_on,
                    draft.expires_on,
                )
            )
            out.identifiers += [(i.scheme, i.value, batch_id) for i in draft.identifiers]
            out.events.append(
                (
                    draft.event_id,
                    batch_id,
                    1,
                    prev,
                    head,
                    data,
                    "commissioning",
                    device.node_id,
                    device.id,
                    event_time,
                    now,
                    private,
                )
            )
            seq = 1
            held = custody.Relations()
            held.open(batch_id, device.node_id, event_time)
            for who, raw in life.events:
                d = parse_event({**raw, "traceCode": code}, "", now)
                if check_inspection(d.content) is False:
                    raise errors.InvalidField("the scale path records no failed inspections", field="bizStep")
                _custody(held, known, batch_id, code, who, d.content, d.event_time)
                data, private = record(stamp(d.content, who), recorded_at)
                digest = chain.link(head, data)
                seq += 1
                out.events.append(
                    (
                        d.event_id,
                        batch_id,
                        seq,
                        head,
                        digest,
                        data,
                        d.biz_step,
                        who.node_id,
                        who.id,
                        d.event_time,
                        now,
                        private,
                    )
                )
                head = digest
            out.heads.append((batch_id, seq, head, event_time))
            out.custody += [(b, n, c.relation, c.in_transit, c.since) for (b, n), c in held.changes.items()]
    return out


async def write(conn: Connection, built: Chunk) -> None:
    """Write a built chunk: batches, identifiers, events (queued for the log by their trigger), heads, custody."""
    await bulk_repo.copy_batches(conn, built.batches)
    await bulk_repo.copy_identifiers(conn, built.identifiers)
    await events_repo.insert_events(conn, built.events)
    await bulk_repo.copy_heads(conn, built.heads)
    await custody_repo.copy_rows(conn, built.custody)
