"""Enterprise credit ratings (信用评价), computed transparently from the ledger.

Score = 100 − the penalties below, floored at 0, over the twelve months before the rating date;
grade A ≥ 90, B ≥ 75, C ≥ 60, D below. Every factor is shown with its count and penalty, and the
history gives the score at the end of each of the last twelve months; a month in which nothing was
recorded shows as no activity, and so does a rating over a window without any. Stalls (operators) are
rated by the same rules over what their own scanners and scales recorded. See docs/supply-chain.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.domain.fields import BEIJING
from traceability.storage import credit_repo
from traceability.storage.database import Connection, Database

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


MONTHS = 12


async def _rated(
    conn: Connection,
    record: Callable[[datetime, datetime], Awaitable[dict[str, Any]]],
    monthly: dict[date, int],
    at: datetime,
) -> dict[str, Any]:
    """The score now and month by month: a month in which nothing was recorded shows as such, not as 100/A."""
    current = await record(at - WINDOW, at)
    value, factors = score(current)
    active = bool(current["events"]) or bool(current["anomalies"])
    history = []
    local = at.astimezone(BEIJING)
    month = local.date().replace(day=1)
    for _ in range(MONTHS):
        end = datetime.combine(_next_month(month), time(), BEIJING)
        events = monthly.get(month, 0)
        if events:
            s, _f = score(await record(end - WINDOW, end))
            history.append({"month": month.isoformat()[:7], "until": end.date().isoformat(), "events": events,
                            "score": s, "grade": grade(s)})  # fmt: skip
        else:
            history.append({"month": month.isoformat()[:7], "until": end.date().isoformat(), "events": 0,
                            "score": None, "grade": None})  # fmt: skip
        month = (month - timedelta(days=1)).replace(day=1)
    history.reverse()  # oldest first, as the chart reads
    return {
        "score": value if active else None,
        "grade": grade(value) if active else None,
        "active": active,
        "as_of": at.isoformat(),
        "window_days": WINDOW.days,
        "factors": factors,
        "history": history,
    }


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _history_start(at: datetime) -> datetime:
    first = at.astimezone(BEIJING).date().replace(day=1)
    for _ in range(MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return datetime.combine(first, time(), BEIJING)


async def rating(db: Database, uscc: str, at: datetime | None = None) -> dict[str, Any]:
    """An enterprise's rating now, its factors, its history month by month, and its stalls' ratings."""
    at = at or datetime.now(UTC)
    async with db.connection() as conn:
        ent = await credit_repo.enterprise(conn, uscc)
        if ent is None:
            raise errors.NotFound(f"no enterprise {uscc}")
        monthly = await credit_repo.monthly_events(conn, ent["id"], _history_start(at), at)

        async def record(start: datetime, end: datetime) -> dict[str, Any]:
            return await credit_repo.record(conn, ent["id"], start, end)

        rated = await _rated(conn, record, monthly, at)
        stalls = []
        for o in await credit_repo.operators_of(conn, ent["id"]):
            found = await credit_repo.operator_record(conn, o["id"], at - WINDOW, at)
            value, _ = score(found)
            active = bool(found["events"]) or bool(found["anomalies"])
            stalls.append(
                {
                    "node": o["node_code"],
                    "node_name": o["node_name"],
                    "node_name_en": o["node_name_en"],
                    "code": o["code"],
                    "name": o["name"],
                    "stall_no": o["stall_no"],
                    "events": found["events"],
                    "score": value if active else None,
                    "grade": grade(value) if active else None,
                }
            )
    return {"uscc": ent["uscc"], "name": ent["name"], "name_en": ent["name_en"], **rated, "stalls": stalls}


async def stall_rating(db: Database, node_code: str, code: str, at: datetime | None = None) -> dict[str, Any]:
    """A stall's (an operator's) rating: the same factors over what its scanners and scales recorded."""
    at = at or datetime.now(UTC)
    async with db.connection() as conn:
        op = await credit_repo.operator(conn, node_code, code)
        if op is None:
            raise errors.NotFound(f"no stall {code} at node {node_code}")
        monthly = await credit_repo.monthly_events(conn, op["id"], _history_start(at), at, operator=True)

        async def record(start: datetime, end: datetime) -> dict[str, Any]:
            return await credit_repo.operator_record(conn, op["id"], start, end)

        rated = await _rated(conn, record, monthly, at)
    return {
        "operator": op["code"],
        "name": op["name"],
        "name_en": None,
        "stall_no": op["stall_no"],
        "contact": op["contact"],
        "node": op["node_code"],
        "node_name": op["node_name"],
        "node_name_en": op["node_name_en"],
        "uscc": op["uscc"],
        "enterprise": op["enterprise"],
        "enterprise_en": op["enterprise_en"],
        **rated,
        "stalls": [],
    }


async def ratings(db: Database, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The enterprise register with current scores (the factors are on each enterprise's own rating)."""
    at = datetime.now(UTC)
    out = []
    async with db.connection() as conn:
        for ent in await credit_repo.enterprises(conn, limit, offset):
            found = await credit_repo.record(conn, ent["id"], at - WINDOW, at)
            value, _ = score(found)
            active = bool(found["events"]) or bool(found["anomalies"])
            out.append(
                {
                    "uscc": ent["uscc"],
                    "name": ent["name"],
                    "name_en": ent["name_en"],
                    "score": value if active else None,
                    "grade": grade(value) if active else None,
                }
            )
    return out
