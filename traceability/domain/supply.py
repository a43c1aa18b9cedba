"""Supply-chain rules: transformations and mass balance, category key data, inspections, recalls.

Mass balance (documented in docs/supply-chain.md): what a transformation puts out may exceed what
it takes in by at most the category's tolerance (moisture pick-up, scale error); masses compare in
kilograms, counts only in the same unit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from traceability.domain import bounds, dairy, tracecode
from traceability.domain.balance import KILOGRAMS as KILOGRAMS
from traceability.domain.balance import MASS_TOLERANCE as MASS_TOLERANCE
from traceability.domain.balance import SALE_STEPS as SALE_STEPS
from traceability.domain.batches import BatchDraft, date_field, parse_batch
from traceability.domain.events import BIZ_STEPS, parse_documents, parse_quantity, parse_time
from traceability.domain.fields import FieldError, Fields, utc_ms

STATUS_STEPS = frozenset({"receiving", *SALE_STEPS})
"""Steps refused on a held or recalled batch (unless dated before the hold, or sending it back): a receipt, or
a sale, shipment or dispensing."""
RETURN_STEPS = frozenset({"shipping", "receiving"})
"""A recalled or held batch may still go back to where it came from: shipped or received as ``returned``."""
RECALL_LEVELS = frozenset({"I", "II", "III"})  # from serious risk down (一级召回 …); names in traceability/i18n
TRANSFORM_STEPS = frozenset({"repackaging", "packing", "commissioning", "assembling", "disassembling", "other"})
_APPROVAL = re.compile(r"国药准字[HZSBTFJ]\d{8}")


def closes_recall(step: str, disposition: str | None) -> bool:
    """Whether a holder's event disposes of a recalled or held batch: destroying it, or sending it back
    (shipping or receiving with the disposition ``returned``). These stay recordable when sales stop."""
    return step == "destroying" or (step in RETURN_STEPS and disposition == "returned")


def in_kilograms(quantity: dict[str, str], category: str = "") -> Decimal | None:
    """A mass in kilograms, or None when the unit is a count (a litre of milk weighs :data:`dairy.LITRE_KG`)."""
    factor = KILOGRAMS.get(quantity["uom"])
    if factor is None and category == "dairy" and quantity["uom"] == "LTR":
        factor = dairy.LITRE_KG
    return None if factor is None else Decimal(quantity["value"]) * factor


def comparable(quantity: dict[str, str], category: str = "") -> tuple[str, Decimal]:
    """A quantity reduced to (dimension, amount): ("kg", …) for masses, (unit, …) for counts."""
    kg = in_kilograms(quantity, category)
    return ("kg", kg) if kg is not None else (quantity["uom"], Decimal(quantity["value"]))


def mass_balance(inputs: list[dict[str, str]], outputs: list[dict[str, str]], category: str) -> str | None:
    """None if the outputs fit the inputs, else what exceeds what."""
    totals: dict[str, list[Decimal]] = {}
    for q in inputs:
        dim, amount = comparable(q, category)
        totals.setdefault(dim, [Decimal(0), Decimal(0)])[0] += amount
    for q in outputs:
        dim, amount = comparable(q, category)
        totals.setdefault(dim, [Decimal(0), Decimal(0)])[1] += amount
    tolerance = MASS_TOLERANCE.get(category, Decimal("0.02"))
    for dim, (took, made) in totals.items():
        if made > took * (1 + tolerance):
            return (
                f"outputs of {made.normalize():f} {dim} exceed inputs of {took.normalize():f} {dim} "
                f"beyond the {tolerance * 100:.0f}% tolerance for {category}"
            )
    return None


def check_key_data(category: str, content: dict[str, Any], prefix: str = "") -> None:
    """Category-specific key data on a batch opening: malformed values are refused (missing ones are
    flagged as anomalies instead, so a batch can still be recorded when a paper certificate is late)."""
    attrs = content.get("attributes", {})
    f = Fields(attrs, f"{prefix}attributes.")
    if category == "meat":
        f.integer("head_count", required=False, lo=1, hi=100_000)
        date_field(f, "slaughter_date")
    elif category == "vegetable":
        date_field(f, "harvest_date")
    elif category == "dairy":
        dairy.check_opening(f)
    elif category == "drug":
        approval = f.text("approval_number", max_len=20)
        if not _APPROVAL.fullmatch(approval):
            f.fail("approval_number", "must be a 批准文号 such as 国药准字H20013061")
        identity = f.text("drug_identity_code", max_len=7)
        if not (identity.isdigit() and len(identity) == 7):
            f.fail("drug_identity_code", "is the 7-digit 药品标识码")
        f.text("lot", max_len=20)
        batch = content.get("batch", {})
        if "producedOn" not in batch:
            raise FieldError(f"{prefix}produced_on", "is required for a drug batch")
        if "expiresOn" not in batch:
            raise FieldError(f"{prefix}expires_on", "is required for a drug batch")


def check_inspection(content: dict[str, Any], prefix: str = "") -> bool | None:
    """An inspection's verdict: True passed, False failed, None not an inspection with a result.

    ``attributes``: ``lab``, ``method``, ``result`` (pass/fail), and for a measured test ``value`` and
    ``limit`` (a value above its limit cannot pass); a raw-milk test (``test: raw_milk``) is judged by
    :func:`traceability.domain.dairy.check_raw_milk`. Cold-chain readings (``temperatures``) on any event
    are checked here too."""
    attrs = content.get("attributes", {})
    if type(attrs) is dict and "temperatures" not in attrs and content.get("bizStep") != "inspecting":
        return None  # most events: nothing to check (and no reader to build for it)
    f = Fields(attrs, f"{prefix}attributes.")
    if "temperatures" in attrs:
        dairy.check_readings(f)
    if content.get("bizStep") != "inspecting":
        return None
    result: str | None = f.choice("result", {"pass", "fail"}, required=False)
    if attrs.get("test") == "raw_milk":
        return dairy.check_raw_milk(f, result) and result != "fail"
    value = f.number("value", bounds.MEASURE, required=False)
    limit = f.number("limit", bounds.MEASURE, required=False)
    if value is not None and limit is not None and value > limit and result == "pass":
        f.fail("result", f"cannot be pass: value {value} exceeds limit {limit}")
    if result is None and content.get("disposition") == "non_conformant":
        return False
    if result is None:
        return None
    return result == "pass"


@dataclass(frozen=True, slots=True)
class TransformDraft:
    event_id: str
    biz_step: str
    event_time: datetime
    inputs: list[tuple[str, dict[str, str]]]
    outputs: list[BatchDraft]
    documents: list[dict[str, str]] | None


def output_event_id(transformation_id: str, index: int) -> str:
    """The id of output ``index``'s opening event: derived, so a retried transformation is recognised."""
    return str(uuid.uuid5(uuid.UUID(transformation_id), f"output/{index}"))


