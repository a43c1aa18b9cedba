"""What the consumer page behind every QR code shows, and its JSON twin.

The consumer record wraps the same batch view the API serves (``history.read_batch``) with what a
person needs first: the status (recalled, on hold, failed, expired), the journey by node, the stall that
sold it, and the canonical bytes the browser hashes to check the chain and the Merkle proofs itself.
A batch cut from others (a receipt, a joint) shows its whole lineage: the journey, certificates,
inspections and state of every batch it came from (:mod:`traceability.services.views.lineage`), and a
receipt the sale that made it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, NamedTuple

from traceability.domain.access import Principal
from traceability.domain.fields import BEIJING
from traceability.domain.registry import area_name, area_name_en
from traceability.services import credit, history, stations
from traceability.services.views import lineage, packages, verdict
from traceability.services.views.batch import RETAIL_NODES
from traceability.services.views.farm_inputs import farm_inputs
from traceability.storage import credit_repo, federation_repo, genealogy_repo, search_repo
from traceability.storage.database import Connection, Database, Record


async def find_lease(db: Database, code: str) -> dict[str, Any] | None:
    """Which station a not-yet-synced code was leased to (its records are still on the way), or None."""
    return await stations.find_lease(db, code)


async def credit_of(db: Database, uscc: str) -> dict[str, Any] | None:
    """The enterprise's current credit rating (信用评价): grade and score over the rating window."""
    async with db.connection() as conn:
        return await _credit(conn, uscc)


async def _credit(conn: Connection, uscc: str) -> dict[str, Any] | None:
    ent = await credit_repo.enterprise(conn, uscc)
    if ent is None:
        return None
    now = datetime.now(UTC)
    value, _ = credit.score(await credit_repo.record(conn, ent["id"], now - credit.WINDOW, now))
    return {"grade": credit.grade(value), "score": value, "uscc": uscc}


MAX_ANCESTORS = 64
"""Ancestors read for one page at most (a receipt has three or four: the stall's batch, the carcass, the pigs)."""


def today() -> Any:
    """Today in Beijing: what "past its shelf life" is measured against."""
    return datetime.now(BEIJING).date()


class Ancestor(NamedTuple):
    """A batch this one came from: its public view, the event rows it was built from, and its id."""

    view: dict[str, Any]
    rows: list[Record]
    batch_id: int


async def ancestors(db: Database, code: str) -> list[Ancestor]:
    """Every batch this one came from, farthest first."""
    async with db.connection() as conn:
        root = await genealogy_repo.batch_id(conn, code)
        depth = {} if root is None else await genealogy_repo.related(conn, root, "backward")
        found = await genealogy_repo.batches_by_id(conn, [i for i in depth if i != root])
    found.sort(key=lambda b: (-depth[b["id"]], b["trace_code"]))
    out = []
    for b in found[:MAX_ANCESTORS]:
        view, _tag, rows = await history.read_batch_rows(db, b["trace_code"], None)
        out.append(Ancestor(view, rows, b["id"]))
    return out


def ledger_events(rows: list[Record]) -> list[dict[str, Any]]:
    """Records as a page carries them for the phone to check: their canonical bytes, as hashed, and hashes."""
    return [
        {
            "seq": r["seq"],
            "event_id": r["event_id"],
            "hash": r["hash"].hex(),
            "prev_hash": r["prev_hash"].hex(),
            "canonical": base64.b64encode(r["canonical"]).decode(),
        }
        for r in rows
    ]


async def upstream_ledgers(conn: Connection, upstream: list[Ancestor], cut: str | None) -> list[dict[str, Any]]:
    """The records of each ancestor that the journey shows, for the phone to check as it checks the batch's own:
    the ancestor's chain from its start up to the last record shown (the records before it come with it, as the
    chain links them), and that last record's event id, whose inclusion proof the page's one bundle request
    asks for (and which proves the records chained before it)."""
    out = []
    starts = await federation_repo.chain_starts(conn, [a.batch_id for a in upstream]) if upstream else {}
    for view, rows, batch_id in upstream:
        shown = {e["seq"] for e in lineage.ancestor_events(view, cut)}
        if not shown:
            continue
        prefix = [r for r in rows if r["seq"] <= max(shown)]
        start = starts.get(batch_id)
        out.append(
            {
                "trace_code": view["trace_code"],
                "chain_start": start.hex() if start is not None else None,
                "last_event_id": prefix[-1]["event_id"],
                "events": ledger_events(prefix),
            }
        )
    return out


