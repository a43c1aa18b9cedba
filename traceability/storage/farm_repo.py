"""The registry of inputs, production records at the farm, and batches opened inside a safety interval."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from traceability.storage.database import Connection, Record, fetch_one

if TYPE_CHECKING:  # the analyzer's process reads violations here and loads no registration rules
    from traceability.domain.farm import InputProductIn

UPSERT_INPUT_PRODUCT = """
INSERT INTO input_products (registration_no, kind, name_zh, name_en, active_ingredient, applies_to,
                            interval_days, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (registration_no) DO UPDATE
SET kind = EXCLUDED.kind, name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,
    active_ingredient = EXCLUDED.active_ingredient, applies_to = EXCLUDED.applies_to,
    interval_days = EXCLUDED.interval_days, source = EXCLUDED.source, updated_at = now()
RETURNING registration_no, kind, name_zh, name_en, active_ingredient, applies_to, interval_days, source,
          created_at, updated_at, (xmax = 0) AS created
"""


async def upsert_input_product(conn: Connection, p: InputProductIn) -> Record:
    """Register an input, or correct the entry under its registration number (records keep their copy)."""
    return await fetch_one(
        conn,
        UPSERT_INPUT_PRODUCT,
        p.registration_no,
        p.kind,
        p.name_zh,
        p.name_en,
        p.active_ingredient,
        p.applies_to,
        p.interval_days,
        p.source,
    )


SELECT_INPUT_PRODUCTS = """
SELECT registration_no, kind, name_zh, name_en, active_ingredient, applies_to, interval_days, source,
       created_at, updated_at
FROM input_products WHERE ($1::text IS NULL OR registration_no = $1)
ORDER BY kind, registration_no LIMIT $2 OFFSET $3
"""


async def list_input_products(
    conn: Connection, *, registration_no: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    return list(await conn.fetch(SELECT_INPUT_PRODUCTS, registration_no, limit, offset))


async def find_input_product(conn: Connection, registration_no: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT registration_no, kind, name_zh, name_en, active_ingredient, interval_days, source "
        "FROM input_products WHERE registration_no = $1",
        registration_no,
    )
    return row


INSERT_INPUT = """
INSERT INTO farm_inputs (record_id, node_id, device_id, unit, unit_kind, kind, registration_no, product_name,
                         active_ingredient, dose, dose_uom, animals, applied_on, interval_days, safe_from,
                         interval_source, note, content)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb)
ON CONFLICT (record_id) DO NOTHING
RETURNING id, recorded_at
"""


async def insert_input(conn: Connection, row: dict[str, Any]) -> Record | None:
    """Insert a production record; None when its record id is already taken (a resend, or a conflict)."""
    found: Record | None = await conn.fetchrow(
        INSERT_INPUT,
        row["record_id"],
        row["node_id"],
        row["device_id"],
        row["unit"],
        row["unit_kind"],
        row["kind"],
        row["registration_no"],
        row["product_name"],
        row["active_ingredient"],
        Decimal(row["dose"]["value"]) if row["dose"] else None,
        row["dose"]["uom"] if row["dose"] else None,
        row["animals"],
        row["applied_on"],
        row["interval_days"],
        row["safe_from"],
        row["interval_source"],
        row["note"],
        row["content"],
    )
    return found


INPUT_COLUMNS = """
f.id, f.record_id, n.code AS node_code, f.unit, f.unit_kind, f.kind, f.registration_no, f.product_name,
f.active_ingredient, f.dose, f.dose_uom, f.animals, f.applied_on, f.interval_days, f.safe_from,
f.interval_source, f.note, f.content, f.recorded_at
"""


async def find_input(conn: Connection, record_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        f"SELECT {INPUT_COLUMNS}, f.node_id FROM farm_inputs f JOIN nodes n ON n.id = f.node_id WHERE f.record_id = $1",
        record_id,
    )
    return row


SELECT_INPUTS = f"""
SELECT {INPUT_COLUMNS}
FROM farm_inputs f JOIN nodes n ON n.id = f.node_id
WHERE n.code = $1 AND ($2::text IS NULL OR f.unit = $2)
ORDER BY f.applied_on DESC, f.id DESC LIMIT $3 OFFSET $4
"""


async def list_inputs(conn: Connection, node_code: str, unit: str | None, limit: int, offset: int) -> list[Record]:
    return list(await conn.fetch(SELECT_INPUTS, node_code, unit, limit, offset))


UNIT_INPUTS = """
SELECT f.record_id, f.kind, f.product_name, p.name_en AS product_name_en, f.registration_no, f.applied_on,
       f.interval_days, f.safe_from
FROM farm_inputs f LEFT JOIN input_products p ON p.registration_no = f.registration_no
WHERE f.node_id = $1 AND f.unit = $2 AND f.applied_on <= $3 AND (f.safe_from > $3 OR f.applied_on >= $4)
ORDER BY f.applied_on DESC, f.id DESC
LIMIT 500
"""


async def unit_inputs(conn: Connection, node_id: int, unit: str, day: date, since: date) -> list[Record]:
    """A unit's records that matter on ``day``: those still inside their interval, and those since ``since``."""
    return list(await conn.fetch(UNIT_INPUTS, node_id, unit, day, since))


async def node_type(conn: Connection, node_id: int) -> str | None:
    value: str | None = await conn.fetchval("SELECT node_type FROM nodes WHERE id = $1", node_id)
    return value


async def node_units(conn: Connection, node_id: int, kinds: list[str]) -> list[str]:
    """The plots, pens or herds of the given kinds a node keeps records for (the first 20, by name)."""
    rows = await conn.fetch(
        "SELECT DISTINCT unit FROM farm_inputs WHERE node_id = $1 AND unit_kind = ANY($2::text[]) "
        "ORDER BY unit LIMIT 20",
        node_id,
        kinds,
    )
    return [r["unit"] for r in rows]


async def insert_violation(
    conn: Connection, batch_id: int, event_id: str, reason: str, inputs: list[dict[str, Any]], opened_on: date
) -> None:
    await conn.execute(
        "INSERT INTO interval_violations (batch_id, event_id, reason, inputs, opened_on) "
        "VALUES ($1, $2, $3, $4::jsonb, $5)",
        batch_id,
        event_id,
        reason,
        inputs,
        opened_on,
    )


async def any_violations(conn: Connection) -> bool:
    """Whether any batch was ever opened inside an interval (the analyzer skips the lookups otherwise)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM interval_violations)"))


async def open_interval(conn: Connection, node_id: int, day: date) -> Record | None:
    """Some input of the node's units still inside its interval on ``day`` (the one ending last), or None."""
    row: Record | None = await conn.fetchrow(
        "SELECT unit, product_name, registration_no, applied_on, safe_from FROM farm_inputs "
        "WHERE node_id = $1 AND applied_on <= $2 AND safe_from > $2 ORDER BY safe_from DESC, id LIMIT 1",
        node_id,
        day,
    )
    return row
