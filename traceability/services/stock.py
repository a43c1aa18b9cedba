"""Where a batch's quantity went, node by node: for a forward trace and a recall, what each place received,
shipped on, processed, sold to consumers (with receipts or without), and what is still there.

Counted from the events themselves, in chain order, in the batch's own unit (masses converted to it;
a count recorded against a batch weighed in kilograms cannot be compared and is left out). An
opening or a receipt that states no quantity brings the whole batch; a shipment or sale that states
none takes what was left at that node. Receipts (batches a sale opened) are what consumers took
home: they are counted as sold at the node that issued them, never as stock.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from traceability.domain.supply import KILOGRAMS
from traceability.ledger import canonical
from traceability.storage import sales_repo
from traceability.storage.database import Connection, Record

OUT = {"shipping": "shipped", "retail_selling": "sold", "dispensing": "sold", "destroying": "destroyed"}
"""Where a step takes goods; a shipment with the disposition ``returned`` counts as returned (to its source)."""
GONE = ("shipped", "processed", "sold", "destroyed", "returned")


def _amount(quantity: Any, uom: str) -> Decimal | None:
    """A stated quantity in the batch's unit, Decimal(0) when it cannot be compared, None when none is stated."""
    if not isinstance(quantity, dict):
        return None
    value = Decimal(str(quantity.get("value", "0")))
    if quantity.get("uom") == uom:
        return value
    if uom in KILOGRAMS and quantity.get("uom") in KILOGRAMS:
        return value * KILOGRAMS[quantity["uom"]] / KILOGRAMS[uom]
    return Decimal(0)


def _text(value: Decimal) -> str:
    return "0" if value == 0 else format(value.normalize(), "f")


def tally(rows: Sequence[Record], batches: dict[int, Record]) -> dict[str, dict[str, Any]]:
    """Per node code: each batch's movements there, the receipts issued there, and totals per unit."""
    ledger: dict[tuple[int, str], dict[str, Decimal]] = {}
    receipts: dict[str, int] = {}
    for r in rows:
        batch = batches[r["batch_id"]]
        uom = batch["uom"]
        content = canonical.decode(r["canonical"])
        if r["seq"] == 1 and "soldFrom" in content:
            receipts[r["node"]] = receipts.get(r["node"], 0) + 1
            continue
        row = ledger.setdefault(
            (r["batch_id"], r["node"]),
            dict.fromkeys(("received", "shipped", "processed", "sold", "destroyed", "returned"), Decimal(0)),
        )
        stated = _amount(content.get("quantity"), uom)
        left = row["received"] - sum(row[k] for k in GONE)
        if r["seq"] == 1 or r["biz_step"] == "receiving":
            row["received"] += batch["quantity"] if stated is None else stated
        elif "transformationID" in content and "outputs" in content:
            row["processed"] += left if stated is None else stated
        elif r["biz_step"] in OUT:
            out = (
                "returned"
                if r["biz_step"] == "shipping" and content.get("disposition") == "returned"
                else OUT[r["biz_step"]]
            )
            row[out] += max(left, Decimal(0)) if stated is None else stated
    nodes: dict[str, dict[str, Any]] = {}
    for (batch_id, node), row in ledger.items():
        uom = batches[batch_id]["uom"]
        left = row["received"] - sum(row[k] for k in GONE)
        entry = nodes.setdefault(node, {"stock": [], "sold_to_consumers": {}, "left": {}, "receipts": 0})
        entry["stock"].append(
            {"trace_code": batches[batch_id]["trace_code"], "uom": uom, "left": _text(left)}
            | {k: _text(v) for k, v in row.items()}
        )
        entry["sold_to_consumers"][uom] = entry["sold_to_consumers"].get(uom, Decimal(0)) + row["sold"]
        entry["left"][uom] = entry["left"].get(uom, Decimal(0)) + max(left, Decimal(0))
    for node, count in receipts.items():
        nodes.setdefault(node, {"stock": [], "sold_to_consumers": {}, "left": {}, "receipts": 0})["receipts"] = count
    for entry in nodes.values():
        for key in ("sold_to_consumers", "left"):
            entry[key] = [{"value": _text(v), "uom": u} for u, v in sorted(entry[key].items())]
    return nodes


def totals(nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Everything sold to consumers, everything still at some node, and the receipts issued, over all nodes."""
    out: dict[str, Any] = {"receipts": sum(n["receipts"] for n in nodes.values())}
    for key in ("sold_to_consumers", "left"):
        sums: dict[str, Decimal] = {}
        for n in nodes.values():
            for q in n[key]:
                sums[q["uom"]] = sums.get(q["uom"], Decimal(0)) + Decimal(q["value"])
        out[key] = [{"value": _text(v), "uom": u} for u, v in sorted(sums.items())]
    return out


async def at_nodes(conn: Connection, batches: dict[int, Record]) -> dict[str, dict[str, Any]]:
    """:func:`tally` over the given batches' events."""
    return tally(await sales_repo.movements(conn, list(batches)), batches)