def input_event_id(transformation_id: str, trace_code: str) -> str:
    """The id of the event a transformation appends to an input batch's chain."""
    return str(uuid.uuid5(uuid.UUID(transformation_id), f"input/{trace_code}"))


def parse_transformation(body: Any, now: datetime) -> TransformDraft:
    """``{"eventID", "bizStep", "eventTime", "inputs": [{traceCode, quantity}], "outputs": [batch...]}``."""
    f = Fields(body)
    f.only(frozenset({"eventID", "bizStep", "eventTime", "inputs", "outputs", "documents"}))
    try:
        event_id = str(uuid.UUID(f.text("eventID", max_len=64)))
    except ValueError:
        f.fail("eventID", "must be a UUID (it makes retries safe)")
    biz_step = f.text("bizStep", required=False, max_len=40) or "repackaging"
    if biz_step not in BIZ_STEPS or biz_step not in TRANSFORM_STEPS:
        f.fail("bizStep", f"must be one of: {', '.join(sorted(TRANSFORM_STEPS))}")
    event_time = parse_time(f, "eventTime", now) if f.data.get("eventTime") is not None else now
    raw_inputs = f.array("inputs", max_items=100)
    if not raw_inputs:
        f.fail("inputs", "must name at least one input batch")
    inputs = []
    seen = set()
    for i, item in enumerate(raw_inputs):
        g = Fields(item, f"inputs[{i}].")
        g.only(frozenset({"traceCode", "quantity"}))
        try:
            code = tracecode.validate(g.text("traceCode", max_len=40))
        except tracecode.TraceCodeError as exc:
            g.fail("traceCode", str(exc))
        if code in seen:
            g.fail("traceCode", "appears twice among the inputs")
        seen.add(code)
        q = parse_quantity(g, required=True)
        assert q is not None
        inputs.append((code, q))
    raw_outputs = f.array("outputs", max_items=500)
    if not raw_outputs:
        f.fail("outputs", "must describe at least one output batch")
    outputs = []
    for i, item in enumerate(raw_outputs):
        if not isinstance(item, dict):
            raise FieldError(f"outputs[{i}]", "must be a JSON object")
        item = {**item, "eventID": output_event_id(event_id, i)}
        item.setdefault("eventTime", utc_ms(event_time))
        try:
            outputs.append(parse_batch(item, now))
        except FieldError as exc:
            raise FieldError(f"outputs[{i}].{exc.field}", exc.message) from None
    return TransformDraft(event_id, biz_step, event_time, inputs, outputs, parse_documents(f))


@dataclass(frozen=True, slots=True)
class RecallDraft:
    trace_code: str
    level: str
    reason: str
    scope: str | None


def parse_recall(body: Any) -> RecallDraft:
    f = Fields(body)
    f.only(frozenset({"traceCode", "level", "reason", "scope"}))
    try:
        code = tracecode.validate(f.text("traceCode", max_len=40))
    except tracecode.TraceCodeError as exc:
        f.fail("traceCode", str(exc))
    level = f.choice("level", RECALL_LEVELS)
    return RecallDraft(code, level, f.text("reason", max_len=500), f.text("scope", required=False, max_len=500))