async def consumer_record(db: Database, code: str, viewer: Principal | None = None) -> tuple[dict[str, Any], str]:
    """The consumer page's data and its ETag: the public batch view plus status, journey, stall and ledger bytes."""
    record, tag, uscc = await _record(db, code, viewer)
    if uscc is not None and record["vendor"] is not None:
        record["vendor"]["credit"] = await credit_of(db, uscc)
    return record, tag


async def consumer_record_base(db: Database, code: str) -> tuple[dict[str, Any], str | None]:
    """The public consumer record without the stall's credit rating, and the enterprise that rating is of."""
    record, _tag, uscc = await _record(db, code, None)
    return record, uscc


async def _record(db: Database, code: str, viewer: Principal | None) -> tuple[dict[str, Any], str, str | None]:
    # The ledger bytes come from the very rows the view was built from (one read of the chain).
    view, tag, rows = await history.read_batch_rows(db, code, viewer)
    upstream_rows = await ancestors(db, code)
    upstream = [a.view for a in upstream_rows]
    uscc = None
    async with db.connection() as conn:
        received = await federation_repo.find_foreign(conn, code)
        chains = await upstream_ledgers(conn, upstream_rows, lineage.cut_at(view))
        vendor = None
        sold_at = next((e for e in reversed(view["events"]) if e["node"]["type"] in RETAIL_NODES), None)
        if sold_at is not None and isinstance(sold_at.get("operator"), str):
            op = await search_repo.find_operator(conn, sold_at["node"]["code"], sold_at["operator"])
            if op is not None:
                vendor = {
                    "operator": op["code"],
                    "name": op["name"],
                    "stall_no": op["stall_no"],
                    "node": op["node_name"],
                    "node_en": op["node_name_en"],
                    "node_code": op["node_code"],
                    "node_type": op["node_type"],
                    "place": area_name(op["area_code"]),
                    "place_en": area_name_en(op["area_code"]),
                    "enterprise": op["enterprise_name"],
                    "credit": None,
                }
                uscc = op["enterprise_uscc"]
        if vendor is None and sold_at is not None:
            node = sold_at["node"]
            vendor = {
                "operator": None,
                "name": None,
                "stall_no": None,
                "node": node["name"],
                "node_en": node.get("name_en"),
                "node_code": node["code"],
                "node_type": node["type"],
                "place": node.get("area_name"),
                "place_en": node.get("area_name_en"),
                "enterprise": node.get("enterprise"),
                "credit": None,
            }
    ledger = {
        "trace_code": view["trace_code"],
        "events": ledger_events(rows),
        # Received from another member ledger: the chain here starts at the shipment's hash there.
        "chain_start": received["last_hash"].hex() if received else None,
        "received_from": received["origin"] if received else None,
        "public_key_url": "/api/v1/log/public-key",
        "proof_url": "/api/v1/events/{event_id}/proof",
        "proofs_url": f"/api/v1/batches/{view['trace_code']}/proofs",
        # The records of the batches it came from that the journey shows (lineage.ancestor_events).
        "upstream": chains,
    }
    record = {
        "verdict": await verdict.verdict_of(db, view),
        "batch": view,
        "status": lineage.merged_status(view, upstream, today()),
        "journey": lineage.merged_journey(view, upstream),
        "inspections": lineage.merged_inspections(view, upstream),
        "certificates": lineage.merged_certificates(view, upstream),
        "farm_inputs": farm_inputs(view, upstream),
        "vendor": vendor,
        "sale": lineage.this_sale(view),
        "lineage": [{"trace_code": v["trace_code"], "product": v["product"]} for v in upstream],
        "drug": packages.drug_facts(view),
        "ledger": ledger,
    }
    return record, tag, uscc
