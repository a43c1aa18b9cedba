"""The public lists as open data for other departments: one flat row per item with stable columns (CSV and
JSON carry the same names, documented in docs/open-data.md), and the entries of the Atom feed.

Column names never change meaning; new columns are only ever added at the end. Times are Beijing time
with the offset written out (RFC 3339, ``2026-11-30T10:00:00+08:00``); names recorded in Chinese and
English come as two columns (``product``, ``product_en``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from traceability import i18n

Row = dict[str, Any]

RECALL_COLUMNS = (
    "id",
    "issued_at",
    "level",
    "status",
    "product",
    "product_en",
    "goods_code",
    "category",
    "trace_code",
    "batches",
    "batches_count",
    "receipts",
    "reason",
    "scope",
    "authority",
    "source_enterprise",
    "source_enterprise_en",
    "source_district",
    "where_sold",
    "where_sold_en",
    "advice",
    "advice_en",
    "url",
)


def _place(p: dict[str, Any], en: bool) -> str:
    name = (p["name_en"] or p["name"]) if en else p["name"]
    stalls = " ".join(s["stall_no"] for s in p["stalls"])
    return f"{name} ({p['district']}{': ' + stalls if stalls else ''})"


def recall_row(r: dict[str, Any]) -> Row:
    return {
        "id": r["id"],
        "issued_at": r["issued_at"],
        "level": r["level"],
        "status": r["status"],
        "product": r["product"],
        "product_en": r["product_en"],
        "goods_code": r["goods_code"],
        "category": r["category"],
        "trace_code": r["trace_code"],
        "batches": " ".join(r["batches"]),
        "batches_count": r["batches_count"],
        "receipts": r["receipts"],
        "reason": r["reason"],
        "scope": r["scope"],
        "authority": r["authority"],
        "source_enterprise": r["enterprise"],
        "source_enterprise_en": r["enterprise_en"],
        "source_district": r["district"],
        "where_sold": "; ".join(_place(p, False) for p in r["places"]),
        "where_sold_en": "; ".join(_place(p, True) for p in r["places"]),
        "advice": r["advice"],
        "advice_en": r["advice_en"],
        "url": r["url"],
    }


FAILED_COLUMNS = (
    "event_id",
    "tested_at",
    "product",
    "product_en",
    "goods_code",
    "category",
    "trace_code",
    "test",
    "analyte",
    "value",
    "limit",
    "unit",
    "method",
    "lab",
    "enterprise",
    "enterprise_en",
    "district",
    "tested_by",
    "outcome",
    "batches",
    "batches_held",
    "batches_destroyed",
    "batches_returned",
    "url",
)


def failed_row(f: dict[str, Any]) -> Row:
    return {
        "event_id": f["event_id"],
        "tested_at": f["tested_at"],
        "product": f["product"],
        "product_en": f["product_en"],
        "goods_code": f["goods_code"],
        "category": f["category"],
        "trace_code": f["trace_code"],
        "test": f["test"],
        "analyte": f["analyte"],
        "value": f["value"],
        "limit": f["limit"],
        "unit": f["unit"],
        "method": f["method"],
        "lab": f["lab"],
        "enterprise": f["enterprise"],
        "enterprise_en": f["enterprise_en"],
        "district": f["district"],
        "tested_by": f["tested_by"],
        "outcome": f["outcome"],
        "batches": f["batches"],
        "batches_held": f["held"],
        "batches_destroyed": f["destroyed"],
        "batches_returned": f["returned"],
        "url": f["url"],
    }


CREDIT_FACTORS = ("serious_anomalies", "other_anomalies", "failed_inspections", "recalls_as_source", "late_reports")
CREDIT_COLUMNS = (
    "kind",
    "uscc",
    "name",
    "name_en",
    "market",
    "market_en",
    "stall_no",
    "districts",
    "grade",
    "score",
    "events",
    *(f"{f}_{part}" for f in CREDIT_FACTORS for part in ("count", "penalty")),
    "as_of",
)


def credit_row(c: dict[str, Any]) -> Row:
    by = {f["factor"]: f for f in c["factors"]}
    row: Row = {
        "kind": c["kind"],
        "uscc": c["uscc"],
        "name": c["name"],
        "name_en": c["name_en"],
        "market": c["market"],
        "market_en": c["market_en"],
        "stall_no": c["stall_no"],
        "districts": " ".join(c["districts"]),
        "grade": c["grade"],
        "score": c["score"],
        "events": c["events"],
    }
    for f in CREDIT_FACTORS:
        row[f"{f}_count"] = by.get(f, {}).get("count")
        row[f"{f}_penalty"] = by.get(f, {}).get("penalty")
    row["as_of"] = c["as_of"]
    return row


OPEN_DATA: dict[str, tuple[str, tuple[str, ...], Callable[[dict[str, Any]], Row]]] = {
    "recalls": ("recalls", RECALL_COLUMNS, recall_row),
    "failed-tests": ("failed", FAILED_COLUMNS, failed_row),
    "credit": ("credit", CREDIT_COLUMNS, credit_row),
}
"""The open-data file's name → (the list it holds, its columns, how an item becomes a row)."""


def feed_entries(recalls: list[dict[str, Any]], failed: list[dict[str, Any]], t: i18n.Words) -> list[dict[str, Any]]:
    """Recalls and failed tests as feed entries, newest first: a stable id (the ledger event's UUID), a title,
    when, a summary and the batch's public page."""
    entries = []
    for r in recalls:
        product = t.pick(r["product"], r["product_en"])
        entries.append(
            {
                "id": f"urn:uuid:{r['event_id']}",
                "updated": r["issued_at"],
                "title": t("public_feed_recall", level=t.pick(r["level_name"], r["level_name_en"]), product=product),
                "summary": t(
                    "public_feed_recall_text",
                    reason=r["reason"],
                    authority=r["authority"],
                    advice=t.pick(r["advice"], r["advice_en"]),
                ),
                "link": r["url"],
                "category": "recall",
            }
        )
    for f in failed:
        product = t.pick(f["product"], f["product_en"])
        entries.append(
            {
                "id": f"urn:uuid:{f['event_id']}",
                "updated": f["tested_at"],
                "title": t("public_feed_failed", product=product, analyte=t.pick(f["analyte"], f["analyte_en"])),
                "summary": t(
                    "public_feed_failed_text",
                    value=f["value"] or "—",
                    limit=f["limit"] or "—",
                    unit=f["unit"] or "",
                    enterprise=t.pick(f["enterprise"], f["enterprise_en"]),
                    outcome=t.pick(f["outcome_name"], f["outcome_name_en"]),
                ),
                "link": f["url"],
                "category": "failed_test",
            }
        )
    entries.sort(key=lambda e: e["updated"], reverse=True)
    return entries
