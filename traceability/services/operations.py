"""What an operator watches (for ``/metrics``), and stations' reports of their upload queues.

A station reports its queue with a signed heartbeat (``POST /api/v1/stations/heartbeat``) after
each upload pass and while idle: how many records wait, since when the oldest waits, how many
leased codes are left. The server keeps each station's latest report; ``/metrics`` ages it, so a
station that went silent with records queued shows a queue age that keeps growing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from traceability import errors
from traceability.domain.access import Principal
from traceability.storage import operations_repo, witness_repo
from traceability.storage.database import Database

MAX_PENDING = 10_000_000
MAX_AGE_SECONDS = 366 * 86400


def _seconds(later: datetime, earlier: datetime | None) -> float:
    return max(0.0, (later - earlier).total_seconds()) if earlier is not None else 0.0


async def snapshot(db: Database) -> dict[str, Any]:
    """The service-wide figures, read now: log, backlog, analyzer, anomalies, stations, witnessing."""
    async with db.connection() as conn:
        row = await operations_repo.snapshot(conn)
        size, analyzed_to = int(row["log_size"]), int(row["analyzed_to"])
        # The analyzer reads leaves in order: its lag is the leaves after its position.
        unread_at = await operations_repo.leaf_time(conn, analyzed_to + 1) if analyzed_to + 1 < size else None
        stations = await operations_repo.station_reports(conn)
        witnessed = await witness_repo.statuses(conn)
        splits = {r["origin"]: int(r["n"]) for r in await witness_repo.open_split_counts(conn)}
    now: datetime = row["now"]
    return {
        "log_size": size,
        "queued": int(row["queued"]),
        "queue_age": _seconds(now, row["oldest_queued_at"]),
        "checkpoint_age": _seconds(now, row["head_moved_at"]),
        "events": size + int(row["queued"]),
        "analyzer_lag": max(0, size - 1 - analyzed_to),
        "analyzer_age": _seconds(now, unread_at),
        "analyzer_failed": int(row["analyzer_failed"]),
        "anomalies": int(row["anomalies"]),
        "stations": [
            {
                "device": s["device_id"],
                "node": s["node_code"],
                "pending": s["pending"],
                # The oldest record keeps ageing after the report, until the next report says otherwise.
                "oldest_age": _seconds(now, s["oldest_pending_at"]) if s["pending"] else 0.0,
                "report_age": _seconds(now, s["reported_at"]),
            }
            for s in stations
        ],
        "witness": [
            {
                "origin": w["origin"],
                "failures": w["failures"],
                "size": w["size"] or 0,
                "ok_age": _seconds(now, w["ok_at"]) if w["ok_at"] else -1.0,
            }
            for w in witnessed
        ],
        "split_views": splits,
    }


def _count(body: dict[str, Any], key: str, hi: int, required: bool) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise errors.InvalidField(f"{key}: must be a whole number from 0 to {hi:,}", field=key)
    return value


async def report_station(db: Database, station: Principal, body: Any) -> dict[str, Any]:
    """Keep a station's report of its queue: ``pending``, ``oldestPendingAge`` (seconds), ``codesLeft``."""
    if not isinstance(body, dict):
        raise errors.InvalidField("body: must be a JSON object", field="body")
    unknown = sorted(set(body) - {"pending", "oldestPendingAge", "codesLeft"})
    if unknown:
        raise errors.InvalidField(f"{unknown[0]}: is not a field of a station report", field=unknown[0])
    pending = _count(body, "pending", MAX_PENDING, required=True)
    assert pending is not None
    age = _count(body, "oldestPendingAge", MAX_AGE_SECONDS, required=False)
    codes_left = _count(body, "codesLeft", MAX_PENDING, required=False)
    if pending and age is None:
        raise errors.InvalidField("oldestPendingAge: is required when records are pending", field="oldestPendingAge")
    oldest = datetime.now(UTC) - timedelta(seconds=age) if pending and age is not None else None
    async with db.connection() as conn:
        at = await operations_repo.save_station_report(conn, station.id, pending, oldest, codes_left)
    return {"device": station.id, "pending": pending, "reportedAt": at.isoformat()}
