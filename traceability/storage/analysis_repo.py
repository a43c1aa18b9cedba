"""What the analyzer reads (events in log order) and writes (anomalies, stock per node, drug serials)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from traceability.storage.database import Connection, Record, by_key, fetch_one
from traceability.storage.search_repo import like_pattern

STATE = "SELECT position, swept_at FROM analyzer_state WHERE name = $1 FOR UPDATE"


async def lock_state(conn: Connection, name: str) -> Record:
    """The analyzer's position, row-locked for the pass; created at -1 (nothing read) the first time."""
    row: Record | None = await conn.fetchrow(STATE, name)
    if row is not None:
        return row
    await conn.execute("INSERT INTO analyzer_state (name, position) VALUES ($1, -1) ON CONFLICT DO NOTHING", name)
    return await fetch_one(conn, STATE, name)


async def save_state(conn: Connection, name: str, position: int, swept_at: datetime | None, failed: int = 0) -> None:
    """The analyzer's new position; ``failed``: the records of this pass its rules could not read."""
    await conn.execute(
        "UPDATE analyzer_state SET position = $2, swept_at = coalesce($3, swept_at), failed = failed + $4 "
        "WHERE name = $1",
        name,
        position,
        swept_at,
        failed,
    )


# Events in log order with what the rules need about their batch and node.
# The leaves are read through the log's primary key (log_id, leaf_index), one log at a time: filtered on
# leaf_index alone, the planner sorted every leaf past the position on each pass (the whole log when
# catching up) and scanned the whole log on every idle poll.
# Each leaf's event, and that event's batch and chain head, are looked up one by one (LATERAL ... OFFSET 0
# keeps the planner from joining them any other way), by key whatever the tables' statistics say (by_key). A
# connection plans a statement once and keeps the plan until PostgreSQL analyzes the tables again; under a fast
# load (a new city's first hours, any bulk import) the ledger grows many times over before that, and the plan
# made while it was small went through the whole events table: once a pass for a hash join (measured under
# batched capture: 60 ms a pass and 30 us of PostgreSQL's CPU an event, about a third of what capturing it
# cost), once a leaf for a lookup planned on a table of a few pages.
SELECT_NEW = """
SELECT l.leaf_index, e.event_id::text AS event_id, e.batch_id, e.seq, e.biz_step, e.node_id, e.device_id,
       e.event_time, e.recorded_at, e.canonical, n.enterprise_id, n.node_type, n.name_zh AS node_name,
       n.name_en AS node_name_en,
       b.quantity::text AS batch_quantity, b.uom AS batch_uom, b.expires_on, b.node_id AS issuing_node,
       p.category, b.status, b.status_since
FROM (
    SELECT x.leaf_index, x.event_pk FROM logs g CROSS JOIN LATERAL (
        SELECT leaf_index, event_pk FROM log_leaves WHERE log_id = g.id AND leaf_index > $1
        ORDER BY leaf_index LIMIT $2
    ) x
    ORDER BY x.leaf_index LIMIT $2
) l
CROSS JOIN LATERAL (
    SELECT event_id, batch_id, seq, biz_step, node_id, device_id, event_time, recorded_at, canonical
    FROM events WHERE id = l.event_pk OFFSET 0
) e
CROSS JOIN LATERAL (
    SELECT b.quantity, b.uom, b.expires_on, b.node_id, b.product_id, h.status, h.status_since
    FROM batches b JOIN batch_heads h ON h.batch_id = b.id
    WHERE b.id = e.batch_id OFFSET 0
) b
JOIN nodes n ON n.id = e.node_id
JOIN products p ON p.id = b.product_id
ORDER BY l.leaf_index
"""


async def new_events(conn: Connection, after: int, limit: int) -> list[Record]:
    """The next leaves' events in log order (in a transaction: see :func:`by_key`)."""
    async with by_key(conn):
        return list(await conn.fetch(SELECT_NEW, after, limit))


# An index scan of (batch_id, seq) for each event's predecessor, whatever the statistics say (see SELECT_NEW);
# only the events out of order come back.
OUT_OF_ORDER = """
SELECT u.batch_id, u.seq
FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[]) AS u(batch_id, seq, event_time)
CROSS JOIN LATERAL (
    SELECT o.event_time FROM events o WHERE o.batch_id = u.batch_id AND o.seq = u.seq - 1 OFFSET 0
) o
WHERE u.event_time < o.event_time - $4::interval
"""


