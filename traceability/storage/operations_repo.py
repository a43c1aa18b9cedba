"""What operators watch: the log's size and backlog, the analyzer's position, stations' queue reports."""

from __future__ import annotations

from datetime import datetime

from traceability.storage.database import Connection, Record, fetch_one

QUEUE_CAP = 1_000_000
"""The log backlog is counted up to this many (a count of a huge backlog would cost more than it tells)."""

SNAPSHOT = f"""
SELECT coalesce(h.size, 0) AS log_size, h.updated_at AS head_moved_at,
       (SELECT count(*) FROM (SELECT 1 FROM log_queue LIMIT {QUEUE_CAP}) q) AS queued,
       (SELECT e.recorded_at FROM events e WHERE e.id = (SELECT min(event_pk) FROM log_queue)) AS oldest_queued_at,
       coalesce(a.position, -1) AS analyzed_to, coalesce(a.failed, 0) AS analyzer_failed,
       (SELECT count(*) FROM anomalies) AS anomalies,
       now() AS now
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT size, updated_at FROM log_heads ORDER BY log_id LIMIT 1) h ON true
LEFT JOIN analyzer_state a ON a.name = 'anomalies'
"""


async def snapshot(conn: Connection) -> Record:
    """The log head, its backlog, the analyzer's position and the anomaly count, in one round trip."""
    return await fetch_one(conn, SNAPSHOT)


LEAF_TIME = "SELECT integrated_at FROM log_leaves WHERE leaf_index = $1 ORDER BY log_id LIMIT 1"


async def leaf_time(conn: Connection, index: int) -> datetime | None:
    """When the log entry at ``index`` was integrated."""
    value: datetime | None = await conn.fetchval(LEAF_TIME, index)
    return value


STATIONS = """
SELECT r.device_id, n.code AS node_code, r.pending, r.oldest_pending_at, r.reported_at
FROM station_reports r JOIN devices d ON d.id = r.device_id JOIN nodes n ON n.id = d.node_id
WHERE d.revoked_at IS NULL
ORDER BY r.device_id
"""


async def station_reports(conn: Connection) -> list[Record]:
    """Each live station's latest queue report."""
    return list(await conn.fetch(STATIONS))


UPSERT_REPORT = """
INSERT INTO station_reports (device_id, pending, oldest_pending_at, codes_left, reported_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (device_id) DO UPDATE
SET pending = excluded.pending, oldest_pending_at = excluded.oldest_pending_at,
    codes_left = excluded.codes_left, reported_at = excluded.reported_at
RETURNING reported_at
"""


async def save_station_report(
    conn: Connection, device_id: int, pending: int, oldest_pending_at: datetime | None, codes_left: int | None
) -> datetime:
    """Keep a station's latest queue report (one row per station)."""
    row = await fetch_one(conn, UPSERT_REPORT, device_id, pending, oldest_pending_at, codes_left)
    at: datetime = row["reported_at"]
    return at
