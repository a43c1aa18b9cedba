"""Checking the ledger from the stored canonical bytes: every batch chain link by link, and every log.

The audit is split into parts over disjoint ranges (:mod:`traceability.services.audit_parts`): the
chains of a range of batches, the leaves of a range of events, each log's tree. Each part runs in a
worker process on a connection of its own, reading in bounded chunks, so the hashing uses every core
and memory stays flat however large the ledger; all of them read one snapshot, exported by the
transaction this process holds open meanwhile, so events appended during the audit are not half-seen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from traceability.services import audit_workers
from traceability.services.audit_parts import Chains, Fault, Found, Leaves, Part, Tree, run
from traceability.storage import audit_repo, log_repo
from traceability.storage.database import Connection, Database

__all__ = ["Fault", "Report", "verify_chains", "verify_ledger", "verify_log"]

BATCHES_PER_PART = 2000
EVENTS_PER_PART = 100_000


@dataclass(slots=True)
class Report:
    events: int = 0
    batches: int = 0
    faults: list[Fault] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


Progress = Callable[[int, int], None]


def default_workers() -> int:
    """One worker process per core, at most eight."""
    return max(1, min(os.cpu_count() or 1, 8))


def _ranges(lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, hi)) for a in range(lo, hi, step)]


async def plan(conn: Connection, chains: bool, logs: bool, trusted_key: str | None, workers: int) -> list[Part]:
    """The parts of an audit: each log's tree, the leaves by ranges of event keys, the chains by ranges of
    batches; enough of them that every worker stays busy while the long ones finish."""
    parts: list[Part] = []
    if logs:  # each tree is one sequential walk: start them first
        parts += [Tree(r["id"], r["origin"], r["public_key"], trusted_key) for r in await log_repo.list_logs(conn)]
        if (keys := await audit_repo.pk_range(conn)) is not None:
            width = max(1, min(EVENTS_PER_PART, (keys[1] - keys[0]) // (2 * workers) + 1))
            parts += [Leaves(a, b) for a, b in _ranges(keys[0], keys[1] + 1, width)]
    if chains and (ids := await audit_repo.event_batch_range(conn)) is not None:
        width = max(1, min(BATCHES_PER_PART, (ids[1] - ids[0]) // (4 * workers) + 1))
        parts += [Chains(a, b) for a, b in _ranges(ids[0], ids[1] + 1, width)]
    return parts


async def verify_ledger(
    db: Database,
    *,
    chains: bool = True,
    logs: bool = True,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    max_faults: int = 100,
    workers: int | None = None,
) -> tuple[Report, Report]:
    """Audit the chains and/or the logs; returns (chains report, logs report).

    Chains: every link recomputed from the canonical bytes, seals checked, every head matched, and no
    event naming a batch, node or device that does not exist. Logs: leaves against events, tiles and
    checkpoint roots recomputed from the leaves, every checkpoint signature, and no event missing from
    the log. ``trusted_key`` is the verifier key the auditor trusts (from the signing key file);
    without it the key registered in the database is used, and a mismatch is itself a fault.
    """
    workers = workers or default_workers()
    chain_report, log_report = Report(), Report()
    loop = asyncio.get_running_loop()

    async def audit(conn: Connection) -> None:
        snapshot = await audit_repo.export_snapshot(conn)
        parts = await plan(conn, chains, logs, trusted_key, workers)
        total = await audit_repo.estimate_events(conn)
        context = audit_workers.context()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=audit_workers.started) as pool:
            futures = [loop.run_in_executor(pool, run, db.url, snapshot, part, max_faults) for part in parts]
            done = 0
            for future in asyncio.as_completed(futures):
                found = await future
                if isinstance(found.part, Chains) and progress is not None:
                    done += found.events
                    progress(done, max(total, done))
            results: Sequence[Found] = [f.result() for f in futures]
        for found in results:
            report = chain_report if isinstance(found.part, Chains) else log_report
            report.faults += found.faults
            if isinstance(found.part, Chains):
                report.events += found.events
                report.batches += found.batches
            elif isinstance(found.part, Tree):
                report.events += found.events
        del chain_report.faults[max_faults:]
        del log_report.faults[max_faults:]

    # One snapshot for the whole walk, held by this transaction until every part is done; run once.
    await db.transaction(audit, isolation="repeatable_read", readonly=True, attempts=1)
    if progress is not None:
        progress(chain_report.events, chain_report.events)
    return chain_report, log_report


async def verify_chains(
    db: Database, progress: Progress | None = None, max_faults: int = 100, workers: int | None = None
) -> Report:
    """Recompute every chain; record the first broken link of each broken batch."""
    report, _ = await verify_ledger(db, logs=False, progress=progress, max_faults=max_faults, workers=workers)
    return report


async def verify_log(
    db: Database,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    max_faults: int = 100,
    workers: int | None = None,
) -> Report:
    """Audit every log (see :func:`verify_ledger`)."""
    _, report = await verify_ledger(
        db, chains=False, trusted_key=trusted_key, progress=progress, max_faults=max_faults, workers=workers
    )
    return report
