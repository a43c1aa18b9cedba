"""Production records at the farm (生产记录) and the safety-interval rule (安全间隔期 / 休药期).

A farm's scanner records what went into a field plot (地块), a pen (栏舍) or a herd (畜群): pesticide
applications, fertiliser, feed and feed additives, veterinary drugs and vaccines. Each input named by a
registration number (农药登记证号, 兽药批准文号, 饲料添加剂批准文号) takes its safety interval from the
registry of inputs the administrator keeps; the record keeps its own copy of the interval and of the
first day harvest or slaughter is allowed again (``safe_from``), so a later change to the registry never
changes what was recorded.

The rule (docs/supply-chain.md): a batch opened from a unit (harvest, animals sent to slaughter, raw
milk) on a day before some input's ``safe_from`` is refused, unless the farm insists with a reason; then
it is accepted, the inputs it violates travel on the batch's opening event, and the analyzer raises a
serious anomaly at the farm and at every node that receives the batch or what is made from it.

Pure code: no I/O. Words for people live in ``traceability/i18n``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from traceability.domain import bounds
from traceability.domain.batches import date_field
from traceability.domain.fields import BEIJING, Fields, decimal_text

INPUT_KINDS = frozenset({"pesticide", "fertiliser", "feed", "feed_additive", "veterinary_drug", "vaccine"})
"""What a production record is about; their names are in traceability/i18n (``input_kind``)."""
UNIT_KINDS = frozenset({"plot", "pen", "herd"})
"""Where an input went: a field plot (地块), a pen (栏舍) or a herd (畜群)."""
FOR_CROPS = frozenset({"pesticide", "fertiliser"})
FOR_ANIMALS = frozenset({"feed", "feed_additive", "veterinary_drug", "vaccine"})
REGISTERED = frozenset({"pesticide", "feed_additive", "veterinary_drug", "vaccine"})
"""Kinds that must name a registration number found in the registry of inputs (it gives the interval)."""
DOSE_UNITS = frozenset({"KGM", "GRM", "MGM", "LTR", "MLT", "HEA"})
"""UN/ECE units a dose is given in (HEA: doses counted one per animal)."""
FARM_NODES = frozenset({"farm", "pasture"})
"""Node types that keep production records and whose openings the rule checks."""
RULED_CATEGORIES = frozenset({"vegetable", "meat", "dairy", "other"})
"""Product categories whose batches come from plots, pens or herds (drugs do not)."""

DOSE = bounds.Number(Decimal(0), Decimal(10**9), 6)
MAX_INTERVAL_DAYS = 3650
MAX_RECORD_AGE = timedelta(days=3 * 366)
"""A record dated more than about three years back is a typing error, not a late record."""
MAX_INPUTS_ON_OPENING = 20
"""Inputs an opening event carries: the most recent ones of its unit."""
LOOKBACK_DAYS = 365
"""Inputs applied up to this many days before the opening travel on it (the consumer page shows them)."""

_UNIT_CODE = re.compile(r"[0-9A-Za-z\-_.]{1,40}")
_PESTICIDE_NO = re.compile(r"(PD|LS|WP|WL)[0-9A-Z]{6,10}")
_VET_NO = re.compile(r"兽药(生)?字\s?[(（]\d{4}[)）]\s?\d{6,10}")
_FEED_ADDITIVE_NO = re.compile(r"饲添字\s?[(（]\d{4}[)）]\s?\d{3,10}")


def today_in_china(moment: datetime) -> date:
    """The Beijing calendar day of a moment."""
    return moment.astimezone(BEIJING).date()


def check_registration(kind: str, value: str) -> str:
    """The registration number if it has the form its kind's authority issues, else ValueError saying which."""
    if kind == "pesticide" and not _PESTICIDE_NO.fullmatch(value):
        raise ValueError("a 农药登记证号 looks like PD20080001 (PD, LS, WP or WL and digits)")
    if kind in ("veterinary_drug", "vaccine") and not _VET_NO.fullmatch(value):
        raise ValueError("a 兽药批准文号 looks like 兽药字(2019)010012345 (兽药生字 for vaccines)")
    if kind == "feed_additive" and not _FEED_ADDITIVE_NO.fullmatch(value):
        raise ValueError("a 饲料添加剂批准文号 looks like 饲添字(2020)0123")
    return value


