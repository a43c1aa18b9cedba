"""A million-event ledger for the scale benchmarks, written straight into the bench database.

10,000 carcasses, each split into four cuts that travel through the world's nodes: about 1,000,000
events with valid chains (canonical bytes and hashes from traceability.ledger, as the service
makes them) and genealogy links. The running server's sequencer puts every event in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.world import World
from traceability.domain import tracecode
from traceability.ledger import canonical, chain
from traceability.storage import bulk_repo
from traceability.storage.events_repo import EVENT_COLUMNS

SERIAL_BASE = 4_000_000_000_000  # far above anything the service's sequence hands out during a run
STEPS = ("receiving", "storing", "shipping", "receiving", "storing", "retail_selling")


@dataclass(slots=True)
class Ledger:
    events: int
    roots: list[str]  # carcasses: trace forward from these
    leaves: list[str]  # cuts: trace backward from these
    event_ids: list[str]  # a sample, for inclusion proofs


def _time_ordered_id(base: int, n: int) -> str:
    """The ``n``-th UUIDv7-shaped id (time first) of a load: random ids slow the unique index down as it grows."""
    return str(uuid.UUID(int=base | n))


def _content(code: str, event_id: str, step: str, when: datetime, node: str, device: int, recorded: str) -> bytes:
    return canonical.encode(
        {
            "eventID": event_id,
            "type": "ObjectEvent",
            "action": "ADD" if step == "commissioning" else "OBSERVE",
            "traceCode": code,
            "bizStep": step,
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "eventTimeZoneOffset": "+08:00",
            "node": node,
            "device": device,
            "recordedAt": recorded,
            "quantity": {"value": "22.5", "uom": "KGM"},
            "documents": [{"type": "quarantine_certificate", "number": f"A3203-{code[-8:]}"}],
        }
    )


@dataclass(frozen=True, slots=True)
class Shape:
    """What every part of a load shares: where it writes, the world's nodes, the ledger's shape and clocks."""

    db_url: str
    product: int
    nodes: tuple[tuple[str, int, int], ...]  # (node code, node id, device id)
    cuts_per_parent: int
    events_per_cut: int
    start: datetime
    now: datetime
    recorded: str
    id_base: int
    sample_every: int  # every how many parents one keeps a sample of event ids

    @property
    def per_parent(self) -> int:
        return 2 + self.cuts_per_parent * self.events_per_cut


def _write_parents(shape: Shape, first: int, last: int) -> tuple[int, list[str]]:
    """Build and write parents ``first .. last - 1`` with their cuts in one transaction (in a worker process)."""
    return asyncio.run(_write(shape, first, last))


async def _write(shape: Shape, first: int, last: int) -> tuple[int, list[str]]:
    nodes = shape.nodes
    batches: list[tuple[object, ...]] = []
    heads_by_code: dict[str, tuple[int, bytes]] = {}
    links: list[tuple[str, str]] = []
    rows: list[tuple[object, ...]] = []
    sample: list[str] = []
    for p in range(first, last):
        home = nodes[p % len(nodes)]
        family = []
        for c in range(shape.cuts_per_parent + 1):
            code = tracecode.make("320311", SERIAL_BASE + p * (shape.cuts_per_parent + 1) + c + 1)
            family.append(code)
            batches.append(
                (
                    code,
                    shape.product,
                    home[1],
                    home[2],
                    str(uuid.uuid4()),
                    b"\0" * 32,
                    90 if c == 0 else 22.5,
                    "KGM",
                    shape.start.date(),
                    None,
                )
            )
        parent, cuts = family[0], family[1:]
        n = p * shape.per_parent
        for k, code in enumerate(family):
            prev = chain.genesis(code)
            count = 2 if k == 0 else shape.events_per_cut
            for s in range(count):
                step = "commissioning" if s == 0 else STEPS[(s - 1) % len(STEPS)]
                where = home if k == 0 or s < 3 else nodes[(p * 7 + k * 3 + s // 3) % len(nodes)]
                when = shape.start + timedelta(minutes=p % 1000 + s * 7)
                event_id = _time_ordered_id(shape.id_base, n)
                n += 1
                data = _content(code, event_id, step, when, where[0], where[2], shape.recorded)
                digest = chain.link(prev, data)
                rows.append(
                    (event_id, code, s + 1, prev, digest, data, step, where[1], where[2], when, shape.now, None)
                )
                prev = digest
                if p % shape.sample_every == 0 and s % 5 == 1:
                    sample.append(event_id)
            heads_by_code[code] = (count, prev)
        links.extend((parent, cut) for cut in cuts)
    conn = await asyncpg.connect(shape.db_url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("batches", records=batches, columns=BATCH_COLUMNS)
            ids = {
                r["trace_code"]: r["id"]
                for r in await conn.fetch(
                    "SELECT id, trace_code FROM batches WHERE trace_code = ANY($1::text[])", list(heads_by_code)
                )
            }
            await conn.copy_records_to_table(
                "batch_heads",
                records=[(ids[c], h[0], h[1]) for c, h in heads_by_code.items()],
                columns=("batch_id", "seq", "head_hash"),
            )
            await conn.copy_records_to_table(
                "batch_links",
                records=[(ids[a], ids[b], uuid.uuid4(), 22.5, "KGM") for a, b in links],
                columns=("parent_id", "child_id", "transformation_id", "quantity", "uom"),
            )
            await conn.copy_records_to_table(
                "events", records=[(r[0], ids[r[1]], *r[2:]) for r in rows], columns=EVENT_COLUMNS
            )
    finally:
        await conn.close()
    return len(rows), sample


BATCH_COLUMNS = bulk_repo.BATCH_COLUMNS[1:]  # the loader's, less the id PostgreSQL assigns here
CHUNK = 500  # parents per transaction
SAMPLE = 20_000  # event ids kept for inclusion proofs, spread over the whole load


def code_of(parent: int, cut: int, cuts_per_parent: int) -> str:
    """The trace code of a parent (cut 0) or of one of its cuts (1 ..), as :func:`load` writes them."""
    return tracecode.make("320311", SERIAL_BASE + parent * (cuts_per_parent + 1) + cut + 1)


async def load(
    db_url: str,
    world: World,
    parents: int,
    cuts_per_parent: int,
    events_per_cut: int,
    log: Callable[[str], None],
    first: int = 0,
    workers: int | None = None,
) -> Ledger:
    """Write parents ``first .. first + parents - 1``, each with its cuts, ``CHUNK`` parents per transaction,
    built and written by ``workers`` processes (one per core by default) while this one waits."""
    conn = await asyncpg.connect(db_url)
    try:
        product = await conn.fetchval("SELECT id FROM products ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    now = datetime.now(UTC)
    shape = Shape(
        db_url,
        product,
        tuple((d.node, d.node_id, d.device_id) for d in world.devices),
        cuts_per_parent,
        events_per_cut,
        now - timedelta(days=20),
        now,
        now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        (int(time.time() * 1000) << 80) | (0x7 << 76) | (0x2 << 62),
        max(1, parents * (2 + cuts_per_parent * events_per_cut) // 5 // SAMPLE),
    )
    last = first + parents
    roots = [code_of(p, 0, cuts_per_parent) for p in range(first, last)]
    leaves = [code_of(p, cuts_per_parent, cuts_per_parent) for p in range(first, last)]
    sample: list[str] = []
    total = 0
    t0 = time.monotonic()
    workers = workers or os.cpu_count() or 1
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = iter(range(first, last, CHUNK))
        flying: set[asyncio.Future[tuple[int, list[str]]]] = set()
        while True:
            for a in parts:
                flying.add(loop.run_in_executor(pool, _write_parents, shape, a, min(a + CHUNK, last)))
                if len(flying) >= 2 * workers:
                    break
            if not flying:
                break
            finished, flying = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
            for f in finished:
                events, ids = f.result()
                total += events
                sample.extend(ids)
            log(f"ledger: {total:,} events written ({total / (time.monotonic() - t0):,.0f}/s)")
    return Ledger(total, roots, leaves, sample[:SAMPLE])


async def wait_logged(db_url: str, log: Callable[[str], None], patience: float = 240) -> float:
    """Wait until the sequencer has put every event in the log; returns how long that took."""
    conn = await asyncpg.connect(db_url)
    try:
        t0 = time.monotonic()
        while (left := await conn.fetchval("SELECT count(*) FROM log_queue")) > 0:
            if time.monotonic() - t0 > patience:
                raise RuntimeError(f"{left:,} events still waiting for the log after {patience:.0f} s")
            log(f"ledger: {left:,} events waiting for the log")
            await asyncio.sleep(2)
        return time.monotonic() - t0
    finally:
        await conn.close()


async def wait_analyzed(db_url: str, log: Callable[[str], None], patience: float = 90) -> tuple[float, int]:
    """Wait (at most ``patience`` s) until the anomaly analyzer has read the whole log, as it would have long
    before a real ledger grew this big; returns the seconds waited and the leaves still unread then."""
    conn = await asyncpg.connect(db_url)
    try:
        t0 = time.monotonic()
        query = (
            "SELECT greatest(0, (SELECT max(size) FROM log_heads) - 1 "
            "- coalesce((SELECT position FROM analyzer_state WHERE name = 'anomalies'), -1))"
        )
        while (left := await conn.fetchval(query)) > 0 and time.monotonic() - t0 < patience:
            log(f"ledger: {left:,} leaves still to be read by the anomaly analyzer")
            await asyncio.sleep(2)
        return time.monotonic() - t0, left
    finally:
        await conn.close()


def sha_loop(payloads: list[bytes]) -> float:
    """Seconds for a tight loop of SHA-256 over the given bytes."""
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for data in payloads:
        sha(data).digest()
    return time.perf_counter() - t0
