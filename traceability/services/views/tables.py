"""The console's lists and records as tables, for the spreadsheet twins (``?format=csv`` and ``?format=xlsx``).

A :class:`Table` is built from a page's own view model, in the reader's language: headers and names of
codes come from the catalogue, so a Chinese console exports Chinese headers. Every cell holds one value
of one kind: text, a number (:class:`~decimal.Decimal` or int), a moment (an aware ``datetime``, written
in Beijing time with its offset) or a day. A transformation's inputs are rows of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from traceability import i18n
from traceability.domain.fields import BEIJING

Cell = str | int | Decimal | datetime | date | None


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header's catalogue key, the kind of its values (text, number, time, day)."""

    header: str
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class Table:
    """A sheet: its title's catalogue key, a file name (without extension), columns, rows."""

    title: str
    filename: str
    columns: Sequence[Column]
    rows: list[list[Cell]] = field(default_factory=list)

    def headers(self, t: i18n.Words) -> list[str]:
        """The headers in the reader's language (``set:code`` names a code, e.g. a document type)."""
        out = []
        for c in self.columns:
            kind, _, code = c.header.partition(":")
            out.append((t.name(kind, code) or code) if code else t(c.header))
        return out


TableOf = Callable[[i18n.Words], Table]
"""How a page builds its table in a reader's language."""


def number(value: Any) -> Decimal | None:
    """A quantity or price as recorded (a string of digits) as a number; None when there is none."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def moment(value: str | datetime | None) -> datetime | None:
    """A recorded time (RFC 3339 text or a datetime) in Beijing time."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:
        return None
    return value.astimezone(BEIJING)


