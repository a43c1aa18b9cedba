"""Dairy (乳制品): raw-milk tests, heat treatment and the cold chain. Pure code, no I/O.

The chain: a pasture (牧场) opens raw-milk lots (生乳) from its herds, which the production-record
rule checks like any animal product (a cow treated inside its withdrawal period gives no milk for
sale); a raw-milk collection station (收奶站) receives and tests them; a dairy plant (乳品厂) tests,
pools them and makes pasteurised or UHT products in transformations (mass balance in kilograms, a
litre of milk counted as :data:`LITRE_KG`); supermarkets sell them. Everything is documented in
docs/supply-chain.md with where each limit comes from.

Raw-milk test (``bizStep`` inspecting, ``attributes.test = "raw_milk"``): the measured values are
checked against :data:`RAW_MILK_LIMITS`; one outside its limit fails the test, which holds the lot
and everything made from it. A ``result`` of ``pass`` that a value contradicts is refused.

Cold chain (``attributes.temperatures``: ``[{"at": RFC 3339, "celsius": n}]``, up to 200 readings on
any event): the analyzer flags a reading above the batch's storage limit (:func:`storage_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from traceability.domain import bounds
from traceability.domain.fields import Fields, to_decimal

LITRE_KG = Decimal("1.03")
"""Kilograms per litre of milk, for mass balance (GB 19301-2010 asks a relative density of at least 1.027)."""
TEMPERATURE = bounds.Number(Decimal(-60), Decimal(200), 2)
MAX_READINGS = 200


@dataclass(frozen=True, slots=True)
class Limit:
    """One measured quantity of a raw-milk test: its bounds and where they come from."""

    unit: str
    bound: bounds.Number
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    source: str = ""


RAW_MILK_LIMITS: dict[str, Limit] = {
    "protein": Limit(
        "g/100g", bounds.Number(Decimal(0), Decimal(100), 3), minimum=Decimal("2.8"), source="GB 19301-2010"
    ),
    "fat": Limit("g/100g", bounds.Number(Decimal(0), Decimal(100), 3), minimum=Decimal("3.1"), source="GB 19301-2010"),
    "total_bacteria": Limit(
        "CFU/mL", bounds.Number(Decimal(0), Decimal(10**12), 0), maximum=Decimal(2_000_000), source="GB 19301-2010"
    ),
    "somatic_cells": Limit("cells/mL", bounds.Number(Decimal(0), Decimal(10**9), 0)),
    "melamine": Limit(
        "mg/kg",
        bounds.Number(Decimal(0), Decimal(10**6), 4),
        maximum=Decimal("2.5"),
        source="卫生部等 5 部门公告 2011 年第 10 号",
    ),
}
"""Somatic cells are recorded without a limit: GB 19301-2010 sets none."""
ANTIBIOTICS = frozenset({"negative", "positive"})
HEAT_TREATMENTS = frozenset({"raw", "pasteurised", "uht", "sterilised"})
UHT_MIN_CELSIUS = Decimal(132)
"""GB 25190-2010 defines UHT milk as heated in continuous flow to at least 132 °C."""
STORAGE_MAX_CELSIUS: dict[str, Decimal | None] = {
    "raw": Decimal(4),  # raw milk cooled to 0–4 °C after milking and kept so in transport (生鲜乳生产收购管理办法)
    "pasteurised": Decimal(6),  # sold chilled; labels ask for 2–6 °C
    "uht": None,  # shelf-stable
    "sterilised": None,
}


def check_raw_milk(f: Fields, result: str | None) -> bool:
    """Validate a raw-milk test's values; True if every one is within its limit (and antibiotics negative)."""
    failed: list[str] = []
    measured = 0
    for name, limit in RAW_MILK_LIMITS.items():
        value = f.number(name, limit.bound, required=False)
        if value is None:
            continue
        measured += 1
        if (limit.minimum is not None and value < limit.minimum) or (
            limit.maximum is not None and value > limit.maximum
        ):
            failed.append(name)
    antibiotics = f.choice("antibiotics", ANTIBIOTICS, required=False)
    if antibiotics is not None:
        measured += 1
        if antibiotics == "positive":
            failed.append("antibiotics")
    if not measured:
        f.fail("test", "a raw_milk test records at least one of: " + ", ".join([*RAW_MILK_LIMITS, "antibiotics"]))
    if failed and result == "pass":
        f.fail("result", f"cannot be pass: {', '.join(failed)} outside the raw-milk limits")
    return not failed


def raw_milk_measures(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """A raw-milk test's values with their limits and whether each is within, for pages."""
    out = []
    for name, limit in RAW_MILK_LIMITS.items():
        value = to_decimal(attrs.get(name))
        if value is None:
            continue
        ok = not (
            (limit.minimum is not None and value < limit.minimum)
            or (limit.maximum is not None and value > limit.maximum)
        )
        bound = f"≥ {limit.minimum}" if limit.minimum is not None else f"≤ {limit.maximum}" if limit.maximum else ""
        out.append({"name": name, "value": str(attrs.get(name)), "unit": limit.unit, "limit": bound, "ok": ok})
    if attrs.get("antibiotics") in ANTIBIOTICS:
        ok = attrs["antibiotics"] == "negative"
        out.append({"name": "antibiotics", "value": attrs["antibiotics"], "unit": "", "limit": "negative", "ok": ok})
    return out


def check_opening(f: Fields) -> None:
    """A dairy batch's opening key data: heat treatment, its batch, temperature and holding time."""
    treatment = f.choice("heat_treatment", HEAT_TREATMENTS, required=False)
    f.text("process_batch", required=False, max_len=bounds.CODE)
    celsius = f.number("treatment_celsius", TEMPERATURE, required=False)
    f.integer("holding_seconds", required=False, lo=1, hi=86_400)
    if treatment == "uht" and celsius is not None and celsius < UHT_MIN_CELSIUS:
        f.fail("treatment_celsius", f"UHT means at least {UHT_MIN_CELSIUS} °C (GB 25190-2010)")
    if treatment in ("pasteurised", "uht", "sterilised") and f.data.get("process_batch") is None:
        f.fail("process_batch", f"is required: the {treatment} batch (杀菌批号) the product came from")


def check_readings(f: Fields) -> None:
    """Cold-chain readings: ``temperatures`` as ``[{"at": RFC 3339 with an offset, "celsius": n}]``."""
    items = f.array("temperatures", required=False, max_items=MAX_READINGS)
    for i, item in enumerate(items or []):
        g = Fields(item, f"{f.path('temperatures')}[{i}].")
        g.only(frozenset({"at", "celsius"}))
        try:
            bounds.parse_rfc3339(g.text("at", max_len=40))
        except bounds.TimeFormatError as exc:
            g.fail("at", str(exc))
        g.number("celsius", TEMPERATURE)


def storage_limit(opening_attributes: dict[str, Any]) -> Decimal | None:
    """The warmest a dairy batch may be kept, from its opening's heat treatment (raw milk when unstated)."""
    treatment = opening_attributes.get("heat_treatment")
    return STORAGE_MAX_CELSIUS.get(treatment if isinstance(treatment, str) else "raw", STORAGE_MAX_CELSIUS["raw"])


def breaches(readings: Any, limit: Decimal) -> list[dict[str, Any]]:
    """The readings warmer than ``limit`` (malformed items are skipped: capture refused those)."""
    out = []
    for item in readings if isinstance(readings, list) else ():
        value = to_decimal(item.get("celsius")) if isinstance(item, dict) else None
        if value is not None and value > limit:
            out.append({"at": item.get("at"), "celsius": str(item.get("celsius"))})
    return out
