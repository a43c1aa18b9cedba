"""The demo's drugs: lots from the manufacturer through two distributors to five pharmacies, box by box."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from traceability.demo.city import Node
from traceability.demo.recorder import DrugLot, Party, Recorder, box_code, money


class DrugFlows(Recorder):
    """The lots made before the story starts, dispensed from the third day on; one box dispensed twice."""

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