def day(value: str | date | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _doc_name(t: i18n.Words, kind: str) -> str:
    return t.name("document_type", kind) or kind


# -- the console's lists --------------------------------------------------------------------------

SEARCH = (
    Column("code_label"),
    Column("product"),
    Column("col_goods_code"),
    Column("col_category"),
    Column("quantity", "number"),
    Column("col_unit"),
    Column("produced_on", "day"),
    Column("col_opened_at", "time"),
    Column("col_opened_by"),
    Column("events", "number"),
)


def search_table(result: dict[str, Any]) -> TableOf:
    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = [
            [
                r["trace_code"],
                t.pick(r["product"], r["product_en"]),
                r["goods_code"],
                t.name("product_category", r["category"]) or r["category"],
                number(r["quantity"]),
                t.name("unit", r["uom"]) or r["uom"],
                day(r.get("produced_on")),
                moment(r.get("opened_on")),
                t.pick(r["opened_by"], r["opened_by_en"]),
                r["events"],
            ]
            for r in result.get("results", [])
        ]
        return Table("search_title", "search", SEARCH, rows)

    return build


RECORD = (
    Column("col_row_kind"),
    Column("code_label"),
    Column("product"),
    Column("col_seq", "number"),
    Column("time", "time"),
    Column("step"),
    Column("result"),
    Column("col_node_code"),
    Column("node"),
    Column("col_node_type"),
    Column("col_area"),
    Column("col_enterprise"),
    Column("col_operator"),
    Column("quantity", "number"),
    Column("col_unit"),
    Column("col_input_code"),
    Column("col_document_type"),
    Column("col_document_number"),
    Column("col_issuer"),
    Column("col_ship_from"),
    Column("col_ship_to"),
    Column("col_ship_to_enterprise"),
    Column("col_ship_to_node"),
    Column("col_unit_price", "number"),
    Column("col_amount", "number"),
    Column("col_currency"),
    Column("col_buyer"),
    Column("col_declared_wrong"),
    Column("col_event_id"),
    Column("col_hash"),
)


def record_table(view: dict[str, Any]) -> TableOf:
    """A batch's full record: a row per event, then a row per input of a transformation and per document."""

    def build(t: i18n.Words) -> Table:
        code = view["trace_code"]
        product = t.pick(view["product"]["name"], view["product"]["name_en"])
        rows: list[list[Cell]] = []
        for e in view["events"]:
            node = e["node"]
            q = e.get("quantity") or {}
            src = e.get("source") or {}
            dest = e.get("destination") or {}
            com = e.get("commercial") or {}
            when = moment(e.get("eventTime"))
            wrong = e.get("declared_wrong")
            base: list[Cell] = [
                code,
                product,
                e["seq"],
                when,
                t.step(e.get("bizStep")),
                t.disposition(e.get("disposition")),
            ]
            rows.append(
                [
                    t("row_event"),
                    *base,
                    node["code"],
                    t.pick(node["name"], node.get("name_en")),
                    t.pick(node.get("type_name"), node.get("type_name_en")),
                    node.get("area_name") or node.get("area_code"),
                    node.get("enterprise"),
                    e.get("operator"),
                    number(q.get("value")),
                    t.name("unit", q.get("uom", "")) or q.get("uom"),
                    None,
                    None,
                    None,
                    None,
                    src.get("name") or src.get("enterprise") or src.get("node"),
                    dest.get("name"),
                    dest.get("enterprise"),
                    dest.get("node"),
                    number(com.get("unit_price")),
                    number(com.get("amount")),
                    com.get("currency"),
                    com.get("buyer"),
                    (wrong or {}).get("reason") if wrong else None,
                    e["event_id"],
                    e["hash"],
                ]
            )
            blank: list[Cell] = [None] * 6
            for inp in e.get("inputs", ()):
                iq = inp.get("quantity") or {}
                rows.append(
                    [
                        t("row_input"),
                        *base,
                        *blank,
                        number(iq.get("value")),
                        t.name("unit", iq.get("uom", "")) or iq.get("uom"),
                        inp.get("traceCode"),
                        *([None] * 14),
                    ]
                )
            for d in e.get("documents", ()):
                rows.append(
                    [
                        t("row_document"),
                        *base,
                        *blank,
                        None,
                        None,
                        None,
                        _doc_name(t, d["type"]),
                        d["number"],
                        d.get("issuer"),
                        *([None] * 11),
                    ]
                )
        return Table("batch_record", f"batch-{code}", RECORD, rows)

    return build


TRACE = (
    Column("code_label"),
    Column("col_depth", "number"),
    Column("product"),
    Column("col_goods_code"),
    Column("quantity", "number"),
    Column("col_unit"),
    Column("produced_on", "day"),
    Column("expires_on", "day"),
    Column("col_state"),
    Column("col_parents"),
    Column("col_route"),
)


def trace_table(trace: dict[str, Any]) -> TableOf:
    """Every batch a trace reached, one a row, from the batch it started at."""

    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = []
        for b in trace["batches"]:
            status = b.get("status") or "active"
            rows.append(
                [
                    b["trace_code"],
                    b["depth"],
                    t.pick(b["product"], b["product_en"]),
                    b["goods_code"],
                    number(b["quantity"]["value"]),
                    t.name("unit", b["quantity"]["uom"]) or b["quantity"]["uom"],
                    day(b.get("produced_on")),
                    day(b.get("expires_on")),
                    t("status_ok") if status == "active" else t.disposition(status),
                    t("list_sep").join(b.get("parents", [])) or None,
                    " → ".join(t.pick(n["name"], n.get("name_en")) for n in b.get("nodes", [])),
                ]
            )
        title = "backward" if trace["direction"] == "backward" else "forward"
        return Table(title, f"trace-{trace['direction']}-{trace['trace_code']}", TRACE, rows)

    return build


ANOMALIES = (
    Column("detected", "time"),
    Column("severity"),
    Column("status"),
    Column("assignee"),
    Column("col_event_time", "time"),
    Column("kind"),
    Column("code_label"),
    Column("product"),
    Column("col_node_code"),
    Column("node"),
    Column("uscc"),
    Column("col_enterprise"),
    Column("explanation"),
)


def anomalies_table(items: Iterable[dict[str, Any]]) -> TableOf:
    """Anomalies with their triage state, one a row."""

    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = [
            [
                moment(a["detected_at"]),
                t.name("severity", a["severity"]) or a["severity"],
                t.name("triage_status", a["status"]) or a["status"],
                a.get("assignee"),
                moment(a.get("event_time")),
                t.pick(a["kind_name"], a["kind_name_en"]),
                a["trace_code"],
                t.pick(a.get("product"), a.get("product_en")),
                a.get("node_code"),
                t.pick(a.get("node_name"), a.get("node_name_en")),
                a.get("uscc"),
                t.pick(a.get("enterprise"), a.get("enterprise_en")),
                t.pick(a["explanation"], a["explanation_en"]),
            ]
            for a in items
        ]
        return Table("anomalies", "anomalies", ANOMALIES, rows)

    return build


RECALLS = (
    Column("time", "time"),
    Column("code_label"),
    Column("recall_level"),
    Column("recall_reason"),
    Column("recall_scope"),
    Column("authority"),
    Column("affected_batches", "number"),
)


def recalls_table(recalls: Iterable[dict[str, Any]]) -> TableOf:
    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = [
            [
                moment(r["issued_at"]),
                r["trace_code"],
                t.name("recall_level", r["level"]) or r["level"],
                r["reason"],
                r.get("scope"),
                r.get("authority"),
                r.get("affected"),
            ]
            for r in recalls
        ]
        return Table("recalls", "recalls", RECALLS, rows)

    return build


REGISTER = (
    Column("col_enterprise"),
    Column("uscc"),
    Column("col_node_type"),
    Column("nodes", "number"),
    Column("events", "number"),
    Column("credit"),
    Column("score", "number"),
    Column("col_registered", "time"),
)


def register_table(items: Iterable[dict[str, Any]]) -> TableOf:
    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = [
            [
                t.pick(e["name"], e["name_en"]),
                e["uscc"],
                t("list_sep").join(t.pick(n["name"], n["name_en"]) for n in e["node_types"]),
                e["nodes"],
                e["events"],
                (e["credit"]["grade"] or t("no_activity")) if e.get("credit") else t("not_rated"),
                e["credit"]["score"] if e.get("credit") else None,
                moment(e["registered"]),
            ]
            for e in items
        ]
        return Table("register", "register", REGISTER, rows)

    return build


CREDIT = (
    Column("col_row_kind"),
    Column("factor"),
    Column("events", "number"),
    Column("col_of", "number"),
    Column("penalty", "number"),
    Column("col_rule"),
    Column("date_to", "day"),
    Column("score", "number"),
    Column("credit"),
)


def credit_table(rating: dict[str, Any]) -> TableOf:
    """A credit rating: its factors, the anomalies by kind, then the history month by month."""

    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = []
        for f in rating["factors"]:
            if f["factor"] == "anomalies_by_kind":
                for d in f.get("detail", {}).values():
                    rows.append([t("row_anomaly_kind"), t.pick(d["name"], d["name_en"]), d["count"], *([None] * 6)])
                continue
            rows.append(
                [
                    t("row_factor"),
                    t.pick(f["name"], f["name_en"]),
                    f.get("count"),
                    f.get("of"),
                    f.get("penalty"),
                    t.pick(f.get("rule"), f.get("rule_en")),
                    None,
                    None,
                    None,
                ]
            )
        for h in rating["history"]:
            quiet = h.get("score") is None
            rows.append(
                [
                    t("row_month"),
                    None,
                    h.get("events"),
                    None,
                    None,
                    None,
                    day(h["until"]),
                    None if quiet else h["score"],
                    t("no_activity") if quiet else h["grade"],
                ]
            )
        who = f"{rating['node']}-{rating['operator']}" if rating.get("operator") else rating["uscc"]
        return Table("credit", f"credit-{who}", CREDIT, rows)

    return build
