"""Anomalies, computed as events arrive.

The analyzer follows the transparency log in leaf order, so it sees every accepted event exactly
once and in a fixed order without adding any work to capture. What it derives (anomalies, stock
per batch and node, dispensed drug serials) is rebuilt from the ledger by replaying the log.

Rules (docs/supply-chain.md): sold after expiry; sold or shipped while recalled or on hold, or a
sale synced after a recall; mass balance exceeded at a node; received without a shipment; an
event at a node the batch never reached; a required certificate missing for the category (not for a
receipt, whose certificates are its source's); a drug serial dispensed twice; events out of time
order; a batch dormant past its shelf life; a batch a farm opened inside a safety interval (it
insisted), and every receipt of it or of what was made from it. A receipt's opening is the sale seen
from the receipt's side: the sale is judged once, on the source's chain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from msgspec import UNSET

from traceability import errors, i18n
from traceability.domain import anomalies as anomaly_rules
from traceability.domain import dairy, recorded
from traceability.domain.balance import MASS_TOLERANCE, SALE_STEPS, in_batch_terms
from traceability.domain.fields import BEIJING
from traceability.domain.recorded import Recorded
from traceability.logging import get_logger
from traceability.services.exclusive import Busy, run_exclusive
from traceability.storage import analysis_repo, farm_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

NAME = "anomalies"
LOCK = 0x74726163656E6C7A  # "traceanlz"
BATCH = 2000
SLICE = 100
"""Events the analyzer reads or judges before it lets the requests in flight on its event loop go on: a pass
over :data:`BATCH` events is some 30 ms of Python, which in a one-worker server held every capture waiting."""
SWEEP_EVERY = timedelta(minutes=5)
OUT_OF_ORDER = timedelta(minutes=5)
REQUIRED_AT_OPENING = {
    "meat": ("quarantine_certificate", "meat_inspection_certificate"),
    "vegetable": ("origin_certificate",),
}
KINDS = (  # in the order the console lists them; their names are in traceability/i18n
    "sold_after_expiry",
    "sold_while_recalled",
    "sold_while_on_hold",
    "sale_synced_after_recall",
    "receipt_synced_after_recall",
    "mass_balance_exceeded",
    "received_without_shipment",
    "event_at_unreached_node",
    "missing_certificate",
    "drug_serial_dispensed_twice",
    "out_of_time_order",
    "dormant_past_shelf_life",
    "opened_inside_interval",
    "received_inside_interval",
    "cold_chain_breach",
)


@dataclass(slots=True)
class _Pass:
    """What one pass over a batch of events reads up front (one query per kind of lookup, never one per
    event) and what it carries from event to event: stock per (batch, node), drug serials claimed so far."""

    stock: dict[tuple[int, int], list[Any]]
    touched: dict[tuple[int, int], list[Any]] = field(default_factory=dict)
    nodes: dict[int, set[int]] = field(default_factory=dict)  # the nodes each batch has a stock row at
    found: list[tuple[Any, ...]] = field(default_factory=list)
    claimed: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # serial: (event, node names)
    upstream: dict[int, list[Record]] | None = None  # receiving batch: violations upstream; None: there are none
    openings: dict[int, bytes] = field(default_factory=dict)  # dairy batch: its opening's canonical bytes
    late: set[tuple[int, int]] = field(default_factory=set)  # (batch, seq) dated before the event before it


async def _prepare(conn: Connection, events: list[Record], contents: list[Recorded]) -> _Pass:
    """The pass's lookups, each one query for the whole batch of events."""
    state = _Pass(await analysis_repo.stock(conn, [(e["batch_id"], e["node_id"]) for e in events]))
    for batch_id, node_id in state.stock:
        state.nodes.setdefault(batch_id, set()).add(node_id)
    # The event before each one: most often in the pass itself (a batch moves several times a pass under load),
    # else compared in one query, for the batches whose first event in the pass is not their opening.
    times = {(e["batch_id"], e["seq"]): e["event_time"] for e in events}
    ask = []
    for (batch_id, seq), at in times.items():
        if seq > 1:
            before = times.get((batch_id, seq - 1))
            if before is None:
                ask.append((batch_id, seq, at))
            elif at < before - OUT_OF_ORDER:
                state.late.add((batch_id, seq))
    if ask:
        state.late |= await analysis_repo.out_of_order(conn, ask, OUT_OF_ORDER)
    # Drug serials are claimed first, each by the first event in the pass that dispenses it: only those
    # claimed before this pass (a package dispensed twice, rare) need looking up.
    first: dict[str, tuple[str, int, str, int]] = {}
    for e, c in zip(events, contents, strict=True):
        if e["biz_step"] == "dispensing" and not _appended_by_ledger(e, c):
            for s in c.serials():
                first.setdefault(s, (s, e["batch_id"], e["event_id"], e["node_id"]))
    if first:
        claimed_now = await analysis_repo.claim_serials(conn, list(first.values()))
        if before := [s for s in first if s not in claimed_now]:
            for r in await analysis_repo.dispensed(conn, before):
                state.claimed[r["serial"]] = (r["dispensed_by"], r["node"], r["node_en"])
    if await farm_repo.any_violations(conn):
        received = {e["batch_id"] for e in events if _receipt_by_device(e)}
        state.upstream = await analysis_repo.violations_upstream(conn, sorted(received)) if received else {}
    warm = {e["batch_id"] for e, c in zip(events, contents, strict=True) if e["category"] == "dairy" and c.readings()}
    if warm:
        state.openings = await analysis_repo.opening_canonicals(conn, sorted(warm))
    return state


