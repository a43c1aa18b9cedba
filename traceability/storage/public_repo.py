"""What the public information page (``/public``) reads: recalls, failed inspections, and the enterprises and
stalls it rates, each list filtered by a name, districts and a product, newest first and paged.

Only what is public is selected: no prices or buyers (sealed in the events), no contacts, no accounts. A
filter left out is ``NULL``: ``name`` and ``product`` are ILIKE patterns (escaped by the caller), ``areas``
a list of GB/T 2260 area codes, ``goods`` an exact goods code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from traceability.storage.database import Connection, Record


@dataclass(frozen=True, slots=True)
class Filters:
    """A search: ILIKE patterns for a name and a product, area codes, a goods code (None: not filtered)."""

    name: str | None = None
    areas: Sequence[str] | None = None
    product: str | None = None
    goods: str | None = None

    def args(self) -> tuple[object, ...]:
        return (self.name, list(self.areas) if self.areas is not None else None, self.product, self.goods)


PRODUCT_MATCH = "(p.name_zh ILIKE $3 OR p.name_en ILIKE $3 OR p.goods_code = $4)"

SELECT_RECALLS = f"""
WITH RECURSIVE reached(recall_id, batch_id) AS (
    SELECT r.id, r.batch_id FROM recalls r
    UNION
    SELECT reached.recall_id, l.child_id FROM batch_links l JOIN reached ON l.parent_id = reached.batch_id
), places AS (
    SELECT DISTINCT x.recall_id, n.name_zh, n.name_en, n.area_code, en.name AS enterprise, en.name_en AS enterprise_en
    FROM reached x JOIN events e ON e.batch_id = x.batch_id JOIN nodes n ON n.id = e.node_id
    JOIN enterprises en ON en.id = n.enterprise_id
    WHERE n.node_type IN ('wet_market', 'supermarket', 'canteen', 'pharmacy', 'hospital')
)
SELECT r.id, r.event_id::text AS event_id, b.trace_code, r.level, r.reason, r.scope, r.authority, r.issued_at,
       r.affected, p.name_zh AS product, p.name_en AS product_en, p.goods_code, p.category,
       en.name AS enterprise, en.name_en AS enterprise_en, n.area_code
FROM recalls r
JOIN batches b ON b.id = r.batch_id
JOIN products p ON p.id = b.product_id
JOIN nodes n ON n.id = b.node_id
JOIN enterprises en ON en.id = n.enterprise_id
WHERE ($1::text IS NULL OR en.name ILIKE $1 OR en.name_en ILIKE $1 OR n.name_zh ILIKE $1 OR n.name_en ILIKE $1
       OR EXISTS (SELECT 1 FROM places x WHERE x.recall_id = r.id
                  AND (x.name_zh ILIKE $1 OR x.name_en ILIKE $1 OR x.enterprise ILIKE $1 OR x.enterprise_en ILIKE $1)))
  AND ($2::text[] IS NULL OR n.area_code = ANY($2)
       OR EXISTS (SELECT 1 FROM places x WHERE x.recall_id = r.id AND x.area_code = ANY($2)))
  AND ($3::text IS NULL OR {PRODUCT_MATCH})
ORDER BY r.issued_at DESC, r.id DESC
LIMIT $5 OFFSET $6
"""


async def recalls(conn: Connection, filters: Filters, limit: int, offset: int) -> list[Record]:
    """Recalls newest first, each with its product and the enterprise that opened the recalled batch; a name or
    district matches that enterprise or a place where the goods reached consumers (a market, shop, canteen,
    pharmacy or hospital)."""
    return list(await conn.fetch(SELECT_RECALLS, *filters.args(), limit, offset))


FAILED = """
e.biz_step = 'inspecting'
AND (position('"result":"fail"'::bytea in e.canonical) > 0
     OR position('"disposition":"non_conformant"'::bytea in e.canonical) > 0)
AND NOT EXISTS (SELECT 1 FROM event_corrections c WHERE c.declared_event_id = e.event_id)
"""

SELECT_FAILED = f"""
SELECT e.event_id::text AS event_id, e.event_time, e.canonical, b.id AS batch_id, b.trace_code,
       p.name_zh AS product, p.name_en AS product_en, p.goods_code, p.category,
       en.name AS enterprise, en.name_en AS enterprise_en, bn.area_code,
       tn.name_zh AS tested_at, tn.name_en AS tested_at_en
FROM events e
JOIN batches b ON b.id = e.batch_id
JOIN products p ON p.id = b.product_id
JOIN nodes bn ON bn.id = b.node_id
JOIN enterprises en ON en.id = bn.enterprise_id
JOIN nodes tn ON tn.id = e.node_id
WHERE {FAILED}
  AND ($1::text IS NULL OR en.name ILIKE $1 OR en.name_en ILIKE $1 OR bn.name_zh ILIKE $1 OR bn.name_en ILIKE $1
       OR tn.name_zh ILIKE $1 OR tn.name_en ILIKE $1)
  AND ($2::text[] IS NULL OR bn.area_code = ANY($2) OR tn.area_code = ANY($2))
  AND ($3::text IS NULL OR {PRODUCT_MATCH})
ORDER BY e.event_time DESC, e.id DESC
LIMIT $5 OFFSET $6
"""


async def failed_inspections(conn: Connection, filters: Filters, limit: int, offset: int) -> list[Record]:
    """Failed inspections (not declared wrong since), newest first, with the tested batch, its product, the
    enterprise that opened it and where it was tested; ``canonical`` holds the test's attributes."""
    return list(await conn.fetch(SELECT_FAILED, *filters.args(), limit, offset))


