"""Checking the ledger from the stored canonical bytes: every batch chain, link by link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from traceability.ledger import chain
from traceability.storage import events_repo
from traceability.storage.database import Database


@dataclass(slots=True)
class Fault:
    """One thing that does not verify, named precisely."""

    kind: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.where}: {self.reason}"


@dataclass(slots=True)
class Report:
    events: int = 0
    batches: int = 0
    faults: list[Fault] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


Progress = Callable[[int, int], None]


async def verify_chains(db: Database, progress: Progress | None = None, max_faults: int = 100) -> Report:
    """Recompute every chain; record the first broken link of each broken batch."""
    report = Report()
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        total = await events_repo.count_events(conn)
        current: str | None = None
        expected_prev = b""
        expected_seq = 0
        broken = False
        link = chain.link
        heads: dict[str, tuple[int, bytes]] = {}
        async for row in events_repo.scan_chains(conn):
            code, seq, prev, stored, data = row
            if code != current:
                if current is not None:
                    heads[current] = (expected_seq - 1, expected_prev)
                current, expected_prev, expected_seq, broken = code, chain.genesis(code), 1, False
                report.batches += 1
            report.events += 1
            if progress is not None and report.events % 50_000 == 0:
                progress(report.events, total)
            if broken:
                continue
            reason = None
            if seq != expected_seq:
                reason = f"sequence jumps from {expected_seq - 1} to {seq}"
            elif prev != expected_prev:
                reason = "prev_hash does not match the previous event's hash"
            elif link(prev, data) != stored:
                reason = "hash does not match the event's canonical bytes"
            if reason is not None:
                broken = True
                report.faults.append(Fault("chain", f"batch {code} seq {expected_seq}", reason))
                if len(report.faults) >= max_faults:
                    break
                continue
            expected_prev = stored
            expected_seq += 1
        if current is not None and not broken:
            heads[current] = (expected_seq - 1, expected_prev)
        # A deleted last event leaves a chain that verifies on its own: the head still names it.
        async for code, seq, head_hash in events_repo.scan_heads(conn):
            seen = heads.get(code)
            if seen is None and seq > 0 and not any(code in f.where for f in report.faults):
                report.faults.append(Fault("chain", f"batch {code} seq 1", "batch has no events"))
            elif seen is not None and (seen[0] != seq or seen[1] != head_hash):
                report.faults.append(Fault("chain", f"batch {code} seq {seen[0] + 1}",
                                           f"chain ends at seq {seen[0]} but the batch head is at seq {seq}"))
    if progress is not None:
        progress(report.events, total)
    return report
