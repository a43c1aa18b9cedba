"""The demo city: Xuzhou (320300), its farms, slaughterhouses, markets, stalls, shops and pharmacies.

The enterprises are fictional; the county codes (GB/T 2260), the shape of the unified social credit
codes (GB 32100, check character computed), goods codes, GTINs (GS1 China prefix 69, check digit
computed) and drug approval numbers follow the real formats. The city is the same for every seed;
the seed only changes what flows through it. Registration goes through the registry services, as
an administrator would do it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from stdnum import ean
from stdnum.cn import uscc

from traceability.domain.access import Principal
from traceability.services import principals, registry
from traceability.storage.database import Database

AREAS: dict[str, tuple[str, float, float]] = {
    "320302": ("鼓楼区", 34.29, 117.19),
    "320303": ("云龙区", 34.25, 117.23),
    "320305": ("贾汪区", 34.44, 117.46),
    "320311": ("泉山区", 34.24, 117.16),
    "320312": ("铜山区", 34.18, 117.17),
    "320321": ("丰县", 34.70, 116.60),
    "320322": ("沛县", 34.72, 116.94),
    "320324": ("睢宁县", 33.91, 117.94),
    "320381": ("新沂市", 34.37, 118.35),
    "320382": ("邳州市", 34.33, 117.96),
}

# (key, node type, area, Chinese name, English name, what it produces or handles)
NODES: list[tuple[str, str, str, str, str, str]] = [
    # Pig, cattle and poultry farms.
    ("farm.fengrun", "farm", "320321", "丰县丰润生猪养殖专业合作社", "Fengrun Pig Farmers' Co-operative", "pig"),
    ("farm.hanyuan", "farm", "320322", "沛县汉源生猪养殖场", "Hanyuan Pig Farm", "pig"),
    ("farm.taoyuan", "farm", "320324", "睢宁县桃园生态养殖有限公司", "Taoyuan Eco Farming Co.", "pig"),
    ("farm.malingshan", "farm", "320381", "新沂市马陵山牧业有限公司", "Malingshan Livestock Co.", "pig"),
    ("farm.aishan", "farm", "320382", "邳州市艾山生猪养殖场", "Aishan Pig Farm", "pig"),
    ("farm.dapeng", "farm", "320312", "铜山区大彭生猪养殖专业合作社", "Dapeng Pig Farmers' Co-operative", "pig"),
    ("farm.zizhuang", "farm", "320305", "贾汪区紫庄养殖场", "Zizhuang Livestock Farm", "pig"),
    ("farm.huashan", "farm", "320321", "丰县华山生猪养殖场", "Huashan Pig Farm", "pig"),
    ("farm.shaji", "farm", "320324", "睢宁县沙集肉牛养殖场", "Shaji Beef Cattle Farm", "cattle"),
    ("farm.caoqiao", "farm", "320381", "新沂市草桥肉牛养殖专业合作社", "Caoqiao Beef Cattle Co-operative", "cattle"),
    ("farm.tiefu", "farm", "320382", "邳州市铁富家禽养殖场", "Tiefu Poultry Farm", "chicken"),
    ("farm.liuquan", "farm", "320312", "铜山区柳泉肉鸡养殖场", "Liuquan Broiler Farm", "chicken"),
    # Vegetable origin bases.
    ("farm.nanjiao", "farm", "320322", "沛县南郊蔬菜基地", "Peixian South Vegetable Base", "vegetable"),
    ("farm.dashahe", "farm", "320321", "丰县大沙河蔬菜基地", "Dashahe Vegetable Base", "vegetable"),
    ("farm.yizhuang", "farm", "320312", "铜山区伊庄蔬菜种植专业合作社", "Yizhuang Vegetable Co-operative", "vegetable"),
    (
        "farm.qingshanquan",
        "farm",
        "320305",
        "贾汪区青山泉设施蔬菜基地",
        "Qingshanquan Greenhouse Vegetables",
        "vegetable",
    ),
    ("farm.guanhu", "farm", "320382", "邳州市官湖蔬菜基地", "Guanhu Vegetable Base", "vegetable"),
    ("farm.hegou", "farm", "320381", "新沂市合沟蔬菜种植专业合作社", "Hegou Vegetable Co-operative", "vegetable"),
    ("farm.gupi", "farm", "320324", "睢宁县古邳马铃薯基地", "Gupi Potato Base", "vegetable"),
    ("farm.duanzhuang", "farm", "320311", "泉山区段庄城郊菜园", "Duanzhuang Market Garden", "vegetable"),
    # Slaughterhouses.
    (
        "slaughter.pengcheng",
        "slaughterhouse",
        "320311",
        "徐州彭城肉类联合加工厂",
        "Pengcheng Meat Packing Plant",
        "pig",
    ),
    (
        "slaughter.huaihai",
        "slaughterhouse",
        "320312",
        "徐州淮海清真牛羊屠宰有限公司",
        "Huaihai Halal Cattle Abattoir",
        "cattle",
    ),
    (
        "slaughter.subei",
        "slaughterhouse",
        "320382",
        "徐州苏北禽业屠宰有限公司",
        "Subei Poultry Processing Co.",
        "chicken",
    ),
    # Wholesale markets.
    (
        "wholesale.huaihai",
        "wholesale_market",
        "320303",
        "徐州淮海农副产品批发市场",
        "Huaihai Agricultural Wholesale Market",
        "meat",
    ),
    (
        "wholesale.pengcheng",
        "wholesale_market",
        "320311",
        "徐州彭城蔬菜批发市场",
        "Pengcheng Vegetable Wholesale Market",
        "vegetable",
    ),
    # Wet markets (each with six stalls).
    ("market.huanghe", "wet_market", "320302", "鼓楼区黄河菜市场", "Huanghe Wet Market", ""),
    ("market.xiadian", "wet_market", "320302", "鼓楼区下淀菜市场", "Xiadian Wet Market", ""),
    ("market.minzhu", "wet_market", "320303", "云龙区民主路菜市场", "Minzhu Road Wet Market", ""),
    ("market.daguozhuang", "wet_market", "320303", "云龙区大郭庄菜市场", "Daguozhuang Wet Market", ""),
    ("market.hubin", "wet_market", "320311", "泉山区湖滨菜市场", "Hubin Wet Market", ""),
    ("market.zhaishan", "wet_market", "320311", "泉山区翟山菜市场", "Zhaishan Wet Market", ""),
    ("market.tongshan", "wet_market", "320312", "铜山新区菜市场", "Tongshan New District Wet Market", ""),
    ("market.jiawang", "wet_market", "320305", "贾汪中心菜市场", "Jiawang Central Wet Market", ""),
    ("market.dongguan", "wet_market", "320382", "邳州东关菜市场", "Pizhou Dongguan Wet Market", ""),
    ("market.xinhua", "wet_market", "320381", "新沂新华菜市场", "Xinyi Xinhua Wet Market", ""),
    # Supermarkets and canteens (团体消费单位).
    ("super.huimin", "supermarket", "320311", "徐州惠民生鲜超市（泉山店）", "Huimin Fresh Supermarket, Quanshan", ""),
    ("super.wanjiafu", "supermarket", "320303", "徐州万家福超市（云龙店）", "Wanjiafu Supermarket, Yunlong", ""),
    ("super.hanfeng", "supermarket", "320312", "徐州汉风生鲜超市（铜山店）", "Hanfeng Fresh Market, Tongshan", ""),
    ("canteen.school", "canteen", "320302", "徐州市第十一中学学生食堂", "No. 11 Middle School Canteen", ""),
    (
        "canteen.office",
        "canteen",
        "320312",
        "徐州经济技术开发区机关食堂",
        "Economic Development Zone Office Canteen",
        "",
    ),
    # The drug chain.
    ("drug.maker", "drug_manufacturer", "320312", "徐州淮海制药有限公司", "Huaihai Pharmaceutical Co.", ""),
    ("drug.kangda", "drug_distributor", "320311", "徐州康达医药有限公司", "Kangda Pharmaceutical Distribution Co.", ""),
    ("drug.subei", "drug_distributor", "320382", "徐州苏北医药物流有限公司", "Subei Medicine Logistics Co.", ""),
    ("pharmacy.xinglin", "pharmacy", "320302", "徐州杏林大药房（中山店）", "Xinglin Pharmacy, Zhongshan Road", ""),
    ("pharmacy.kangning", "pharmacy", "320303", "徐州康宁大药房（云龙店）", "Kangning Pharmacy, Yunlong", ""),
    ("pharmacy.jimin", "pharmacy", "320311", "徐州济民大药房（泉山店）", "Jimin Pharmacy, Quanshan", ""),
    ("pharmacy.yishou", "pharmacy", "320312", "铜山益寿堂药店", "Yishoutang Pharmacy, Tongshan", ""),
    ("pharmacy.shoukang", "pharmacy", "320382", "邳州寿康大药房", "Shoukang Pharmacy, Pizhou", ""),
]

# Stalls at each wet market: (stall number, trade, Chinese trade name, English trade name).
STALLS = [
    ("A-01", "pork", "鲜肉", "fresh pork"),
    ("A-02", "pork", "猪肉", "pork"),
    ("A-03", "meat", "牛肉禽类", "beef and poultry"),
    ("B-01", "vegetable", "蔬菜", "vegetables"),
    ("B-02", "vegetable", "时蔬", "seasonal vegetables"),
    ("B-03", "vegetable", "果蔬", "greens"),
]
SURNAMES = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("赵", "Zhao"),
    ("黄", "Huang"),
    ("周", "Zhou"),
    ("吴", "Wu"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("梁", "Liang"),
    ("宋", "Song"),
    ("郑", "Zheng"),
]


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    category: str
    goods_code: str
    name: str
    name_en: str
    uom: str
    shelf_life_days: int | None
    wholesale: str = "0"  # CNY per unit
    retail: str = "0"
    gtin: str | None = None
    drug: dict[str, str] = field(default_factory=dict)


def gtin(body12: str) -> str:
    """A GS1 China GTIN-13 (prefix 69) from its first 12 digits, padded to 14."""
    return ("0" + body12 + ean.calc_check_digit(body12)).zfill(14)


PRODUCTS = [
    Product("live_pig", "meat", "21111001", "生猪", "Live pigs", "KGM", None, "15.60"),
    Product("carcass", "meat", "21113011", "白条猪肉", "Pork carcass", "KGM", 5, "23.80", "30.00"),
    Product("shoulder", "meat", "21113021", "猪前腿肉", "Pork shoulder", "KGM", 4, "25.60", "32.00"),
    Product("ham", "meat", "21113022", "猪后腿肉", "Pork leg", "KGM", 4, "26.40", "33.00"),
    Product("belly", "meat", "21113023", "五花肉", "Pork belly", "KGM", 4, "29.80", "37.60"),
    Product("ribs", "meat", "21113024", "猪排骨", "Pork ribs", "KGM", 4, "38.00", "48.00"),
    Product("live_cattle", "meat", "21121001", "活牛", "Live cattle", "KGM", None, "32.00"),
    Product("beef", "meat", "21121011", "鲜牛肉（四分体）", "Beef quarter", "KGM", 7, "62.00", "78.00"),
    Product("live_chicken", "meat", "21131001", "活鸡", "Live chickens", "KGM", None, "9.20"),
    Product("chicken", "meat", "21131011", "白条鸡", "Dressed chicken", "KGM", 3, "14.20", "19.60"),
    Product("cabbage", "vegetable", "22101001", "大白菜", "Napa cabbage", "KGM", 14, "1.20", "2.00"),
    Product("spinach", "vegetable", "22101002", "菠菜", "Spinach", "KGM", 3, "4.00", "6.00"),
    Product("tomato", "vegetable", "22102001", "番茄", "Tomato", "KGM", 7, "4.20", "6.40"),
    Product("cucumber", "vegetable", "22102002", "黄瓜", "Cucumber", "KGM", 5, "3.00", "4.60"),
    Product("potato", "vegetable", "22103001", "马铃薯", "Potato", "KGM", 30, "1.80", "2.80"),
    Product(
        "amoxicillin",
        "drug",
        "86901231",
        "阿莫西林胶囊",
        "Amoxicillin capsules 0.25 g × 24",
        "XBX",
        730,
        "8.50",
        "15.80",
        gtin("690123400011"),
        {
            "approval_number": "国药准字H32020458",
            "drug_identity_code": "8690123",
            "dosage_form": "胶囊剂",
            "strength": "0.25g",
            "package_spec": "0.25g×24粒/盒",
        },
    ),
    Product(
        "ibuprofen",
        "drug",
        "86901232",
        "布洛芬缓释胶囊",
        "Ibuprofen SR capsules 0.3 g × 20",
        "XBX",
        730,
        "9.80",
        "18.50",
        gtin("690123400028"),
        {
            "approval_number": "国药准字H32026126",
            "drug_identity_code": "8690124",
            "dosage_form": "胶囊剂",
            "strength": "0.3g",
            "package_spec": "0.3g×20粒/盒",
        },
    ),
    Product(
        "cefixime",
        "drug",
        "86901233",
        "头孢克肟分散片",
        "Cefixime dispersible tablets 0.1 g × 6",
        "XBX",
        730,
        "12.60",
        "26.00",
        gtin("690123400035"),
        {
            "approval_number": "国药准字H20093175",
            "drug_identity_code": "8690125",
            "dosage_form": "片剂",
            "strength": "0.1g",
            "package_spec": "0.1g×6片/盒",
        },
    ),
    Product(
        "ganmaoling",
        "drug",
        "86901234",
        "感冒灵颗粒",
        "Ganmaoling granules 10 g × 9",
        "XBX",
        540,
        "7.20",
        "13.50",
        gtin("690123400042"),
        {
            "approval_number": "国药准字Z32020719",
            "drug_identity_code": "8690126",
            "dosage_form": "颗粒剂",
            "strength": "10g",
            "package_spec": "10g×9袋/盒",
        },
    ),
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z


def make_uscc(name: str, area: str) -> str:
    """A well-formed unified social credit code for a fictional enterprise (check character computed).

    ``93`` registers a farmers' co-operative, ``91`` a company; the organisation part is derived
    from the name, so the same name always gets the same code."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    org = "MA"
    for _ in range(7):
        digest, i = divmod(digest, len(USCC_ALPHABET))
        org += USCC_ALPHABET[i]
    body = ("93" if "合作社" in name else "91") + area + org
    return body + uscc.calc_check_digit(body)


