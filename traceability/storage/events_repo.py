"""Events: the append-only, hash-chained records of what happened to each batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from traceability.domain.supply import STATUS_STEPS
from traceability.storage.database import Connection, Record

EVENT_COLUMNS = (
    "event_id",
    "batch_id",
    "seq",
    "prev_hash",
    "hash",
    "canonical",
    "biz_step",
    "node_id",
    "device_id",
    "event_time",
    "recorded_at",
    "private",
)

FIND_BY_IDS = """
SELECT e.event_id::text AS event_id, e.seq, e.hash, e.prev_hash, e.canonical, e.private, e.recorded_at,
       e.node_id, b.trace_code
FROM events e JOIN batches b ON b.id = e.batch_id
WHERE e.event_id = ANY($1::uuid[])
"""


async def find_events(conn: Connection, event_ids: Sequence[str]) -> list[Record]:
    """Events already recorded under any of ``event_ids``."""
    return list(await conn.fetch(FIND_BY_IDS, list(event_ids)))


async def insert_events(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert event rows (in ``EVENT_COLUMNS`` order) with COPY: one round trip for any count.

    An event id recorded since the caller looked is a Contention (``database.RACED_KEYS``)."""
    if len(rows) == 1:
        await conn.execute(INSERT_ONE, *rows[0])
    else:
        await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)


# Single events in one statement, one round trip, however many: lock their chain heads, check
# custody, link each event to its head, move the heads and, for a receipt, write what it changes in
# custody. Each names another batch (the caller's part). The link is ledger.chain.link computed by
# PostgreSQL: SHA-256(tag || prev || bytes), with the tag passed in from ledger.chain (tests check the
# stored hash against chain.link).
# Only a node that holds or held the batch appends here, or, receiving it, the destination of a
# shipment in transit (custody rows only ever widen, so a stale read can only send an event to the
# general path, never admit one wrongly). A receipt (``received``: the quantity received as
# domain.custody.amount counts it; NULL for any other step) makes the destination a holder and
# takes what it received off what is in transit there, as domain.custody.Relations.admit does; the
# caller sends no other event that changes custody (domain.custody.single_statement).
# No row comes back for an event whose batch is unknown, or held or recalled for a sale or receipt
# dated after that, or whose id is already taken (a replay?): the caller then takes the general
# path for it, which says why. Nor for one whose head another transaction has locked: the statement
# never waits (so one busy batch holds up no other event), and the general path waits for that one.
# The batch, its head and the custody row are each looked up by key for each event (LATERAL): as a
# semi-join the planner hashed every custody row of the recording nodes and probed the batches once
# for each of them (100 events on 1,000 custody rows: 12,500 index scans, 70 ms), and as plain joins
# it read every batch and every head to hash them, once per statement (a cost that grows with the
# ledger, not with the events written). The head is locked where it is found: SKIP LOCKED never
# waits, so the order the heads are locked in cannot deadlock. The opening time (the event time of
# the batch's first event, for the opening tolerance) is kept on the head (0027); a head written
# without it (an EPCIS or handover opening) has it read from that event, and gets it
# here when this statement writes its first event. The receipt's custody update finds its row through
# the index of custody rows with something in transit (0027), which holds none of the rows that have
# nothing to update.
_APPEND = """
WITH given AS ({given}), head AS (
    SELECT h.batch_id, h.seq, h.head_hash, g.*
    FROM given g JOIN LATERAL (SELECT b.id FROM batches b WHERE b.trace_code = g.trace_code LIMIT 1) b ON true
         JOIN LATERAL (SELECT h.batch_id, h.seq, h.head_hash, h.status, h.status_since, h.opened_at
                       FROM batch_heads h WHERE h.batch_id = b.id
                       FOR UPDATE SKIP LOCKED) h ON true
         JOIN LATERAL (SELECT 1 FROM batch_custody c
                       WHERE c.batch_id = b.id AND c.node_id = g.node_id
                         AND (c.relation = 'holder' OR (c.relation = 'destination' AND g.received IS NOT NULL))
                       LIMIT 1) held ON true
         CROSS JOIN LATERAL (SELECT coalesce(h.opened_at, (SELECT o.event_time FROM events o
                                                           WHERE o.batch_id = b.id AND o.seq = 1)) AS opened_at) t
    WHERE (h.status = 'active' OR g.biz_step NOT IN ({status_steps}) OR g.event_time < h.status_since)
      AND (t.opened_at IS NULL OR g.event_time >= t.opened_at - $12::interval)
), ins AS (
    INSERT INTO events (event_id, batch_id, seq, prev_hash, hash, canonical, biz_step, node_id, device_id,
                        event_time, recorded_at, private)
    SELECT event_id, batch_id, seq + 1, head_hash, sha256($11::bytea || head_hash || canonical),
           canonical, biz_step, node_id, device_id, event_time, recorded_at, private
    FROM head
    {guard}
    ORDER BY batch_id
    {conflict}
    RETURNING event_id, batch_id, seq, prev_hash, hash, event_time
), moved AS (
    UPDATE batch_heads h SET seq = ins.seq, head_hash = ins.hash,
                             opened_at = coalesce(h.opened_at, CASE WHEN ins.seq = 1 THEN ins.event_time END)
    FROM ins
    WHERE h.batch_id = ins.batch_id AND h.batch_id = ANY (ARRAY(SELECT batch_id FROM ins))
), received AS (
    UPDATE batch_custody c
    SET relation = 'holder', in_transit = greatest(0, c.in_transit - head.received),
        since = CASE WHEN c.relation = 'holder' THEN c.since ELSE head.event_time END
    FROM ins JOIN head ON head.batch_id = ins.batch_id
    WHERE head.received IS NOT NULL AND c.batch_id = ins.batch_id AND c.node_id = head.node_id
      AND (c.relation = 'destination' OR c.in_transit > 0)
){more}
SELECT event_id::text AS event_id, seq, prev_hash, hash FROM ins
"""
_STATUS_STEPS = ", ".join(f"'{step}'" for step in sorted(STATUS_STEPS))

