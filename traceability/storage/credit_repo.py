"""The record a credit rating is computed from, over a time window: an enterprise's (everything its nodes
recorded) or a stall's (everything its operator's scanners and scales recorded)."""

from __future__ import annotations

from datetime import date, datetime

from traceability.storage.database import Connection, Record, fetch_one

ANOMALIES = """
SELECT kind, count(*) AS n FROM anomalies
WHERE enterprise_id = $1 AND coalesce(event_time, detected_at) >= $2 AND coalesce(event_time, detected_at) < $3
GROUP BY kind
"""
# A failed test counts against the enterprise whose goods failed: the one that opened the tested batch or,
# for a batch made from others (a repack, a cut, a retail sale's child), the ones that opened its origins,
# never the enterprise that only repacked, tested or sold them. Each failed test counts once per enterprise.
# The failure is found in the canonical bytes with position() on bytea, the predicate of the index over
# failed inspections (schema/0019), so the window's failed tests are read from it.
FAILED_INSPECTIONS = """
WITH RECURSIVE failed AS (
    SELECT e.event_id, e.batch_id FROM events e
    WHERE e.biz_step = 'inspecting' AND e.event_time >= $2 AND e.event_time < $3
      AND (position('"result":"fail"'::bytea in e.canonical) > 0
           OR position('"disposition":"non_conformant"'::bytea in e.canonical) > 0)
), up(event_id, batch_id) AS (
    SELECT event_id, batch_id FROM failed
    UNION
    SELECT up.event_id, l.parent_id FROM up JOIN batch_links l ON l.child_id = up.batch_id
)
SELECT count(DISTINCT up.event_id) FROM up JOIN batches b ON b.id = up.batch_id JOIN nodes n ON n.id = b.node_id
WHERE n.enterprise_id = $1 AND NOT EXISTS (SELECT 1 FROM batch_links l WHERE l.child_id = up.batch_id)
"""
RECALLS = """
SELECT count(*) FROM recalls r JOIN batches b ON b.id = r.batch_id JOIN nodes n ON n.id = b.node_id
WHERE n.enterprise_id = $1 AND r.issued_at >= $2 AND r.issued_at < $3
"""
REPORTING = """
SELECT count(*) AS total, count(*) FILTER (WHERE e.recorded_at - e.event_time > interval '24 hours') AS late
FROM events e JOIN nodes n ON n.id = e.node_id
WHERE n.enterprise_id = $1 AND e.device_id IS NOT NULL AND e.event_time >= $2 AND e.event_time < $3
"""


async def record(conn: Connection, enterprise_id: int, start: datetime, end: datetime) -> dict[str, object]:
    anomalies = {r["kind"]: r["n"] for r in await conn.fetch(ANOMALIES, enterprise_id, start, end)}
    reporting = await fetch_one(conn, REPORTING, enterprise_id, start, end)
    return {
        "anomalies": anomalies,
        "failed_inspections": await conn.fetchval(FAILED_INSPECTIONS, enterprise_id, start, end),
        "recalls": await conn.fetchval(RECALLS, enterprise_id, start, end),
        "events": reporting["total"],
        "late_reports": reporting["late"],
    }


async def enterprise(conn: Connection, uscc: str) -> Record | None:
    return await conn.fetchrow("SELECT id, uscc, name, name_en FROM enterprises WHERE uscc = $1", uscc)


async def enterprises(conn: Connection, limit: int, offset: int) -> list[Record]:
    return list(
        await conn.fetch(
            "SELECT id, uscc, name, name_en FROM enterprises ORDER BY id LIMIT $1 OFFSET $2", limit, offset
        )
    )


