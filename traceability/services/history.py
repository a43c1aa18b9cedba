"""Reading a batch: its public view, and the fuller view for regulators and, event by event, the enterprises
that were a party to it."""

from __future__ import annotations

from typing import Any

import orjson

from traceability import errors, i18n
from traceability.domain import tracecode
from traceability.domain.access import Principal, involved, public_content, sees_commercial
from traceability.domain.budgeted import Budgeted
from traceability.domain.registry import area_name, area_name_en
from traceability.ledger import canonical, sealed
from traceability.services.together import ReadTogether
from traceability.storage import batches_repo, events_repo, registry_repo
from traceability.storage.database import Database, Record


def valid_code(raw: str) -> str:
    """The normalized trace code, or InvalidTraceCode naming what is wrong."""
    try:
        return tracecode.validate(raw)
    except tracecode.TraceCodeError as exc:
        raise errors.InvalidTraceCode(f"trace code: {exc}", field="trace_code") from None


def etag(head_hash: bytes, full: bool) -> str:
    """Histories only grow, so the head hash names a version of the view."""
    return f'"{head_hash[:16].hex()}{"-f" if full else ""}"'


async def head_etag(db: Database, code: str, viewer: Principal | None, cache: ViewCache | None = None) -> str | None:
    """The ETag of the view this viewer would get, from the chain head alone (one indexed read, shared with
    the other reads of heads asked for at the same time when ``cache`` is given)."""
    head = await _head(db, code, cache)
    if head is None:
        return None
    # A viewer who might see more gets a distinct tag; whether they do is settled by the full read.
    return etag(head["head_hash"], viewer is not None)


def _node(row: Record) -> dict[str, Any]:
    node_type = row["node_type"]
    type_names = i18n.names("node_type", node_type) or (node_type, node_type)
    return {
        "code": row["node_code"],
        "name": row["node_name"],
        "name_en": row["node_name_en"],
        "type": node_type,
        "type_name": type_names[0],
        "type_name_en": type_names[1],
        "area_code": row["area_code"],
        "area_name": area_name(row["area_code"]),
        "area_name_en": area_name_en(row["area_code"]),
        "enterprise": row["enterprise_name"],
    }


VIEW_COST = 6
"""Bytes a kept view holds per byte of its JSON: 5.3 on the median demo view (115 KB of objects for 22 KB)."""


class ViewCache:
    """Rendered views keyed by (trace code, head hash, full): a history only grows, so the view of a
    given head never changes and a hit costs one indexed read of the head, made in one statement with the
    heads other lookups ask for at the same time (:attr:`heads`). Bounded by ``budget`` bytes,
    least recently used out first: a view's size depends on its batch (a demo batch's view holds about
    115 KB of Python objects, so the 2,048 views once kept by count could take over 200 MB). A view
    costs :data:`VIEW_COST` times its JSON, counted once when it is kept (a tenth of the time walking
    its objects took)."""

    def __init__(self, budget: int = 16 << 20) -> None:
        self._views: Budgeted[tuple[str, bytes, bool], tuple[dict[str, Any], str]] = Budgeted(budget)
        self.heads: ReadTogether[str, Record] = ReadTogether(batches_repo.find_heads)
        """Where a kept view's freshness is read: the heads asked for at the same time, in one statement."""

    @property
    def budget(self) -> int:
        return self._views.budget

    @property
    def used(self) -> int:
        return self._views.used

    def get(self, key: tuple[str, bytes, bool]) -> tuple[dict[str, Any], str] | None:
        return self._views.get(key)

    def put(self, key: tuple[str, bytes, bool], value: tuple[dict[str, Any], str]) -> None:
        self._views.put(key, value, VIEW_COST * len(orjson.dumps(value[0], default=str)) + len(value[1]))


async def read_batch(
    db: Database, code: str, viewer: Principal | None, cache: ViewCache | None = None
) -> tuple[dict[str, Any], str]:
    """The batch view and its ETag. Commercial details only for those entitled to them.

    Views for the public and for regulators (who always see everything) are cached by chain head.
    """
    full_anyway = viewer is not None and viewer.role in ("regulator", "admin")
    if cache is not None and (viewer is None or full_anyway):
        head = await _head(db, code, cache)
        if head is None:
            raise errors.NotFound(f"no batch has trace code {code}")
        key = (code, head["head_hash"], full_anyway)
        if (hit := cache.get(key)) is not None:
            return hit
        fresh = await read_batch(db, code, viewer)
        if fresh[0]["head"]["hash"] == head["head_hash"].hex():  # nothing appended in between
            cache.put(key, fresh)
        return fresh
    view, tag, _rows = await read_batch_rows(db, code, viewer)
    return view, tag


async def _head(db: Database, code: str, cache: ViewCache | None) -> Record | None:
    if cache is not None:
        return await cache.heads.get(db, code)
    async with db.connection() as conn:
        return await batches_repo.find_head(conn, code)


