"""The registered world: enterprises, nodes, operators (stalls), products and scanner devices.

Validation only; the registry lives in the database. Area codes are checked against the GB/T 2260
table python-stdnum ships (``cn/loc``), unified social credit codes (统一社会信用代码, GB 32100) by
their check character, GTINs by the GS1 mod-10 check digit.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from stdnum import ean, numdb
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

from traceability.domain import bounds, pinyin
from traceability.domain.fields import Fields

# MOFCOM circulation node types (肉菜流通追溯体系) plus origin bases and the drug chain.
NODE_TYPES = frozenset(
    {
        "farm",
        "slaughterhouse",
        "processor",
        "wholesale_market",
        "wholesaler",
        "wet_market",
        "supermarket",
        "canteen",
        "drug_manufacturer",
        "drug_distributor",
        "pharmacy",
        "hospital",
        "pasture",  # 牧场: dairy herds, opens raw-milk lots (traceability.domain.dairy)
        "milk_station",  # 生鲜乳收购站 (收奶站): receives, tests and ships raw milk
        "dairy_plant",  # 乳品厂: tests, pools and processes raw milk
        "testing_lab",  # 检测机构: records inspections and sampling on any batch (traceability.domain.custody)
    }
)
PRODUCT_CATEGORIES = frozenset({"meat", "vegetable", "dairy", "drug", "other"})

_GOODS_CODE = re.compile(r"[0-9A-Za-z\-]{1,32}")
_CODE = re.compile(r"[0-9A-Za-z\-_.]{1,40}")
_loc = numdb.get("cn/loc")


@functools.lru_cache(maxsize=4096)
def area_name(code: str) -> str | None:
    """The Chinese name of a GB/T 2260 area code (``320302`` → ``江苏省徐州市鼓楼区``), or None if unknown."""
    return "".join(area_levels(code)) or None


AREAS_EN = Path(__file__).with_name("areas_en.json")
"""Every area code's English name (:func:`english_area_names`, written by ``python -m traceability.domain.registry``):
read from this table, because pypinyin, which spells them, takes about 56 MB once loaded and 70 us a name."""


def area_name_en(code: str) -> str | None:
    """The same in English as addresses write it, the smallest place first (``320302`` → ``Gulou District,
    Xuzhou, Jiangsu``), or None if unknown: the county or district with its kind, the city and province by name."""
    return _areas_en().get(code)


def short_area_name_en(code: str, short: str) -> str:
    """The English of ``short``, the last levels of an area's Chinese name (``鼓楼区`` of ``320302`` → ``Gulou
    District``; ``徐州市鼓楼区`` → ``Gulou District, Xuzhou``); ``short`` itself when the code is unknown."""
    levels, english = area_levels(code), area_name_en(code)
    if not levels or english is None:
        return short
    parts = english.split(", ")  # one for each level, the smallest first
    for k in range(1, len(levels) + 1):
        if "".join(levels[-k:]) == short:
            return ", ".join(parts[:k])
    return parts[0]


@functools.cache
def _areas_en() -> dict[str, str]:
    table: dict[str, str] = orjson.loads(AREAS_EN.read_bytes())
    return table


def english_area_names() -> dict[str, str]:
    """Every area code GB/T 2260 (as python-stdnum holds it) names, and its English name, spelled with pypinyin."""
    # numdb's tree of the file: each province's two digits, under it the four of each of its areas.
    codes = [province[1] + area[1] for province in _loc.prefixes for area in province[4]]
    return {c: en for c in dict.fromkeys(codes) if (en := _spelled_en(c)) is not None}


def _spelled_en(code: str) -> str | None:
    levels = area_levels(code)
    if not levels:
        return None
    names = [_PROVINCES_EN.get(levels[0]) or _bare_en(levels[0])]
    names += [_bare_en(n) for n in levels[1:-1]]
    if len(levels) > 1:
        names.append(pinyin.place_name_en(levels[-1]))
    return ", ".join(reversed(names))


_PROVINCES_EN = {
    "内蒙古自治区": "Inner Mongolia",
    "广西壮族自治区": "Guangxi",
    "西藏自治区": "Xizang",
    "宁夏回族自治区": "Ningxia",
    "新疆维吾尔自治区": "Xinjiang",
    "香港特别行政区": "Hong Kong",
    "澳门特别行政区": "Macao",
    "陕西省": "Shaanxi",
}
"""Province-level names not written as the pinyin of the name without 省 or 市 (陕西 is Shaanxi, not Shanxi)."""


def _bare_en(name: str) -> str:
    """A province's or city's name in English without its kind (``江苏省`` → ``Jiangsu``, ``徐州市`` → ``Xuzhou``)."""
    for suffix in ("省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return pinyin.place_name_en(name[: -len(suffix)])
    return pinyin.place_name_en(name)


@functools.lru_cache(maxsize=4096)
def area_levels(code: str) -> tuple[str, ...]:
    """The names of the levels of a GB/T 2260 area code, the province first (``320302`` → ``江苏省``, ``徐州市``,
    ``鼓楼区``); empty if the code is unknown."""
    if not re.fullmatch(r"[1-8][0-9]{5}", code):
        return ()
    names: list[str] = []
    for level in dict.fromkeys((code[:2] + "0000", code[:4] + "00", code)):
        parts = _loc.info(level)
        found = [v for k, v in parts[-1][1].items() if k in ("province", "county")]
        if not found:
            if level == code:
                return ()
            continue
        # Entries carry their history ("郊区,[1993-]泉山区"): the current name is the last one.
        name = re.sub(r"^\[[^\]]*\]", "", found[-1].split(",")[-1])
        if name not in names and name not in ("市辖区", "县"):
            names.append(name)
    return tuple(names)


def validate_uscc(value: str) -> str:
    """Return the normalized unified social credit code or raise ValueError naming the problem."""
    try:
        return str(_uscc.validate(value))
    except ValidationError as exc:
        raise ValueError(f"not a valid unified social credit code (统一社会信用代码): {exc}") from None


def validate_gtin(value: str) -> str:
    """Return the GTIN padded to 14 digits or raise ValueError naming the problem."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise ValueError("a GTIN has 8, 12, 13 or 14 digits")
    if not ean.is_valid(digits):
        raise ValueError("the GTIN check digit does not match")
    return digits.zfill(14)