RULE_FAULTS = (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError)
"""What a rule raises on a record it was not written for (a fault in the rule, not in the database): the event is
logged (``analyzer.event_failed``), counted (``analyzer_state.failed``, served as ``trace_analyzer_failed_events``)
and the pass goes on. Database errors still end the pass, which is retried."""


def _appended_by_ledger(e: Record, content: Recorded) -> bool:
    """A hold or recall the ledger itself appended (an enterprise's own capture names its credential)."""
    return e["device_id"] is None and content.credential is UNSET


def _receipt_by_device(e: Record) -> bool:
    return e["device_id"] is not None and e["seq"] != 1 and e["biz_step"] == "receiving"


async def analyze(db: Database, now: datetime | None = None, conn: Connection | None = None, limit: int = BATCH) -> int:
    """Analyze the next events (at most ``limit``) in log order; returns how many were looked at.

    ``conn``: the analyzer's own connection (the one holding its lock), else a pooled one.
    """
    now = now or datetime.now(UTC)

    async def work(conn: Connection) -> tuple[int, int]:
        state = await analysis_repo.lock_state(conn, NAME)
        events = await analysis_repo.new_events(conn, state["position"], limit)
        found: list[tuple[Any, ...]] = []
        failed = 0
        if events:
            contents = []
            for i in range(0, len(events), SLICE):
                contents += [recorded.read(e["canonical"]) for e in events[i : i + SLICE]]
                await asyncio.sleep(0)
            run = await _prepare(conn, events, contents)
            found = run.found
            for i, (e, content) in enumerate(zip(events, contents, strict=True)):
                if i % SLICE == SLICE - 1:
                    await asyncio.sleep(0)
                try:
                    await _rules(conn, e, content, run)
                    if run.upstream is not None:
                        _interval_rules(e, content, run)
                    if e["category"] == "dairy":
                        _cold_chain(e, content, run)
                except RULE_FAULTS as exc:
                    # A record the rules cannot read must not hold back every record after it, pass after pass.
                    failed += 1
                    log.error(
                        "analyzer.event_failed",
                        event_id=str(e["event_id"]),
                        error=type(exc).__name__,
                        detail=str(exc)[:200],
                    )
            if run.touched:
                await analysis_repo.save_stock(conn, {k: [v[0], v[1], v[2]] for k, v in run.touched.items()})
        swept = None
        if state["swept_at"] is None or now - state["swept_at"] > SWEEP_EVERY:
            for d in await analysis_repo.dormant(conn, now.date()):
                found.append(
                    (
                        "dormant_past_shelf_life",
                        d["batch_id"],
                        None,
                        d["node_id"],
                        d["enterprise_id"],
                        f"batch {d['trace_code']} is past its {d['shelf_life_days']}-day shelf life and "
                        "was neither sold, processed nor destroyed",
                        d["last_event"],
                        {"days": d["shelf_life_days"]},
                    )
                )
            swept = now
        await analysis_repo.insert_anomalies(conn, found)
        if events or swept is not None:
            position = events[-1]["leaf_index"] if events else state["position"]
            await analysis_repo.save_state(conn, NAME, position, swept, failed)
        return len(events), len(found)

    looked, flagged = await db.transaction(work, conn=conn)
    if flagged:
        log.info("anomalies.detected", count=flagged)
    return looked


