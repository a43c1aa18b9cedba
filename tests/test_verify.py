"""`traceability verify` recomputes every chain and names the first broken link."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, until
from traceability.config import ROOT, Settings
from traceability.services import audit_parts, audit_workers, verify
from traceability.services.verify import verify_chains
from traceability.storage import audit_repo
from traceability.storage.database import open_database


async def run_verify(db_url: str) -> tuple[bool, list[str]]:
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        report = await verify_chains(db)
    return report.ok, [str(f) for f in report.faults]


def cli(db_url: str, *args: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACE_DATABASE_URL": db_url, "TRACE_LOG_LEVEL": "warning"}
    if tmp is not None:
        env["TRACE_DATA_DIR"] = str(tmp)
    # The bound is for a hung command only: the demo writes a city's worth of events, which takes minutes when
    # the suite's processes share a busy machine.
    return subprocess.run(
        [sys.executable, "-m", "traceability", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


async def history(world: World, events: int = 3) -> str:
    code = await world.open_batch()
    for step in ("inspecting", "shipping", "receiving", "storing")[:events]:
        await world.post("/api/v1/events", world.event(code, step), world.devices["slaughter"], expect=201)
    return code


async def tamper(superuser: asyncpg.Connection, sql: str, *args: object) -> None:
    """Change the database behind the service's back, as an operator with superuser rights could."""
    await superuser.execute("SET session_replication_role = replica")  # triggers off
    await superuser.execute(sql, *args)
    await superuser.execute("SET session_replication_role = DEFAULT")


async def test_an_intact_ledger_verifies(world: World, db_url: str) -> None:
    await history(world)
    await history(world)
    assert await run_verify(db_url) == (True, [])
    result = cli(db_url, "verify")
    assert result.returncode == 0, result.stderr
    assert "8 events in 2 batches" in result.stdout and "all verified" in result.stdout


async def test_one_changed_byte_is_named(world: World, db_url: str, superuser: asyncpg.Connection) -> None:
    await history(world)
    code = await history(world)
    await tamper(
        superuser,
        """UPDATE events SET canonical = overlay(canonical placing '9'::bytea from 40 for 1)
                               WHERE seq = 3 AND batch_id = (SELECT id FROM batches WHERE trace_code = $1)""",
        code,
    )
    ok, faults = await run_verify(db_url)
    assert not ok
    assert faults == [f"chain batch {code} seq 3: hash does not match the event's canonical bytes"]
    result = cli(db_url, "verify")
    assert result.returncode == 1
    assert f"FAIL chain batch {code} seq 3" in result.stdout


async def test_a_deleted_event_is_named(world: World, db_url: str, superuser: asyncpg.Connection) -> None:
    code = await history(world)
    await tamper(superuser, "DELETE FROM events WHERE seq = 2")
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {code} seq 2: sequence jumps from 1 to 3"]


async def test_a_deleted_last_event_is_named(world: World, db_url: str, superuser: asyncpg.Connection) -> None:
    code = await history(world)
    await tamper(superuser, "DELETE FROM events WHERE seq = 4")
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {code} seq 4: chain ends at seq 3 but the batch head is at seq 4"]


async def test_swapped_events_are_named(world: World, db_url: str, superuser: asyncpg.Connection) -> None:
    code = await history(world)
    for sql in (
        "UPDATE events SET seq = 1000 WHERE seq = 2",
        "UPDATE events SET seq = 2 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = 1000",
    ):
        await tamper(superuser, sql)
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {code} seq 2: prev_hash does not match the previous event's hash"]