@dataclass(frozen=True, slots=True)
class InputProductIn:
    """An entry of the registry of inputs, as the administrator registers it."""

    registration_no: str
    kind: str
    name_zh: str
    name_en: str | None
    active_ingredient: str | None
    applies_to: str | None
    interval_days: int
    source: str | None


def parse_input_product(body: Any) -> InputProductIn:
    """Validate a registry entry: the interval needs a source (where the number comes from) unless it is 0."""
    f = Fields(body)
    f.only(
        frozenset(
            {"registration_no", "kind", "name", "name_en", "active_ingredient", "applies_to", "interval_days"}
            | {"source"}
        )
    )
    kind = f.choice("kind", INPUT_KINDS)
    reg = f.check(
        "registration_no", f.text("registration_no", max_len=bounds.CODE), lambda v: check_registration(kind, v)
    )
    interval = f.integer("interval_days", lo=0, hi=MAX_INTERVAL_DAYS)
    source = f.text("source", required=False, max_len=bounds.LONG_TEXT)
    if interval > 0 and source is None:
        f.fail("source", "is required for an interval: the label, standard or announcement it comes from")
    return InputProductIn(
        registration_no=reg,
        kind=kind,
        name_zh=f.text("name", max_len=bounds.NAME),
        name_en=f.text("name_en", required=False, max_len=bounds.NAME),
        active_ingredient=f.text("active_ingredient", required=False, max_len=bounds.NAME),
        applies_to=f.text("applies_to", required=False, max_len=bounds.NAME),
        interval_days=interval,
        source=source,
    )


@dataclass(frozen=True, slots=True)
class InputRecordDraft:
    """A production record as the farm's scanner sent it, validated; the interval is filled in from the registry."""

    record_id: str
    unit: str
    unit_kind: str
    kind: str
    registration_no: str | None
    product: str | None
    active_ingredient: str | None
    dose: dict[str, str] | None
    animals: int | None
    applied_on: date
    note: str | None
    content: dict[str, Any]
    """The record in canonical form (what a resend is compared with)."""


RECORD_FIELDS = frozenset(
    {"record_id", "unit", "unit_kind", "kind", "registration_no", "product", "active_ingredient", "dose"}
    | {"animals", "applied_on", "note"}
)


def parse_input_record(body: Any, now: datetime) -> InputRecordDraft:
    """Validate a production record: what went into which plot, pen or herd, how much and when."""
    f = Fields(body)
    f.only(RECORD_FIELDS)
    try:
        record_id = str(uuid.UUID(f.text("record_id", max_len=64)))
    except ValueError:
        f.fail("record_id", "must be a UUID (it makes retries safe)")
    unit = f.text("unit", max_len=bounds.CODE)
    if not _UNIT_CODE.fullmatch(unit):
        f.fail("unit", "names the plot, pen or herd: letters, digits, '-', '_' and '.' only")
    unit_kind = f.choice("unit_kind", UNIT_KINDS)
    kind = f.choice("kind", INPUT_KINDS)
    if kind in FOR_CROPS and unit_kind != "plot":
        f.fail("unit_kind", f"a {kind} record goes to a plot")
    if kind in FOR_ANIMALS and unit_kind == "plot":
        f.fail("unit_kind", f"a {kind.replace('_', ' ')} record goes to a pen or a herd")
    reg = f.text("registration_no", required=kind in REGISTERED, max_len=bounds.CODE)
    if reg is not None and kind in REGISTERED:
        f.check("registration_no", reg, lambda v: check_registration(kind, v))
    product = f.text("product", required=reg is None, max_len=bounds.NAME)
    active = f.text("active_ingredient", required=False, max_len=bounds.NAME)
    dose = None
    d = f.sub("dose", required=kind in ("pesticide", "veterinary_drug", "vaccine", "feed_additive"))
    if d is not None:
        d.only(frozenset({"value", "uom"}))
        value = d.number("value", DOSE)
        assert value is not None
        if value <= 0:
            d.fail("value", "must be more than 0")
        dose = {"value": decimal_text(value), "uom": d.choice("uom", DOSE_UNITS)}
    animals = f.integer("animals", required=kind in ("veterinary_drug", "vaccine"), lo=1, hi=1_000_000)
    if animals is not None and unit_kind == "plot":
        f.fail("animals", "is for a pen or a herd")
    applied_on = date_field(f, "applied_on")
    if applied_on is None:
        f.fail("applied_on", "is required: the day the input was applied (YYYY-MM-DD)")
    today = today_in_china(now)
    if applied_on > today:
        f.fail("applied_on", "is in the future")
    if applied_on < today - MAX_RECORD_AGE:
        f.fail("applied_on", "is more than three years ago")
    note = f.text("note", required=False, max_len=bounds.LONG_TEXT)
    content: dict[str, Any] = {
        "recordID": record_id,
        "unit": unit,
        "unitKind": unit_kind,
        "kind": kind,
        "appliedOn": applied_on.isoformat(),
    }
    extra: tuple[tuple[str, Any], ...] = (
        ("registrationNo", reg),
        ("product", product),
        ("activeIngredient", active),
        ("dose", dose),
        ("animals", animals),
        ("note", note),
    )
    for key, item in extra:
        if item is not None:
            content[key] = item
    return InputRecordDraft(
        record_id, unit, unit_kind, kind, reg, product, active, dose, animals, applied_on, note, content
    )


