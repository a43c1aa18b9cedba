"""The scale path's generator: an endless, seeded stream of whole batch lives in time order.

A life is a batch from its opening to its sales (or dispensing): vegetables, pork, chicken and drugs,
each through the nodes of the demo city, as a ledger fills day by day.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from traceability.demo.city import AREAS, City, Node, Product, Stall
from traceability.demo.recorder import box_code, money
from traceability.domain.access import Principal

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


FEWEST_EVENTS = 10
"""The fewest events a life holds: a vegetable batch's opening, test, shipping and receiving, then a shipping,
a receiving and a canteen's one sale for each of two takers."""


class Lives:
    """An endless, seeded stream of batch lives over ``window`` days before ``anchor``, in time order as a
    ledger fills: about ``total`` events from the first day to the last.

    A stream may continue a load: ``first`` lives numbered before it (its vouchers, certificates and drug
    lots carry numbers after theirs) and ``generated`` events before it (its lives start where those end)."""

    def __init__(
        self,
        city: City,
        rng: random.Random,
        anchor: datetime,
        window: int,
        total: int,
        *,
        first: int = 0,
        generated: int = 0,
    ) -> None:
        self.city, self.rng, self.anchor, self.window = city, rng, anchor, max(window, 4)
        self.total = max(total, 1)
        self.generated = generated
        self.n = first
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
        h = f"{value:032x}"  # what str(uuid.UUID(int=value)) writes, without building the UUID
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

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
        voucher = f"XS{at:%Y%m%d}{self.n:07d}"
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
                documents=[{"type": "sale_voucher", "number": f"{voucher}{i}"}],
            )

    def distribute(
        self, life: Life, seller: Node, takers: list[tuple[Party, Decimal]], at: datetime, docs: list[dict[str, str]]
    ) -> None:
        p = life.product
        serial = f"{at:%Y%m%d}{self.n:07d}"
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
                documents=[{"type": "trade_voucher", "number": f"JY{serial}{k}"}],
            )
        for k, (to, kg) in enumerate(takers):
            extra = list(docs)
            if p.category == "vegetable" and isinstance(to, Node) and to.node_type == "supermarket":
                extra.append({"type": "vegetable_test_certificate", "number": f"SC{serial}"})
            t = at + timedelta(hours=1, minutes=3 * k)
            self.event(
                life,
                to,
                t,
                "receiving",
                disposition="active",
                quantity={"value": str(kg), "uom": "KGM"},
                source=seller.party(),
                documents=[{"type": "trade_voucher", "number": f"JY{serial}{k}"}, *extra],
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
