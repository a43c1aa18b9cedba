"""Drugs on the consumer page: the facts printed on the box (批准文号, 规格, 批号, 有效期), and the lot a box
or unit code belongs to, with whether that very box was already dispensed.

A Chinese drug trace code (药品追溯码) is 20 digits like ours but checked differently: the first 7 digits name
the drug, the rest a serial and a check the platform that issued it computes. So a typed 20-digit code that
is not one of our trace codes is looked up as a package: a box or case packed in an AggregationEvent, a
lot opened with it, a box already dispensed, or a lot of the same drug whose opening declared the range of box
codes it was printed with (``attributes.boxes_from`` … ``boxes_to``).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from traceability.domain import tracecode
from traceability.ledger import canonical
from traceability.storage import verdict_repo
from traceability.storage.database import Database

DRUG_ID_DIGITS = 7
"""The 药品标识码 at the head of a Chinese drug trace code: which drug, which maker."""


def typed_digits(raw: str) -> str:
    """What was typed or scanned, with full-width digits (from a Chinese input method) made ASCII and the
    spaces and dashes people add for readability taken out."""
    return tracecode.normalize(unicodedata.normalize("NFKC", raw))


def drug_facts(view: dict[str, Any]) -> dict[str, Any] | None:
    """批准文号, 规格, 剂型, 批号, 生产日期, 有效期 and the maker of a drug lot, from its opening; None for food."""
    if view["product"]["category"] != "drug":
        return None
    events = view.get("events") or []
    attrs = (events[0].get("attributes") if events else None) or {}
    lot = attrs.get("lot")
    if not isinstance(lot, str):
        lot = next((i["value"] for i in view.get("identifiers", ()) if i.get("scheme") == "gs1"), None)
        # A GS1 identifier is stored as "gtin/lot"; the lot is what the box prints as 批号.
        lot = lot.split("/", 1)[-1] if isinstance(lot, str) else None
    issued = view.get("issued_by") or {}
    facts = {
        "approval_number": _text(attrs.get("approval_number")),
        "package_spec": _text(attrs.get("package_spec")),
        "strength": _text(attrs.get("strength")),
        "dosage_form": _text(attrs.get("dosage_form")),
        "lot": lot,
        "produced_on": view.get("produced_on"),
        "expires_on": view.get("expires_on"),
        "maker": issued.get("enterprise"),
    }
    return facts


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def find_unit(db: Database, raw: str) -> dict[str, Any] | None:
    """The lot a box or unit code belongs to and whether that box was dispensed; None when no lot has it."""
    code = typed_digits(raw)
    if not code.isascii() or not code.isdigit() or not 8 <= len(code) <= 40:
        return None
    async with db.connection() as conn:
        lot = await verdict_repo.package_lot(conn, code)
        if lot is None and len(code) == tracecode.LENGTH:
            head = code[:DRUG_ID_DIGITS]
            upper = f"{int(head) + 1:0{DRUG_ID_DIGITS}d}"
            for row in await verdict_repo.lots_of_drug(conn, head, upper):
                attrs = canonical.decode(row["canonical"]).get("attributes") or {}
                low, high = attrs.get("boxes_from"), attrs.get("boxes_to")
                if isinstance(low, str) and isinstance(high, str) and len(low) == len(high) == len(code):
                    if low <= code <= high:
                        lot = row["trace_code"]
                        break
        if lot is None:
            return None
        dispensed = None
        for row in await verdict_repo.dispensings(conn, lot):
            attrs = canonical.decode(row["canonical"]).get("attributes") or {}
            more = attrs.get("serials")
            serials = [attrs.get("serial"), *(more if isinstance(more, list) else [])]
            if code in serials:
                dispensed = {"at": _utc(row["event_time"]), "node": row["node"], "node_en": row["node_en"]}
                break
    return {"code": code, "trace_code": lot, "dispensed": dispensed}


def _utc(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))