async def _rules(conn: Connection, e: Record, content: Recorded, run: _Pass) -> None:
    step, batch, node = e["biz_step"], e["batch_id"], e["node_id"]
    found, stock, touched, nodes = run.found, run.stock, run.touched, run.nodes

    def flag(kind: str, detail: str, **facts: Any) -> None:
        facts.setdefault("step", step)
        found.append((kind, batch, e["event_id"], node, e["enterprise_id"], detail, e["event_time"], facts))

    if _appended_by_ledger(e, content):
        return
    key = (batch, node)
    row = touched.get(key) or (stock.get(key) and [*stock[key], None])
    before = row[2] if row else None
    batch_qty = Decimal(e["batch_quantity"])
    uom = e["batch_uom"]
    amount = in_batch_terms(content.quantity, uom, batch_qty)
    if e["seq"] == 1:
        row = [batch_qty, Decimal(0), e["event_time"]]
        docs = content.document_types()
        if content.transformationID is UNSET and not content.cut_from():
            for needed in REQUIRED_AT_OPENING.get(e["category"], ()):
                if needed not in docs and not (
                    needed == "meat_inspection_certificate" and e["node_type"] != "slaughterhouse"
                ):
                    flag(
                        "missing_certificate",
                        f"a {e['category']} batch opened without a {needed.replace('_', ' ')}",
                        category=e["category"],
                        document=needed,
                    )
    elif step == "receiving":
        # Stock holds every node's row for this pass's batches; touched holds what the pass changed since.
        shipped = any((touched.get((batch, n)) or stock[(batch, n)])[1] > 0 for n in nodes.get(batch, ()) if n != node)
        if e["issuing_node"] != node and not shipped:
            flag("received_without_shipment", "no node recorded shipping or selling this batch before it arrived")
        row = [(row[0] if row else Decimal(0)) + amount, row[1] if row else Decimal(0), e["event_time"]]
    else:
        if row is None:
            flag("event_at_unreached_node", f"{step.replace('_', ' ')} recorded where the batch was never received")
            row = [Decimal(0), Decimal(0), e["event_time"]]
        consumed = step in SALE_STEPS or content.transformationID is not UNSET
        if consumed:
            row = [row[0], row[1] + amount, e["event_time"]]
            tolerance = MASS_TOLERANCE.get(e["category"], Decimal("0.02"))
            if row[0] > 0 and row[1] > row[0] * (1 + tolerance):
                flag(
                    "mass_balance_exceeded",
                    f"{row[1].normalize():f} {uom} sold or shipped here against {row[0].normalize():f} {uom} received",
                    out=f"{row[1].normalize():f}",
                    received=f"{row[0].normalize():f}",
                    uom=uom,
                )
        else:
            row = [row[0], row[1], e["event_time"]]
    if before is not None and before > row[2]:  # the latest time seen, in one pass as across passes (greatest())
        row[2] = before
    touched[key] = row
    nodes.setdefault(batch, set()).add(node)
    if step in SALE_STEPS and not (e["seq"] == 1 and content.cut_from()):  # a receipt: judged on its source
        # A batch expires at the end of its last day in Beijing (views.verdict.today): a sale at 07:00 there the
        # next morning is after expiry, though still on the expiry date in UTC.
        if e["expires_on"] is not None and e["event_time"].astimezone(BEIJING).date() > e["expires_on"]:
            flag(
                "sold_after_expiry",
                f"{step.replace('_', ' ')} after the expiry date {e['expires_on']}",
                expires_on=e["expires_on"].isoformat(),
            )
        since = e["status_since"]
        if e["status"] != "active" and since is not None:
            if e["event_time"] >= since:
                flag(
                    "sold_while_recalled" if e["status"] == "recalled" else "sold_while_on_hold",
                    f"{step.replace('_', ' ')} while the batch was {e['status'].replace('_', ' ')}",
                )
            elif e["recorded_at"] >= since and e["status"] == "recalled":
                flag("sale_synced_after_recall", "sold before the recall but reported after it: trace the buyer")
    elif step == "receiving" and e["status"] != "active" and e["status_since"] is not None:
        # Capture refuses a receipt dated after a recall or hold (409); one dated before it that only now
        # arrives (a station syncing late) is accepted, and the goods must be found and set aside.
        if e["recorded_at"] >= e["status_since"] > e["event_time"]:
            what = e["status"].replace("_", " ")
            flag(
                "receipt_synced_after_recall",
                f"received before the batch was {what} but reported after: set it aside",
                status=e["status"],
            )
    if step == "dispensing":
        serials = content.serials()
        # Each serial already dispensed (before this pass or earlier in it), in serial order.
        for serial in sorted({s for s in serials if s in run.claimed}):
            dispensed_by, other, other_en = run.claimed[serial]
            flag(
                "drug_serial_dispensed_twice",
                f"serial {serial} was already dispensed at {other} "
                f"(event {dispensed_by}): a returned or diverted package (回流药)",
                serial=serial,
                other_node=other,
                other_node_en=other_en,
                other_event=dispensed_by,
            )
        for serial in serials:
            if serial not in run.claimed:  # the first dispensing keeps the serial (recorded by _prepare)
                run.claimed[serial] = (e["event_id"], e["node_name"], e["node_name_en"])
    # A native aggregation names its packages at the top of its record; one captured through EPCIS keeps them in
    # its event's text, and an EPCIS DELETE may name no children at all.
    if content.type == "AggregationEvent" and isinstance(content.parentID, str) and isinstance(content.childEPCs, list):
        if content.action == "ADD":
            await analysis_repo.pack(conn, content.childEPCs, content.parentID, batch, e["event_id"])
        else:
            await analysis_repo.unpack(conn, content.childEPCs, content.parentID, e["event_id"])
    if (batch, e["seq"]) in run.late:
        flag("out_of_time_order", "recorded with a time earlier than the batch's previous event")


