"""What the consumer page says about the farm: the inputs its plot, pen or herd received before harvest or slaughter.

Read from the opening events of the batch and of every batch it came from (their ``production``
member, hashed with the opening), so the page tells what the ledger holds: each input, when it was
applied, and whether its safety interval (安全间隔期) or withdrawal period (休药期) was over when the
batch was opened, or the farm insisted inside it, with its reason.
"""

from __future__ import annotations

from typing import Any

MEDICINES = frozenset({"veterinary_drug", "feed_additive", "vaccine"})
"""Inputs whose interval is a withdrawal period (休药期); a pesticide's is a safety interval (安全间隔期)."""


def _opening(view: dict[str, Any]) -> dict[str, Any] | None:
    first: dict[str, Any] | None = view["events"][0] if view.get("events") else None
    if first is None or not isinstance(first.get("production"), dict):
        return None
    return first


def farm_inputs(own: dict[str, Any], ancestors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per batch opened from a plot, pen or herd (farthest first): its unit, day, inputs and verdicts."""
    out = []
    for view in [*ancestors, own]:
        opening = _opening(view)
        if opening is None:
            continue
        production = opening["production"]
        day = str(production.get("day") or "")
        inputs = []
        for item in production.get("inputs") or []:
            safe_from = str(item.get("safeFrom") or "")
            days = int(item.get("intervalDays") or 0)
            inputs.append(
                {
                    "kind": item.get("kind"),
                    "product": item.get("product"),
                    "product_en": item.get("productEn"),
                    "registration_no": item.get("registrationNo"),
                    "applied_on": item.get("appliedOn"),
                    "interval_days": days,
                    "safe_from": safe_from,
                    "withdrawal": item.get("kind") in MEDICINES,
                    "verdict": "none" if days == 0 else ("over" if safe_from <= day else "inside"),
                }
            )
        last = next((i for i in inputs if i["interval_days"] > 0), None)
        insist = opening.get("insist")
        out.append(
            {
                "trace_code": view["trace_code"],
                "product": view.get("product"),
                "unit": production.get("unit"),
                "day": day,
                "inputs": inputs,
                "last": last,
                "inside": bool(production.get("insideIntervals")),
                "reason": insist.get("reason") if isinstance(insist, dict) else None,
            }
        )
    return out