# A stall (operator): the same record, through the devices registered to it.
OPERATOR_ANOMALIES = """
SELECT a.kind, count(*) AS n FROM anomalies a
JOIN events e ON e.event_id = a.event_id JOIN devices d ON d.id = e.device_id
WHERE d.operator_id = $1 AND coalesce(a.event_time, a.detected_at) >= $2 AND coalesce(a.event_time, a.detected_at) < $3
GROUP BY a.kind
"""
OPERATOR_FAILED_INSPECTIONS = """
SELECT count(*) FROM events e JOIN devices d ON d.id = e.device_id
WHERE d.operator_id = $1 AND e.biz_step = 'inspecting' AND e.event_time >= $2 AND e.event_time < $3
  AND (position('"result":"fail"'::bytea in e.canonical) > 0
       OR position('"disposition":"non_conformant"'::bytea in e.canonical) > 0)
"""
OPERATOR_RECALLS = """
SELECT count(*) FROM recalls r JOIN events e ON e.batch_id = r.batch_id AND e.seq = 1
JOIN devices d ON d.id = e.device_id
WHERE d.operator_id = $1 AND r.issued_at >= $2 AND r.issued_at < $3
"""
OPERATOR_REPORTING = """
SELECT count(*) AS total, count(*) FILTER (WHERE e.recorded_at - e.event_time > interval '24 hours') AS late
FROM events e JOIN devices d ON d.id = e.device_id
WHERE d.operator_id = $1 AND e.event_time >= $2 AND e.event_time < $3
"""


async def operator_record(conn: Connection, operator_id: int, start: datetime, end: datetime) -> dict[str, object]:
    """A stall's record over a window, in the shape :func:`record` gives for an enterprise."""
    anomalies = {r["kind"]: r["n"] for r in await conn.fetch(OPERATOR_ANOMALIES, operator_id, start, end)}
    reporting = await fetch_one(conn, OPERATOR_REPORTING, operator_id, start, end)
    return {
        "anomalies": anomalies,
        "failed_inspections": await conn.fetchval(OPERATOR_FAILED_INSPECTIONS, operator_id, start, end),
        "recalls": await conn.fetchval(OPERATOR_RECALLS, operator_id, start, end),
        "events": reporting["total"],
        "late_reports": reporting["late"],
    }


MONTHLY_EVENTS = """
SELECT date_trunc('month', e.event_time AT TIME ZONE 'Asia/Shanghai')::date AS month, count(*) AS n
FROM events e JOIN nodes n ON n.id = e.node_id
WHERE n.enterprise_id = $1 AND e.event_time >= $2 AND e.event_time < $3
GROUP BY 1
"""
OPERATOR_MONTHLY_EVENTS = """
SELECT date_trunc('month', e.event_time AT TIME ZONE 'Asia/Shanghai')::date AS month, count(*) AS n
FROM events e JOIN devices d ON d.id = e.device_id
WHERE d.operator_id = $1 AND e.event_time >= $2 AND e.event_time < $3
GROUP BY 1
"""


async def monthly_events(
    conn: Connection, who: int, start: datetime, end: datetime, *, operator: bool = False
) -> dict[date, int]:
    """How many events an enterprise (or a stall) recorded in each month (China Standard Time) of a window."""
    rows = await conn.fetch(OPERATOR_MONTHLY_EVENTS if operator else MONTHLY_EVENTS, who, start, end)
    return {r["month"]: r["n"] for r in rows}


SELECT_OPERATOR = """
SELECT o.id, o.code, o.name, o.stall_no, o.contact, n.code AS node_code, n.name_zh AS node_name,
       n.name_en AS node_name_en, en.uscc, en.name AS enterprise, en.name_en AS enterprise_en
FROM operators o JOIN nodes n ON n.id = o.node_id JOIN enterprises en ON en.id = n.enterprise_id
WHERE n.code = $1 AND o.code = $2
"""


async def operator(conn: Connection, node_code: str, code: str) -> Record | None:
    return await conn.fetchrow(SELECT_OPERATOR, node_code, code)


async def operators_of(conn: Connection, enterprise_id: int) -> list[Record]:
    """The stalls at an enterprise's nodes."""
    return list(
        await conn.fetch(
            "SELECT o.id, o.code, o.name, o.stall_no, n.code AS node_code, n.name_zh AS node_name, "
            "n.name_en AS node_name_en FROM operators o JOIN nodes n ON n.id = o.node_id "
            "WHERE n.enterprise_id = $1 ORDER BY n.code, o.code",
            enterprise_id,
        )
    )