APPEND_SINGLE = _APPEND.format(
    status_steps=_STATUS_STEPS,
    given="""
    SELECT *
    FROM unnest($1::text[], $2::uuid[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamptz[],
                $8::timestamptz[], $9::bytea[], $10::numeric[])
         AS g(trace_code, event_id, canonical, biz_step, node_id, device_id, event_time, recorded_at, private,
              received)""",
    guard="",
    conflict="ON CONFLICT (event_id) DO NOTHING",
    more="",
)


def append_all_statement(more: str = "") -> str:
    """The events of one request, all or none: written only when every one of them passed (else no row
    comes back and nothing is written), and an event id already taken fails the statement
    (events_event_id_key, a Contention: database.RACED_KEYS) instead of being passed over. One device
    records them all at one time: node, device and recorded time come once ($5, $6, $8), not as an array
    each. ``more``: ``, name AS (...)`` CTEs written in the same statement (parameters from $13 on), each
    seeing the events written as ``ins`` (every one of them or none)."""
    return _APPEND.format(
        status_steps=_STATUS_STEPS,
        given="""
    SELECT g.trace_code, g.event_id, g.canonical, g.biz_step, $5::bigint AS node_id, $6::bigint AS device_id,
           g.event_time, $8::timestamptz AS recorded_at, g.private, g.received
    FROM unnest($1::text[], $2::uuid[], $3::bytea[], $4::text[], $7::timestamptz[], $9::bytea[], $10::numeric[])
         AS g(trace_code, event_id, canonical, biz_step, event_time, private, received)""",
        guard="WHERE (SELECT count(*) FROM head) = cardinality($1::text[])",
        conflict="",
        more=more,
    )


APPEND_ALL = append_all_statement()


@dataclass(slots=True)
class Single:
    """One event for :func:`append_single`. ``received``: for a receipt, the quantity received
    (``domain.custody.amount``). A step of ``domain.supply.STATUS_STEPS`` on a held or recalled batch is refused.
    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which made building
    one cost about four times as much (one per event of a capture)."""

    trace_code: str
    event_id: str
    canonical: bytes
    biz_step: str
    node_id: int
    device_id: int | None
    event_time: datetime
    recorded_at: datetime
    private: bytes | None
    received: Decimal | None


