"""The demo story's recorder: the city, the seeded generator, the calendar, and the calls into the services.

Every event of the story goes through the services the API uses (``capture``, ``genealogy``), one
request at a time, as the stations would send them. The flows (meat, vegetables, drugs) build on this.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stdnum import luhn

from traceability.demo.city import City, Node, Product, Stall
from traceability.services import capture, genealogy, sales
from traceability.storage.database import Database

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


class Recorder:
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
        self.receipts: list[tuple[str, str, str]] = []  # (stall or shop code, source batch, receipt code)
        self.drug_lots: list[DrugLot] = []
        self.recall_day = days - 3
        self.expiry_day = days - 5
        self.test_day = days - 2
        self.paper_day = days - 4
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

    async def sell(self, who: Party, body: dict[str, Any]) -> str:
        """A sale at a stall's scale or a shop's till: its receipt code, opened as a child of the source."""
        sold = await sales.sell(self.db, who.scanner, {"eventID": self.eid(), **body}, self.public_url)
        self._count(2)
        self.receipts.append((who.code, body["source"], sold.trace_code))
        return sold.trace_code

    async def in_time_order(self, items: list[tuple[Party, dict[str, Any]]]) -> None:
        """Capture events of several devices so that each batch's chain runs forward in time: sorted by
        event time, consecutive events of one device in one request; a sale with a receipt (it names its
        ``source`` batch, and no ``traceCode``: the sale issues that) goes through the sales operation."""
        items = sorted(items, key=lambda item: datetime.fromisoformat(item[1]["eventTime"]))
        run: list[dict[str, Any]] = []
        who: Party | None = None
        for party, event in items:
            receipt = "traceCode" not in event  # a sale with a receipt names its source batch, not a trace code
            if (party is not who or receipt) and run:
                assert who is not None
                await self.capture(who, run)
                run = []
            if receipt:
                await self.sell(party, event)
                who = None
                continue
            who = party
            run.append(event)
        if who is not None and run:
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
        """A sale by weight that prints a receipt: recorded with :meth:`sell` (it names its ``source``)."""
        price = Decimal(self.city.products[product].retail)
        return {
            "source": code,
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