async def test_a_rehashed_rewrite_is_caught_at_the_head(
    world: World, db_url: str, superuser: asyncpg.Connection
) -> None:
    """Rewriting an event and recomputing its hash breaks the next link."""
    from traceability.ledger import chain

    code = await history(world)
    row = await superuser.fetchrow("SELECT prev_hash, canonical FROM events WHERE seq = 2")
    forged = row["canonical"].replace(b"inspecting", b"inspectinG")
    await tamper(
        superuser,
        "UPDATE events SET canonical = $1, hash = $2 WHERE seq = 2",
        forged,
        chain.link(row["prev_hash"], forged),
    )
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {code} seq 3: prev_hash does not match the previous event's hash"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET biz_step = 'x'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
        "UPDATE batches SET quantity = 1",
        "DELETE FROM batch_identifiers",
    ],
)
async def test_ledger_tables_refuse_changes(world: World, superuser: asyncpg.Connection, statement: str) -> None:
    await world.open_batch(identifiers=[{"scheme": "city_batch", "value": "XZ-0001"}])
    for _ in range(10):
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await superuser.execute(statement)
            return
        except asyncpg.DeadlockDetectedError:
            # TRUNCATE … CASCADE locks every table that references events, one after another, while the
            # app's sequencer holds some of them: PostgreSQL may pick this statement as the victim. Again.
            continue
    raise AssertionError("deadlocked ten times running")


async def test_the_runtime_role_cannot_change_the_ledger(
    world: World, client: object, superuser: asyncpg.Connection
) -> None:
    from traceability.http.keys import DATABASE

    await history(world, 1)
    db = client.server.app[DATABASE]  # type: ignore[attr-defined]
    assert db.role == "traceability_runtime"
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT current_user") == "traceability_runtime"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute("UPDATE events SET biz_step = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute("DELETE FROM batches")
    # Released and re-acquired connections keep the role (it is a startup parameter, not a SET).
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT current_user") == "traceability_runtime"


async def test_an_event_naming_nothing_is_named(world: World, db_url: str, superuser: asyncpg.Connection) -> None:
    await history(world, 1)
    await tamper(superuser, "UPDATE events SET node_id = 999999 WHERE seq = 2")
    _, faults = await run_verify(db_url)
    assert len(faults) == 1 and faults[0].endswith("names no existing node")


