"""A small sample ledger: a pork chain and a vegetable chain in Xuzhou (320300), one drug lot.

Everything goes through the same services the API uses, as registered scanner devices would.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from stdnum.cn import uscc

from traceability import errors
from traceability.domain.access import Principal
from traceability.services import capture, principals, registry
from traceability.storage.database import Database

ORG_CODES = {
    "farm": "MA1XW0001",
    "slaughter": "MA1XW0002",
    "wholesale": "MA1XW0003",
    "market": "MA1XW0004",
    "vegfarm": "MA1XW0005",
    "supermarket": "MA1XW0006",
}

ENTERPRISES = {
    "farm": ("丰县丰润生猪养殖合作社", "Fengrun Pig Farming Co-operative", "320321"),
    "slaughter": ("徐州彭城肉类联合加工厂", "Pengcheng Meat Processing Plant", "320311"),
    "wholesale": ("徐州七里沟农副产品批发市场", "Qiligou Wholesale Market", "320303"),
    "market": ("徐州鼓楼菜市场", "Gulou Wet Market", "320302"),
    "vegfarm": ("沛县南郊蔬菜基地", "Peixian South Vegetable Base", "320322"),
    "supermarket": ("徐州彭城惠民超市", "Pengcheng Huimin Supermarket", "320311"),
}
NODE_TYPE = {"farm": "farm", "slaughter": "slaughterhouse", "wholesale": "wholesale_market",
             "market": "wet_market", "vegfarm": "farm", "supermarket": "supermarket"}


def make_uscc(area: str, org: str) -> str:
    body = f"91{area}{org}"
    return body + str(uscc.calc_check_digit(body))


async def load_demo(db: Database, *, seed: int = 1, public_url: str = "") -> list[tuple[str, str]]:
    """Register the sample world and record its flows; returns (label, trace code) pairs."""
    rng = random.Random(seed)

    def eid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    devices: dict[str, Principal] = {}
    for key, (name, name_en, area) in ENTERPRISES.items():
        code = make_uscc(area, ORG_CODES[key])
        try:
            await registry.register_enterprise(db, {"name": name, "name_en": name_en, "uscc": code})
        except errors.AlreadyExists:
            raise errors.Conflict("the demo data is already loaded in this database") from None
        node = await registry.register_node(db, {
            "enterprise": code, "type": NODE_TYPE[key], "area_code": area, "name": name, "name_en": name_en})
        operator = None
        if key == "market":
            await registry.register_operator(db, {"node": node["code"], "code": "A-012", "name": "王记鲜肉",
                                                  "stall_no": "A-012"})
            operator = "A-012"
        device = await registry.register_device(db, {"node": node["code"], "name": f"{name_en} scanner",
                                                     "operator": operator})
        devices[key] = await principals.authenticate(db, device["credential"])
    await registry.register_product(db, {"category": "meat", "goods_code": "21113011", "name": "白条猪肉",
                                         "name_en": "Pork carcass", "default_uom": "KGM", "shelf_life_days": 5})
    await registry.register_product(db, {"category": "vegetable", "goods_code": "22101001", "name": "大白菜",
                                         "name_en": "Napa cabbage", "default_uom": "KGM", "shelf_life_days": 14})

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)

    def at(hours: float) -> str:
        return (start + timedelta(hours=hours)).astimezone(
            timezone(timedelta(hours=8))).isoformat()

    out: list[tuple[str, str]] = []
    weight = round(rng.uniform(80, 95), 1)
    pork = await capture.open_batch(db, devices["slaughter"], {
        "eventID": eid(), "product": "21113011", "quantity": {"value": weight, "uom": "KGM"},
        "produced_on": start.date().isoformat(), "eventTime": at(0),
        "origin": {"area_code": "320321", "place": "丰县", "producer": ENTERPRISES["farm"][0]},
        "documents": [{"type": "quarantine_certificate", "number": f"3203{rng.randrange(10**8):08d}"},
                      {"type": "meat_inspection_certificate", "number": f"PC{rng.randrange(10**6):06d}"}],
        "attributes": {"head_count": 1, "slaughter_date": start.date().isoformat()},
    }, public_url)
    voucher = f"QLG{rng.randrange(10**6):06d}"
    market_uscc = make_uscc(ENTERPRISES["market"][2], ORG_CODES["market"])
    flows: list[tuple[str, dict[str, Any]]] = [
        ("slaughter", {"bizStep": "inspecting", "disposition": "conformant", "eventTime": at(1)}),
        ("slaughter", {"bizStep": "shipping", "disposition": "in_transit", "eventTime": at(4),
                       "quantity": {"value": weight, "uom": "KGM"},
                       "destination": {"name": ENTERPRISES["wholesale"][0]}}),
        ("wholesale", {"bizStep": "receiving", "disposition": "active", "eventTime": at(6),
                       "quantity": {"value": weight, "uom": "KGM"},
                       "documents": [{"type": "trade_voucher", "number": voucher}]}),
        ("wholesale", {"bizStep": "shipping", "disposition": "in_transit", "eventTime": at(20),
                       "destination": {"enterprise": market_uscc, "name": ENTERPRISES["market"][0]},
                       "commercial": {"unit_price": "24.60", "currency": "CNY"},
                       "documents": [{"type": "trade_voucher", "number": voucher}]}),
        ("market", {"bizStep": "receiving", "disposition": "active", "eventTime": at(22),
                    "documents": [{"type": "trade_voucher", "number": voucher}]}),
        ("market", {"bizStep": "retail_selling", "disposition": "retail_sold", "eventTime": at(30),
                    "quantity": {"value": "1.25", "uom": "KGM"},
                    "commercial": {"unit_price": "32.00", "amount": "40.00", "currency": "CNY"}}),
    ]
    for who, event in flows:
        await capture.capture_events(db, devices[who], {"eventID": eid(), "traceCode": pork.trace_code, **event},
                                     1000)
    out.append(("pork: slaughterhouse → wholesale → stall A-012", pork.trace_code))

    cabbage = await capture.open_batch(db, devices["vegfarm"], {
        "eventID": eid(), "product": "22101001", "quantity": {"value": 500, "uom": "KGM"},
        "produced_on": start.date().isoformat(), "eventTime": at(2),
        "origin": {"area_code": "320322", "place": "沛县南郊"},
        "documents": [{"type": "origin_certificate", "number": f"PX{rng.randrange(10**6):06d}"}],
    }, public_url)
    for who, event in [
        ("vegfarm", {"bizStep": "inspecting", "disposition": "conformant", "eventTime": at(3),
                     "documents": [{"type": "pesticide_residue_report", "number": f"NC{rng.randrange(10**5):05d}"}],
                     "attributes": {"test": "pesticide_residue", "method": "GB/T 5009.199",
                                    "value": "12.0", "limit": "50", "result": "pass"}}),
        ("vegfarm", {"bizStep": "shipping", "disposition": "in_transit", "eventTime": at(5)}),
        ("supermarket", {"bizStep": "receiving", "disposition": "active", "eventTime": at(9),
                         "documents": [{"type": "vegetable_test_certificate",
                                        "number": f"SC{rng.randrange(10**5):05d}"}]}),
    ]:
        await capture.capture_events(db, devices[who], {"eventID": eid(), "traceCode": cabbage.trace_code,
                                                        **event}, 1000)
    out.append(("cabbage: farm → supermarket, pesticide test passed", cabbage.trace_code))
    return out