async def out_of_order(
    conn: Connection, events: Sequence[tuple[int, int, datetime]], slack: timedelta
) -> set[tuple[int, int]]:
    """Among (batch_id, seq, event_time), the events dated more than ``slack`` before the event before them."""
    async with by_key(conn):
        rows = await conn.fetch(
            OUT_OF_ORDER, [e[0] for e in events], [e[1] for e in events], [e[2] for e in events], slack
        )
    return {(r["batch_id"], r["seq"]) for r in rows}


# Quantities cross as text, both ways (here, in SELECT_NEW and in UPSERT_STOCK): asyncpg's numeric codec took
# about 0.8 us a value to read and 2.8 us a value in an array to write, text and Decimal() about 0.2 and 1.2, for
# the same exact decimal.
SELECT_STOCK = """
SELECT batch_id, node_id, received::text AS received, dispatched::text AS dispatched
FROM batch_stock WHERE batch_id = ANY($1::bigint[])
"""


async def stock(conn: Connection, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[Any]]:
    """Received and dispatched quantities per (batch, node), for the batches in hand."""
    rows = await conn.fetch(SELECT_STOCK, list({p[0] for p in pairs}))
    return {(r["batch_id"], r["node_id"]): [Decimal(r["received"]), Decimal(r["dispatched"])] for r in rows}


UPSERT_STOCK = """
INSERT INTO batch_stock (batch_id, node_id, received, dispatched, last_event)
SELECT b, n, r::numeric, d::numeric, t
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[]) AS u(b, n, r, d, t)
ON CONFLICT (batch_id, node_id) DO UPDATE SET received = EXCLUDED.received, dispatched = EXCLUDED.dispatched,
    last_event = greatest(batch_stock.last_event, EXCLUDED.last_event)
"""


async def save_stock(conn: Connection, values: dict[tuple[int, int], list[Any]]) -> None:
    keys = list(values)
    await conn.execute(
        UPSERT_STOCK,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [str(values[k][0]) for k in keys],
        [str(values[k][1]) for k in keys],
        [values[k][2] for k in keys],
    )


INSERT_ANOMALIES = """
INSERT INTO anomalies (kind, batch_id, event_id, node_id, enterprise_id, detail, event_time, facts)
SELECT k, b, e, n, en, d, t, f::jsonb
FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::timestamptz[],
            $8::text[])
    AS u(k, b, e, n, en, d, t, f)
ON CONFLICT DO NOTHING
"""


async def insert_anomalies(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(kind, batch_id, event_id, node_id, enterprise_id, detail, event_time, facts); each is recorded once."""
    if rows:
        cols = [list(col) for col in zip(*rows, strict=True)]
        cols[7] = [orjson.dumps(f).decode() for f in cols[7]]
        await conn.execute(INSERT_ANOMALIES, *cols)


async def claim_serials(conn: Connection, claims: Sequence[tuple[str, int, str, int]]) -> set[str]:
    """Record dispensed drug serials, (serial, batch_id, event_id, node_id) each; a serial keeps its first
    dispensing. Returns the serials recorded now (the others were dispensed before)."""
    rows = await conn.fetch(
        "INSERT INTO drug_serials (serial, batch_id, dispensed_by, node_id) "
        "SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::bigint[]) ON CONFLICT DO NOTHING "
        "RETURNING serial",
        *[list(col) for col in zip(*claims, strict=True)],
    )
    return {r["serial"] for r in rows}


async def dispensed(conn: Connection, serials: Sequence[str]) -> list[Record]:
    """The drug serials among ``serials`` dispensed already, with the event and the node that dispensed each."""
    return list(
        await conn.fetch(
            "SELECT d.serial, d.dispensed_by::text AS dispensed_by, n.name_zh AS node, n.name_en AS node_en "
            "FROM drug_serials d JOIN nodes n ON n.id = d.node_id WHERE d.serial = ANY($1::text[])",
            list(serials),
        )
    )


# Batches opened inside a safety interval among each given batch and everything it was made from (at most
# 20 for each, by trace code).
VIOLATIONS_UPSTREAM = """
WITH RECURSIVE up(origin, id) AS (
    SELECT b, b FROM unnest($1::bigint[]) AS b
    UNION
    SELECT up.origin, l.parent_id FROM batch_links l JOIN up ON l.child_id = up.id
)
SELECT origin, trace_code, reason, inputs, opened_on, farm, farm_code FROM (
    SELECT up.origin, b.trace_code, v.reason, v.inputs, v.opened_on, n.name_zh AS farm, n.code AS farm_code,
           row_number() OVER (PARTITION BY up.origin ORDER BY b.trace_code) AS k
    FROM up JOIN interval_violations v ON v.batch_id = up.id
    JOIN batches b ON b.id = v.batch_id
    JOIN nodes n ON n.id = b.node_id
) x
WHERE k <= 20
ORDER BY origin, trace_code
"""


async def violations_upstream(conn: Connection, batch_ids: Sequence[int]) -> dict[int, list[Record]]:
    """For each batch, the batches opened inside a safety interval among it and what it was made from."""
    found: dict[int, list[Record]] = {}
    for r in await conn.fetch(VIOLATIONS_UPSTREAM, list(batch_ids)):
        found.setdefault(r["origin"], []).append(r)
    return found


async def opening_canonicals(conn: Connection, batch_ids: Sequence[int]) -> dict[int, bytes]:
    """The canonical bytes of each batch's opening event (its key data: a dairy batch's heat treatment)."""
    rows = await conn.fetch(
        "SELECT batch_id, canonical FROM events WHERE batch_id = ANY($1::bigint[]) AND seq = 1", list(batch_ids)
    )
    return {r["batch_id"]: r["canonical"] for r in rows}


# Attributed to the node that last became a holder (where the goods sit), not to the one that opened the batch.
DORMANT = """
SELECT b.id AS batch_id, n.id AS node_id, n.enterprise_id, b.trace_code, p.shelf_life_days,
       max(s.last_event) AS last_event
