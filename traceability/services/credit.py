"""Enterprise credit ratings (信用评价), computed transparently from the ledger.

Score = 100 − the penalties below, floored at 0, over the twelve months before the rating date;
grade A ≥ 90, B ≥ 75, C ≥ 60, D below. Every factor is shown with its count and penalty, and the
history gives the score at the end of each of the last six months. See docs/supply-chain.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.storage import credit_repo
from traceability.storage.database import Database

WINDOW = timedelta(days=365)
SERIOUS = frozenset(
    {
        "sold_while_recalled",
        "sold_while_on_hold",
        "sold_after_expiry",
        "drug_serial_dispensed_twice",
        "mass_balance_exceeded",
        "opened_inside_interval",
    }
)
NOT_CAUSED = frozenset({"sale_synced_after_recall", "receipt_synced_after_recall"})
"""Anomalies that tell the regulator where to look (goods moved before a recall reached them), not what the
party did wrong: they never lower its rating (reporting late is the late-reports factor)."""
# (penalty each, cap) per factor.
RULES = {
    "serious_anomalies": (5, 30),
    "other_anomalies": (2, 20),
    "failed_inspections": (10, 30),
    "recalls_as_source": (15, 30),
}
LATE_SHARE_PENALTY = 10  # the share of events reported more than 24 hours late, times this


def grade(score: int) -> str:
    return "A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "D"


def _named(factor: str) -> dict[str, str]:
    return {"factor": factor, **i18n.name_fields("credit_factor", factor)}


def _rule(key: str, **values: int) -> dict[str, str]:
    """A factor's rule in both languages (``rule`` in Chinese, ``rule_en``)."""
    return {"rule": i18n.words("zh")(key, **values), "rule_en": i18n.words("en")(key, **values)}


def score(record: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The score and the factors behind it, from an enterprise's record over the window."""
    anomalies: dict[str, int] = {k: n for k, n in record["anomalies"].items() if k not in NOT_CAUSED}
    counts = {
        "serious_anomalies": sum(n for k, n in anomalies.items() if k in SERIOUS),
        "other_anomalies": sum(n for k, n in anomalies.items() if k not in SERIOUS),
        "failed_inspections": record["failed_inspections"],
        "recalls_as_source": record["recalls"],
    }
    factors = []
    total = 0
    for name, count in counts.items():
        each, cap = RULES[name]
        penalty = min(count * each, cap)
        total += penalty
        factors.append(
            {
                **_named(name),
                "count": count,
                "penalty": penalty,
                **_rule("credit_rule_each", each=each, cap=cap),
            }
        )
    late, events = record["late_reports"], record["events"]
    penalty = round(LATE_SHARE_PENALTY * late / events) if events else 0
    total += penalty
    factors.append(
        {
            **_named("late_reports"),
            "count": late,
            "of": events,
            "penalty": penalty,
            **_rule("credit_rule_late", points=LATE_SHARE_PENALTY),
        }
    )
    factors.append(
        {
            **_named("anomalies_by_kind"),
            "detail": {k: {"count": n, **i18n.name_fields("anomaly", k)} for k, n in sorted(anomalies.items())},
        }
    )
    return max(0, 100 - total), factors


async def rating(db: Database, uscc: str, at: datetime | None = None) -> dict[str, Any]:
    """An enterprise's rating now, its factors, and its history over the last six months."""
    at = at or datetime.now(UTC)
    async with db.connection() as conn:
        ent = await credit_repo.enterprise(conn, uscc)
        if ent is None:
            raise errors.NotFound(f"no enterprise {uscc}")
        value, factors = score(await credit_repo.record(conn, ent["id"], at - WINDOW, at))
        history = []
        month_end = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for _ in range(6):
            s, _f = score(await credit_repo.record(conn, ent["id"], month_end - WINDOW, month_end))
            history.append({"until": month_end.date().isoformat(), "score": s, "grade": grade(s)})
            month_end = (month_end - timedelta(days=1)).replace(day=1)
    return {
        "uscc": ent["uscc"],
        "name": ent["name"],
        "name_en": ent["name_en"],
        "score": value,
        "grade": grade(value),
        "as_of": at.isoformat(),
        "window_days": WINDOW.days,
        "factors": factors,
        "history": history,
    }


async def ratings(db: Database, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The enterprise register with current scores (the factors are on each enterprise's own rating)."""
    at = datetime.now(UTC)
    out = []
    async with db.connection() as conn:
        for ent in await credit_repo.enterprises(conn, limit, offset):
            value, _ = score(await credit_repo.record(conn, ent["id"], at - WINDOW, at))
            out.append(
                {
                    "uscc": ent["uscc"],
                    "name": ent["name"],
                    "name_en": ent["name_en"],
                    "score": value,
                    "grade": grade(value),
                }
            )
    return out
