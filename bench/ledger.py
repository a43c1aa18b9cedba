"""A million-event ledger for the scale benchmarks, written straight into the bench database.

10,000 carcasses, each split into four cuts that travel through the world's nodes: about 1,000,000
events with valid chains (canonical bytes and hashes from traceability.ledger, as the service
makes them) and genealogy links. The running server's sequencer puts every event in the log.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.world import World
from traceability.domain import tracecode
from traceability.ledger import canonical, chain
from traceability.storage.events_repo import EVENT_COLUMNS

SERIAL_BASE = 4_000_000_000_000  # far above anything the service's sequence hands out during a run
STEPS = ("receiving", "storing", "shipping", "receiving", "storing", "retail_selling")


@dataclass(slots=True)
class Ledger:
    events: int
    roots: list[str]  # carcasses: trace forward from these
    leaves: list[str]  # cuts: trace backward from these
    event_ids: list[str]  # a sample, for inclusion proofs


def _time_ordered_ids() -> Callable[[], str]:
    """UUIDv7-shaped ids (time first): random ids slow the unique index down as the table grows."""
    base = (int(time.time() * 1000) << 80) | (0x7 << 76) | (0x2 << 62)
    counter = iter(range(1 << 40))
    return lambda: str(uuid.UUID(int=base | next(counter)))


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


async def load(
    db_url: str, world: World, parents: int, cuts_per_parent: int, events_per_cut: int, log: Callable[[str], None]
) -> Ledger:
    conn = await asyncpg.connect(db_url)
    try:
        product = await conn.fetchval("SELECT id FROM products ORDER BY id LIMIT 1")
        nodes = world.devices
        start = datetime.now(UTC) - timedelta(days=20)
        recorded = (datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        now = datetime.now(UTC)
        roots: list[str] = []
        leaves: list[str] = []
        sample: list[str] = []
        total = 0
        t0 = time.monotonic()
        chunk = 500  # parents per transaction
        new_id = _time_ordered_ids()
        serial = SERIAL_BASE
        for first in range(0, parents, chunk):
            batches, heads_by_code, links, rows = [], {}, [], []
            for p in range(first, min(first + chunk, parents)):
                home = nodes[p % len(nodes)]
                family = []
                for c in range(cuts_per_parent + 1):
                    serial += 1
                    code = tracecode.make("320311", serial)
                    family.append(code)
                    batches.append(
                        (
                            code,
                            product,
                            home.node_id,
                            home.device_id,
                            str(uuid.uuid4()),
                            b"\0" * 32,
                            90 if c == 0 else 22.5,
                            "KGM",
                            start.date(),
                            None,
                        )
                    )
                parent, cuts = family[0], family[1:]
                roots.append(parent)
                leaves.append(cuts[-1])
                for k, code in enumerate(family):
                    prev = chain.genesis(code)
                    count = 2 if k == 0 else events_per_cut
                    for s in range(count):
                        step = "commissioning" if s == 0 else STEPS[(s - 1) % len(STEPS)]
                        where = home if k == 0 or s < 3 else nodes[(p * 7 + k * 3 + s // 3) % len(nodes)]
                        when = start + timedelta(minutes=p % 1000 + s * 7)
                        event_id = new_id()
                        data = _content(code, event_id, step, when, where.node, where.device_id, recorded)
                        digest = chain.link(prev, data)
                        rows.append(
                            (
                                event_id,
                                code,
                                s + 1,
                                prev,
                                digest,
                                data,
                                step,
                                where.node_id,
                                where.device_id,
                                when,
                                now,
                                None,
                            )
                        )
                        prev = digest
                        if len(sample) < 20_000 and s % 5 == 1:
                            sample.append(event_id)
                    heads_by_code[code] = (count, prev)
                links.extend((parent, cut) for cut in cuts)
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "batches",
                    records=batches,
                    columns=(
                        "trace_code",
                        "product_id",
                        "node_id",
                        "device_id",
                        "open_event_id",
                        "open_digest",
                        "quantity",
                        "uom",
                        "produced_on",
                        "expires_on",
                    ),
                )
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
            total += len(rows)
            log(f"ledger: {total:,} events written ({total / (time.monotonic() - t0):,.0f}/s)")
        return Ledger(total, roots, leaves, sample)
    finally:
        await conn.close()


async def wait_logged(db_url: str, log: Callable[[str], None], patience: float = 240) -> float:
    """Wait until the sequencer has put every event in the log; returns how long that took."""
    conn = await asyncpg.connect(db_url)
    try:
        t0 = time.monotonic()
        while (left := await conn.fetchval("SELECT count(*) FROM log_queue")) > 0:
            if time.monotonic() - t0 > patience:
                raise RuntimeError(f"{left:,} events still waiting for the log after {patience:.0f} s")
            log(f"ledger: {left:,} events waiting for the log")
            await __import__("asyncio").sleep(2)
        return time.monotonic() - t0
    finally:
        await conn.close()


def sha_loop(payloads: list[bytes]) -> float:
    """Seconds for a tight loop of SHA-256 over the given bytes."""
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for data in payloads:
        sha(data).digest()
    return time.perf_counter() - t0
