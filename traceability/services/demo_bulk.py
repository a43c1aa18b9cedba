"""The demo's scale path: millions of events through the same validation, stamping, sealing and chaining.

Going through the services one request at a time manages a few thousand events a second; a scale test
wants ten million. This path generates whole batch lives (opening, tests, shipments, receipts, sales or
dispensing) and builds every record with the code the API runs — ``parse_batch`` and ``parse_event`` to
validate and normalise, ``check_key_data`` and ``check_inspection``, ``capture._stamp`` and
``capture._record`` for the canonical bytes and the sealed commercial details, ``chain`` for the hashes
— then writes a chunk of about ``CHUNK`` events per transaction with COPY. The events' statement
trigger queues every one for the transparency log, so a running server's sequencer integrates them.

The opening record mirrors ``capture._open`` (trace code, product, GTIN, stamping); tests/test_demo.py
checks that a bulk opening and an API opening of the same body give the same canonical content.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.domain import tracecode
from traceability.domain.access import Principal
from traceability.domain.batches import parse_batch
from traceability.domain.events import parse_event
from traceability.domain.fields import utc_ms
from traceability.domain.supply import check_inspection, check_key_data
from traceability.ledger import chain
from traceability.services.capture import _open_digest, _record, _stamp
from traceability.services.demo_city import AREAS, City, Node, Product, Stall
from traceability.services.demo_story import box_code, money
from traceability.services.validation import fields
from traceability.storage import bulk_repo, events_repo
from traceability.storage.database import Database, translated

CHUNK = 10_000
EVENTS_PER_DAY = 40_000  # beyond this the lives spread over more days, as a bigger city's would

Party = Node | Stall


@dataclass(slots=True)
class Life:
    """One batch from opening to sale: who opens it and with what, then (who, event) in chain order."""

    opener: Principal
    product: Product
    opening: dict[str, Any]
    events: list[tuple[Principal, dict[str, Any]]] = field(default_factory=list)

    def __len__(self) -> int:
        return 1 + len(self.events)


class Lives:
    """An endless, seeded stream of batch lives over ``window`` days before ``anchor``, in time order as a
    ledger fills: about ``total`` events from the first day to the last."""

    def __init__(self, city: City, rng: random.Random, anchor: datetime, window: int, total: int) -> None:
        self.city, self.rng, self.anchor, self.window = city, rng, anchor, max(window, 4)
        self.total = max(total, 1)
        self.generated = 0
        self.n = 0
        self.veg_farms = city.of_type("farm", "vegetable")
        self.pig_farms = city.of_type("farm", "pig")
        self.chicken_farms = city.of_type("farm", "chicken")
        self.veg_takers: list[Party] = [
            *city.stalls("vegetable"),
            *city.of_type("supermarket"),
            *city.of_type("canteen"),
        ]
        self.drugs = [p for p in city.products.values() if p.category == "drug"]
        self.vegetables = [p for p in city.products.values() if p.category == "vegetable"]

    def __iter__(self) -> Iterator[Life]:
        while True:
            self.n += 1
            roll = self.rng.random()
            if roll < 0.45:
                life = self.vegetable()
            elif roll < 0.75:
                life = self.meat("carcass", self.pig_farms, "slaughter.pengcheng", self.city.stalls("pork"))
            elif roll < 0.92:
                life = self.meat("chicken", self.chicken_farms, "slaughter.subei", self.city.stalls("meat"))
            else:
                life = self.drug()
            self.generated += len(life)
            yield life

    # -- helpers --------------------------------------------------------------------------------

    def eid(self, at: datetime) -> str:
        """A UUIDv7 (RFC 9562) from the event time and seeded random bits. Time-ordered ids keep the
        unique index on event ids appending at its right edge instead of touching a random page per row."""
        ms = int(at.timestamp() * 1000) & (2**48 - 1)
        value = (ms << 80) | (0x7 << 76) | (self.rng.getrandbits(12) << 64) | (0b10 << 62) | self.rng.getrandbits(62)
        return str(uuid.UUID(int=value))

    def start(self) -> datetime:
        """Lives start later as the load goes on (a ledger filling up), each over within two days."""
        span = (self.window - 3) * 86_400
        offset = span * min(self.generated / self.total, 1.0) + self.rng.random() * 3_600
        return self.anchor - timedelta(days=self.window) + timedelta(seconds=offset, hours=4)

    def kg(self, lo: float, hi: float) -> Decimal:
        return Decimal(self.rng.randint(int(lo * 100), int(hi * 100))) / 100

    def event(self, life: Life, who: Party, at: datetime, step: str, **extra: Any) -> None:
        raw = {"eventID": self.eid(at), "bizStep": step, "eventTime": at.isoformat(), **extra}
        life.events.append((who.scanner, raw))

    def sell(self, life: Life, shop: Party, kg: Decimal, at: datetime) -> None:
        p = life.product
        price = Decimal(p.retail)
        if isinstance(shop, Node) and shop.node_type == "canteen":
            self.event(
                life,
                shop,
                at + timedelta(hours=2),
                "retail_selling",
                disposition="retail_sold",
                quantity={"value": str(kg), "uom": "KGM"},
                attributes={"served_as": "meals", "meals": int(kg * 6)},
            )
            return
        left = kg * Decimal("0.8")
        for i in range(self.rng.randint(2, 5)):
            part = min(self.kg(0.3, 2.5), left)
            left -= part
            self.event(
                life,
                shop,
                at + timedelta(hours=0.5 + i * 0.7),
                "retail_selling",
                disposition="retail_sold",
                quantity={"value": str(part), "uom": "KGM"},
                commercial={"unit_price": str(price), "amount": money(part * price), "currency": "CNY"},
                documents=[{"type": "sale_voucher", "number": f"XS{at:%Y%m%d}{self.n:07d}{i}"}],
            )

    def distribute(
        self, life: Life, seller: Node, takers: list[tuple[Party, Decimal]], at: datetime, docs: list[dict[str, str]]
    ) -> None:
        p = life.product
        for k, (to, kg) in enumerate(takers):
            self.event(
                life,
                seller,
                at + timedelta(minutes=3 * k),
                "shipping",
                disposition="in_transit",
                quantity={"value": str(kg), "uom": "KGM"},
                destination=to.party(),
                commercial={
                    "unit_price": p.wholesale,
                    "amount": money(kg * Decimal(p.wholesale)),
                    "currency": "CNY",
                    "buyer": to.name,
                },
                documents=[{"type": "trade_voucher", "number": f"JY{at:%Y%m%d}{self.n:07d}{k}"}],
            )
        for k, (to, kg) in enumerate(takers):
            extra = list(docs)
            if p.category == "vegetable" and isinstance(to, Node) and to.node_type == "supermarket":
                extra.append({"type": "vegetable_test_certificate", "number": f"SC{at:%Y%m%d}{self.n:07d}"})
            t = at + timedelta(hours=1, minutes=3 * k)
            self.event(
                life,
                to,
                t,
                "receiving",
                disposition="active",
                quantity={"value": str(kg), "uom": "KGM"},
                source=seller.party(),
                documents=[{"type": "trade_voucher", "number": f"JY{at:%Y%m%d}{self.n:07d}{k}"}, *extra],
            )
        # Each shop sells after every shop has received: the batch's chain runs forward in time.
        for k, (to, kg) in enumerate(takers):
            self.sell(life, to, kg, at + timedelta(hours=1.5 + 3 * k))

    # -- kinds of life --------------------------------------------------------------------------

    def vegetable(self) -> Life:
        farm = self.rng.choice(self.veg_farms)
        p = self.rng.choice(self.vegetables)
        market = self.city.nodes["wholesale.pengcheng"]
        t = self.start()
        lot = self.kg(200, 900)
        day: date = t.date()
        cert = {"type": "origin_certificate", "number": f"CD{farm.area}{day:%Y%m%d}{self.n:07d}"}
        life = Life(
            farm.scanner,
            p,
            {
                "eventID": self.eid(t),
                "product": p.goods_code,
                "quantity": {"value": str(lot), "uom": "KGM"},
                "produced_on": day.isoformat(),
                "expires_on": (day + timedelta(days=(p.shelf_life_days or 1) - 1)).isoformat(),
                "eventTime": t.isoformat(),
                "origin": {
                    "area_code": farm.area,
                    "place": AREAS[farm.area][0],
                    "producer": farm.name,
                    "node": farm.code,
                },
                "documents": [cert],
                "attributes": {"harvest_date": day.isoformat()},
            },
        )
        self.event(
            life,
            farm,
            t + timedelta(minutes=30),
            "inspecting",
            disposition="conformant",
            documents=[{"type": "pesticide_residue_report", "number": f"NC{day:%Y%m%d}{self.n:07d}"}],
            attributes={
                "test": "pesticide_residue",
                "method": "GB/T 5009.199 酶抑制率速测",
                "value": str(Decimal(self.rng.randint(30, 350)) / 10),
                "limit": "50",
                "unit": "%",
                "result": "pass",
            },
        )
        self.event(
            life,
            farm,
            t + timedelta(hours=1),
            "shipping",
            disposition="in_transit",
            quantity={"value": str(lot), "uom": "KGM"},
            destination=market.party(),
            documents=[cert],
        )
        self.event(
            life,
            market,
            t + timedelta(hours=3),
            "receiving",
            disposition="active",
            quantity={"value": str(lot), "uom": "KGM"},
            source=farm.party(),
            documents=[cert],
        )
        takers = self.rng.sample(self.veg_takers, self.rng.randint(2, 3))
        self.distribute(life, market, [(to, self.kg(20, 60)) for to in takers], t + timedelta(hours=4), [cert])
        return life

    def meat(self, product: str, farms: list[Node], plant_key: str, stalls: list[Stall]) -> Life:
        farm = self.rng.choice(farms)
        plant = self.city.nodes[plant_key]
        market = self.city.nodes["wholesale.huaihai"]
        p = self.city.products[product]
        t = self.start()
        day = t.date()
        heads = 1 if product == "carcass" else self.rng.randint(20, 60)
        kg = self.kg(70, 95) if product == "carcass" else self.kg(1.6 * heads, 1.9 * heads)
        docs = [
            {"type": "quarantine_certificate", "number": f"B320300{self.n % 10**7:07d}"},
            {"type": "meat_inspection_certificate", "number": f"RJ{day:%Y%m%d}{self.n:07d}"},
        ]
        life = Life(
            plant.scanner,
            p,
            {
                "eventID": self.eid(t),
                "product": p.goods_code,
                "quantity": {"value": str(kg), "uom": "KGM"},
                "produced_on": day.isoformat(),
                "expires_on": (day + timedelta(days=(p.shelf_life_days or 1) - 1)).isoformat(),
                "eventTime": t.isoformat(),
                "origin": {
                    "area_code": farm.area,
                    "place": AREAS[farm.area][0],
                    "producer": farm.name,
                    "node": farm.code,
                },
                "documents": docs,
                "attributes": {"head_count": heads, "slaughter_date": day.isoformat()},
            },
        )
        self.event(
            life,
            plant,
            t + timedelta(minutes=40),
            "inspecting",
            disposition="conformant",
            attributes={"test": "meat_inspection", "result": "pass", "lab": f"{plant.name}检验室"},
        )
        self.event(
            life,
            plant,
            t + timedelta(hours=2),
            "shipping",
            disposition="in_transit",
            quantity={"value": str(kg), "uom": "KGM"},
            destination=market.party(),
            documents=docs,
        )
        self.event(
            life,
            market,
            t + timedelta(hours=3),
            "receiving",
            disposition="active",
            quantity={"value": str(kg), "uom": "KGM"},
            source=plant.party(),
            documents=docs,
        )
        takers = self.rng.sample(stalls, 2)
        half = (kg / 2).quantize(Decimal("0.01"))
        self.distribute(life, market, [(s, half) for s in takers], t + timedelta(hours=4), docs)
        return life

    def drug(self) -> Life:
        p = self.rng.choice(self.drugs)
        maker = self.city.nodes["drug.maker"]
        t = self.start()
        made = t.date() - timedelta(days=30)
        identity = p.drug["drug_identity_code"]
        lot_no = 100_000 + self.n  # the story's lots are numbered from 100
        lot = f"B{self.n:09d}"
        life = Life(
            maker.scanner,
            p,
            {
                "eventID": self.eid(t),
                "product": p.goods_code,
                "quantity": {"value": 400, "uom": "XBX"},
                "produced_on": made.isoformat(),
                "expires_on": (made + timedelta(days=p.shelf_life_days or 730)).isoformat(),
                "eventTime": t.isoformat(),
                "identifiers": [
                    {"scheme": "gs1", "gtin": p.gtin, "lot": lot},
                    {"scheme": "drug_code", "value": box_code(identity, lot_no, 0)},
                ],
                "attributes": {**p.drug, "lot": lot},
            },
        )
        self.event(
            life,
            maker,
            t + timedelta(minutes=30),
            "inspecting",
            disposition="conformant",
            documents=[{"type": "drug_inspection_report", "number": f"YJ{lot}"}],
            attributes={"test": "release", "result": "pass"},
        )
        distributors = [self.city.nodes["drug.kangda"], self.city.nodes["drug.subei"]]
        pharmacies = {
            "drug.kangda": ["pharmacy.xinglin", "pharmacy.kangning", "pharmacy.jimin"],
            "drug.subei": ["pharmacy.yishou", "pharmacy.shoukang"],
        }
        for k, d in enumerate(distributors):
            self.event(
                life,
                maker,
                t + timedelta(hours=1, minutes=k),
                "shipping",
                disposition="in_transit",
                quantity={"value": 200, "uom": "XBX"},
                destination=d.party(),
                commercial={"unit_price": p.wholesale, "currency": "CNY"},
            )
        for k, d in enumerate(distributors):
            self.event(
                life,
                d,
                t + timedelta(hours=4, minutes=k),
                "receiving",
                disposition="active",
                quantity={"value": 200, "uom": "XBX"},
                source=maker.party(),
            )
        box = 0
        shelves: list[tuple[Node, Node, int]] = []
        for k, d in enumerate(distributors):
            for j, key in enumerate(pharmacies[d.key]):
                ph = self.city.nodes[key]
                self.event(
                    life,
                    d,
                    t + timedelta(hours=6, minutes=10 * k + j),
                    "shipping",
                    disposition="in_transit",
                    quantity={"value": 40, "uom": "XBX"},
                    destination=ph.party(),
                    commercial={
                        "unit_price": p.wholesale,
                        "amount": money(40 * Decimal(p.wholesale)),
                        "currency": "CNY",
                    },
                )
                shelves.append((ph, d, box))
                box += 40
        for i, (ph, d, _) in enumerate(shelves):
            self.event(
                life,
                ph,
                t + timedelta(hours=9, minutes=i),
                "receiving",
                disposition="active",
                quantity={"value": 40, "uom": "XBX"},
                source=d.party(),
            )
        at = t + timedelta(hours=10)
        for ph, _, first in shelves:
            for b in range(self.rng.randint(2, 6)):
                at += timedelta(minutes=self.rng.randint(5, 40))
                self.event(
                    life,
                    ph,
                    at,
                    "dispensing",
                    disposition="dispensed",
                    quantity={"value": 1, "uom": "XBX"},
                    attributes={"serial": box_code(identity, lot_no, first + b + 1)},
                    commercial={"unit_price": p.retail, "amount": p.retail, "currency": "CNY"},
                )
        return life


@dataclass(slots=True)
class Chunk:
    batches: list[tuple[Any, ...]] = field(default_factory=list)
    identifiers: list[tuple[str, str, int]] = field(default_factory=list)
    heads: list[tuple[int, int, bytes]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)


def build(lives: list[Life], serials: list[int], ids: list[int], city: City, now: datetime) -> Chunk:
    """Every record of a chunk, validated, stamped, sealed and chained as capture does it."""
    out = Chunk()
    recorded_at = utc_ms(now)
    for life, serial, batch_id in zip(lives, serials, ids, strict=True):
        device, product = life.opener, life.product
        assert device.area_code is not None and device.node_id is not None
        with fields():
            draft = parse_batch(life.opening, now)
            check_key_data(product.category, draft.content)
        code = tracecode.make(device.area_code, serial)
        content = _stamp(draft.content, device)
        content["traceCode"] = code
        content["batch"] = dict(content["batch"], product=product.goods_code)
        if product.gtin:
            content["batch"]["gtin"] = product.gtin
        assert draft.event_time is not None
        data, private = _record(content, recorded_at)
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
                _open_digest(draft, device),
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
                draft.event_time,
                now,
                private,
            )
        )
        seq = 1
        for who, raw in life.events:
            with fields():
                d = parse_event({**raw, "traceCode": code}, "", now)
                if check_inspection(d.content) is False:
                    raise errors.InvalidField("the scale path records no failed inspections", field="bizStep")
            data, private = _record(_stamp(d.content, who), recorded_at)
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
        out.heads.append((batch_id, seq, head))
    return out


async def load_bulk(
    db: Database,
    city: City,
    rng: random.Random,
    anchor: datetime,
    days: int,
    total: int,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> tuple[int, int]:
    """Write about ``total`` events (whole lives, so a few more) in chunks; returns (events, batches)."""
    window = max(days, math.ceil(total / EVENTS_PER_DAY))
    lives = iter(Lives(city, rng, anchor, window, total))
    events = batches = 0
    while events < total:
        todo: list[Life] = []
        size = 0
        while size < min(chunk, total - events):
            life = next(lives)
            todo.append(life)
            size += len(life)
        with translated():
            async with db.acquire() as conn:
                serials = await bulk_repo.reserve_serials(conn, len(todo))
                ids = await bulk_repo.reserve_batch_ids(conn, len(todo))
                built = build(todo, serials, ids, city, datetime.now(UTC))
                async with conn.transaction():
                    await bulk_repo.copy_batches(conn, built.batches)
                    await bulk_repo.copy_identifiers(conn, built.identifiers)
                    await events_repo.insert_events(conn, built.events)
                    await bulk_repo.copy_heads(conn, built.heads)
        events += len(built.events)
        batches += len(built.batches)
        if progress is not None:
            progress(len(built.events))
    return events, batches