FROM batches b
JOIN products p ON p.id = b.product_id AND p.shelf_life_days IS NOT NULL
JOIN batch_heads h ON h.batch_id = b.id AND h.status = 'active'
JOIN nodes n ON n.id = coalesce((SELECT c.node_id FROM batch_custody c WHERE c.batch_id = b.id
                                 AND c.relation = 'holder' ORDER BY c.since DESC, c.node_id LIMIT 1), b.node_id)
JOIN batch_stock s ON s.batch_id = b.id
WHERE coalesce(b.produced_on, b.created_at::date) + p.shelf_life_days < $1::date
  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id
                  AND e.biz_step IN ('retail_selling', 'destroying', 'dispensing'))
  AND NOT EXISTS (SELECT 1 FROM batch_links l WHERE l.parent_id = b.id)
  AND NOT EXISTS (SELECT 1 FROM anomalies a WHERE a.batch_id = b.id AND a.kind = 'dormant_past_shelf_life')
GROUP BY b.id, n.id, n.enterprise_id, b.trace_code, p.shelf_life_days
LIMIT 1000
"""


async def dormant(conn: Connection, today: Any) -> list[Record]:
    return list(await conn.fetch(DORMANT, today))


SELECT_ANOMALIES = """
SELECT a.id, a.kind, b.trace_code, a.event_id::text AS event_id, n.code AS node_code, n.name_zh AS node_name,
       n.name_en AS node_name_en, n.area_code, en.uscc, en.name AS enterprise, en.name_en AS enterprise_en,
       en.contact, a.detail, a.facts, a.event_time, a.detected_at, p.name_zh AS product, p.name_en AS product_en,
       coalesce(t.status, 'new') AS status,
       coalesce(t.severity, ($13::text[])[array_position($12::text[], a.kind)], 'medium') AS severity,
       t.assignee, t.note, t.at AS triaged_at, t.actor_name AS triaged_by
FROM anomalies a
JOIN batches b ON b.id = a.batch_id
JOIN products p ON p.id = b.product_id
LEFT JOIN nodes n ON n.id = a.node_id
LEFT JOIN enterprises en ON en.id = a.enterprise_id
LEFT JOIN LATERAL (
    SELECT status, severity, assignee, note, at, actor_name FROM anomaly_triage
    WHERE anomaly_id = a.id ORDER BY id DESC LIMIT 1
) t ON true
WHERE ($1::text IS NULL OR a.kind = $1)
  AND ($2::text IS NULL OR n.code = $2)
  AND ($3::text IS NULL OR en.uscc = $3)
  AND ($14::text IS NULL OR en.name ILIKE $14 OR coalesce(en.name_en, '') ILIKE $14)
  AND ($4::text IS NULL OR b.trace_code = $4)
  AND ($5::timestamptz IS NULL OR a.detected_at >= $5)
  AND ($6::timestamptz IS NULL OR a.detected_at < $6)
  AND ($9::text[] IS NULL OR coalesce(t.status, 'new') = ANY($9::text[]))
  AND ($10::text IS NULL OR coalesce(t.severity, ($13::text[])[array_position($12::text[], a.kind)], 'medium') = $10)
  AND ($11::text IS NULL OR n.area_code = $11)
  AND ($15::bigint IS NULL OR a.id = $15)