@dataclass(slots=True)
class Node:
    key: str
    node_type: str
    area: str
    name: str
    name_en: str
    kind: str
    uscc: str
    code: str = ""
    device: Principal | None = None
    stalls: list[Stall] = field(default_factory=list)

    @property
    def scanner(self) -> Principal:
        assert self.device is not None
        return self.device

    def party(self) -> dict[str, str]:
        """How events name this node as a source or destination."""
        return {"enterprise": self.uscc, "node": self.code, "name": self.name}


@dataclass(slots=True)
class Stall:
    market: Node
    code: str
    trade: str
    name: str
    name_en: str
    device: Principal | None = None

    @property
    def scanner(self) -> Principal:
        assert self.device is not None
        return self.device

    def party(self) -> dict[str, str]:
        return {**self.market.party(), "operator": self.code}


@dataclass(slots=True)
class City:
    nodes: dict[str, Node]
    products: dict[str, Product]
    product_ids: dict[str, int] = field(default_factory=dict)
    regulator: Principal | None = None

    def of_type(self, node_type: str, kind: str | None = None) -> list[Node]:
        return [n for n in self.nodes.values() if n.node_type == node_type and (kind is None or n.kind == kind)]

    def stalls(self, trade: str | None = None) -> list[Stall]:
        return [s for n in self.of_type("wet_market") for s in n.stalls if trade is None or s.trade == trade]

    def scanners(self) -> dict[int, Principal]:
        """Every registered scanner by its id: the nodes' and the stalls'."""
        nodes = [n.device for n in self.nodes.values()]
        stalls = [s.device for n in self.nodes.values() for s in n.stalls]
        return {d.id: d for d in nodes + stalls if d is not None}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes.values():
            out[n.node_type] = out.get(n.node_type, 0) + 1
        out["stalls"] = len(self.stalls())
        out["scanners"] = len(self.nodes) + out["stalls"]
        out["products"] = len(self.products)
        return out