def _interval_rules(e: Record, content: Recorded, run: _Pass) -> None:
    """A batch opened inside a safety interval: flagged at the farm, and at every node that receives it or
    anything made from it (the slaughterhouse, the wholesale market), so each sees it in its anomalies."""
    if e["device_id"] is None or (e["seq"] != 1 and e["biz_step"] != "receiving"):
        return
    if e["seq"] == 1:
        production = content.production_record()
        inside = production.get("insideIntervals") or []
        if inside:
            first = inside[0]
            detail = (
                f"opened on {production.get('day')} from {production.get('unit')} inside the interval of "
                f"{first.get('product')} ({first.get('registrationNo') or '-'}) applied on {first.get('appliedOn')}, "
                f"allowed from {first.get('safeFrom')}; the farm insisted"
            )
            run.found.append(
                (
                    "opened_inside_interval",
                    e["batch_id"],
                    e["event_id"],
                    e["node_id"],
                    e["enterprise_id"],
                    detail,
                    e["event_time"],
                    {
                        "unit": production.get("unit"),
                        "input": first.get("product"),
                        "input_en": first.get("productEn"),
                        "applied_on": first.get("appliedOn"),
                        "safe_from": first.get("safeFrom"),
                    },
                )
            )
        return
    for v in (run.upstream or {}).get(e["batch_id"], ()):
        first = v["inputs"][0] if v["inputs"] else {}
        detail = (
            f"batch {v['trace_code']} from {v['farm']} ({v['farm_code']}) was opened on {v['opened_on']} inside the "
            f"interval of {first.get('product')} (allowed from {first.get('safeFrom')}); "
            f"the farm's reason: {v['reason']}"
        )
        run.found.append(
            (
                "received_inside_interval",
                e["batch_id"],
                e["event_id"],
                e["node_id"],
                e["enterprise_id"],
                detail,
                e["event_time"],
                {
                    "source": v["trace_code"],
                    "farm": v["farm"],
                    "input": first.get("product"),
                    "input_en": first.get("productEn"),
                    "safe_from": first.get("safeFrom"),
                    "reason": v["reason"],
                },
            )
        )