@dataclass(frozen=True, slots=True)
class EnterpriseIn:
    name: str
    uscc: str
    name_en: str | None
    contact: str | None
    licences: dict[str, str]


@dataclass(frozen=True, slots=True)
class NodeIn:
    enterprise_uscc: str
    node_type: str
    area_code: str
    name_zh: str
    name_en: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    code: str | None
    gln: str | None


@dataclass(frozen=True, slots=True)
class OperatorIn:
    node_code: str
    code: str
    name: str
    stall_no: str | None
    contact: str | None


@dataclass(frozen=True, slots=True)
class ProductIn:
    category: str
    goods_code: str
    name_zh: str
    name_en: str | None
    gtin: str | None
    default_uom: str | None
    shelf_life_days: int | None


@dataclass(frozen=True, slots=True)
class DeviceIn:
    node_code: str
    name: str
    operator_code: str | None


def parse_enterprise(body: Any) -> EnterpriseIn:
    """Validate an enterprise registration body."""
    f = Fields(body)
    name = f.text("name", max_len=200)
    code = f.check("uscc", f.text("uscc", max_len=18), validate_uscc)
    licences_raw = f.obj("licences", required=False) or {}
    licences: dict[str, str] = {}
    if len(licences_raw) > bounds.MAX_DOCUMENTS:
        f.fail("licences", f"must have at most {bounds.MAX_DOCUMENTS} licences")
    for key, val in licences_raw.items():
        if bounds.text_problem(key, 40) is not None or not key.strip():
            f.fail("licences", "keys name a licence kind: 1-40 characters, no control or invisible characters")
        if not isinstance(val, str) or not val.strip() or bounds.text_problem(val, bounds.DOCUMENT_NUMBER):
            f.fail(f"licences.{key}", "must be a licence number (text, at most 64 characters, no control characters)")
        licences[key] = val.strip()
    return EnterpriseIn(
        name=name,
        uscc=code,
        name_en=f.text("name_en", required=False, max_len=200),
        contact=f.text("contact", required=False, max_len=200),
        licences=licences,
    )