def plan() -> City:
    """The city as data, before anything is registered."""
    nodes = {
        key: Node(key, t, area, name, name_en, kind, make_uscc(name, area))
        for key, t, area, name, name_en, kind in NODES
    }
    for m, market in enumerate(n for n in nodes.values() if n.node_type == "wet_market"):
        for s, (no, trade, trade_zh, trade_en) in enumerate(STALLS):
            zh, en = SURNAMES[(m * 5 + s * 7) % len(SURNAMES)]
            market.stalls.append(Stall(market, no, trade, f"{zh}记{trade_zh}", f"{en}'s {trade_en}"))
    return City(nodes, {p.key: p for p in PRODUCTS})


def first_uscc() -> str:
    """The USCC of the first enterprise the demo registers (its presence means the demo is loaded)."""
    _, _, area, name, *_ = NODES[0]
    return make_uscc(name, area)


async def register_city(db: Database) -> City:
    """Register every enterprise, node, stall, product and scanner of the city; return it with credentials
    resolved to principals (the credentials themselves are never printed)."""
    city = plan()
    for i, node in enumerate(city.nodes.values()):
        _, lat, lon = AREAS[node.area]
        # Fictional numbers in Xuzhou's format (area code 0516), so a recall has someone to call.
        body: dict[str, Any] = {
            "name": node.name,
            "uscc": node.uscc,
            "name_en": node.name_en,
            "contact": f"0516-8{(i * 7919 + 1234567) % 10**7:07d}",
        }
        if node.node_type in ("drug_manufacturer", "drug_distributor", "pharmacy"):
            body["licences"] = {"drug": f"苏{'AB'[i % 2]}{20190000 + i * 37:08d}"}
        elif node.node_type in ("wet_market", "supermarket", "canteen", "wholesale_market"):
            body["licences"] = {"food": f"JY1{node.area}{i * 7919 % 10**7:07d}"}
        await registry.register_enterprise(db, body)
        registered = await registry.register_node(
            db,
            {
                "enterprise": node.uscc,
                "type": node.node_type,
                "area_code": node.area,
                "name": node.name,
                "name_en": node.name_en,
                "address": f"江苏省徐州市{AREAS[node.area][0]}",
                "latitude": round(lat + ((i * 37) % 21 - 10) * 0.004, 4),
                "longitude": round(lon + ((i * 53) % 21 - 10) * 0.004, 4),
            },
        )
        node.code = registered["code"]
        node.device = await _device(db, node.code, f"{node.name_en} scanner", None)
        for stall in node.stalls:
            mobile = f"139{(i * 104729 + int(stall.code[-2:]) * 7727) % 10**8:08d}"
            await registry.register_operator(
                db,
                {"node": node.code, "code": stall.code, "name": stall.name, "stall_no": stall.code, "contact": mobile},
            )
            stall.device = await _device(db, node.code, f"{node.name_en} stall {stall.code} scale", stall.code)
    for p in city.products.values():
        row = await registry.register_product(
            db,
            {
                "category": p.category,
                "goods_code": p.goods_code,
                "name": p.name,
                "name_en": p.name_en,
                "default_uom": p.uom,
                **({"shelf_life_days": p.shelf_life_days} if p.shelf_life_days else {}),
                **({"gtin": p.gtin} if p.gtin else {}),
            },
        )
        city.product_ids[p.key] = int(row["id"])
    token, _ = await principals.create_token(db, "regulator", "徐州市市场监督管理局")
    city.regulator = await principals.authenticate(db, token)
    return city


async def _device(db: Database, node_code: str, name: str, operator: str | None) -> Principal:
    device = await registry.register_device(db, {"node": node_code, "name": name, "operator": operator})
    return await principals.authenticate(db, device["credential"])