def _cold_chain(e: Record, content: Recorded, run: _Pass) -> None:
    """A dairy batch's cold-chain reading above its storage limit (raw milk 4 °C, pasteurised 6 °C)."""
    readings = content.readings()
    if not readings:
        return
    opening = run.openings.get(e["batch_id"])
    attrs = (recorded.read(opening).attributes or {}) if opening is not None else {}
    limit = dairy.storage_limit(attrs)
    warm = dairy.breaches(readings, limit) if limit is not None else []
    if not warm:
        return
    worst = max(warm, key=lambda r: Decimal(r["celsius"]))
    run.found.append(
        (
            "cold_chain_breach",
            e["batch_id"],
            e["event_id"],
            e["node_id"],
            e["enterprise_id"],
            f"{len(warm)} of {len(readings)} readings above {limit} °C, "
            f"the warmest {worst['celsius']} °C at {worst['at']}",
            e["event_time"],
            {"readings": len(warm), "celsius": worst["celsius"], "at": worst["at"], "limit": str(limit)},
        )
    )


async def run_analyzer(db: Database, interval: float, stop: asyncio.Event, busy: Busy | None = None) -> None:
    """Keep the anomalies current while holding the analyzer lock (one analyzer across processes), giving way
    while ``busy()`` (its process is taking writes: see :func:`.exclusive.run_exclusive`)."""

    async def step(conn: Connection) -> bool:
        return await analyze(db, conn=conn) >= BATCH

    await run_exclusive(db, "analyzer", LOCK, step, interval, stop, busy)


async def list_anomalies(db: Database, **filters: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await analysis_repo.list_anomalies(conn, default_severity=anomaly_rules.DEFAULT_SEVERITY, **filters)
    out = []
    for r in rows:
        names = i18n.names("anomaly", r["kind"]) or (r["kind"], r["kind"])
        out.append(
            {
                **dict(r),
                "kind_name": names[0],
                "kind_name_en": names[1],
                "explanation": explain(i18n.words("zh"), r),
                "explanation_en": explain(i18n.words("en"), r),
                "event_time": r["event_time"].isoformat() if r["event_time"] else None,
                "detected_at": r["detected_at"].isoformat(),
                "triaged_at": r["triaged_at"].isoformat() if r["triaged_at"] else None,
            }
        )
    return out


# The facts each kind's explanation needs; a row recorded before facts were kept gets the general sentence.
EXPLAINED_BY = {
    "sold_after_expiry": ("step", "expires_on"),
    "sold_while_recalled": ("step",),
    "sold_while_on_hold": ("step",),
    "sale_synced_after_recall": (),
    "receipt_synced_after_recall": (),
    "mass_balance_exceeded": ("out", "received", "uom"),
    "received_without_shipment": (),
    "event_at_unreached_node": ("step",),
    "missing_certificate": ("category", "document"),
    "drug_serial_dispensed_twice": ("serial", "other_node"),
    "out_of_time_order": (),
    "dormant_past_shelf_life": ("days",),
    "opened_inside_interval": ("unit", "input", "applied_on", "safe_from"),
    "received_inside_interval": ("source", "farm", "input", "safe_from", "reason"),
    "cold_chain_breach": ("readings", "celsius", "limit"),
}


def explain(t: i18n.Words, row: Record | dict[str, Any]) -> str:
    """An anomaly in the reader's language, naming the rule, the batch and the node, from its recorded facts."""
    facts = dict(row.get("facts") or {})
    kind = row["kind"]
    params: dict[str, Any] = {
        "rule": t.name("anomaly", kind) or kind,
        "batch": row["trace_code"],
        "product": t.pick(row.get("product"), row.get("product_en")),
        "node": t.pick(row.get("node_name"), row.get("node_name_en")) or t("unknown_node"),
    }
    needed = EXPLAINED_BY.get(kind)
    if needed is None or any(k not in facts for k in needed):
        return t("explain_generic", **params)
    for key in needed:
        value = facts[key]
        if key == "step":
            value = t.step(value)
        elif key == "document":
            value = t.name("document_type", value) or value
        elif key == "category":
            value = t.name("product_category", value) or value
        elif key == "uom":
            value = t.name("unit", value) or value
        elif key == "other_node":
            value = t.pick(value, facts.get("other_node_en"))
        elif key == "input":
            value = t.pick(value, facts.get("input_en"))
        params[key] = value
    return t(f"explain_{kind}", **params)


async def find_package(db: Database, code: str) -> dict[str, Any]:
    """Where a case, box or unit sits in the packaging hierarchy, and what it contains."""
    async with db.connection() as conn:
        found = await analysis_repo.package(conn, code)
    if found is None:
        raise errors.NotFound(f"no package {code} has been recorded")
    return found
