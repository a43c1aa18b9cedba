"""A recall as the regulator works it: before issuing, everything it would reach; afterwards, the recall page.

Both show the batches the recall reaches down to the receipts consumers took home, every place they
reached with its enterprise's contact and the stalls that handled them (with their own contact), and at
each place what was received, sold to consumers and is left. The recall page adds how far the recall
has got: how many of its batches were destroyed or returned since it was issued, and which of the
enterprises it reaches have acknowledged it (and when).
"""

from __future__ import annotations

from typing import Any

from traceability import errors, i18n
from traceability.domain import supply
from traceability.services import genealogy, recall_notices
from traceability.services.views.tables import Cell, Column, Table, TableOf, number
from traceability.storage import dashboard_repo, recall_repo
from traceability.storage.database import Database


async def reach(db: Database, code: str) -> dict[str, Any]:
    """Everything a recall of ``code`` reaches: the forward trace with stalls and quantities per place."""
    trace = await genealogy.trace(db, code, "forward")
    codes = [b["trace_code"] for b in trace["batches"]]
    async with db.connection() as conn:
        rows = await recall_repo.stalls(conn, codes)
    stalls: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        stall = stalls.setdefault(r["node"], {}).setdefault(
            r["code"],
            {"code": r["code"], "name": r["name"], "stall_no": r["stall_no"], "contact": r["contact"], "batches": []},
        )
        stall["batches"].append(r["trace_code"])
    receipts = [b for b in trace["batches"] if not b["children"] and b["depth"] > 0 and _is_receipt(b)]
    places = []
    for node in trace["reached"]:
        places.append({**node, "stalls": list(stalls.get(node["code"], {}).values())})
    return {
        "trace_code": code,
        "batches": trace["batches"],
        "places": places,
        "totals": trace["totals"],
        "receipts": [b["trace_code"] for b in receipts],
        "enterprises": trace["enterprises"],
        "levels": [{"level": lv, **i18n.name_fields("recall_level", lv)} for lv in sorted(supply.RECALL_LEVELS)],
    }


def _is_receipt(batch: dict[str, Any]) -> bool:
    """A batch a sale opened (its first place sold it): a receipt a consumer took home."""
    first = batch["nodes"][0] if batch["nodes"] else {}
    return "retail_selling" in first.get("steps", ()) or "dispensing" in first.get("steps", ())


async def recall_page(db: Database, recall_id: int) -> dict[str, Any]:
    """One recall: who issued it and why, how far it has got, and everything it reached."""
    async with db.connection() as conn:
        row = await recall_repo.recall(conn, recall_id)
        if row is None:
            raise errors.NotFound(f"no recall {recall_id}")
        progress = await dashboard_repo.recalls(conn, 1, recall_id)
        enterprises = await recall_notices.reached(conn, recall_id)
    closed = progress[0]["closed"] if progress else 0
    acked = sum(1 for e in enterprises if e["acknowledged_at"])
    reached = await reach(db, row["trace_code"])
    steps = row["affected"] + len(enterprises)
    return {
        "id": row["id"],
        "trace_code": row["trace_code"],
        "level": row["level"],
        "reason": row["reason"],
        "scope": row["scope"],
        "authority": row["authority"],
        "issued_by": row["issued_by"],
        "issued_at": row["issued_at"].isoformat(),
        "affected": row["affected"],
        "closed": closed,
        "progress": round(100 * closed / row["affected"]) if row["affected"] else 0,
        "acknowledged": acked,
        "overall": round(100 * (closed + acked) / steps) if steps else 0,
        **{k: v for k, v in reached.items() if k != "trace_code"},
        "acknowledgements": enterprises,
    }


REACH = (
    Column("node"),
    Column("col_node_code"),
    Column("col_node_type"),
    Column("col_enterprise"),
    Column("contact"),
    Column("stall"),
    Column("stall_contact"),
    Column("code_label"),
    Column("col_unit"),
    Column("received", "number"),
    Column("sold_to_consumers", "number"),
    Column("destroyed", "number"),
    Column("returned_to_source", "number"),
    Column("left", "number"),
    Column("receipts_issued", "number"),
)


def reach_table(data: dict[str, Any], filename: str) -> TableOf:
    """A recall's reach, one row per batch at each place (and per stall that handled it there)."""

    def build(t: i18n.Words) -> Table:
        rows: list[list[Cell]] = []
        for place in data["places"]:
            by_batch = {s["trace_code"]: s for s in place.get("stock", [])}
            for code in place["batches"]:
                s = by_batch.get(code, {})
                stalls = [st for st in place["stalls"] if code in st["batches"]] or [None]
                for st in stalls:
                    rows.append(
                        [
                            t.pick(place["name"], place.get("name_en")),
                            place["code"],
                            t.pick(place.get("type_name"), place.get("type_name_en")),
                            place.get("enterprise"),
                            place.get("contact"),
                            f"{st['stall_no'] or st['code']} {st['name']}" if st else None,
                            st["contact"] if st else None,
                            code,
                            (t.name("unit", s["uom"]) or s["uom"]) if s else None,
                            number(s.get("received")),
                            number(s.get("sold")),
                            number(s.get("destroyed")),
                            number(s.get("returned")),
                            number(s.get("left")),
                            place.get("receipts") if code == place["batches"][0] else None,
                        ]
                    )
        return Table("recall_reach", filename, REACH, rows)

    return build