SELECT_OUTCOMES = """
WITH RECURSIVE down(root, batch_id, since) AS (
    SELECT t.root, t.root, t.since FROM unnest($1::bigint[], $2::timestamptz[]) AS t(root, since)
    UNION
    SELECT down.root, l.child_id, down.since FROM batch_links l JOIN down ON l.parent_id = down.batch_id
)
SELECT down.root,
       count(*) AS batches,
       count(*) FILTER (WHERE h.status = 'on_hold') AS held,
       count(*) FILTER (WHERE h.status = 'recalled') AS recalled,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM events e WHERE e.batch_id = down.batch_id AND e.event_time >= down.since
             AND (e.biz_step = 'destroying'
                  OR position('"disposition":"destroyed"' in convert_from(e.canonical, 'UTF8')) > 0
                  OR position('"disposition":"disposed"' in convert_from(e.canonical, 'UTF8')) > 0))) AS destroyed,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM events e WHERE e.batch_id = down.batch_id AND e.event_time >= down.since
             AND position('"disposition":"returned"' in convert_from(e.canonical, 'UTF8')) > 0)) AS returned
FROM down JOIN batch_heads h ON h.batch_id = down.batch_id
GROUP BY down.root
"""


async def outcomes(conn: Connection, batch_ids: Sequence[int], since: Sequence[datetime]) -> dict[int, Record]:
    """For each tested batch (with the time of its test): how many batches it and everything made from it
    make, how many are on hold or recalled, and how many were destroyed or returned since the test."""
    rows = await conn.fetch(SELECT_OUTCOMES, list(batch_ids), list(since))
    return {r["root"]: r for r in rows}


SELECT_RATED = f"""
SELECT * FROM (
    SELECT 'enterprise' AS kind, en.id, en.uscc, en.name, en.name_en,
           NULL::text AS node_code, NULL::text AS node_name, NULL::text AS node_name_en, NULL::text AS stall_no,
           coalesce((SELECT array_agg(DISTINCT n.area_code ORDER BY n.area_code) FROM nodes n
                     WHERE n.enterprise_id = en.id), '{{}}') AS areas
    FROM enterprises en
    WHERE ($1::text IS NULL OR en.name ILIKE $1 OR en.name_en ILIKE $1
           OR EXISTS (SELECT 1 FROM nodes n
                      WHERE n.enterprise_id = en.id AND (n.name_zh ILIKE $1 OR n.name_en ILIKE $1)))
      AND ($2::text[] IS NULL OR EXISTS (SELECT 1 FROM nodes n WHERE n.enterprise_id = en.id AND n.area_code = ANY($2)))
      AND ($3::text IS NULL OR en.id IN (
              SELECT n.enterprise_id FROM products p JOIN batches b ON b.product_id = p.id
              JOIN batch_stock s ON s.batch_id = b.id JOIN nodes n ON n.id = s.node_id WHERE {PRODUCT_MATCH}
              UNION
              SELECT n.enterprise_id FROM products p JOIN batches b ON b.product_id = p.id
              JOIN nodes n ON n.id = b.node_id WHERE {PRODUCT_MATCH}))
    UNION ALL
    SELECT 'stall', o.id, en.uscc, o.name, NULL, n.code, n.name_zh, n.name_en, o.stall_no, ARRAY[n.area_code]
    FROM operators o JOIN nodes n ON n.id = o.node_id JOIN enterprises en ON en.id = n.enterprise_id
    WHERE ($1::text IS NULL OR o.name ILIKE $1 OR o.stall_no ILIKE $1 OR n.name_zh ILIKE $1 OR n.name_en ILIKE $1
           OR en.name ILIKE $1 OR en.name_en ILIKE $1)
      AND ($2::text[] IS NULL OR n.area_code = ANY($2))
      AND ($3::text IS NULL OR o.id IN (
              SELECT d.operator_id FROM products p JOIN batches b ON b.product_id = p.id
              JOIN events e ON e.batch_id = b.id JOIN devices d ON d.id = e.device_id
              WHERE {PRODUCT_MATCH} AND d.operator_id IS NOT NULL))
) rated
ORDER BY kind, uscc, node_code NULLS FIRST, stall_no, id
LIMIT $5 OFFSET $6
"""


async def rated(conn: Connection, filters: Filters, limit: int, offset: int) -> list[Record]:
    """Enterprises, then stalls (operators), that match: a name matches an enterprise, its nodes or a stall's
    name or number; a product matches the enterprises whose nodes held it and the stalls that recorded it."""
    return list(await conn.fetch(SELECT_RATED, *filters.args(), limit, offset))


async def areas(conn: Connection) -> list[str]:
    """The area codes of every registered node (the districts one may search by)."""
    return [r[0] for r in await conn.fetch("SELECT DISTINCT area_code FROM nodes ORDER BY 1")]


FINGERPRINT = """
SELECT (SELECT coalesce(max(id), 0) FROM events) AS events,
       (SELECT coalesce(max(id), 0) FROM anomalies) AS anomalies,
       (SELECT coalesce(max(id), 0) FROM recalls) AS recalls,
       (SELECT count(*) FROM enterprises) AS enterprises,
       (SELECT count(*) FROM operators) AS operators
"""


async def fingerprint(conn: Connection) -> tuple[int, ...]:
    """What every public list is computed from, in a few index lookups: when none of it moved, an answer
    given before still holds (its ETag)."""
    row = await conn.fetchrow(FINGERPRINT)
    assert row is not None
    return tuple(int(v) for v in row.values())