async def read_batch_rows(
    db: Database, code: str, viewer: Principal | None
) -> tuple[dict[str, Any], str, list[Record]]:
    """The batch view, its ETag and the event rows it was built from (their canonical bytes, as hashed)."""
    async with db.connection() as conn:
        batch = await batches_repo.find_batch_view(conn, code)
        if batch is None:
            raise errors.NotFound(f"no batch has trace code {code}")
        rows = await events_repo.list_batch_events(conn, batch["id"])
        corrections = await events_repo.list_corrections(conn, batch["id"])
        contents = [canonical.decode(r["canonical"]) for r in rows]
        privates = [canonical.decode(sealed.private_bytes(r["private"])) if r["private"] else {} for r in rows]
        # Only an enterprise's view depends on whose nodes the parties name.
        enterprise = viewer is not None and viewer.role not in ("regulator", "admin")
        named = await registry_repo.enterprises_of_nodes(conn, _named_nodes(contents + privates)) if enterprise else {}
    declared_wrong = {c["declared"]: {"by": c["by_event"], "reason": c["reason"]} for c in corrections}
    # Commercial details are shown per event: to regulators, and to the enterprises that were a party to
    # that very event (it recorded it, or the event names it as source or destination), never other hops.
    shown_to = [
        sees_commercial(viewer, parties(row["enterprise_uscc"], content, private, named))
        for row, content, private in zip(rows, contents, privates, strict=True)
    ]
    sealed_events = [i for i, p in enumerate(privates) if p]
    seen = sum(1 for i in sealed_events if shown_to[i])
    if viewer is not None and viewer.role in ("regulator", "admin"):
        level = "full"
    elif sealed_events and seen == len(sealed_events):
        level = "full"
    else:
        level = "partial" if seen else "public"
    events = []
    certificates = []
    for row, content, private, full in zip(rows, contents, privates, shown_to, strict=True):
        shown = {**content, **private} if full else public_content(content)
        event = {
            "event_id": row["event_id"],
            "seq": row["seq"],
            "hash": row["hash"].hex(),
            "prev_hash": row["prev_hash"].hex(),
            "proof_url": f"/api/v1/events/{row['event_id']}/proof",
            "node": _node(row),
            **{k: v for k, v in shown.items() if k not in ("node", "eventID", "traceCode")},
        }
        if row["event_id"] in declared_wrong:
            event["declared_wrong"] = declared_wrong[row["event_id"]]
        events.append(event)
        for doc in content.get("documents", ()):
            names = i18n.names("document_type", doc["type"]) or ("", doc["type"])
            certificates.append(
                {
                    **doc,
                    "type_name": names[0],
                    "type_name_en": names[1],
                    "seq": row["seq"],
                    "node": row["node_name"],
                    "node_en": row["node_name_en"],
                }
            )
    opening = contents[0] if contents else {}
    info = opening.get("batch", {})
    category = batch["category"]
    category_names = i18n.names("product_category", category) or (category, category)
    view = {
        "trace_code": batch["trace_code"],
        "product": {
            "goods_code": batch["goods_code"],
            "gtin": batch["gtin"],
            "name": batch["product_name"],
            "name_en": batch["product_name_en"],
            "category": category,
            "category_name": category_names[0],
            "category_name_en": category_names[1],
        },
        "quantity": {"value": format(batch["quantity"].normalize(), "f"), "uom": batch["uom"]},
        "origin": info.get("origin"),
        "produced_on": batch["produced_on"].isoformat() if batch["produced_on"] else None,
        "expires_on": batch["expires_on"].isoformat() if batch["expires_on"] else None,
        "identifiers": [dict(zip(("scheme", "value"), i.split(":", 1), strict=True)) for i in batch["identifiers"]],
        "issued_by": _node(batch),
        "head": {"seq": batch["head_seq"], "hash": batch["head_hash"].hex()},
        "certificates": certificates,
        "events": events,
        "view": level,
    }
    return view, etag(batch["head_hash"], viewer is not None), rows


def _named_nodes(blobs: list[dict[str, Any]]) -> list[str]:
    """Node codes the events' parties name (sealed destinations included), to find their enterprises."""
    codes = set()
    for blob in blobs:
        for key in ("source", "destination"):
            party = blob.get(key)
            if isinstance(party, dict) and isinstance(party.get("node"), str):
                codes.add(party["node"])
    return sorted(codes)


def parties(recorder: str, content: dict[str, Any], private: dict[str, Any], named: dict[str, str]) -> set[str]:
    """The enterprises party to one event: the one that recorded it and those it names as source or destination
    (by unified social credit code, or by a node of theirs)."""
    out = {recorder} | involved(content) | involved(private)
    for blob in (content, private):
        for key in ("source", "destination"):
            party = blob.get(key)
            if isinstance(party, dict) and (uscc := named.get(party.get("node", ""))) is not None:
                out.add(uscc)
    return out


async def find_by_identifier(db: Database, scheme: str, value: str) -> str:
    """The trace code of the batch an external identifier was attached to."""
    async with db.connection() as conn:
        code = await batches_repo.find_identifier_owner(conn, scheme, value)
    if code is None:
        raise errors.NotFound(f"no batch carries {scheme} identifier {value}")
    return code