ORDER BY a.id DESC LIMIT $7 OFFSET $8
"""


async def list_anomalies(
    conn: Connection,
    *,
    kind: str | None,
    node: str | None,
    enterprise: str | None,
    trace_code: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    statuses: Sequence[str] | None = None,
    severity: str | None = None,
    district: str | None = None,
    anomaly_id: int | None = None,
    enterprise_name: str | None = None,
    default_severity: Mapping[str, str] | None = None,
) -> list[Record]:
    """Anomalies with their triage state (the latest triage row, else new at the kind's default severity)."""
    defaults = dict(default_severity or {})
    return list(
        await conn.fetch(
            SELECT_ANOMALIES,
            kind,
            node,
            enterprise,
            trace_code,
            since,
            until,
            limit,
            offset,
            list(statuses) if statuses else None,
            severity,
            district,
            list(defaults),
            list(defaults.values()),
            like_pattern(enterprise_name) if enterprise_name else None,
            anomaly_id,
        )
    )


INSERT_TRIAGE = """
INSERT INTO anomaly_triage
    (anomaly_id, at, actor_kind, actor_id, actor_name, authority, severity, status, assignee, note)
VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, at
"""


async def insert_triage(
    conn: Connection, anomaly_id: int, actor: Mapping[str, Any], state: Mapping[str, Any]
) -> Record:
    """One triage step; the table refuses updates and deletes, so the history stays as it was written."""
    return await fetch_one(
        conn,
        INSERT_TRIAGE,
        anomaly_id,
        actor["kind"],
        actor["id"],
        actor["name"],
        actor.get("authority"),
        state["severity"],
        state["status"],
        state.get("assignee"),
        state.get("note"),
    )


async def triage_history(conn: Connection, anomaly_id: int) -> list[Record]:
    """An anomaly's triage, oldest first."""
    return list(
        await conn.fetch(
            "SELECT id, at, actor_kind, actor_name, authority, severity, status, assignee, note "
            "FROM anomaly_triage WHERE anomaly_id = $1 ORDER BY id",
            anomaly_id,
        )
    )


PACK = """
INSERT INTO packages (code, parent, batch_id, event_id)
SELECT c, $2, $3, $4 FROM unnest($1::text[]) AS c
ON CONFLICT (code) DO UPDATE SET parent = EXCLUDED.parent, batch_id = EXCLUDED.batch_id, event_id = EXCLUDED.event_id
"""
UNPACK = "UPDATE packages SET parent = NULL, event_id = $3 WHERE code = ANY($1::text[]) AND parent = $2"


async def pack(conn: Connection, children: Sequence[str], parent: str, batch_id: int, event_id: str) -> None:
    """Children packed into a parent (the parent itself is a package of the same batch)."""
    await conn.execute(
        "INSERT INTO packages (code, parent, batch_id, event_id) VALUES ($1, NULL, $2, $3) "
        "ON CONFLICT (code) DO NOTHING",
        parent,
        batch_id,
        event_id,
    )
    await conn.execute(PACK, list(children), parent, batch_id, event_id)


async def unpack(conn: Connection, children: Sequence[str], parent: str, event_id: str) -> None:
    await conn.execute(UNPACK, list(children), parent, event_id)


PACKAGE_TREE = """
WITH RECURSIVE up(code, parent, depth) AS (
    SELECT code, parent, 0 FROM packages WHERE code = $1
    UNION ALL
    SELECT p.code, p.parent, up.depth + 1 FROM packages p JOIN up ON p.code = up.parent WHERE up.depth < 10
)
SELECT code, depth FROM up ORDER BY depth
"""


async def package(conn: Connection, code: str) -> dict[str, Any] | None:
    """A package with the chain of packages around it and the packages directly inside it."""
    row = await conn.fetchrow(
        "SELECT p.code, p.parent, b.trace_code FROM packages p JOIN batches b ON b.id = p.batch_id WHERE p.code = $1",
        code,
    )
    if row is None:
        return None
    ancestors = [r["code"] for r in await conn.fetch(PACKAGE_TREE, code)][1:]
    children = [r["code"] for r in await conn.fetch("SELECT code FROM packages WHERE parent = $1 ORDER BY code", code)]
    return {"code": row["code"], "trace_code": row["trace_code"], "inside": ancestors, "contains": children}


async def anomaly_districts(conn: Connection) -> list[str]:
    """The area codes of the nodes anomalies were found at: the console's district filter."""
    rows = await conn.fetch(
        "SELECT DISTINCT n.area_code FROM anomalies a JOIN nodes n ON n.id = a.node_id ORDER BY n.area_code"
    )
    return [r["area_code"] for r in rows]
