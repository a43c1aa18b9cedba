"""Three weeks of flows through the demo city, recorded through the same services the API uses.

Every day: a lot of pigs goes from a farm to the slaughterhouse, is slaughtered into carcasses
(a transformation), one carcass is cut into joints (another), and carcass and joints go through the
wholesale market to stalls, a supermarket and a canteen, where they are sold by weight; chickens and
(every third day) cattle do the same; three vegetable lots go from origin bases with their origin
certificates and pesticide tests through the vegetable wholesale market to stalls and shops; drug lots
go from the manufacturer through two distributors to five pharmacies, which dispense them box by box.

Near the end: a cabbage lot fails its laboratory pesticide test after part of it was repacked (the lot
and the repacked crates go on hold), the regulator recalls a lot of pigs (every carcass and joint made
from it is recalled), and a few things go wrong the way they do in a real city: chicken sold after its
expiry date, tomatoes received without a recorded shipment, a box of amoxicillin dispensed twice, and a
stall's offline scale syncing a sale of recalled pork after the recall.

All times lie on the ``days`` calendar days before ``anchor`` (midnight, China Standard Time), so
nothing is in the future, and every random choice comes from one seeded generator.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stdnum import luhn

from traceability.services import capture, genealogy
from traceability.services.demo_city import AREAS, City, Node, Product, Stall
from traceability.storage.database import Database

CST = timezone(timedelta(hours=8))
CENT = Decimal("0.01")
MIN_DAYS = 6

Party = Node | Stall


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def box_code(identity: str, lot_no: int, box: int) -> str:
    """A 20-digit drug trace code for one box: 7-digit drug identity code, lot, box serial, check digit."""
    body = f"{identity}{lot_no:06d}{box:06d}"
    return body + luhn.calc_check_digit(body)


@dataclass(slots=True)
class Highlights:
    """Trace codes worth opening, collected while the story is recorded."""

    codes: list[tuple[str, str, str]] = field(default_factory=list)  # (key, label, trace code)

    def add(self, key: str, label: str, code: str) -> None:
        self.codes.append((key, label, code))


@dataclass(slots=True)
class DrugLot:
    product: Product
    code: str
    lot: str
    lot_no: int
    boxes: dict[str, list[int]] = field(default_factory=dict)  # pharmacy key -> box numbers still on the shelf
    dispensed: list[tuple[str, int]] = field(default_factory=list)


class Story:
    """Records the story; ``done`` counts the events written so far (for progress)."""

    def __init__(
        self,
        db: Database,
        city: City,
        rng: random.Random,
        anchor: datetime,
        days: int,
        public_url: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if days < MIN_DAYS:
            raise ValueError(f"the story needs at least {MIN_DAYS} days")
        self.db, self.city, self.rng, self.days, self.public_url = db, city, rng, days, public_url
        self.start = anchor - timedelta(days=days)
        self.progress = progress
        self.done = 0
        self.serials: dict[str, int] = {}
        self.highlights = Highlights()
        self.deferred: list[tuple[Stall, dict[str, Any]]] = []
        self.drug_lots: list[DrugLot] = []
        self.recall_day = days - 3
        self.expiry_day = days - 5
        self.test_day = days - 2
        self.orphan_day = days - 4
        self.recalled = ""

    # -- plumbing -------------------------------------------------------------------------------

    def eid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def at(self, day: int, hours: float) -> str:
        return (self.start + timedelta(days=day, hours=hours)).isoformat()

    def date(self, day: int) -> date:
        return (self.start + timedelta(days=day)).date()

    def number(self, prefix: str, day: int, width: int = 4) -> str:
        n = self.serials[prefix] = self.serials.get(prefix, 0) + 1
        return f"{prefix}{self.date(day):%Y%m%d}{n:0{width}d}"

    def kg(self, lo: float, hi: float) -> Decimal:
        return Decimal(self.rng.randint(int(lo * 100), int(hi * 100))) / 100

    def _count(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(n)

    async def open(self, who: Party, body: dict[str, Any]) -> str:
        opened = await capture.open_batch(self.db, who.scanner, {"eventID": self.eid(), **body}, self.public_url)
        self._count(1)
        return opened.trace_code

    async def capture(self, who: Party, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        body = {"events": [e if "eventID" in e else {"eventID": self.eid(), **e} for e in events]}
        receipts, _ = await capture.capture_events(self.db, who.scanner, body, 1000)
        self._count(len(receipts))

    async def in_time_order(self, items: list[tuple[Party, dict[str, Any]]]) -> None:
        """Capture events of several devices so that each batch's chain runs forward in time: sorted by
        event time, consecutive events of one device in one request."""
        items = sorted(items, key=lambda item: datetime.fromisoformat(item[1]["eventTime"]))
        run: list[dict[str, Any]] = []
        who: Party | None = None
        for party, event in items:
            if party is not who and run:
                assert who is not None
                await self.capture(who, run)
                run = []
            who = party
            run.append(event)
        if who is not None:
            await self.capture(who, run)

    async def transform(
        self,
        who: Node,
        step: str,
        day: int,
        hours: float,
        inputs: list[tuple[str, Decimal]],
        outputs: list[dict[str, Any]],
    ) -> list[str]:
        result = await genealogy.transform(
            self.db,
            who.scanner,
            {
                "eventID": self.eid(),
                "bizStep": step,
                "eventTime": self.at(day, hours),
                "inputs": [{"traceCode": c, "quantity": {"value": str(q), "uom": "KGM"}} for c, q in inputs],
                "outputs": outputs,
            },
            self.public_url,
        )
        self._count(len(inputs) + len(outputs))
        return [o["traceCode"] for o in result["outputs"]]

    # -- the days -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.drugs_made()
        for day in range(self.days):
            await self.pork(day)
            await self.chicken(day)
            if day % 3 == 1:
                await self.beef(day)
            for i in range(3):
                await self.vegetables(day, i)
            if day == self.orphan_day:
                await self.received_without_shipment(day)
            await self.drugs(day)
        await self.recall()

    # -- meat -----------------------------------------------------------------------------------

    async def livestock(
        self, day: int, farm: Node, plant: Node, product: str, heads: int, head_kg: tuple[float, float]
    ) -> tuple[str, Decimal, str]:
        """A farm's lot of live animals: opened, shipped to the plant, received and tested there."""
        live = sum((self.kg(*head_kg) for _ in range(heads)), Decimal(0))
        cert = f"A{farm.area}{self.rng.randrange(10**6):06d}"
        code = await self.open(
            farm,
            {
                "product": self.city.products[product].goods_code,
                "quantity": {"value": str(live), "uom": "KGM"},
                "produced_on": self.date(day).isoformat(),
                "eventTime": self.at(day, 4.5),
                "origin": {
                    "area_code": farm.area,
                    "place": AREAS[farm.area][0],
                    "producer": farm.name,
                    "node": farm.code,
                },
                "documents": [
                    {"type": "quarantine_certificate", "number": cert, "issuer": f"{AREAS[farm.area][0]}动物卫生监督所"}
                ],
                "attributes": {"head_count": heads},
            },
        )
        await self.capture(
            farm,
            [
                {
                    "traceCode": code,
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "eventTime": self.at(day, 5),
                    "quantity": {"value": str(live), "uom": "KGM"},
                    "destination": plant.party(),
                    "documents": [{"type": "quarantine_certificate", "number": cert}],
                }
            ],
        )
        await self.capture(
            plant,
            [
                {
                    "traceCode": code,
                    "bizStep": "receiving",
                    "disposition": "active",
                    "eventTime": self.at(day, 7),
                    "quantity": {"value": str(live), "uom": "KGM"},
                    "source": farm.party(),
                    "documents": [{"type": "quarantine_certificate", "number": cert}],
                },
                {
                    "traceCode": code,
                    "bizStep": "inspecting",
                    "disposition": "conformant",
                    "eventTime": self.at(day, 7.3),
                    "attributes": {
                        "test": "beta_agonists",
                        "method": "瘦肉精尿样胶体金快速检测",
                        "result": "pass",
                        "lab": f"{plant.name}检验室",
                    },
                },
            ],
        )
        return code, live, cert

    def meat_docs(self, day: int, plant: Node) -> list[dict[str, str]]:
        return [
            {
                "type": "quarantine_certificate",
                "number": f"B320300{self.rng.randrange(10**7):07d}",
                "issuer": "徐州市动物卫生监督所",
            },
            {"type": "meat_inspection_certificate", "number": self.number("RJ", day), "issuer": plant.name},
        ]

    def output(
        self, product: str, kg: Decimal, day: int, docs: list[dict[str, str]], farm: Node, heads: int | None = None
    ) -> dict[str, Any]:
        p = self.city.products[product]
        attrs: dict[str, Any] = {"slaughter_date": self.date(day).isoformat()}
        if heads is not None:
            attrs["head_count"] = heads
        return {
            "product": p.goods_code,
            "quantity": {"value": str(kg), "uom": "KGM"},
            "produced_on": self.date(day).isoformat(),
            "expires_on": (self.date(day) + timedelta(days=(p.shelf_life_days or 1) - 1)).isoformat(),
            "origin": {"area_code": farm.area, "place": AREAS[farm.area][0], "producer": farm.name},
            "documents": docs,
            "attributes": attrs,
        }

    async def pork(self, day: int) -> None:
        farms = self.city.of_type("farm", "pig")
        farm = farms[day % len(farms)]
        plant = self.city.nodes["slaughter.pengcheng"]
        market = self.city.nodes["wholesale.huaihai"]
        live_code, live, _ = await self.livestock(day, farm, plant, "live_pig", 2, (108, 126))
        carcass_kg = [(live / 2 * Decimal("0.74")).quantize(CENT) for _ in range(2)]
        docs = self.meat_docs(day, plant)
        whole, to_cut = await self.transform(
            plant,
            "commissioning",
            day,
            9,
            [(live_code, live)],
            [self.output("carcass", kg, day, docs, farm, 1) for kg in carcass_kg],
        )
        shares = {
            "shoulder": Decimal("0.26"),
            "ham": Decimal("0.30"),
            "belly": Decimal("0.18"),
            "ribs": Decimal("0.14"),
        }
        cut_codes = await self.transform(
            plant,
            "disassembling",
            day,
            10,
            [(to_cut, carcass_kg[1])],
            [self.output(k, (carcass_kg[1] * s).quantize(CENT), day, docs, farm) for k, s in shares.items()],
        )
        cuts = dict(zip(shares, cut_codes, strict=True))
        loads = [(whole, carcass_kg[0], "carcass")] + [
            (cuts[k], (carcass_kg[1] * s).quantize(CENT), k) for k, s in shares.items()
        ]
        await self.ship_and_receive(day, 11, plant, market, loads, docs)
        stalls = self.city.stalls("pork")
        s1, s2, s3, s4 = (stalls[(day * 4 + i) % len(stalls)] for i in range(4))
        supers = self.city.of_type("supermarket")
        canteen = self.city.of_type("canteen")[day % 2]
        half = (carcass_kg[0] / 2).quantize(CENT)
        defer = s1 if day == self.recall_day else None
        await self.distribute(
            day,
            13,
            market,
            [
                (whole, "carcass", s1, half),
                (whole, "carcass", s2, half),
                (cuts["shoulder"], "shoulder", s3, loads[1][1]),
                (cuts["ham"], "ham", s4, loads[2][1]),
                (cuts["belly"], "belly", supers[day % 3], loads[3][1]),
                (cuts["ribs"], "ribs", canteen, loads[4][1]),
            ],
            docs,
            defer=defer,
        )
        if day == self.recall_day:
            self.recalled = live_code
            self.highlights.add(
                "recall",
                f"recalled: live pigs from {farm.name_en} ({farm.name}) and every carcass and joint made from them",
                live_code,
            )
        if day == self.days - 1:
            self.highlights.add(
                "pork", f"pork shoulder sold at stall {s3.code} ({s3.name}), {s3.market.name_en}", cuts["shoulder"]
            )

    async def chicken(self, day: int) -> None:
        farms = self.city.of_type("farm", "chicken")
        farm = farms[day % len(farms)]
        plant = self.city.nodes["slaughter.subei"]
        market = self.city.nodes["wholesale.huaihai"]
        heads = self.rng.randint(150, 220)
        live_code, live, _ = await self.livestock(day, farm, plant, "live_chicken", heads, (2.2, 2.6))
        dressed = (live * Decimal("0.72")).quantize(CENT)
        docs = self.meat_docs(day, plant)
        [code] = await self.transform(
            plant,
            "commissioning",
            day,
            8.5,
            [(live_code, live)],
            [self.output("chicken", dressed, day, docs, farm, heads)],
        )
        await self.ship_and_receive(day, 10.5, plant, market, [(code, dressed, "chicken")], docs)
        stalls = self.city.stalls("meat")
        chosen = [stalls[(day * 3 + i) % len(stalls)] for i in range(3)]
        parts: list[tuple[str, str, Party, Decimal]] = [(code, "chicken", s, self.kg(12, 25)) for s in chosen]
        parts.append((code, "chicken", self.city.of_type("supermarket")[(day + 1) % 3], self.kg(30, 45)))
        await self.distribute(day, 13.5, market, parts, docs)
        if day == self.expiry_day:
            stall = chosen[0]
            sale = self.sale(stall, code, "chicken", Decimal("1.60"), self.days - 1, 9.5)
            await self.capture(stall, [sale])
            self.highlights.add(
                "expired",
                f"dressed chicken sold at stall {stall.code}, {stall.market.name_en}, two days after its expiry date",
                code,
            )

    async def beef(self, day: int) -> None:
        farms = self.city.of_type("farm", "cattle")
        farm = farms[(day // 3) % len(farms)]
        plant = self.city.nodes["slaughter.huaihai"]
        market = self.city.nodes["wholesale.huaihai"]
        live_code, live, _ = await self.livestock(day, farm, plant, "live_cattle", 1, (560, 660))
        beef = (live * Decimal("0.55")).quantize(CENT)
        docs = self.meat_docs(day, plant)
        [code] = await self.transform(
            plant, "commissioning", day, 9.5, [(live_code, live)], [self.output("beef", beef, day, docs, farm, 1)]
        )
        await self.ship_and_receive(day, 11.5, plant, market, [(code, beef, "beef")], docs)
        stalls = self.city.stalls("meat")
        parts: list[tuple[str, str, Party, Decimal]] = [
            (code, "beef", stalls[(day + i * 3) % len(stalls)], self.kg(18, 30)) for i in range(4)
        ]
        parts.append((code, "beef", self.city.of_type("supermarket")[day % 3], self.kg(40, 60)))
        await self.distribute(day, 14, market, parts, docs)

    # -- moving and selling ---------------------------------------------------------------------

    async def ship_and_receive(
        self,
        day: int,
        hour: float,
        sender: Node,
        receiver: Node,
        loads: list[tuple[str, Decimal, str]],
        docs: list[dict[str, str]],
    ) -> None:
        voucher = self.number("PF", day, 5)
        await self.capture(
            sender,
            [
                {
                    "traceCode": code,
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "eventTime": self.at(day, hour),
                    "quantity": {"value": str(kg), "uom": "KGM"},
                    "destination": receiver.party(),
                    "commercial": {
                        "unit_price": self.city.products[p].wholesale,
                        "amount": money(kg * Decimal(self.city.products[p].wholesale)),
                        "currency": "CNY",
                    },
                    "documents": [{"type": "despatch_advice", "number": voucher}, *docs],
                }
                for code, kg, p in loads
            ],
        )
        await self.capture(
            receiver,
            [
                {
                    "traceCode": code,
                    "bizStep": "receiving",
                    "disposition": "active",
                    "eventTime": self.at(day, hour + 1),
                    "quantity": {"value": str(kg), "uom": "KGM"},
                    "source": sender.party(),
                    "documents": [{"type": "despatch_advice", "number": voucher}, *docs],
                }
                for code, kg, _ in loads
            ],
        )

    async def distribute(
        self,
        day: int,
        hour: float,
        seller: Node,
        parts: list[tuple[str, str, Party, Decimal]],
        docs: list[dict[str, str]],
        defer: Stall | None = None,
    ) -> None:
        """The seller ships parts of batches to shops; each shop receives its part and sells some of it."""
        vouchers = [self.number("JY", day, 5) for _ in parts]
        await self.capture(
            seller,
            [
                {
                    "traceCode": code,
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "eventTime": self.at(day, hour + i * 0.05),
                    "quantity": {"value": str(kg), "uom": "KGM"},
                    "destination": to.party(),
                    "commercial": {
                        "unit_price": self.city.products[p].wholesale,
                        "amount": money(kg * Decimal(self.city.products[p].wholesale)),
                        "currency": "CNY",
                        "buyer": to.name,
                    },
                    "documents": [{"type": "trade_voucher", "number": v}],
                }
                for i, ((code, p, to, kg), v) in enumerate(zip(parts, vouchers, strict=True))
            ],
        )
        pending: list[tuple[Party, dict[str, Any]]] = []
        for i, ((code, p, to, kg), v) in enumerate(zip(parts, vouchers, strict=True)):
            extra = list(docs)
            if self.city.products[p].category == "vegetable" and isinstance(to, Node):
                extra.append({"type": "vegetable_test_certificate", "number": self.number("SC", day)})
            receipt = {
                "traceCode": code,
                "bizStep": "receiving",
                "disposition": "active",
                "eventTime": self.at(day, hour + 1 + i * 0.05),
                "quantity": {"value": str(kg), "uom": "KGM"},
                "source": seller.party(),
                "documents": [{"type": "trade_voucher", "number": v}, *extra],
            }
            sales = self.sales(to, code, p, kg, day, hour + 1.5)
            if to is defer:
                self.deferred.append((defer, sales.pop()))
            pending += [(to, receipt), *((to, s) for s in sales)]
        await self.in_time_order(pending)

    def sale(self, to: Party, code: str, product: str, kg: Decimal, day: int, hour: float) -> dict[str, Any]:
        price = Decimal(self.city.products[product].retail)
        return {
            "traceCode": code,
            "bizStep": "retail_selling",
            "disposition": "retail_sold",
            "eventTime": self.at(day, hour),
            "quantity": {"value": str(kg), "uom": "KGM"},
            "commercial": {"unit_price": str(price), "amount": money(kg * price), "currency": "CNY"},
            "documents": [{"type": "sale_voucher", "number": self.number("XS", day, 5)}],
        }

    def sales(
        self, to: Party, code: str, product: str, received: Decimal, day: int, hour: float
    ) -> list[dict[str, Any]]:
        if isinstance(to, Node) and to.node_type == "canteen":
            return [
                {
                    "traceCode": code,
                    "bizStep": "retail_selling",
                    "disposition": "retail_sold",
                    "eventTime": self.at(day, hour + 2),
                    "quantity": {"value": str(received), "uom": "KGM"},
                    "attributes": {"served_as": "meals", "meals": int(received * 6)},
                }
            ]
        out = []
        left = received * Decimal("0.8")
        for i in range(self.rng.randint(3, 5)):
            kg = min(self.kg(0.4, 2.8), left)
            if kg <= 0:
                break
            left -= kg
            out.append(self.sale(to, code, product, kg, day, hour + i * 0.6 + self.rng.random() * 0.4))
        return out

    # -- vegetables -----------------------------------------------------------------------------

    async def vegetables(self, day: int, i: int) -> None:
        farms = self.city.of_type("farm", "vegetable")
        kinds = ["cabbage", "tomato", "cucumber", "potato", "spinach"]
        failed = day == self.test_day and i == 0
        farm = self.city.nodes["farm.nanjiao"] if failed else farms[(day * 3 + i) % len(farms)]
        product = "cabbage" if failed else kinds[(day + i * 2) % len(kinds)]
        p = self.city.products[product]
        market = self.city.nodes["wholesale.pengcheng"]
        lot = self.kg(600, 900) if failed else self.kg(300, 800)
        h = 4.5 + i * 0.5
        origin_cert = {
            "type": "origin_certificate",
            "number": self.number(f"CD{farm.area}", day, 3),
            "issuer": f"{AREAS[farm.area][0]}农业农村局",
        }
        code = await self.open(
            farm,
            {
                "product": p.goods_code,
                "quantity": {"value": str(lot), "uom": "KGM"},
                "produced_on": self.date(day).isoformat(),
                "expires_on": (self.date(day) + timedelta(days=(p.shelf_life_days or 1) - 1)).isoformat(),
                "eventTime": self.at(day, h),
                "origin": {
                    "area_code": farm.area,
                    "place": AREAS[farm.area][0],
                    "producer": farm.name,
                    "node": farm.code,
                },
                "documents": [origin_cert],
                "attributes": {"harvest_date": self.date(day).isoformat()},
            },
        )
        rate = Decimal(self.rng.randint(40, 300)) / 10
        await self.capture(
            farm,
            [
                {
                    "traceCode": code,
                    "bizStep": "inspecting",
                    "disposition": "conformant",
                    "eventTime": self.at(day, h + 0.5),
                    "documents": [{"type": "pesticide_residue_report", "number": self.number("NC", day)}],
                    "attributes": {
                        "test": "pesticide_residue",
                        "method": "GB/T 5009.199 酶抑制率速测",
                        "value": str(rate),
                        "limit": "50",
                        "unit": "%",
                        "result": "pass",
                    },
                },
                {
                    "traceCode": code,
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "eventTime": self.at(day, h + 1),
                    "quantity": {"value": str(lot), "uom": "KGM"},
                    "destination": market.party(),
                    "documents": [origin_cert],
                },
            ],
        )
        await self.capture(
            market,
            [
                {
                    "traceCode": code,
                    "bizStep": "receiving",
                    "disposition": "active",
                    "eventTime": self.at(day, h + 3),
                    "quantity": {"value": str(lot), "uom": "KGM"},
                    "source": farm.party(),
                    "documents": [origin_cert],
                }
            ],
        )
        stalls = self.city.stalls("vegetable")
        parts: list[tuple[str, str, Party, Decimal]] = [
            (code, product, stalls[(day * 7 + i * 2 + k) % len(stalls)], self.kg(30, 80)) for k in range(2)
        ]
        shop: Party = self.city.of_type("canteen")[day % 2] if i == 2 else self.city.of_type("supermarket")[i]
        parts.append((code, product, shop, self.kg(40, 90)))
        if failed:
            await self.failed_test(day, code, lot, parts, origin_cert)
            return
        await self.distribute(day, h + 4, market, parts, [origin_cert])

    async def failed_test(
        self,
        day: int,
        code: str,
        lot: Decimal,
        parts: list[tuple[str, str, Party, Decimal]],
        origin_cert: dict[str, str],
    ) -> None:
        """A sample goes to the lab; meanwhile part of the lot is repacked into crates for the supermarkets
        and the rest sold to stalls. The lab result fails: the lot and the crates go on hold."""
        market = self.city.nodes["wholesale.pengcheng"]
        await self.capture(
            market,
            [
                {
                    "traceCode": code,
                    "bizStep": "sampling",
                    "eventTime": self.at(day, 8),
                    "attributes": {
                        "sample_id": self.number("CY", day),
                        "sample_kg": "1.5",
                        "lab": "徐州市农产品质量安全检验测试中心",
                    },
                }
            ],
        )
        crate_kg = Decimal(100)
        p = self.city.products["cabbage"]
        crates = await self.transform(
            market,
            "repackaging",
            day,
            8.5,
            [(code, crate_kg * 3)],
            [
                {
                    "product": p.goods_code,
                    "quantity": {"value": str(crate_kg), "uom": "KGM"},
                    "produced_on": self.date(day).isoformat(),
                    "expires_on": (self.date(day) + timedelta(days=(p.shelf_life_days or 1) - 1)).isoformat(),
                    "documents": [origin_cert],
                    "attributes": {"harvest_date": self.date(day).isoformat(), "crate": n + 1},
                }
                for n in range(3)
            ],
        )
        supers = self.city.of_type("supermarket")
        await self.distribute(
            day,
            9,
            market,
            [(c, "cabbage", supers[n], crate_kg) for n, c in enumerate(crates)] + parts[:2],
            [origin_cert],
        )
        await self.capture(
            market,
            [
                {
                    "traceCode": code,
                    "bizStep": "inspecting",
                    "disposition": "non_conformant",
                    "eventTime": self.at(day, 16),
                    "documents": [
                        {
                            "type": "pesticide_residue_report",
                            "number": self.number("JC", day),
                            "issuer": "徐州市农产品质量安全检验测试中心",
                        }
                    ],
                    "attributes": {
                        "test": "pesticide_residue",
                        "analyte": "克百威 (carbofuran)",
                        "method": "GB 23200.113-2018",
                        "value": "0.086",
                        "limit": "0.02",
                        "unit": "mg/kg",
                        "result": "fail",
                        "lab": "徐州市农产品质量安全检验测试中心",
                    },
                }
            ],
        )
        self.highlights.add(
            "failed",
            "napa cabbage that failed its pesticide test (carbofuran 0.086 mg/kg, limit "
            "0.02): on hold with the three crates repacked from it",
            code,
        )

    async def received_without_shipment(self, day: int) -> None:
        """A market garden delivers tomatoes straight to a supermarket on paper: the shop records the receipt,
        the farm never records the shipment."""
        farm = self.city.nodes["farm.duanzhuang"]
        shop = self.city.nodes["super.huimin"]
        p = self.city.products["tomato"]
        cert = {"type": "origin_certificate", "number": self.number(f"CD{farm.area}", day, 3)}
        code = await self.open(
            farm,
            {
                "product": p.goods_code,
                "quantity": {"value": "120", "uom": "KGM"},
                "produced_on": self.date(day).isoformat(),
                "eventTime": self.at(day, 6),
                "origin": {"area_code": farm.area, "place": AREAS[farm.area][0], "producer": farm.name},
                "documents": [cert],
                "attributes": {"harvest_date": self.date(day).isoformat()},
            },
        )
        await self.capture(
            shop,
            [
                {
                    "traceCode": code,
                    "bizStep": "receiving",
                    "disposition": "active",
                    "eventTime": self.at(day, 8),
                    "quantity": {"value": "120", "uom": "KGM"},
                    "source": farm.party(),
                    "documents": [cert],
                }
            ],
        )
        await self.capture(shop, self.sales(shop, code, "tomato", Decimal(120), day, 9))
        self.highlights.add(
            "orphan", f"tomatoes received at {shop.name_en} with no shipment on record (delivered on paper)", code
        )

    # -- drugs ----------------------------------------------------------------------------------

    async def drugs_made(self) -> None:
        maker = self.city.nodes["drug.maker"]
        distributors = [self.city.nodes["drug.kangda"], self.city.nodes["drug.subei"]]
        made = self.date(0) - timedelta(days=20)
        for n, p in enumerate(q for q in self.city.products.values() if q.category == "drug"):
            lot = f"{made:%y%m%d}{n + 1:02d}"
            lot_no = 100 + n
            code = await self.open(
                maker,
                {
                    "product": p.goods_code,
                    "quantity": {"value": 600, "uom": "XBX"},
                    "produced_on": made.isoformat(),
                    "expires_on": (made + timedelta(days=p.shelf_life_days or 730)).isoformat(),
                    "eventTime": self.at(0, 8),
                    "identifiers": [
                        {"scheme": "gs1", "gtin": p.gtin, "lot": lot},
                        {"scheme": "drug_code", "value": box_code(p.drug["drug_identity_code"], lot_no, 0)},
                    ],
                    "attributes": {
                        **p.drug,
                        "lot": lot,
                        "boxes_from": box_code(p.drug["drug_identity_code"], lot_no, 1),
                        "boxes_to": box_code(p.drug["drug_identity_code"], lot_no, 600),
                    },
                },
            )
            await self.capture(
                maker,
                [
                    {
                        "traceCode": code,
                        "bizStep": "inspecting",
                        "disposition": "conformant",
                        "eventTime": self.at(0, 8.5),
                        "documents": [{"type": "drug_inspection_report", "number": f"YJ{lot}"}],
                        "attributes": {"test": "release", "result": "pass", "lab": "质量控制部"},
                    },
                    *(
                        {
                            "traceCode": code,
                            "bizStep": "shipping",
                            "disposition": "in_transit",
                            "eventTime": self.at(0, 10 + k),
                            "quantity": {"value": 300, "uom": "XBX"},
                            "destination": d.party(),
                            "commercial": {
                                "unit_price": money(Decimal(p.wholesale) * Decimal("0.8")),
                                "currency": "CNY",
                            },
                            "documents": [{"type": "invoice", "number": self.number("FP", 0, 6)}],
                        }
                        for k, d in enumerate(distributors)
                    ),
                ],
            )
            lot_ = DrugLot(p, code, lot, lot_no)
            self.drug_lots.append(lot_)
            if p.key == "amoxicillin":
                self.highlights.add(
                    "drug",
                    f"a lot of {p.name_en} ({p.name}); box "
                    f"{box_code(p.drug['drug_identity_code'], lot_no, 1)} was dispensed twice",
                    code,
                )
            for k, d in enumerate(distributors):
                await self.capture(
                    d,
                    [
                        {
                            "traceCode": code,
                            "bizStep": "receiving",
                            "disposition": "active",
                            "eventTime": self.at(1, 9 + k + n * 0.1),
                            "quantity": {"value": 300, "uom": "XBX"},
                            "source": maker.party(),
                        }
                    ],
                )
            for k, d in enumerate(distributors):
                await self.capture(
                    d,
                    [
                        {
                            "traceCode": code,
                            "bizStep": "shipping",
                            "disposition": "in_transit",
                            "eventTime": self.at(1, 14 + k + j * 0.1),
                            "quantity": {"value": 60, "uom": "XBX"},
                            "destination": ph.party(),
                            "commercial": {
                                "unit_price": p.wholesale,
                                "amount": money(60 * Decimal(p.wholesale)),
                                "currency": "CNY",
                            },
                        }
                        for j, ph in enumerate(self.pharmacies(d))
                    ],
                )
            for k, d in enumerate(distributors):
                for j, ph in enumerate(self.pharmacies(d)):
                    first = k * 300 + j * 60 + 1
                    lot_.boxes[ph.key] = list(range(first, first + 60))
                    await self.capture(
                        ph,
                        [
                            {
                                "traceCode": code,
                                "bizStep": "receiving",
                                "disposition": "active",
                                "eventTime": self.at(2, 8 + k + j * 0.1 + n * 0.01),
                                "source": d.party(),
                                "quantity": {"value": 60, "uom": "XBX"},
                            }
                        ],
                    )

    def pharmacies(self, distributor: Node) -> list[Node]:
        keys = (
            ["pharmacy.xinglin", "pharmacy.kangning", "pharmacy.jimin"]
            if distributor.key == "drug.kangda"
            else ["pharmacy.yishou", "pharmacy.shoukang"]
        )
        return [self.city.nodes[k] for k in keys]

    async def drugs(self, day: int) -> None:
        if day < 2:
            return
        pending: list[tuple[Party, dict[str, Any]]] = []
        for ph in self.city.of_type("pharmacy"):
            for n in range(2):
                lot = self.drug_lots[0] if (day == 2 and n == 0) else self.rng.choice(self.drug_lots)
                box = lot.boxes[ph.key].pop(0)
                pending.append((ph, self.dispense(lot, box, day, 10 + n * 3 + self.rng.random() * 2)))
            if day == self.test_day and ph.key == "pharmacy.kangning":
                # Box 1 went to Xinglin and was dispensed there on day 2: this one came back (回流药).
                pending.append((ph, self.dispense(self.drug_lots[0], 1, day, 17)))
        await self.in_time_order(pending)

    def dispense(self, lot: DrugLot, box: int, day: int, hour: float) -> dict[str, Any]:
        return {
            "traceCode": lot.code,
            "bizStep": "dispensing",
            "disposition": "dispensed",
            "eventTime": self.at(day, hour),
            "quantity": {"value": 1, "uom": "XBX"},
            "attributes": {"serial": box_code(lot.product.drug["drug_identity_code"], lot.lot_no, box)},
            "commercial": {"unit_price": lot.product.retail, "amount": lot.product.retail, "currency": "CNY"},
        }

    # -- the recall -----------------------------------------------------------------------------

    async def recall(self) -> None:
        assert self.city.regulator is not None
        result = await genealogy.recall(
            self.db,
            self.city.regulator,
            {
                "traceCode": self.recalled,
                "level": "I",
                "reason": "产地监督抽检：该批生猪莱克多巴胺（瘦肉精）检测阳性 / "
                "ractopamine found in the farm's samples of these pigs",
                "scope": "徐州市全市",
            },
        )
        self._count(len(result["batches"]))
        for stall, sale in self.deferred:  # an offline scale comes back and syncs a sale made before the recall
            await self.capture(stall, [sale])
