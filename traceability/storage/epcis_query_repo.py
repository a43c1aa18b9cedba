"""EPCIS queries over every event of the ledger: native records and EPCIS anchors (references are skipped).

The statement is assembled from fixed fragments, one per query parameter given; every value is a
``$n`` parameter. Native events have no ``epcis_events`` row, so their facets come from the events
table and, for type, action and disposition, from their canonical JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from traceability.storage.database import Connection, Record

BASE = """
SELECT e.id, e.event_id::text AS event_id, e.seq, e.hash, e.canonical, e.private, e.recorded_at, e.event_time,
       b.trace_code, n.code AS node_code, n.gln AS node_gln, en.uscc AS node_uscc, x.kind, x.event_uri
FROM events e
JOIN batches b ON b.id = e.batch_id
JOIN nodes n ON n.id = e.node_id
JOIN enterprises en ON en.id = n.enterprise_id
LEFT JOIN epcis_events x ON x.event_id = e.event_id
"""
JSON = "CROSS JOIN LATERAL (SELECT convert_from(e.canonical, 'UTF8')::jsonb AS j) c\n"


@dataclass(slots=True)
class Filters:
    """The resolved query: values ready for SQL (batch ids, location keys, GLNs, bare vocabulary)."""

    event_types: list[str] | None = None
    actions: list[str] | None = None
    biz_steps: list[str] | None = None
    dispositions: list[str] | None = None
    read_points: tuple[list[str], list[str]] | None = None  # (location keys, GLNs)
    biz_locations: tuple[list[str], list[str]] | None = None
    transformation_ids: list[str] | None = None
    event_ids: list[str] | None = None  # ledger UUIDs (derived from eventIDs)
    error_reasons: list[str] | None = None
    times: dict[str, datetime] = field(default_factory=dict)
    exists_error: bool = False
    match: list[tuple[list[int], list[str]]] = field(default_factory=list)  # (batch ids, roles) per MATCH_*
    batch_ids: list[int] | None = None  # only events on these batches (an export)
    enterprise_id: int | None = None  # only events recorded at this enterprise's nodes
    order_by: str | None = None
    descending: bool = False
    after: tuple[Any, int] | None = None
    limit: int = 30


class _Sql:
    def __init__(self) -> None:
        self.where: list[str] = ["(x.kind IS NULL OR x.kind = 'a')"]
        self.args: list[Any] = []
        self.json = False

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


_DECLARED = "coalesce(x.declared_at, (c.j->'errorDeclaration'->>'declarationTime')::timestamptz)"
_TIME_COLUMNS = {
    "GE_eventTime": "e.event_time >= {}",
    "LT_eventTime": "e.event_time < {}",
    "GE_recordTime": "e.recorded_at >= {}",
    "LT_recordTime": "e.recorded_at < {}",
    "GE_errorDeclarationTime": f"{_DECLARED} >= {{}}",
    "LT_errorDeclarationTime": f"{_DECLARED} < {{}}",
}


def build(f: Filters) -> tuple[str, list[Any]]:
    """The statement and its arguments."""
    q = _Sql()
    if f.event_types is not None:
        q.json = True
        q.where.append(f"coalesce(x.event_type, c.j->>'type') = ANY({q.arg(f.event_types)}::text[])")
    if f.actions is not None:
        q.json = True
        q.where.append(f"coalesce(x.action, c.j->>'action') = ANY({q.arg(f.actions)}::text[])")
    if f.biz_steps is not None:
        q.where.append(f"e.biz_step = ANY({q.arg(f.biz_steps)}::text[])")
    if f.dispositions is not None:
        q.json = True
        q.where.append(f"coalesce(x.disposition, c.j->>'disposition') = ANY({q.arg(f.dispositions)}::text[])")
    for column, value in (("read_point", f.read_points), ("biz_location", f.biz_locations)):
        if value is not None:
            keys, glns = q.arg(value[0]), q.arg(value[1])
            q.where.append(
                f"((x.kind IS NOT NULL AND x.{column} = ANY({keys}::text[])) OR "
                f"(x.kind IS NULL AND n.gln = ANY({glns}::text[])))"
            )
    if f.transformation_ids is not None:
        q.json = True
        q.where.append(
            f"x.kind IS NOT NULL AND ((c.j->'epcis'->>'event')::jsonb->>'transformationID') = "
            f"ANY({q.arg(f.transformation_ids)}::text[])"
        )
    if f.event_ids is not None:
        q.where.append(f"e.event_id = ANY({q.arg(f.event_ids)}::uuid[])")
    if f.exists_error:
        q.json = True
        q.where.append("(x.declared_at IS NOT NULL OR (x.kind IS NULL AND c.j ? 'errorDeclaration'))")
    if f.error_reasons is not None:
        q.json = True
        q.where.append(
            f"coalesce(x.error_reason, c.j->'errorDeclaration'->>'reason') = ANY({q.arg(f.error_reasons)}::text[])"
        )
    for key, moment in f.times.items():
        if key.endswith("errorDeclarationTime"):
            q.json = True
        q.where.append(_TIME_COLUMNS[key].format(q.arg(moment) + "::timestamptz"))
    for batch_ids, roles in f.match:
        ids, wanted = q.arg(batch_ids), q.arg(roles)
        native = "quantityList" in roles
        clause = (
            f"(x.kind IS NOT NULL AND ((e.batch_id = ANY({ids}::bigint[]) AND x.roles && {wanted}::text[]) OR "
            f"EXISTS (SELECT 1 FROM epcis_what w WHERE w.event_id = e.event_id "
            f"AND w.batch_id = ANY({ids}::bigint[]) AND w.role = ANY({wanted}::text[]))))"
        )
        if native:
            clause = f"({clause} OR (x.kind IS NULL AND e.batch_id = ANY({ids}::bigint[])))"
        q.where.append(clause)
    if f.batch_ids is not None:
        ids = q.arg(f.batch_ids)
        q.where.append(
            f"(e.batch_id = ANY({ids}::bigint[]) OR EXISTS (SELECT 1 FROM epcis_what w WHERE w.event_id = e.event_id "
            f"AND w.batch_id = ANY({ids}::bigint[])))"
        )
    if f.enterprise_id is not None:
        q.where.append(f"n.enterprise_id = {q.arg(f.enterprise_id)}::bigint")
    column = {"eventTime": "e.event_time", "recordTime": "e.recorded_at"}.get(f.order_by or "", "")
    direction = "DESC" if f.descending else "ASC"
    if f.after is not None:
        op = "<" if f.descending else ">"
        if column:
            q.where.append(f"({column}, e.id) {op} ({q.arg(f.after[0])}::timestamptz, {q.arg(f.after[1])}::bigint)")
        else:
            q.where.append(f"e.id {op} {q.arg(f.after[1])}::bigint")
    order = f"{column} {direction}, e.id {direction}" if column else f"e.id {direction}"
    sql = BASE + (JSON if q.json else "") + "WHERE " + "\n  AND ".join(q.where) + f"\nORDER BY {order}"
    sql += f"\nLIMIT {q.arg(f.limit)}"
    return sql, q.args


async def find_events(conn: Connection, f: Filters) -> list[Record]:
    sql, args = build(f)
    return list(await conn.fetch(sql, *args))


async def count_events(conn: Connection, f: Filters, cap: int) -> int:
    """How many events match, counting at most ``cap``."""
    sql, args = build(Filters(**{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "limit": cap}))
    value: int = await conn.fetchval(f"SELECT count(*) FROM ({sql}) m", *args)
    return value


SELECT_BATCHES_BY_KEYS = """
SELECT DISTINCT i.batch_id FROM batch_identifiers i
JOIN unnest($1::text[], $2::text[]) AS k(scheme, value) ON i.scheme = k.scheme AND i.value = k.value
UNION
SELECT i.batch_id FROM batch_identifiers i
JOIN unnest($3::text[], $4::text[]) AS p(scheme, prefix)
  ON i.scheme = p.scheme AND left(i.value, length(p.prefix)) = p.prefix
