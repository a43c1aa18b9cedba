"""Production records at the farm, the registry of inputs, and the safety-interval rule at a batch's opening.

:func:`check_opening` is the hook the opening path calls inside its writing transaction: it reads the
named unit's records, refuses an opening inside an interval (:class:`errors.InsideSafetyInterval`,
in Chinese and English, naming the input and the day the interval ends) unless the farm insists, and
returns what the opening event carries about the unit. :func:`after_opening` records an insisted
violation for the analyzer, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.domain import farm
from traceability.domain.access import Principal
from traceability.domain.batches import BatchDraft
from traceability.logging import get_logger
from traceability.services.recording import require_device
from traceability.services.validation import fields
from traceability.storage import farm_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)


def _plain(record: Record) -> dict[str, Any]:
    out = dict(record)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        elif key in ("dose",) and value is not None:
            out[key] = format(value.normalize(), "f")
        elif key == "record_id":
            out[key] = str(value)
    return out


# -- the registry of inputs (administrators) ------------------------------------------------------


async def register_input_product(db: Database, body: Any) -> dict[str, Any]:
    """Register an input with its safety interval, or correct the entry under its registration number."""
    with fields():
        p = farm.parse_input_product(body)
    async with db.connection() as conn:
        row = _plain(await farm_repo.upsert_input_product(conn, p))
    log.info("input_product.registered", registration_no=p.registration_no, created=row["created"])
    return row


async def list_input_products(
    db: Database, *, registration_no: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    async with db.connection() as conn:
        return await farm_repo.list_input_products(conn, registration_no=registration_no, limit=limit, offset=offset)


# -- production records (the farm's scanner) ------------------------------------------------------


async def _farm_device(conn: Connection, principal: Principal) -> Principal:
    device = require_device(principal)
    assert device.node_id is not None
    node_type = await farm_repo.node_type(conn, device.node_id)
    if node_type not in farm.FARM_NODES:
        raise errors.Forbidden("only a farm's or a pasture's scanner records production inputs")
    return device


async def record_input(db: Database, principal: Principal, body: Any) -> tuple[dict[str, Any], bool]:
    """Record what went into a plot, pen or herd; returns the record and whether it was a resend."""
    now = datetime.now(UTC)
    with fields():
        draft = farm.parse_input_record(body, now)

    async def work(conn: Connection) -> tuple[Record, bool]:
        device = await _farm_device(conn, principal)
        interval, source, product, active = 0, None, draft.product, draft.active_ingredient
        if draft.registration_no is not None:
            entry = await farm_repo.find_input_product(conn, draft.registration_no)
            if entry is None and draft.kind in farm.REGISTERED:
                raise errors.UnknownReference(
                    f"registration_no: {draft.registration_no} is not in the registry of inputs; the administrator "
                    "registers it with its safety interval first",
                    field="registration_no",
                )
            if entry is not None:
                if entry["kind"] != draft.kind:
                    raise errors.InvalidField(
                        f"kind: {draft.registration_no} is registered as a {entry['kind'].replace('_', ' ')}",
                        field="kind",
                    )
                interval, source = entry["interval_days"], entry["source"]
                product = product or entry["name_zh"]
                active = active or entry["active_ingredient"]
        assert product is not None  # parse_input_record requires it without a registration number
        content = dict(draft.content, intervalDays=interval, node=device.node_code)
        row = {
            "record_id": draft.record_id,
            "node_id": device.node_id,
            "device_id": device.id,
            "unit": draft.unit,
            "unit_kind": draft.unit_kind,
            "kind": draft.kind,
            "registration_no": draft.registration_no,
            "product_name": product,
            "active_ingredient": active,
            "dose": draft.dose,
            "animals": draft.animals,
            "applied_on": draft.applied_on,
            "interval_days": interval,
            "safe_from": farm.safe_from(draft.applied_on, interval),
            "interval_source": source,
            "note": draft.note,
            "content": content,
        }
        inserted = await farm_repo.insert_input(conn, row)
        stored = await farm_repo.find_input(conn, draft.record_id)
        assert stored is not None
        if inserted is None:
            same = stored["node_id"] == device.node_id and _same_request(stored["content"], content)
            if not same:
                raise errors.EventConflict(
                    f"record_id: production record {draft.record_id} was already recorded with different content",
                    field="record_id",
                )
        return stored, inserted is None

    stored, replayed = await db.transaction(work)
    out = _plain(stored)
    out.pop("node_id", None)
    if not replayed:
        log.info("farm_input.recorded", node=out["node_code"], kind=draft.kind)
    return out, replayed


def _same_request(stored: dict[str, Any], content: dict[str, Any]) -> bool:
    """Whether a resent record asks for what was recorded (the interval filled in then may since have changed)."""
    return {k: v for k, v in stored.items() if k != "intervalDays"} == {
        k: v for k, v in content.items() if k != "intervalDays"
    }


async def list_inputs(
    db: Database, principal: Principal, node: str | None, unit: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """A farm's production records: its own scanner reads its node's; regulators and admins name the node."""
    if principal.role == "device":
        node = principal.node_code
    elif principal.role not in ("regulator", "admin"):
        raise errors.Forbidden("production records are read by the farm's own scanners and by regulators")
    if node is None:
        raise errors.InvalidField("node: name the farm's node code", field="node")
    async with db.connection() as conn:
        rows = await farm_repo.list_inputs(conn, node, unit, limit, offset)
    return [_plain(r) for r in rows]


# -- the rule, at a batch's opening ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpeningCheck:
    """What the opening carries about its unit, and the intervals it was opened inside (insisted)."""

    production: dict[str, Any]
    violations: list[farm.Violation]
    day: date
    reason: str | None


async def check_opening(
    conn: Connection, device: Principal, draft: BatchDraft, category: str, event_time: datetime
) -> OpeningCheck | None:
    """The safety-interval rule, inside the opening's transaction. None when the rule does not apply here."""
    assert device.node_id is not None
    if category not in farm.RULED_CATEGORIES:
        return None
    unit = farm.parse_opening_unit(draft.content)
    kinds = sorted(farm.unit_kinds_for(category))
    if unit is None:
        if await farm_repo.node_type(conn, device.node_id) not in farm.FARM_NODES:
            return None
        units = await farm_repo.node_units(conn, device.node_id, kinds)
        if not units:
            return None
        raise errors.InvalidField(
            i18n.say("farm_unit_required", units="、".join(units)),
            field="origin.unit",
        )
    day = farm.today_in_china(event_time)
    records = [
        dict(r)
        for r in await farm_repo.unit_inputs(conn, device.node_id, unit, day, day - timedelta(days=farm.LOOKBACK_DAYS))
    ]
    violations = farm.inside_intervals(records, day)
    insist = draft.content.get("insist")
    reason = insist["reason"] if isinstance(insist, dict) else None
    if violations and reason is None:
        v = violations[0]
        raise errors.InsideSafetyInterval(
            i18n.say(
                "interval_refused",
                unit=unit,
                product=v.product,
                registration=v.registration_no or "-",
                applied_on=v.applied_on.isoformat(),
                safe_from=v.safe_from.isoformat(),
                more=len(violations) - 1,
            ),
            field="origin.unit",
        )
    return OpeningCheck(farm.opening_summary(unit, records, day, violations), violations, day, reason)


