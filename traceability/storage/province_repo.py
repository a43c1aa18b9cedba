"""A province's side of replication: one database per member ledger, each subscribed to that member.

Logical replication matches tables by their schema-qualified names, and every member has the same
tables (``public.events``…), so the members cannot share a schema, nor be told apart by a column the
publisher does not send. Each member gets a database of its own in the province's PostgreSQL
(``member_<name>_<hash>``, its origin in the database's comment) with the ledger's schema, made by the same
migrations, and one subscription to the member's publication ``trace_ledger``. Rows arrive as the member
wrote them (its ids, its hashes); province-wide answers query every member's database and merge.

The subscription's conninfo names the member's role for provinces (``LOGIN REPLICATION``, ``SELECT`` on
the published tables): nothing it can do writes to the member. The province reads its copies through
pools that run read-only (:func:`open_member_pool`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from traceability import errors
from traceability.storage import migrator
from traceability.storage.database import (
    Connection,
    Database,
    PooledConnection,
    Record,
    connect,
    fetch_one,
    init_connection,
)

PUBLICATION = "trace_ledger"
_SLUG = re.compile(r"[^a-z0-9]+")


def database_name(origin: str) -> str:
    """The province's database for the member of ``origin``: readable, unique, at most 63 bytes."""
    slug = _SLUG.sub("_", origin.lower()).strip("_")[:40]
    return f"member_{slug}_{hashlib.sha256(origin.encode()).hexdigest()[:8]}"


def with_database(url: str, name: str) -> str:
    """``url`` (postgresql://…/db?…) pointing at database ``name`` instead."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


def conninfo_args(conninfo: str) -> dict[str, Any]:
    """libpq ``key=value`` conninfo as asyncpg's connect arguments (host, port, user, database, password)."""
    names = {"host": "host", "port": "port", "user": "user", "dbname": "database", "password": "password"}
    out: dict[str, Any] = {}
    for part in conninfo.split():
        key, sep, value = part.partition("=")
        if not sep or key not in names:
            continue
        out[names[key]] = int(value) if key == "port" else value.strip("'")
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


TEMPLATE = "province_template"
"""The ledger's schema, migrated once: each member's database starts as a copy of it."""
TEMPLATE_LOCK = 0x70726F76  # "prov"


async def _from_template(admin: Connection, admin_url: str, schema_dir: Path, name: str) -> None:
    """Create database ``name`` with the ledger's schema: a copy of the migrated template (one at a time)."""
    await admin.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEMPLATE):
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        template = await connect(with_database(admin_url, TEMPLATE))
        try:
            await migrator.migrate(template, schema_dir)
        finally:
            await template.close()
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)


async def subscribe(admin_url: str, schema_dir: Path, origin: str, conninfo: str) -> str:
    """Make (or repoint and refresh) the member's database and its subscription; the database's name.

    Run again after an upgrade: the member's database is migrated and the subscription refreshed, so a
    newly published table comes too."""
    name = database_name(origin)
    admin = await connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await _from_template(admin, admin_url, schema_dir, name)
        await admin.execute(f'COMMENT ON DATABASE "{name}" IS {_quote(origin)}')
        await admin.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_province') "
            "THEN CREATE ROLE traceability_province NOLOGIN; END IF; END $$"
        )
    finally:
        await admin.close()
    conn = await connect(with_database(admin_url, name))
    try:
        await migrator.migrate(conn, schema_dir)
        await conn.execute("GRANT USAGE ON SCHEMA public TO traceability_province")
        await conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO traceability_province")
        sub = name
        try:
            if await conn.fetchval("SELECT 1 FROM pg_subscription WHERE subname = $1", sub):
                await conn.execute(f"ALTER SUBSCRIPTION {sub} CONNECTION {_quote(conninfo)}")
                await conn.execute(f"ALTER SUBSCRIPTION {sub} REFRESH PUBLICATION")
            else:
                await conn.execute(f"CREATE SUBSCRIPTION {sub} CONNECTION {_quote(conninfo)} PUBLICATION {PUBLICATION}")
        except asyncpg.PostgresError as exc:
            raise errors.ConfigError(f"cannot subscribe to {origin}: {exc}") from None
    finally:
        await conn.close()
    return name


CAPACITY = """
SELECT current_setting('max_logical_replication_workers')::int AS workers,
       current_setting('max_replication_slots')::int AS origins,
       current_setting('max_worker_processes')::int AS processes,
       (SELECT count(*) FROM pg_subscription) AS subscriptions
"""


async def capacity(admin_url: str) -> Record:
    """How many subscriptions the province's PostgreSQL can run at once, and how many it has: each member
    needs an apply worker (``max_logical_replication_workers``, within ``max_worker_processes``) and a
    replication origin (``max_replication_slots``), plus table-copy workers while a subscription starts."""
    conn = await connect(admin_url)
    try:
        return await fetch_one(conn, CAPACITY)
    finally:
        await conn.close()


MEMBERS = """
SELECT d.datname, shobj_description(d.oid, 'pg_database') AS origin
FROM pg_database d WHERE d.datname LIKE 'member\\_%' ORDER BY d.datname
"""


async def member_databases(admin: Connection) -> dict[str, str]:
    """Origin -> database, for every member this province subscribes to."""
    return {r["origin"]: r["datname"] for r in await admin.fetch(MEMBERS) if r["origin"]}


SUBSCRIPTIONS = """
SELECT s.subname, s.subconninfo, s.subenabled,
       st.received_lsn - '0/0'::pg_lsn AS received, st.last_msg_receipt_time AS last_message,
       (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r') AS copying
FROM pg_subscription s
LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
"""


