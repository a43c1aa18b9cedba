"""Results: one per benchmark, written to bench/results.json and printed as a table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(slots=True)
class Result:
    """One figure, its same-run baseline, and the goal it is held to.

    ``goal_on`` says what the goal bounds: the ratio to the baseline (throughputs), or the value
    itself (memory, where the baseline is only context).
    """

    name: str
    value: float
    unit: str
    baseline: float
    goal: float
    better: Literal["higher", "lower"] = "higher"
    goal_on: Literal["ratio", "value"] = "ratio"
    note: str = ""
    broken: str = ""  # why the figure cannot be trusted (errors from the service under load)

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.nan

    @property
    def met(self) -> bool:
        x = self.ratio if self.goal_on == "ratio" else self.value
        return x >= self.goal if self.better == "higher" else x <= self.goal

    @property
    def status(self) -> str:
        if self.broken:
            return "BROKEN"
        return "ok" if self.met else "MISSED"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": round(self.value, 3),
            "unit": self.unit,
            "baseline": round(self.baseline, 3),
            "ratio": round(self.ratio, 4),
            "goal": self.goal,
            "better": self.better,
        }
        note = self.note
        if self.goal_on == "value":
            note = f"goal bounds the value, the ratio is context; {note}"
        if self.broken:
            note = f"BROKEN: {self.broken}; {note}"
        if note:
            out["note"] = note
        return out


def write(results: list[Result], path: Path = RESULTS) -> None:
    path.write_bytes(orjson.dumps({r.name: r.as_json() for r in results}, option=orjson.OPT_INDENT_2) + b"\n")


def _num(x: float) -> str:
    if math.isnan(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def table(results: list[Result]) -> str:
    head = ("name", "value", "unit", "baseline", "ratio", "goal", "status")
    rows = []
    for r in results:
        sign = ">=" if r.better == "higher" else "<="
        goal = f"{'ratio' if r.goal_on == 'ratio' else 'value'} {sign} {r.goal:g}"
        rows.append((r.name, _num(r.value), r.unit, _num(r.baseline), f"{r.ratio:.3f}", goal, r.status))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    right = {1, 3, 4}
    lines = []
    for row in (head, *rows):
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    broken = [f"  {r.name}: BROKEN: {r.broken}" for r in results if r.broken]
    return "\n".join(lines + (["", *notes] if notes else []) + broken)
