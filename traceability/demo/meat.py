"""The demo's meat: a farm's live animals slaughtered into carcasses, cut into joints, and sold by weight."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from traceability.demo.city import AREAS, Node
from traceability.demo.recorder import CENT, Party, Recorder


class MeatFlows(Recorder):
    """Pork every day, chicken every day, beef every third day."""

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
            receipt = next(r for _, source, r in reversed(self.receipts) if source == cuts["shoulder"])
            self.highlights.add(
                "receipt",
                f"a shopper's receipt from stall {s3.code} ({s3.name}): the pork shoulder's whole journey from "
                f"{farm.name_en} ({farm.name}), its certificates, the stall, the weight and the time of the sale",
                receipt,
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
            await self.sell(stall, self.sale(stall, code, "chicken", Decimal("1.60"), self.days - 1, 9.5))
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
