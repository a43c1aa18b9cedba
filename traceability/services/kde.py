"""The key data element export: every critical tracking event of a product (or category) over a date range.

What a regulator asks of a market within hours (and FSMA 204 asks as "an electronic sortable spreadsheet"):
one row per critical tracking event (a lot's opening by harvest, slaughter or transformation, packing,
shipping, receiving) with the lot's trace code and its source lot, the product, quantity and unit, where
it happened, the ship-from and ship-to (name, address, enterprise, contact), the time in Beijing time,
and the reference documents by type. A transformation with several inputs has one row per input.
The columns are documented in docs/kde-export.md.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.domain import bounds, registry
from traceability.domain.fields import BEIJING
from traceability.ledger import canonical, sealed
from traceability.services.views.tables import Cell, Column, Table, TableOf, moment, number
from traceability.storage import kde_repo, search_repo
from traceability.storage.database import Database

MAX_DAYS = 366
MAX_ROWS = 200_000
# The reference documents, in the order a regulator reads them: certificates, then trade documents.
DOCUMENTS = (
    "quarantine_certificate",
    "meat_inspection_certificate",
    "origin_certificate",
    "vegetable_test_certificate",
    "pesticide_residue_report",
    "drug_inspection_report",
    "trade_voucher",
    "despatch_advice",
    "invoice",
    "purchase_order",
    "sale_voucher",
    "other",
)

COLUMNS = (
    Column("kde_cte"),
    Column("code_label"),
    Column("kde_source_lot"),
    Column("product"),
    Column("col_goods_code"),
    Column("col_category"),
    Column("quantity", "number"),
    Column("col_unit"),
    Column("kde_input_quantity", "number"),
    Column("col_event_time", "time"),
    Column("kde_location"),
    Column("kde_location_code"),
    Column("kde_location_address"),
    Column("kde_location_enterprise"),
    Column("kde_location_uscc"),
    Column("kde_location_contact"),
    Column("kde_from_name"),
    Column("kde_from_address"),
    Column("kde_from_enterprise"),
    Column("kde_from_contact"),
    Column("kde_to_name"),
    Column("kde_to_address"),
    Column("kde_to_enterprise"),
    Column("kde_to_contact"),
    *(Column(f"document_type:{d}") for d in DOCUMENTS),
    Column("col_event_id"),
)


def cte_of(seq: int, step: str, content: dict[str, Any]) -> str:
    """Which critical tracking event an event is (the ``cte`` code set)."""
    if "transformationID" in content or content.get("type") == "TransformationEvent":
        return "transformation"
    if seq == 1:
        return "harvest"
    return {"repackaging": "packing"}.get(step, step)


def _day(raw: str, field: str) -> Any:
    try:
        return bounds.parse_day(raw)
    except bounds.TimeFormatError as exc:
        raise errors.InvalidField(f"{field}: {exc}", field=field) from None


async def export(db: Database, query: dict[str, str]) -> dict[str, Any]:
    """The export's rows as data (the JSON twin), and how to build its table in a reader's language."""
    q = {k: (query.get(k) or "").strip() for k in ("product", "category", "from", "to")}
    for k, v in q.items():
        if (problem := bounds.text_problem(v, bounds.QUERY_TEXT)) is not None:
            raise errors.InvalidField(f"{k}: {problem}", field=k)
    if q["category"] and q["category"] not in registry.PRODUCT_CATEGORIES:
        raise errors.InvalidField(
            f"category must be one of: {', '.join(sorted(registry.PRODUCT_CATEGORIES))}", field="category"
        )
    if not (q["from"] and q["to"]):
        return {"query": q, "ready": False, "rows": [], "count": 0}
    since, until = _day(q["from"], "from"), _day(q["to"], "to")
    if until < since:
        raise errors.InvalidField("to is before from", field="to")
    if (until - since).days >= MAX_DAYS:
        raise errors.InvalidField(f"to: at most {MAX_DAYS} days at a time", field="to")
    start = datetime.combine(since, time(), BEIJING)
    end = datetime.combine(until + timedelta(days=1), time(), BEIJING)
    async with db.connection() as conn:
        events = await kde_repo.critical_events(
            conn,
            since=start,
            until=end,
            product=q["product"] or None,
            product_like=search_repo.like_pattern(q["product"]) if q["product"] else None,
            category=q["category"] or None,
            limit=MAX_ROWS + 1,
        )
        places = {p["code"]: dict(p) for p in await kde_repo.places(conn)}
    by_uscc = {p["uscc"]: p for p in places.values()}
    rows = [row for e in events[:MAX_ROWS] for row in _rows(e, places, by_uscc)]
    return {"query": q, "ready": True, "rows": rows, "count": len(rows), "cut": len(events) > MAX_ROWS}


def _place(p: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    if p is None:
        return {}
    return {
        f"{prefix}_code": p.get("code"),
        f"{prefix}": p.get("name"),
        f"{prefix}_en": p.get("name_en"),
        f"{prefix}_address": p.get("address"),
        f"{prefix}_enterprise": p.get("enterprise"),
        f"{prefix}_enterprise_en": p.get("enterprise_en"),
        f"{prefix}_contact": p.get("contact"),
    }


def _rows(e: Any, places: dict[str, dict[str, Any]], by_uscc: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    content = canonical.decode(e["canonical"])
    private = canonical.decode(sealed.private_bytes(e["private"])) if e["private"] else {}
    cte = cte_of(e["seq"], e["biz_step"], content)
    here = {
        "code": e["node_code"],
        "name": e["node"],
        "name_en": e["node_en"],
        "address": e["address"],
        "enterprise": e["enterprise"],
        "enterprise_en": e["enterprise_en"],
        "contact": e["contact"],
    }
    ship_from: dict[str, Any] | None = None
    ship_to: dict[str, Any] | None = None
    if cte == "shipping":
        ship_from = here
        dest = private.get("destination") or content.get("destination") or {}
        ship_to = places.get(dest.get("node", "")) or by_uscc.get(dest.get("enterprise", ""))
        if ship_to is None and dest.get("name"):
            ship_to = {"name": dest["name"]}
        ship_to = ship_to or places.get(e["to_code"] or "")
    elif cte == "receiving":
        ship_to = here
        src = private.get("source") or content.get("source") or {}
        ship_from = places.get(src.get("node", "")) or by_uscc.get(src.get("enterprise", ""))
        ship_from = ship_from or places.get(e["from_code"] or "")
        if ship_from is None and src.get("name"):
            ship_from = {"name": src["name"]}
    docs: dict[str, list[str]] = {}
    for d in content.get("documents", ()):
        docs.setdefault(d["type"], []).append(d["number"])
    q = content.get("quantity") or {}
    base = {
        "cte": cte,
        "trace_code": e["trace_code"],
        "product": e["product"],
        "product_en": e["product_en"],
        "goods_code": e["goods_code"],
        "category": e["category"],
        "quantity": q.get("value"),
        "uom": q.get("uom"),
        "event_time": e["event_time"].isoformat(),
        "location_code": here["code"],
        "location": here["name"],
        "location_en": here["name_en"],
        "location_address": here["address"],
        "location_enterprise": here["enterprise"],
        "location_enterprise_en": here["enterprise_en"],
        "location_uscc": e["uscc"],
        "location_contact": here["contact"],
        **_place(ship_from, "from"),
        **_place(ship_to, "to"),
        "documents": docs,
        "event_id": e["event_id"],
    }
    inputs = content.get("inputs") or []
    if cte == "transformation" and inputs:
        return [{**base, "source_lot": i.get("traceCode"), "input_quantity": i.get("quantity")} for i in inputs]
    return [{**base, "source_lot": ", ".join(e["parents"] or []) or None}]


def table(data: dict[str, Any]) -> TableOf:
    """The export as a sheet in a reader's language."""

    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = []
        for r in data["rows"]:
            rows.append(
                [
                    t.name("cte", r["cte"]) or r["cte"],
                    r["trace_code"],
                    r["source_lot"],
                    t.pick(r["product"], r["product_en"]),
                    r["goods_code"],
                    t.name("product_category", r["category"]) or r["category"],
                    number(r["quantity"]),
                    (t.name("unit", r["uom"]) or r["uom"]) if r["uom"] else None,
                    number((r.get("input_quantity") or {}).get("value")),
                    moment(r["event_time"]),
                    t.pick(r["location"], r["location_en"]),
                    r["location_code"],
                    r["location_address"],
                    t.pick(r["location_enterprise"], r["location_enterprise_en"]),
                    r["location_uscc"],
                    r["location_contact"],
                    t.pick(r.get("from"), r.get("from_en")) or None,
                    r.get("from_address"),
                    t.pick(r.get("from_enterprise"), r.get("from_enterprise_en")) or None,
                    r.get("from_contact"),
                    t.pick(r.get("to"), r.get("to_en")) or None,
                    r.get("to_address"),
                    t.pick(r.get("to_enterprise"), r.get("to_enterprise_en")) or None,
                    r.get("to_contact"),
                    *(t("list_sep").join(r["documents"].get(d, ())) or None for d in DOCUMENTS),
                    r["event_id"],
                ]
            )
        q = data["query"]
        name = "-".join(p for p in ("kde", q.get("product") or q.get("category") or "all", q["from"], q["to"]) if p)
        return Table("kde_title", name, COLUMNS, rows)

    return build