UNION
SELECT b.id FROM batches b WHERE b.trace_code = ANY($5::text[])
"""


async def batch_ids(
    conn: Connection, keys: Sequence[tuple[str, str]], prefixes: Sequence[tuple[str, str]], codes: Sequence[str]
) -> list[int]:
    """Batches by identifier key, by key prefix (EPC patterns) and by trace code."""
    rows = await conn.fetch(
        SELECT_BATCHES_BY_KEYS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [p[0] for p in prefixes],
        [p[1] for p in prefixes],
        list(codes),
    )
    return [r["batch_id"] for r in rows]


SELECT_NODE_GLNS = "SELECT code, gln FROM nodes WHERE code = ANY($1::text[]) AND gln IS NOT NULL"


async def node_glns(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    if not codes:
        return {}
    return {r["code"]: r["gln"] for r in await conn.fetch(SELECT_NODE_GLNS, list(codes))}


SELECT_LOCATIONS = """
SELECT n.gln FROM nodes n WHERE n.gln IS NOT NULL AND ($1::text IS NULL OR n.gln > $1) ORDER BY n.gln LIMIT $2
"""


async def locations(conn: Connection, after: str | None, limit: int) -> list[str]:
    """GLNs of registered nodes, in order."""
    return [r["gln"] for r in await conn.fetch(SELECT_LOCATIONS, after, limit)]


SELECT_IDENTIFIERS = """
SELECT scheme, value FROM batch_identifiers
WHERE ($1::text IS NULL OR (scheme, value) > ($1, $2))
ORDER BY scheme, value
LIMIT $3
"""


async def identifiers(conn: Connection, after: tuple[str, str] | None, limit: int) -> list[Record]:
    """Identifier keys of batches, in order."""
    scheme, value = after if after else (None, "")
    return list(await conn.fetch(SELECT_IDENTIFIERS, scheme, value, limit))


SELECT_CODE_FOR_KEY = """
SELECT b.trace_code FROM batch_identifiers i JOIN batches b ON b.id = i.batch_id
WHERE i.scheme = $1 AND i.value = $2
"""


async def code_for_key(conn: Connection, key: tuple[str, str]) -> str | None:
    code: str | None = await conn.fetchval(SELECT_CODE_FOR_KEY, key[0], key[1])
    return code


SELECT_PACKAGE_BATCH = "SELECT b.trace_code FROM packages p JOIN batches b ON b.id = p.batch_id WHERE p.code = $1"


async def package_batch(conn: Connection, code: str) -> str | None:
    """The batch a package (a case, box or unit code from an AggregationEvent) belongs to."""
    found: str | None = await conn.fetchval(SELECT_PACKAGE_BATCH, code)
    return found


# -- named queries --------------------------------------------------------------------------------

INSERT_QUERY = (
    "INSERT INTO epcis_queries (owner, name, query) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING name"
)
SELECT_QUERY = "SELECT name, query, created_at FROM epcis_queries WHERE owner = $1 AND name = $2"
SELECT_QUERIES = "SELECT name, query, created_at FROM epcis_queries WHERE owner = $1 ORDER BY name LIMIT 1000"
DELETE_QUERY = "DELETE FROM epcis_queries WHERE owner = $1 AND name = $2 RETURNING name"


async def insert_query(conn: Connection, owner: str, name: str, query: dict[str, Any]) -> bool:
    """Keep a named query; False if the owner already has one by that name."""
    return await conn.fetchval(INSERT_QUERY, owner, name, query) is not None


async def find_query(conn: Connection, owner: str, name: str) -> Record | None:
    return await conn.fetchrow(SELECT_QUERY, owner, name)


async def list_queries(conn: Connection, owner: str) -> list[Record]:
    return list(await conn.fetch(SELECT_QUERIES, owner))


async def delete_query(conn: Connection, owner: str, name: str) -> bool:
    return await conn.fetchval(DELETE_QUERY, owner, name) is not None
