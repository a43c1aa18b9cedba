"""The demo's farms with production records, and its dairy chain from a pasture to the supermarkets.

Two farms keep production records (生产记录): a vegetable farm spraying and manuring its plots, and a pig
farm treating and vaccinating its pens. One of the pig farm's pens is treated with enrofloxacin two days
before the farm tries to send it to slaughter: the opening is refused inside the withdrawal period (休药期);
the farm insists (its reason is recorded), so the lot is flagged at the farm and at the slaughterhouse that
receives it, whose residue test then fails and holds it. The dairy chain: a pasture's herd gives a
raw-milk lot every day, a collection station (收奶站) tests it, the dairy plant pasteurises and
UHT-treats it, and two supermarkets sell the bottles and cartons, cold-chain readings on every leg.

The registry of inputs starts with :data:`STARTER_INPUTS`: their intervals come from the sources named
in each ``source``; their registration numbers are fictional (year 2099), like the enterprises.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from traceability import errors
from traceability.demo.city import AREAS, City, Node, Product, make_uscc
from traceability.demo.recorder import Recorder
from traceability.services import farm, principals, registry
from traceability.storage.database import Database

LABEL = "农药标签与 GB/T 8321《农药合理使用准则》所列该剂型在叶菜上的安全间隔期"
WITHDRAWAL = "农业部公告第278号（2003）《兽药停药期规定》"
STARTER_INPUTS: list[dict[str, Any]] = [
    {
        "registration_no": "PD20990101",
        "kind": "pesticide",
        "name": "阿维菌素 1.8% 乳油",
        "name_en": "Abamectin 1.8% EC",
        "active_ingredient": "阿维菌素",
        "applies_to": "叶菜（小菜蛾）",
        "interval_days": 7,
        "source": f"{LABEL}：7 天",
    },
    {
        "registration_no": "PD20990102",
        "kind": "pesticide",
        "name": "百菌清 75% 可湿性粉剂",
        "name_en": "Chlorothalonil 75% WP",
        "active_ingredient": "百菌清",
        "applies_to": "蔬菜",
        "interval_days": 7,
        "source": f"{LABEL}：7 天",
    },
    {
        "registration_no": "兽药字(2099)100010001",
        "kind": "veterinary_drug",
        "name": "恩诺沙星注射液",
        "name_en": "Enrofloxacin injection",
        "active_ingredient": "恩诺沙星",
        "applies_to": "猪",
        "interval_days": 10,
        "source": f"{WITHDRAWAL}：恩诺沙星注射液，猪 10 日",
    },
    {
        "registration_no": "兽药字(2099)100010002",
        "kind": "veterinary_drug",
        "name": "伊维菌素注射液",
        "name_en": "Ivermectin injection",
        "active_ingredient": "伊维菌素",
        "applies_to": "猪",
        "interval_days": 28,
        "source": f"{WITHDRAWAL}：伊维菌素注射液，猪 28 日",
    },
    {
        "registration_no": "兽药生字(2099)100010003",
        "kind": "vaccine",
        "name": "猪瘟活疫苗",
        "name_en": "Classical swine fever live vaccine",
        "applies_to": "猪",
        "interval_days": 0,
    },
]
ENROFLOXACIN = "兽药字(2099)100010001"
ABAMECTIN, CHLOROTHALONIL = "PD20990101", "PD20990102"

# (key, node type, area, Chinese name, English name, kind): ``kind`` keeps them out of the other flows.
NODES = [
    ("farm.fengyuan", "farm", "320321", "丰县丰园蔬菜种植家庭农场", "Fengyuan Family Vegetable Farm", "plots"),
    ("farm.weiji", "farm", "320324", "睢宁县魏集生猪养殖场", "Weiji Pig Farm", "pens"),
    ("pasture.weishan", "pasture", "320322", "沛县微山湖奶牛牧场", "Weishan Lake Dairy Pasture", "dairy"),
    ("milk.hanwang", "milk_station", "320322", "沛县汉王生鲜乳收购站", "Hanwang Raw-Milk Collection Station", "dairy"),
    ("dairy.pengcheng", "dairy_plant", "320312", "徐州彭城乳业有限公司", "Pengcheng Dairy Co.", "dairy"),
]
PRODUCTS = [
    Product("raw_milk", "dairy", "23110001", "生牛乳", "Raw cow's milk", "KGM", 2),
    Product("fresh_milk", "dairy", "23120001", "巴氏杀菌乳", "Pasteurised milk", "LTR", 7, "9.0", "14.0"),
    Product("uht_milk", "dairy", "23120002", "超高温灭菌乳", "UHT milk", "KGM", 180, "8.0", "12.0"),
]


async def register_farms(db: Database, city: City) -> None:
    """Register the recording farms, the dairy chain's nodes, the dairy products and the starter inputs."""
    for i, (key, node_type, area, name, name_en, kind) in enumerate(NODES):
        node = Node(key, node_type, area, name, name_en, kind, make_uscc(name, area))
        contact = f"0516-8{(i * 6151 + 7654321) % 10**7:07d}"
        await registry.register_enterprise(
            db, {"name": name, "uscc": node.uscc, "name_en": name_en, "contact": contact}
        )
        body = {"enterprise": node.uscc, "type": node_type, "area_code": area, "name": name, "name_en": name_en}
        node.code = (await registry.register_node(db, {**body, "address": f"江苏省徐州市{AREAS[area][0]}"}))["code"]
        device = await registry.register_device(db, {"node": node.code, "name": f"{name_en} scanner"})
        node.device = await principals.authenticate(db, device["credential"])
        city.nodes[key] = node
    for p in PRODUCTS:
        row = await registry.register_product(
            db,
            {
                "category": p.category,
                "goods_code": p.goods_code,
                "name": p.name,
                "name_en": p.name_en,
                "default_uom": p.uom,
                "shelf_life_days": p.shelf_life_days,
            },
        )
        city.products[p.key] = p
        city.product_ids[p.key] = int(row["id"])
    for entry in STARTER_INPUTS:
        await farm.register_input_product(db, entry)


