"""The anomaly analyzer: reading the log in large passes finds exactly what reading it event by event finds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from traceability.config import Settings
from traceability.demo.loader import load_demo
from traceability.services import analyzer, transparency
from traceability.storage import analysis_repo
from traceability.storage.database import Database, open_database

DERIVED = {
    "anomalies": "SELECT kind, batch_id, event_id, node_id, enterprise_id, detail, event_time, facts FROM anomalies "
    "ORDER BY id",
    "stock": "SELECT batch_id, node_id, received, dispatched, last_event FROM batch_stock ORDER BY batch_id, node_id",
    "serials": "SELECT serial, batch_id, dispensed_by, node_id FROM drug_serials ORDER BY serial",
    "packages": "SELECT code, parent, batch_id, event_id FROM packages ORDER BY code",
}


async def derived(superuser: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await superuser.fetch(query)] for name, query in DERIVED.items()}


async def follow(db: Database, limit: int) -> int:
    """Read the whole log ``limit`` events a pass; returns the number of passes."""
    # Before every event of the story: the shelf-life sweep, which depends on the day, finds nothing either way.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    passes = 1
    while await analyzer.analyze(db, now=now, limit=limit) == limit:
        passes += 1
    return passes


@contextlib.asynccontextmanager
async def demo_city(db_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """The demo city's six days recorded on a fresh database, every event in the log."""
    settings = Settings.from_env({}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test")
    async with open_database(settings) as db:
        await load_demo(db, public_url="http://trace.test", today=date(2026, 1, 20), seed=7, days=6)
        lg = await transparency.open_log(db, settings)
        while await transparency.integrate(db, lg):
            pass
        yield db


async def test_a_catch_up_finds_what_following_event_by_event_finds(
    db_url: str, superuser: asyncpg.Connection, tmp_path: Path
) -> None:
    # The demo's story: drug serials dispensed at two pharmacies, a pen opened inside a withdrawal period and
    # received downstream, dairy cold-chain readings, a sale synced after a recall, stock moving node to node.
    async with demo_city(db_url, tmp_path) as db:
        assert await follow(db, analyzer.BATCH) == 1  # the whole story in one pass, as after a restart
        caught_up = await derived(superuser)
        await superuser.execute("DELETE FROM anomalies")
        await superuser.execute("TRUNCATE batch_stock, drug_serials, packages")
        await superuser.execute("DELETE FROM analyzer_state")
        assert await follow(db, 1) > 800  # one event a pass, as a quiet ledger is followed
        assert await derived(superuser) == caught_up
    kinds = {a[0] for a in caught_up["anomalies"]}
    assert {"drug_serial_dispensed_twice", "received_inside_interval", "sale_synced_after_recall"} <= kinds
    assert caught_up["stock"] and caught_up["serials"]


async def test_an_event_earlier_than_the_one_before_it_is_found_in_the_same_pass_and_across_passes(
    db_url: str, superuser: asyncpg.Connection, tmp_path: Path
) -> None:
    query = "SELECT batch_id, event_id FROM anomalies WHERE kind = 'out_of_time_order' ORDER BY event_id"
    # The demo's story has a sale synced late with a time earlier than the event before it on its batch.
    async with demo_city(db_url, tmp_path) as db:
        await follow(db, analyzer.BATCH)  # the event before it read in the same pass
        same_pass = await superuser.fetch(query)
        await superuser.execute("DELETE FROM anomalies")
        await superuser.execute("TRUNCATE batch_stock, drug_serials, packages")
        await superuser.execute("DELETE FROM analyzer_state")
        await follow(db, 1)  # the event before it looked up, read in an earlier pass
        assert await superuser.fetch(query) == same_pass
    assert len(same_pass) == 1


async def test_stock_rows_have_room_on_their_page_for_the_next_pass(superuser: asyncpg.Connection) -> None:
    # Each pass rewrites a batch's stock row at a node; with room on the page the update is HOT (schema 0026).
    options = await superuser.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'batch_stock'")
    assert "fillfactor=50" in options


async def test_each_pass_reads_its_events_by_key_however_old_its_plan(
    db_url: str, superuser: asyncpg.Connection, tmp_path: Path
) -> None:
    # A connection plans a statement once and keeps that plan until PostgreSQL analyzes the tables again, which
    # under a fast load (a new city's first hours, any bulk import) comes long after the ledger has grown. The
    # analyzer's reads, planned on a ledger still empty, then went through the whole events table.
    for table in ("events", "batches", "batch_heads", "log_leaves", "logs", "nodes", "products"):
        # No autovacuum analyzing them while the test grows the ledger: that would make the plans anew.
        await superuser.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
    await superuser.execute("ANALYZE")
    await superuser.execute("SET plan_cache_mode = force_generic_plan")  # what a connection settles on
    reads = {
        "new_events (bigint, integer)": (analysis_repo.SELECT_NEW, "(-1, 2000)"),
        "out_of_order (bigint[], integer[], timestamptz[], interval)": (
            analysis_repo.OUT_OF_ORDER,
            "('{1}', '{2}', '{2026-01-20}', '5 minutes')",
        ),
    }

    async def plans(prefix: str) -> list[str]:
        return [
            "\n".join(r[0] for r in await superuser.fetch(f"EXPLAIN EXECUTE {prefix}{name.split()[0]}{args}"))
            for name, (_, args) in reads.items()
        ]

    for name, (query, _) in reads.items():
        await superuser.execute(f"PREPARE as_planned_{name} AS {query}")
        await superuser.execute(f"PREPARE by_key_{name} AS {query}")
    async with superuser.transaction():
        async with analysis_repo.by_key(superuser):  # as the analyzer runs them
            kept_by_key = await plans("by_key_")  # planned now, on the empty ledger, and kept
        assert kept_by_key == await plans("by_key_")
    kept = await plans("as_planned_")
    async with demo_city(db_url, tmp_path):
        pass
    assert await plans("as_planned_") == kept
    assert all("Seq Scan on events" in plan for plan in kept)  # the hazard: the events table read whole
    for plan in await plans("by_key_"):
        assert "Seq Scan on events" not in plan, plan
        assert "Index Scan using events_" in plan, plan


async def test_a_record_the_rules_cannot_read_is_logged_and_every_record_after_it_is_still_analyzed(
    db_url: str, superuser: asyncpg.Connection, tmp_path: Path, monkeypatch: Any
) -> None:
    # Before: a KeyError in a rule (an EPCIS quantity without a unit) failed the pass, and the next pass failed
    # on the same record: anomaly detection stopped for the whole ledger at the first record a rule misread.
    query = "SELECT kind, batch_id, event_id, detail FROM anomalies ORDER BY kind, batch_id, event_id"
    async with demo_city(db_url, tmp_path) as db:
        await follow(db, analyzer.BATCH)
        everything = await superuser.fetch(query)
        await superuser.execute("DELETE FROM anomalies")
        await superuser.execute("TRUNCATE batch_stock, drug_serials, packages")
        await superuser.execute("DELETE FROM analyzer_state")

        rules, failed = analyzer._rules, []

        async def faulty(conn: Any, e: Any, content: Any, run: Any) -> None:
            if not failed:
                failed.append(e["batch_id"])
                raise KeyError("uom")
            await rules(conn, e, content, run)

        monkeypatch.setattr(analyzer, "_rules", faulty)
        await follow(db, analyzer.BATCH)
        last = await superuser.fetchval("SELECT max(leaf_index) FROM log_leaves")
        assert await superuser.fetchval("SELECT position FROM analyzer_state") == last
        assert await superuser.fetchval("SELECT failed FROM analyzer_state") == 1  # trace_analyzer_failed_events
        others = [tuple(r) for r in await superuser.fetch(query) if r["batch_id"] not in failed]
        assert others == [tuple(r) for r in everything if r["batch_id"] not in failed]
        assert len(others) >= 5  # the demo story's anomalies, all found as before
