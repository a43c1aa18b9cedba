"""The demo's vegetables: origin bases to the vegetable wholesale market to stalls and shops, a failed test,
and a delivery nobody recorded shipping."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from traceability import errors
from traceability.demo.city import AREAS
from traceability.demo.recorder import Party, Recorder


class VegetableFlows(Recorder):
    """Three lots a day; the lab's failed pesticide test; tomatoes delivered on paper."""

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

    async def delivered_on_paper(self, day: int) -> None:
        """A market garden delivers tomatoes straight to a supermarket with a paper voucher. The shop's
        scanner tries to record the receipt first and is refused (custody: no shipment names the shop);
        the farm then records its shipment from the voucher, and the shop's receipt goes through."""
        farm = self.city.nodes["farm.duanzhuang"]
        shop = self.city.nodes["super.huimin"]
        p = self.city.products["tomato"]
        cert = {"type": "origin_certificate", "number": self.number(f"CD{farm.area}", day, 3)}
        voucher = {"type": "despatch_advice", "number": self.number("ZD", day, 5)}
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
        receipt_id = self.eid()  # the shop's scanner resends the same receipt once the shipment is on record
        receipt = {
            "eventID": receipt_id,
            "traceCode": code,
            "bizStep": "receiving",
            "disposition": "active",
            "eventTime": self.at(day, 8),
            "quantity": {"value": "120", "uom": "KGM"},
            "source": farm.party(),
            "documents": [cert, voucher],
        }
        try:
            await self.capture(shop, [receipt])
        except errors.CustodyRefused as refusal:
            assert refusal.code == "not_destination", refusal.code
        else:
            raise AssertionError("a receipt with no shipment on record was accepted")
        shipment = {
            "eventID": str(uuid.uuid5(uuid.UUID(receipt_id), "shipment")),
            "traceCode": code,
            "bizStep": "shipping",
            "disposition": "in_transit",
            "eventTime": self.at(day, 7),
            "quantity": {"value": "120", "uom": "KGM"},
            "destination": shop.party(),
            "documents": [cert, voucher],
        }
        await self.capture(farm, [shipment])
        await self.capture(shop, [receipt])
        await self.in_time_order([(shop, sale) for sale in self.sales(shop, code, "tomato", Decimal(120), day, 9)])
        self.highlights.add(
            "paper",
            f"tomatoes delivered to {shop.name_en} on paper: its receipt was refused until the farm recorded "
            "the shipment",
            code,
        )