class FarmFlows(Recorder):
    """Production records, the withdrawal period caught at the pig farm, and the dairy chain."""

    caught: list[str]
    """The plots and pens whose harvest or slaughter the safety-interval rule refused."""
    farm_rng: random.Random
    """These flows' own generator, so the rest of the story draws what it drew before they were added."""

    @contextlib.contextmanager
    def own_rng(self) -> Iterator[None]:
        story, self.rng = self.rng, self.farm_rng
        try:
            yield
        finally:
            self.rng = story

    async def record_input(self, farm_node: Node, body: dict[str, Any]) -> None:
        await farm.record_input(self.db, farm_node.scanner, {"record_id": self.eid(), **body})

    async def farm_records(self) -> None:
        """The season's records: manure and sprays on the plots, feed, vaccine and treatments in the pens."""
        self.caught = []
        # Seeded from the story generator's state without drawing from it.
        self.farm_rng = random.Random(str(self.rng.getstate()[1][:8]))  # noqa: S311 - not secrets
        with self.own_rng():
            await self._farm_records()

    async def _farm_records(self) -> None:
        veg, pigs, pasture = (self.city.nodes[k] for k in ("farm.fengyuan", "farm.weiji", "pasture.weishan"))
        before = self.date(0) - timedelta(days=12)
        for plot in ("A-1", "A-2"):
            manure = {"unit": plot, "unit_kind": "plot", "kind": "fertiliser", "product": "腐熟羊粪有机肥"}
            await self.record_input(veg, {**manure, "dose": {"value": "1500", "uom": "KGM"}, "applied_on": str(before)})
        spray = {"unit": "A-2", "unit_kind": "plot", "kind": "pesticide", "dose": {"value": "50", "uom": "MLT"}}
        await self.record_input(veg, {**spray, "registration_no": CHLOROTHALONIL, "applied_on": str(before)})
        for pen in ("P-1", "P-2"):
            base = {"unit": pen, "unit_kind": "pen", "animals": 12}
            feed = {**base, "kind": "feed", "product": "育肥猪配合饲料", "dose": {"value": "900", "uom": "KGM"}}
            await self.record_input(pigs, {**feed, "applied_on": str(before)})
            vaccine = {**base, "kind": "vaccine", "registration_no": "兽药生字(2099)100010003"}
            await self.record_input(pigs, {**vaccine, "dose": {"value": "12", "uom": "HEA"}, "applied_on": str(before)})
        hay = {"unit": "H-1", "unit_kind": "herd", "kind": "feed", "product": "全株玉米青贮与苜蓿干草"}
        await self.record_input(pasture, {**hay, "applied_on": str(before)})

    async def plots(self, day: int) -> None:
        """The vegetable farm: A-1 sprayed three days before the end, A-2 harvested two days before it."""
        with self.own_rng():
            await self._plots(day)

    async def _plots(self, day: int) -> None:
        veg = self.city.nodes["farm.fengyuan"]
        if day == self.days - 3:
            spray = {"unit": "A-1", "unit_kind": "plot", "kind": "pesticide", "dose": {"value": "40", "uom": "MLT"}}
            await self.record_input(veg, {**spray, "registration_no": ABAMECTIN, "applied_on": str(self.date(day))})
        if day != self.days - 2:
            return
        try:  # A-1 is inside abamectin's safety interval: the harvest is refused
            await self.open(veg, self._harvest(day, "A-1"))
        except errors.InsideSafetyInterval:
            self.caught.append("A-1")
        code = await self.open(veg, self._harvest(day, "A-2"))
        shop = self.city.nodes["super.huimin"]
        await self.ship_and_receive(day, 6, veg, shop, [(code, Decimal(300), "spinach")], [])
        await self.in_time_order([(shop, self.sale(shop, code, "spinach", Decimal("1.20"), day, 9))])
        self.highlights.add("farm", "spinach from a plot whose inputs the consumer page lists", code)

    def _harvest(self, day: int, plot: str) -> dict[str, Any]:
        veg = self.city.nodes["farm.fengyuan"]
        return {
            "product": self.city.products["spinach"].goods_code,
            "quantity": {"value": "300", "uom": "KGM"},
            "produced_on": self.date(day).isoformat(),
            "eventTime": self.at(day, 5),
            "origin": {"area_code": veg.area, "place": AREAS[veg.area][0], "producer": veg.name, "unit": plot},
            "documents": [{"type": "origin_certificate", "number": self.number(f"CD{veg.area}", day, 3)}],
            "attributes": {"harvest_date": self.date(day).isoformat()},
        }

    async def pens(self, day: int) -> None:
        """Pen P-1 treated with enrofloxacin, sent to slaughter two days later inside its withdrawal period."""
        with self.own_rng():
            await self._pens(day)

    async def _pens(self, day: int) -> None:
        pigs, plant = self.city.nodes["farm.weiji"], self.city.nodes["slaughter.pengcheng"]
        if day == self.days - 4:
            treat = {"unit": "P-1", "unit_kind": "pen", "kind": "veterinary_drug", "animals": 3}
            dose = {"value": "7.5", "uom": "MLT"}
            await self.record_input(
                pigs, {**treat, "registration_no": ENROFLOXACIN, "dose": dose, "applied_on": str(self.date(day))}
            )
        if day != self.days - 2:
            return
        cert = [{"type": "quarantine_certificate", "number": f"A{pigs.area}{day:06d}"}]
        body: dict[str, Any] = {
            "product": self.city.products["live_pig"].goods_code,
            "quantity": {"value": "1380", "uom": "KGM"},
            "produced_on": self.date(day).isoformat(),
            "eventTime": self.at(day, 4),
            "origin": {"area_code": pigs.area, "place": AREAS[pigs.area][0], "producer": pigs.name, "unit": "P-1"},
            "documents": cert,
            "attributes": {"head_count": 12},
        }
        try:
            await self.open(pigs, body)
        except errors.InsideSafetyInterval:
            self.caught.append("P-1")
        reason = "栏舍漏雨，猪只应激，养殖户坚持出栏 / the pen flooded and the farmer insisted on selling"
        code = await self.open(pigs, {**body, "insist": {"reason": reason}})
        await self.ship_and_receive(day, 5, pigs, plant, [(code, Decimal(1380), "live_pig")], cert)
        residue = {
            "test": "veterinary_drug_residue",
            "method": "恩诺沙星残留快速检测（尿样）",
            "value": "0.32",
            "limit": "0.1",
            "unit": "mg/kg",
            "result": "fail",
            "lab": f"{plant.name}检验室",
        }
        test = {"traceCode": code, "bizStep": "inspecting", "disposition": "non_conformant", "attributes": residue}
        await self.capture(plant, [{**test, "eventTime": self.at(day, 7)}])
        self.highlights.add("withdrawal", "pigs sent inside enrofloxacin's withdrawal period, flagged and held", code)

    async def dairy(self, day: int) -> None:
        """A raw-milk lot from the pasture, tested at the station, processed at the plant, sold at two shops."""
        with self.own_rng():
            await self._dairy(day)

    async def _dairy(self, day: int) -> None:
        pasture, station, plant = (self.city.nodes[k] for k in ("pasture.weishan", "milk.hanwang", "dairy.pengcheng"))
        kg = self.kg(1800, 2200).quantize(Decimal(1))
        lot = await self.open(
            pasture,
            {
                "product": "23110001",
                "quantity": {"value": str(kg), "uom": "KGM"},
                "produced_on": self.date(day).isoformat(),
                "eventTime": self.at(day, 3),
                "origin": {"area_code": pasture.area, "place": AREAS[pasture.area][0], "unit": "H-1"},
                "attributes": {"heat_treatment": "raw"},
            },
        )
        await self._leg(day, 3.5, pasture, station, lot, kg, (3.2, 3.6))
        test = {
            "test": "raw_milk",
            "protein": str(self.kg(3.0, 3.4)),
            "fat": str(self.kg(3.5, 4.2)),
            "total_bacteria": self.rng.randint(80, 400) * 1000,
            "somatic_cells": self.rng.randint(150, 380) * 1000,
            "melamine": "0",
            "antibiotics": "negative",
            "result": "pass",
            "lab": f"{station.name}化验室",
        }
        inspect = {"traceCode": lot, "bizStep": "inspecting", "disposition": "conformant", "attributes": test}
        await self.capture(station, [{**inspect, "eventTime": self.at(day, 4.6)}])
        await self._leg(day, 5, station, plant, lot, kg, (3.8, 4.0))
        litres = (kg * Decimal("0.55") / Decimal("1.03")).quantize(Decimal(1))
        uht = (kg * Decimal("0.4")).quantize(Decimal(1))
        batch = f"{self.date(day):%Y%m%d}"
        fresh, carton = await self.transform(
            plant,
            "commissioning",
            day,
            7,
            [(lot, kg)],
            [
                {
                    "product": "23120001",
                    "quantity": {"value": str(litres), "uom": "LTR"},
                    "produced_on": self.date(day).isoformat(),
                    "expires_on": (self.date(day) + timedelta(days=6)).isoformat(),
                    "attributes": {
                        "heat_treatment": "pasteurised",
                        "treatment_celsius": 75,
                        "holding_seconds": 15,
                        "process_batch": f"P{batch}",
                    },
                },
                {
                    "product": "23120002",
                    "quantity": {"value": str(uht), "uom": "KGM"},
                    "produced_on": self.date(day).isoformat(),
                    "expires_on": (self.date(day) + timedelta(days=179)).isoformat(),
                    "attributes": {
                        "heat_treatment": "uht",
                        "treatment_celsius": 137,
                        "holding_seconds": 4,
                        "process_batch": f"U{batch}",
                    },
                },
            ],
        )
        shop = self.city.nodes["super.wanjiafu" if day % 2 else "super.hanfeng"]
        await self._leg(day, 9, plant, shop, fresh, Decimal(120), (4.0, 4.6, 5.1), "LTR")
        await self._leg(day, 9.2, plant, shop, carton, Decimal(80), (18.5, 19.0))
        price = Decimal(self.city.products["fresh_milk"].retail)
        sale = {
            "source": fresh,
            "eventTime": self.at(day, 11),
            "quantity": {"value": "2", "uom": "LTR"},
            "commercial": {"unit_price": str(price), "amount": str(price * 2), "currency": "CNY"},
        }
        await self.in_time_order([(shop, sale)])
        if day == self.days - 2:
            self.highlights.add("dairy", "pasteurised milk from the pasture, tested and kept cold", fresh)

    async def _leg(
        self,
        day: int,
        hour: float,
        sender: Node,
        receiver: Node,
        code: str,
        amount: Decimal,
        celsius: tuple[float, ...],
        uom: str = "KGM",
    ) -> None:
        """Ship and receive with the truck's temperature readings (sensor data) on the shipment."""
        readings = [
            {"at": self.at(day, hour + 0.2 * i), "celsius": str(Decimal(str(c)))} for i, c in enumerate(celsius)
        ]
        quantity = {"value": str(amount), "uom": uom}
        ship = {"traceCode": code, "bizStep": "shipping", "disposition": "in_transit", "quantity": quantity}
        await self.capture(
            sender,
            [
                {
                    **ship,
                    "eventTime": self.at(day, hour),
                    "destination": receiver.party(),
                    "attributes": {"temperatures": readings},
                }
            ],
        )
        receive = {"traceCode": code, "bizStep": "receiving", "disposition": "active", "quantity": quantity}
        await self.capture(receiver, [{**receive, "eventTime": self.at(day, hour + 0.8), "source": sender.party()}])