async def test_parts_and_chunks_of_any_size_find_the_same_faults(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two rows and parts of one batch or a few events: every boundary the audit has is crossed."""
    codes = [await history(world, 4) for _ in range(3)]
    await wait_logged(superuser)
    await tamper(
        superuser,
        "UPDATE events SET canonical = canonical || ' '::bytea"
        " WHERE batch_id = (SELECT id FROM batches WHERE trace_code = $1) AND seq = 4",
        codes[1],
    )
    await tamper(superuser, "UPDATE log_leaves SET leaf_hash = $1 WHERE leaf_index = 6", b"\x07" * 32)
    monkeypatch.setattr(audit_repo, "CHUNK", 2)
    faults: list[str] = []
    events = leaves = 0
    async with open_database(Settings.from_env({}, database_url=db_url)) as db, db.connection() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await audit_repo.export_snapshot(conn)
            parts = await verify.plan(conn, True, True, None, workers=5)
            assert sum(isinstance(p, audit_parts.Chains) for p in parts) >= 3
            for part in parts:  # in this process, so that the two-row chunks apply
                found = await audit_parts.audit(db.url, snapshot, part, 100)
                faults += [str(f) for f in found.faults]
                events += found.events if isinstance(part, audit_parts.Chains) else 0
                leaves += found.events if isinstance(part, audit_parts.Tree) else 0
    assert events == leaves == 15
    changed = await superuser.fetchval(
        "SELECT e.event_id::text FROM log_leaves l JOIN events e ON e.id = l.event_pk WHERE l.leaf_index = 6"
    )
    sizes = [r[0] for r in await superuser.fetch("SELECT size FROM checkpoints WHERE size > 6 ORDER BY size")]
    assert sorted(faults) == sorted(
        [
            f"chain batch {codes[1]} seq 4: hash does not match the event's canonical bytes",
            f"leaf index 6: does not match event {changed}",
            "tile (0, 0): partial tile does not match the leaves",  # 15 leaves: the one tile is partial
            "log trace.test/log: head (size 15) does not match the 15 leaves",
            *(f"checkpoint size {size}: root does not match the leaves" for size in sizes),
        ]
    )


async def wait_logged(superuser: asyncpg.Connection) -> None:
    async def caught_up() -> bool:
        return not await superuser.fetchval("SELECT EXISTS (SELECT 1 FROM log_queue)")

    await until(caught_up, "the log catching up")


async def test_whole_ranges_hold_at_once_until_a_byte_changes(
    world: World, client: Any, db_url: str, superuser: asyncpg.Connection
) -> None:
    """The audit's fast path (one comparison per range of rows) takes an intact ledger whole, and turns a
    range over to the row-by-row check (which names the spot) as soon as one byte in it differs."""
    from traceability.services import audit_bulk

    codes = [await history(world, 4) for _ in range(3)]
    commercial = {"unit_price": 32, "amount": 64, "currency": "CNY"}
    await world.post(
        "/api/v1/events",
        world.event(codes[0], "shipping", commercial=commercial),
        world.devices["slaughter"],
        expect=201,
    )
    assert await superuser.fetchval("SELECT count(*) FROM events WHERE private IS NOT NULL") == 1
    await wait_logged(superuser)

    async def holding() -> tuple[bool, bool]:
        conn = await asyncpg.connect(db_url)
        try:
            heads = {r["id"]: r for r in await audit_repo.heads_in(conn, 0, 2**62)}
            ranges = audit_bulk.batch_ranges(heads, 0, 2**62, 2)
            assert len(ranges) == 3  # one batch each
            nodes, devices = await audit_repo.known_ids(conn)
            chains = []
            for lo, hi in ranges:
                sent: list[bytes] = []

                async def keep(data: bytes) -> None:
                    sent.append(data)

                await audit_repo.copy_chains(conn, lo, hi, keep)
                verdicts = []
                for compiled in (True, False):  # the compiled walker and the Python one, on the same stream
                    walk = audit_bulk.ChainWalk(
                        [heads[k] for k in audit_bulk.heads_between(sorted(heads), lo, hi)],
                        nodes,
                        devices,
                        compiled=compiled,
                    )
                    for data in sent:
                        await walk.feed(data)
                    verdicts.append((walk.holds(), walk.events, walk.batches, walk.unnamed))
                # The same verdict; the same counts too when the range holds (the only time they are read).
                assert verdicts[0][0] == verdicts[1][0] and (not verdicts[0][0] or verdicts[0] == verdicts[1])
                chains.append(verdicts[0][0])
            leaves = []
            async for bundle in audit_repo.leaf_event_bundles(conn, [(0, 2**62)], b"\x00"):
                leaves.append(audit_bulk.leaves_hold(bundle, b"\x00"))
                assert leaves[-1] is audit_bulk.leaves_hold(bundle, b"\x00", compiled=False)
            return all(chains), all(leaves)
        finally:
            await conn.close()

    assert await holding() == (True, True)  # the sealed event too
    await tamper(superuser, "UPDATE events SET private = private || '\\x00'::bytea WHERE private IS NOT NULL")
    assert await holding() == (False, True)
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {codes[0]} seq 6: the sealed commercial details do not match their seal"]
    await tamper(superuser, "UPDATE events SET private = substring(private FROM 1 FOR length(private) - 1)")
    assert await holding() == (True, True)
    await tamper(
        superuser,
        "UPDATE events SET prev_hash = hash"
        " WHERE seq = 2 AND batch_id = (SELECT id FROM batches WHERE trace_code = $1)",
        codes[2],
    )
    assert await holding() == (False, True)
    _, faults = await run_verify(db_url)
    assert faults == [f"chain batch {codes[2]} seq 2: prev_hash does not match the previous event's hash"]
    await tamper(superuser, "UPDATE log_leaves SET leaf_hash = $1 WHERE leaf_index = 3", b"\x07" * 32)
    assert await holding() == (False, False)
    # A sealed event whose opening is gone: its range no longer holds at once, and the row-by-row check names it.
    await tamper(superuser, "UPDATE events SET private = NULL WHERE private IS NOT NULL")
    _, faults = await run_verify(db_url)
    assert f"chain batch {codes[0]} seq 6: the sealed commercial details do not match their seal" in faults


async def test_a_long_chain_is_read_row_by_row(
    world: World, db_url: str, superuser: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with more events than a few bundles hold is checked in chunks of rows, and still named."""
    long, short = await history(world, 4), await history(world, 1)
    for _ in range(2):
        for step in ("shipping", "receiving"):
            await world.post("/api/v1/events", world.event(long, step), world.devices["slaughter"], expect=201)
    await tamper(
        superuser,
        "UPDATE events SET canonical = canonical || ' '::bytea"
        " WHERE seq = 7 AND batch_id = (SELECT id FROM batches WHERE trace_code = $1)",
        long,
    )
    await tamper(
        superuser,
        "UPDATE events SET node_id = 999999"
        " WHERE seq = 2 AND batch_id = (SELECT id FROM batches WHERE trace_code = $1)",
        short,
    )
    monkeypatch.setattr(audit_repo, "CHUNK", 1)  # bundles of two events; a batch of more than eight is long
    faults: list[str] = []
    async with open_database(Settings.from_env({}, database_url=db_url)) as db, db.connection() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await audit_repo.export_snapshot(conn)
            for part in await verify.plan(conn, True, False, None, workers=1):
                faults += [str(f) for f in (await audit_parts.audit(db.url, snapshot, part, 100)).faults]
    assert faults[0] == f"chain batch {long} seq 7: hash does not match the event's canonical bytes"
    assert len(faults) == 2 and faults[1].endswith("names no existing node")


def test_the_workers_are_forked_from_the_audit_and_leave_ctrl_c_to_it() -> None:
    """Where the platform forks, the workers are forked from the auditing process (which has imported the audit
    by then) while it runs a single thread, and from a server preloading the audit while it runs others; each
    ignores Ctrl-C (the auditing process answers it) instead of running the handler asyncio.run set there."""
    import multiprocessing
    import signal
    import threading

    if "fork" not in multiprocessing.get_all_start_methods():
        assert audit_workers.context().get_start_method() == "spawn"
    elif threading.active_count() == 1:
        assert audit_workers.context().get_start_method() == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert audit_workers.context().get_start_method() != "fork"
    finally:
        stop.set()
        other.join()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        audit_workers.started()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


async def test_a_read_ahead_no_longer_wanted_leaves_the_snapshot_readable(db_url: str) -> None:
    """The audit asks for each chunk before handing out the last; a reader that stops early (the leaves end, a
    part has all the faults it reports) lets that query end instead of cancelling it, which would abort the
    snapshot's transaction under the part's next query (seen once: the tiles after the leaves)."""
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):

            def fetches() -> Iterator[Callable[[], Awaitable[str]]]:
                while True:
                    yield lambda: conn.fetchval("SELECT pg_sleep(0.3)::text")

            async with contextlib.aclosing(audit_repo.prefetched(fetches())) as ahead:
                async for _ in ahead:
                    break  # the next sleep is under way in PostgreSQL
            assert await conn.fetchval("SELECT 1") == 1

            async def chunk(_last: Any) -> list[Any]:
                return list(await conn.fetch("SELECT pg_sleep(0.3)"))

            async with contextlib.aclosing(audit_repo._chunks(chunk, lambda _rows: True)) as chunks:
                async for _ in chunks:
                    break
            assert await conn.fetchval("SELECT 2") == 2
    finally:
        await conn.close()