async def after_opening(conn: Connection, check: OpeningCheck | None, batch_id: int, event_id: str, code: str) -> None:
    """Keep an insisted violation where the analyzer finds it (same transaction as the opening)."""
    if check is None or not check.violations:
        return
    assert check.reason is not None
    await farm_repo.insert_violation(
        conn, batch_id, event_id, check.reason, [v.as_json() for v in check.violations], check.day
    )
    log.warning("batch.opened_inside_interval", trace_code=code, inputs=len(check.violations))


async def check_epcis_openings(conn: Connection, openings: list[tuple[Record, Any]]) -> None:
    """A batch an EPCIS event opens at a farm or pasture (``(node, prepared event)`` pairs): EPCIS names no plot,
    pen or herd, so while any of the farm's units is inside a safety interval on the event's day it opens nothing
    there; the native opening (POST /api/v1/batches) names its unit and is checked for that unit alone."""
    for node, prepared in openings:
        if await farm_repo.node_type(conn, node["id"]) not in farm.FARM_NODES:
            continue
        row = await farm_repo.open_interval(conn, node["id"], farm.today_in_china(prepared.facets.event_time))
        if row is not None:
            raise errors.InsideSafetyInterval(
                i18n.say(
                    "interval_refused_epcis",
                    unit=row["unit"],
                    product=row["product_name"],
                    registration=row["registration_no"] or "-",
                    applied_on=row["applied_on"].isoformat(),
                    safe_from=row["safe_from"].isoformat(),
                ),
                field=prepared.where("bizStep"),
            )