def safe_from(applied_on: date, interval_days: int) -> date:
    """The first day harvest or slaughter is allowed: the application day plus the whole interval.

    An interval of N days counts from the day of application, so with N = 7 an application on the
    1st allows harvest from the 8th (the 2nd to the 7th are inside the interval)."""
    return applied_on + timedelta(days=interval_days)


def unit_kinds_for(category: str) -> frozenset[str]:
    """Which units a batch of the category can come from: plots for crops, pens and herds for animals."""
    if category == "vegetable":
        return frozenset({"plot"})
    if category in ("meat", "dairy"):
        return frozenset({"pen", "herd"})
    return UNIT_KINDS


def parse_opening_unit(content: dict[str, Any]) -> str | None:
    """The plot, pen or herd an opening names (``origin.unit``), or None."""
    origin = content.get("batch", {}).get("origin", {})
    unit = origin.get("unit")
    return unit if isinstance(unit, str) else None


@dataclass(frozen=True, slots=True)
class Violation:
    """An input whose interval a batch opened inside."""

    record_id: str
    kind: str
    product: str
    registration_no: str | None
    applied_on: date
    safe_from: date
    product_en: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "recordID": self.record_id,
            "kind": self.kind,
            "product": self.product,
            "appliedOn": self.applied_on.isoformat(),
            "safeFrom": self.safe_from.isoformat(),
        }
        if self.registration_no:
            out["registrationNo"] = self.registration_no
        if self.product_en:
            out["productEn"] = self.product_en
        return out


def inside_intervals(records: list[dict[str, Any]], day: date) -> list[Violation]:
    """The inputs applied on or before ``day`` whose interval has not ended by ``day``, latest end first.

    ``records``: the unit's production records (``record_id``, ``kind``, ``product_name``,
    ``registration_no``, ``applied_on``, ``safe_from``)."""
    found = [
        Violation(
            str(r["record_id"]),
            r["kind"],
            r["product_name"],
            r["registration_no"],
            r["applied_on"],
            r["safe_from"],
            r.get("product_name_en"),
        )
        for r in records
        if r["applied_on"] <= day < r["safe_from"]
    ]
    return sorted(found, key=lambda v: (v.safe_from, v.applied_on, v.record_id), reverse=True)


def opening_summary(unit: str, records: list[dict[str, Any]], day: date, violations: list[Violation]) -> dict[str, Any]:
    """What the opening event carries about its unit: the recent inputs, and any interval it opened inside.

    Hashed with the opening, so the consumer page and every downstream node read the same facts."""
    recent = [r for r in records if day - timedelta(days=LOOKBACK_DAYS) <= r["applied_on"] <= day]
    recent.sort(key=lambda r: (r["applied_on"], str(r["record_id"])), reverse=True)
    inputs = []
    for r in recent[:MAX_INPUTS_ON_OPENING]:
        item: dict[str, Any] = {
            "recordID": str(r["record_id"]),
            "kind": r["kind"],
            "product": r["product_name"],
            "appliedOn": r["applied_on"].isoformat(),
            "intervalDays": r["interval_days"],
            "safeFrom": r["safe_from"].isoformat(),
        }
        if r["registration_no"]:
            item["registrationNo"] = r["registration_no"]
        if r.get("product_name_en"):
            item["productEn"] = r["product_name_en"]
        inputs.append(item)
    summary: dict[str, Any] = {"unit": unit, "day": day.isoformat(), "inputs": inputs}
    if violations:
        summary["insideIntervals"] = [v.as_json() for v in violations]
    return summary