async def subscriptions(admin: Connection) -> dict[str, Record]:
    """Database (= subscription) name -> its state: conninfo, enabled, received WAL position, last message, and
    how many tables are still in their initial copy (until then their rows may trail the others')."""
    return {r["subname"]: r for r in await admin.fetch(SUBSCRIPTIONS)}


async def member_position(conninfo: str, within: float) -> int:
    """The member's WAL position now, read as the province's role (any role may read it)."""
    conn = await asyncpg.connect(**conninfo_args(conninfo), timeout=within)
    try:
        return int(await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn", timeout=within))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def pool(url: str, size: int, *, read_only: bool) -> AsyncIterator[Database]:
    """A pool over the province's database ``url``; ``read_only``: a member's copy, never written here."""
    settings = {"application_name": "traceability-province"}
    if read_only:
        settings.update(default_transaction_read_only="on", role="traceability_province")
    created: asyncpg.Pool[asyncpg.Record] = await asyncpg.create_pool(
        url, min_size=0, max_size=size, init=init_connection, server_settings=settings,
        connection_class=PooledConnection,
    )  # fmt: skip
    try:
        yield Database(pool=created, url=url, role=None)
    finally:
        await created.close()


# -- what the province reads from a member's copy ---------------------------------------------------

BATCH_COLUMNS = """
b.id, b.trace_code, p.goods_code, p.name_zh AS product, p.name_en AS product_en, n.code AS node,
n.name_zh AS node_name, n.area_code, b.quantity::text AS quantity, b.uom, b.created_at,
f.origin AS received_from
"""
BATCH_JOINS = """
JOIN products p ON p.id = b.product_id JOIN nodes n ON n.id = b.node_id
LEFT JOIN foreign_batches f ON f.batch_id = b.id
"""
SEARCH = f"""
SELECT {BATCH_COLUMNS} FROM batches b {BATCH_JOINS}
WHERE b.trace_code LIKE $1 || '%' OR p.name_zh LIKE '%' || $1 || '%' OR lower(p.name_en) LIKE '%' || lower($1) || '%'
   OR n.name_zh LIKE '%' || $1 || '%' OR p.goods_code = $1
ORDER BY b.created_at DESC LIMIT $2
"""


async def search(conn: Connection, text: str, limit: int) -> list[Record]:
    """Batches whose code starts with ``text``, or whose product or node name contains it; newest first."""
    return await conn.fetch(SEARCH, text, limit)


async def find_batch(conn: Connection, code: str) -> Record | None:
    return await conn.fetchrow(f"SELECT {BATCH_COLUMNS} FROM batches b {BATCH_JOINS} WHERE b.trace_code = $1", code)


EVENTS = """
SELECT e.seq, e.event_id::text AS event_id, e.biz_step, n.code AS node, n.name_zh AS node_name, e.event_time,
       encode(e.hash, 'hex') AS hash
FROM events e JOIN nodes n ON n.id = e.node_id WHERE e.batch_id = $1 ORDER BY e.seq LIMIT $2
"""


async def batch_events(conn: Connection, batch_id: int, limit: int) -> list[Record]:
    return await conn.fetch(EVENTS, batch_id, limit)


LINKED = """
SELECT 'parent' AS relation, b.trace_code FROM batch_links l JOIN batches b ON b.id = l.parent_id WHERE l.child_id = $1
UNION ALL
SELECT 'child', b.trace_code FROM batch_links l JOIN batches b ON b.id = l.child_id WHERE l.parent_id = $1
"""


async def linked(conn: Connection, batch_id: int) -> list[Record]:
    """The batch's parents (it was made from them) and children (made from it) in this member."""
    return await conn.fetch(LINKED, batch_id)


async def batch_recalls(conn: Connection, batch_id: int) -> list[Record]:
    return await conn.fetch(
        "SELECT level, reason, issued_by, issued_at FROM recalls WHERE batch_id = $1 ORDER BY issued_at", batch_id
    )


ANOMALIES = """
SELECT a.kind, a.detail, a.detected_at, a.event_time, b.trace_code, n.name_zh AS node_name
FROM anomalies a JOIN batches b ON b.id = a.batch_id LEFT JOIN nodes n ON n.id = a.node_id
ORDER BY a.detected_at DESC, a.id DESC LIMIT $1
"""


async def anomalies(conn: Connection, limit: int) -> list[Record]:
    return await conn.fetch(ANOMALIES, limit)


async def counts(conn: Connection) -> Record:
    return await fetch_one(
        conn, "SELECT (SELECT count(*) FROM batches) AS batches, (SELECT count(*) FROM events) AS events"
    )


# -- verification against the member's signed checkpoints ------------------------------------------

LATEST_PROVABLE = """
SELECT c.size, c.note FROM checkpoints c
WHERE c.log_id = $1 AND c.size <= coalesce((SELECT max(leaf_index) + 1 FROM log_leaves WHERE log_id = $1), 0)
ORDER BY c.size DESC LIMIT 1
"""


async def log_of(conn: Connection, origin: str) -> int | None:
    log: int | None = await conn.fetchval("SELECT id FROM logs WHERE origin = $1", origin)
    return log


async def latest_provable(conn: Connection, log: int) -> Record | None:
    """The largest replicated checkpoint whose leaves have all arrived."""
    return await conn.fetchrow(LATEST_PROVABLE, log)


LEAVES = """
SELECT l.leaf_index, l.leaf_hash, e.hash, e.prev_hash, e.canonical
FROM log_leaves l LEFT JOIN events e ON e.id = l.event_pk
WHERE l.log_id = $1 AND l.leaf_index >= $2 AND l.leaf_index < $3 ORDER BY l.leaf_index
"""


async def leaves(conn: Connection, log: int, start: int, end: int) -> Sequence[Record]:
    """Leaves ``start`` to ``end`` (excluded) with the events they log."""
    return await conn.fetch(LEAVES, log, start, end)