def parse_node(body: Any) -> NodeIn:
    """Validate a node registration body."""
    f = Fields(body)
    node_type = f.choice("type", NODE_TYPES)
    area = f.text("area_code", max_len=6)
    if area_name(area) is None:
        f.fail("area_code", "must be a 6-digit GB/T 2260 administrative area code, e.g. 320300")
    lat = f.number("latitude", bounds.LATITUDE, required=False)
    lon = f.number("longitude", bounds.LONGITUDE, required=False)
    code = f.text("code", required=False, max_len=40)
    if code is not None and not _CODE.fullmatch(code):
        f.fail("code", "may hold letters, digits, '-', '_' and '.' only")
    gln = f.text("gln", required=False, max_len=13)
    if gln is not None and not (len(gln) == 13 and ean.is_valid(gln)):
        f.fail("gln", "must be a 13-digit GLN with a valid check digit")
    return NodeIn(
        enterprise_uscc=f.check("enterprise", f.text("enterprise", max_len=18), validate_uscc),
        node_type=node_type,
        area_code=area,
        name_zh=f.text("name", max_len=200),
        name_en=f.text("name_en", required=False, max_len=200),
        address=f.text("address", required=False, max_len=400),
        latitude=float(lat) if lat is not None else None,
        longitude=float(lon) if lon is not None else None,
        code=code,
        gln=gln,
    )


def parse_operator(body: Any) -> OperatorIn:
    """Validate an operator (stall) registration body."""
    f = Fields(body)
    code = f.text("code", max_len=40)
    if not _CODE.fullmatch(code):
        f.fail("code", "may hold letters, digits, '-', '_' and '.' only")
    return OperatorIn(
        node_code=f.text("node", max_len=40),
        code=code,
        name=f.text("name", max_len=200),
        stall_no=f.text("stall_no", required=False, max_len=40),
        contact=f.text("contact", required=False, max_len=200),
    )


def parse_product(body: Any) -> ProductIn:
    """Validate a product registration body."""
    from traceability.domain.events import UNITS  # the unit list lives with the events that use it

    f = Fields(body)
    goods_code = f.text("goods_code", max_len=32)
    if not _GOODS_CODE.fullmatch(goods_code):
        f.fail("goods_code", "may hold letters, digits and '-' only")
    gtin = f.text("gtin", required=False, max_len=14)
    uom = f.text("default_uom", required=False, max_len=3)
    if uom is not None and uom not in UNITS:
        f.fail("default_uom", f"must be a UN/ECE unit code: {', '.join(sorted(UNITS))}")
    shelf = f.integer("shelf_life_days", required=False, lo=1, hi=36500)
    return ProductIn(
        category=f.choice("category", PRODUCT_CATEGORIES),
        goods_code=goods_code,
        name_zh=f.text("name", max_len=200),
        name_en=f.text("name_en", required=False, max_len=200),
        gtin=f.check("gtin", gtin, validate_gtin) if gtin is not None else None,
        default_uom=uom,
        shelf_life_days=shelf,
    )


def parse_device(body: Any) -> DeviceIn:
    """Validate a scanner device registration body."""
    f = Fields(body)
    return DeviceIn(
        node_code=f.text("node", max_len=40),
        name=f.text("name", max_len=120),
        operator_code=f.text("operator", required=False, max_len=40),
    )


if __name__ == "__main__":  # python -m traceability.domain.registry: write AREAS_EN again (pypinyin or stdnum changed)
    AREAS_EN.write_bytes(orjson.dumps(english_area_names(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    sys.exit(0)
