"""Splits, merges and repacks; tracing a batch backward to its origins and forward to every stall;
recalls, which are events appended to every affected batch's chain (holds after a failed inspection
are appended by the shared write path, :mod:`traceability.services.recording`)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from traceability import errors, i18n
from traceability.domain import supply, tracecode
from traceability.domain.access import Principal
from traceability.domain.events import before_opening
from traceability.domain.fields import offset_text, utc_ms
from traceability.domain.registry import area_name
from traceability.ledger import canonical, chain
from traceability.logging import get_logger
from traceability.services import stock
from traceability.services.recording import (
    Claim,
    Receipt,
    append_status_events,
    enforce_custody,
    insert_opening,
    record,
    require_device,
    stamp,
    status_event,
    write,
)
from traceability.services.validation import fields
from traceability.storage import batches_repo, events_repo, genealogy_repo, registry_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)


# -- transformations ------------------------------------------------------------------------------


async def transform(db: Database, principal: Principal, body: Any, public_url: str) -> dict[str, Any]:
    """Consume input batches into new output batches, each with its own trace code, all in one transaction."""
    device = require_device(principal)
    now = datetime.now(UTC)
    with fields():
        draft = supply.parse_transformation(body, now)

    async def transform_or_replay(conn: Connection, retried: bool) -> dict[str, Any]:
        # After a collision the same transformation raced us: the next run finds it and replays it.
        return await _transform(conn, device, draft, now, public_url)

    return await write(db, transform_or_replay, "could not record the transformation; retry")


async def _transform(
    conn: Connection, device: Principal, draft: supply.TransformDraft, now: datetime, public_url: str
) -> dict[str, Any]:
    input_ids = [supply.input_event_id(draft.event_id, code) for code, _ in draft.inputs]
    done = await events_repo.find_events(conn, input_ids)
    if done:
        return await _replayed(conn, draft, done, public_url)
    heads = {r["trace_code"]: r for r in await batches_repo.lock_heads(conn, [c for c, _ in draft.inputs])}
    categories = set()
    for i, (code, _) in enumerate(draft.inputs):
        head = heads.get(code)
        if head is None:
            raise errors.UnknownReference(
                f"inputs[{i}].traceCode: no batch has trace code {code}", field=f"inputs[{i}].traceCode"
            )
        if head["status"] != "active":
            raise errors.Conflict(
                f"inputs[{i}].traceCode: batch {code} is {head['status'].replace('_', ' ')} and may not be processed",
                field=f"inputs[{i}].traceCode",
            )
        if (problem := before_opening(draft.event_time, head["opened_at"])) is not None:
            raise errors.InvalidField(f"eventTime: input {code} {problem}", field="eventTime")
        categories.add(head["category"])
    assert device.node_id is not None
    # Only a node that holds every input may transform it (custody, in this transaction).
    await enforce_custody(
        conn,
        [
            Claim(
                heads[code]["id"], code, device.node_id, {"bizStep": draft.biz_step}, draft.event_time, f"inputs[{i}]."
            )
            for i, (code, _) in enumerate(draft.inputs)
        ],
    )
    products = []
    for i, out in enumerate(draft.outputs):
        found = await registry_repo.find_products(conn, out.product, out.gtin)
        if len(found) != 1:
            raise errors.UnknownReference(
                f"outputs[{i}].product: no registered product {out.product or out.gtin}", field=f"outputs[{i}].product"
            )
        products.append(found[0])
        with fields():
            supply.check_key_data(found[0]["category"], out.content, f"outputs[{i}].")
    category = categories.pop() if len(categories) == 1 else "other"
    problem = supply.mass_balance([q for _, q in draft.inputs], [o.quantity for o in draft.outputs], category)
    if problem:
        raise errors.InvalidField(f"outputs: {problem}", field="outputs")

    recorded_at = utc_ms(now)
    offset = offset_text(draft.event_time)
    assert device.area_code is not None and device.node_id is not None
    outputs: list[dict[str, Any]] = []
    rows: list[tuple[Any, ...]] = []
    for out, product in zip(draft.outputs, products, strict=True):
        code = tracecode.make(device.area_code, await batches_repo.next_serial(conn))
        content = stamp(out.content, device)
        content.update(
            type="TransformationEvent",
            bizStep=draft.biz_step,
            traceCode=code,
            transformationID=draft.event_id,
            eventTime=utc_ms(draft.event_time),
            eventTimeZoneOffset=offset,
            inputs=[{"traceCode": c, "quantity": q} for c, q in draft.inputs],
        )
        content.pop("action", None)  # EPCIS TransformationEvents have no action
        content["batch"] = dict(content["batch"], product=product["goods_code"])
        out_digest = hashlib.sha256(canonical.encode(content)).digest()  # what a retry would be compared with
        batch_id, receipt = await insert_opening(
            conn, device, out, product["id"], code, content, draft.biz_step, draft.event_time, now, out_digest
        )
        outputs.append(
            {
                "traceCode": code,
                "url": f"{public_url}/t/{code}",
                "receipt": receipt.as_json(),
                "batch_id": batch_id,
                "quantity": out.quantity,
            }
        )
    input_receipts = []
    new_heads = []
    for (code, quantity), event_id in zip(draft.inputs, input_ids, strict=True):
        head = heads[code]
        content = stamp(
            {
                "eventID": event_id,
                "type": "TransformationEvent",
                "bizStep": draft.biz_step,
                "traceCode": code,
                "transformationID": draft.event_id,
                "eventTime": utc_ms(draft.event_time),
                "eventTimeZoneOffset": offset,
                "quantity": quantity,
                "outputs": [{"traceCode": o["traceCode"], "quantity": o["quantity"]} for o in outputs],
                **({"documents": draft.documents} if draft.documents else {}),
            },
            device,
        )
        data, private = record(content, recorded_at)
        digest = chain.link(head["head_hash"], data)
        rows.append(
            (
                event_id,
                head["id"],
                head["seq"] + 1,
                head["head_hash"],
                digest,
                data,
                draft.biz_step,
                device.node_id,
                device.id,
                draft.event_time,
                now,
                private,
            )
        )
        new_heads.append((head["id"], head["seq"] + 1, digest))
        input_receipts.append(
            Receipt(event_id, code, head["seq"] + 1, digest, head["head_hash"], recorded_at).as_json()
        )
    await events_repo.insert_events(conn, rows)
    await batches_repo.update_heads(conn, new_heads)
    links = [
        (heads[code]["id"], o["batch_id"], Decimal(q["value"]), q["uom"]) for code, q in draft.inputs for o in outputs
    ]
    await genealogy_repo.insert_links(conn, draft.event_id, links)
    log.info("batches.transformed", inputs=len(draft.inputs), outputs=len(outputs))
    for o in outputs:
        del o["batch_id"]
    return {"transformationID": draft.event_id, "outputs": outputs, "inputs": input_receipts, "replayed": False}


async def _replayed(
    conn: Connection, draft: supply.TransformDraft, done: list[Record], public_url: str
) -> dict[str, Any]:
    """A retried transformation: the same outputs, if the request is the same."""
    ours = {r["event_id"]: r for r in done}
    first = ours.get(supply.input_event_id(draft.event_id, draft.inputs[0][0]))
    if first is None or len(ours) != len(draft.inputs):
        raise errors.EventConflict("eventID: this transformation was recorded with other inputs", field="eventID")
    content = canonical.decode(first["canonical"])
    if [o["quantity"] for o in content["outputs"]] != [o.quantity for o in draft.outputs] or content[
        "quantity"
    ] != draft.inputs[0][1]:
        raise errors.EventConflict("eventID: this transformation was recorded with other quantities", field="eventID")
    outputs = [
        {"traceCode": o["traceCode"], "url": f"{public_url}/t/{o['traceCode']}", "quantity": o["quantity"]}
        for o in content["outputs"]
    ]
    return {"transformationID": draft.event_id, "outputs": outputs, "inputs": [], "replayed": True}


# -- tracing --------------------------------------------------------------------------------------


def _node(r: Record, public: bool) -> dict[str, Any]:
    type_names = i18n.names("node_type", r["node_type"]) or (r["node_type"], r["node_type"])
    node = {
        "code": r["code"],
        "name": r["name_zh"],
        "name_en": r["name_en"],
        "type": r["node_type"],
        "type_name": type_names[0],
        "type_name_en": type_names[1],
        "area_code": r["area_code"],
        "area_name": area_name(r["area_code"]),
        "enterprise": r["enterprise"],
        "first_seen": r["first_seen"].isoformat(),
        "steps": sorted(r["steps"]),
    }
    if not public:
        node.update(uscc=r["uscc"], contact=r["contact"], last_seen=r["last_seen"].isoformat())
    return node


async def trace(db: Database, code: str, direction: str, *, public: bool = False) -> dict[str, Any]:
    """The genealogy of a batch: upstream to every origin, or downstream to every place it reached."""
    if direction not in ("backward", "forward"):
        raise errors.InvalidField("direction must be backward or forward", field="direction")
    async with db.connection() as conn:
        root = await genealogy_repo.batch_id(conn, code)
        if root is None:
            raise errors.NotFound(f"no batch has trace code {code}")
        depth = await genealogy_repo.related(conn, root, direction)
        ids = list(depth)
        batches = await genealogy_repo.batches_by_id(conn, ids)
        links = await genealogy_repo.links_among(conn, ids)
        visits = await genealogy_repo.visits(conn, ids)
        documents = await genealogy_repo.document_events(conn, ids) if direction == "backward" else []
        by_id = {b["id"]: b for b in batches}
        counted = await stock.at_nodes(conn, by_id) if direction == "forward" else {}
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for link in links:
        parents.setdefault(link["child"], []).append(link["parent"])
        children.setdefault(link["parent"], []).append(link["child"])
    places: dict[int, list[dict[str, Any]]] = {}
    for v in visits:
        places.setdefault(v["batch_id"], []).append(_node(v, public))
    certs: dict[int, list[dict[str, Any]]] = {}
    seen: set[tuple[int, str, str]] = set()  # a certificate travels with the goods: list it once per batch
    for row in documents:
        for doc in canonical.decode(row["canonical"]).get("documents", ()):
            if (row["batch_id"], doc["type"], doc["number"]) in seen:
                continue
            seen.add((row["batch_id"], doc["type"], doc["number"]))
            names = i18n.names("document_type", doc["type"]) or ("", doc["type"])
            certs.setdefault(row["batch_id"], []).append(
                {**doc, "type_name": names[0], "type_name_en": names[1], "seq": row["seq"], "node": row["node"]}
            )
    out_batches = []
    for bid in sorted(ids, key=lambda i: (depth[i], by_id[i]["trace_code"])):
        b = by_id[bid]
        code_ = b["trace_code"]
        entry: dict[str, Any] = {
            "trace_code": code_,
            "depth": depth[bid],
            "product": b["product_name"],
            "product_en": b["product_name_en"],
            "goods_code": b["goods_code"],
            "category": b["category"],
            "quantity": {"value": format(b["quantity"].normalize(), "f"), "uom": b["uom"]},
            "produced_on": b["produced_on"].isoformat() if b["produced_on"] else None,
            "expires_on": b["expires_on"].isoformat() if b["expires_on"] else None,
            "status": b["status"],
            "parents": sorted(parents.get(code_, [])),
            "children": sorted(children.get(code_, [])),
            "nodes": places.get(bid, []),
        }
        if direction == "backward":
            entry["certificates"] = certs.get(bid, [])
        out_batches.append(entry)
    result: dict[str, Any] = {
        "trace_code": code,
        "direction": direction,
        "batches": out_batches,
        "edges": [
            {"from": link["parent"], "to": link["child"], "transformation": link["transformation_id"]} for link in links
        ],
    }
    if direction == "backward":
        result["origins"] = [b["trace_code"] for b in out_batches if not b["parents"]]
    else:
        reached: dict[str, dict[str, Any]] = {}
        for entry in out_batches:
            for n in entry["nodes"]:
                reached.setdefault(n["code"], {**n, "batches": []})["batches"].append(entry["trace_code"])
        for code_, node in reached.items():
            node.update(counted.get(code_) or {"stock": [], "sold_to_consumers": [], "left": [], "receipts": 0})
        result["reached"] = list(reached.values())
        result["totals"] = stock.totals(reached)
        result["enterprises"] = sorted({n["enterprise"] for n in reached.values()})
    return result


# -- holds and recalls ----------------------------------------------------------------------------


DEFAULT_AUTHORITY = "市场监督管理部门"
"""What a recall names when the credential that issued it names no authority (an administrator's)."""


async def recall(db: Database, principal: Principal, body: Any) -> dict[str, Any]:
    """A regulator recalls a batch: it and every descendant get a recall event and the recalled status."""
    if principal.role not in ("regulator", "admin"):
        raise errors.Forbidden("only a regulator issues recalls")
    # Public records name the authority, never the account; an administrator's credential names none.
    authority = principal.authority or DEFAULT_AUTHORITY
    with fields():
        draft = supply.parse_recall(body)
    now = datetime.now(UTC)
    account = f"{principal.kind}:{principal.id} {principal.name}"

    async def recall_all(conn: Connection) -> tuple[int, list[Receipt], Record | None]:
        root = await genealogy_repo.batch_id(conn, draft.trace_code)
        if root is None:
            raise errors.UnknownReference(f"traceCode: no batch has trace code {draft.trace_code}", field="traceCode")
        depth = await genealogy_repo.related(conn, root, "forward")
        # Under the heads' locks, so two submits of one recall cannot both record it: the second is a replay.
        await genealogy_repo.lock_heads_by_id(conn, sorted(depth))
        same = await genealogy_repo.same_recall(conn, root, draft.level, draft.reason, draft.scope)
        if same is not None:
            return same["id"], [], same
        detail = {
            "level": draft.level,
            "reason": draft.reason,
            "source": draft.trace_code,
            "issuedBy": authority,
            **({"scope": draft.scope} if draft.scope else {}),
        }
        receipts = await append_status_events(
            conn,
            sorted(depth),
            "recalled",
            lambda head: status_event("recall", head, now, detail, "recalled"),
            now,
        )
        source_event = next(r.event_id for r in receipts if r.trace_code == draft.trace_code)
        recall_id = await genealogy_repo.insert_recall(
            conn, root, source_event, draft.level, draft.reason, draft.scope, account, now, len(receipts), authority
        )
        return recall_id, receipts, None

    recall_id, receipts, same = await db.transaction(recall_all)
    affected = await trace(db, draft.trace_code, "forward")
    if same is None:
        log.info("batch.recalled", trace_code=draft.trace_code, batches=len(receipts))
        batches = [r.trace_code for r in receipts]
    else:
        # Nothing new was recorded: answer with the recall already issued and what it reached.
        log.info("batch.recall_replayed", trace_code=draft.trace_code, recall_id=recall_id)
        batches = [b["trace_code"] for b in affected["batches"]]
    return {
        "recall_id": recall_id,
        "authority": same["authority"] if same is not None else authority,
        "trace_code": draft.trace_code,
        "level": draft.level,
        "reason": draft.reason,
        "issued_at": (same["issued_at"] if same is not None else now).isoformat(),
        "replayed": same is not None,
        "batches": batches,
        "reached": affected["reached"],
        "totals": affected["totals"],
        "enterprises": affected["enterprises"],
    }


async def list_recalls(
    db: Database, limit: int = 100, offset: int = 0, *, oversight: bool = False
) -> list[dict[str, Any]]:
    """Recalls, newest first, each naming the authority that issued it; ``oversight`` adds the account."""
    async with db.connection() as conn:
        rows = await genealogy_repo.list_recalls(conn, limit, offset)
    out = []
    for r in rows:
        item = {k: v for k, v in dict(r).items() if k != "issued_by"}
        item["issued_at"] = r["issued_at"].isoformat()
        if oversight:
            item["issued_by"] = r["issued_by"]
        out.append(item)
    return out