async def append_single(
    conn: Connection,
    events: Sequence[Single],
    chain_tag: bytes,
    opening_tolerance: timedelta,
    all_or_none: bool = False,
) -> dict[str, Record]:
    """Append single events, each to its own batch's chain, in one autocommitted statement; the rows
    written (seq, prev_hash, hash) by event id. An event missing from the answer is for the general
    path (an unknown batch, a sale or receipt of a held one, an event dated more than
    ``opening_tolerance`` before the batch's opening, a node without custody, an event id already taken,
    a head another transaction holds). ``all_or_none``: every event or none is written (:data:`APPEND_ALL`);
    then the events share the first one's node, device and recorded time (one request of one device)."""
    rows = await conn.fetch(
        APPEND_ALL if all_or_none else APPEND_SINGLE, *append_args(events, chain_tag, opening_tolerance, all_or_none)
    )
    return {r["event_id"]: r for r in rows}


def append_args(
    events: Sequence[Single], chain_tag: bytes, opening_tolerance: timedelta, all_or_none: bool
) -> tuple[Any, ...]:
    """The parameters $1 to $12 of :data:`APPEND_SINGLE` or :data:`APPEND_ALL` (see :func:`append_single`).

    A column with nothing in it (no event sealed anything, none is a receipt) goes as NULL, not as a list
    of them: unnest pads it, and the driver checks and encodes no element of it."""
    first = events[0]
    return (
        [e.trace_code for e in events],
        [e.event_id for e in events],
        [e.canonical for e in events],
        [e.biz_step for e in events],
        first.node_id if all_or_none else [e.node_id for e in events],
        first.device_id if all_or_none else [e.device_id for e in events],
        [e.event_time for e in events],
        first.recorded_at if all_or_none else [e.recorded_at for e in events],
        nulls_as_null([e.private for e in events]),
        nulls_as_null([e.received for e in events]),
        chain_tag,
        opening_tolerance,
    )


def nulls_as_null(values: list[Any]) -> list[Any] | None:
    """A column of the multi-array ``unnest`` this module writes with: None when every value is None."""
    for v in values:
        if v is not None:
            return values
    return None


INSERT_CORRECTIONS = """
INSERT INTO event_corrections (declared_event_id, by_event_id, reason)
SELECT d, b, r FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(d, b, r)
"""


async def insert_corrections(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Index corrections (declared event, declaring event, reason); the declaration itself is an event."""
    if rows:
        await conn.execute(INSERT_CORRECTIONS, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


SELECT_CORRECTIONS = """
SELECT c.declared_event_id::text AS declared, c.by_event_id::text AS by_event, c.reason
FROM event_corrections c JOIN events e ON e.event_id = c.declared_event_id
WHERE e.batch_id = $1
"""


async def list_corrections(conn: Connection, batch_id: int) -> list[Record]:
    return list(await conn.fetch(SELECT_CORRECTIONS, batch_id))


INSERT_ONE = f"""
INSERT INTO events ({", ".join(EVENT_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(EVENT_COLUMNS) + 1))})
"""

SELECT_BATCH_EVENTS = """
SELECT e.seq, e.event_id::text AS event_id, e.hash, e.prev_hash, e.canonical, e.private,
       n.code AS node_code, n.name_zh AS node_name, n.name_en AS node_name_en, n.node_type,
       n.area_code, en.uscc AS enterprise_uscc, en.name AS enterprise_name
FROM events e
JOIN nodes n ON n.id = e.node_id
JOIN enterprises en ON en.id = n.enterprise_id
WHERE e.batch_id = $1
ORDER BY e.seq
"""


async def list_batch_events(conn: Connection, batch_id: int) -> list[Record]:
    """A batch's events in chain order, with the node each was recorded at."""
    return list(await conn.fetch(SELECT_BATCH_EVENTS, batch_id))


COUNT_EVENTS = "SELECT count(*) FROM events"


async def count_events(conn: Connection) -> int:
    value: int = await conn.fetchval(COUNT_EVENTS)
    return value
