"""Checking the ledger from the stored canonical bytes: every batch chain, link by link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from traceability.ledger import canonical, chain, merkle, sealed
from traceability.ledger import checkpoint as notes
from traceability.storage import events_repo, log_repo
from traceability.storage.database import Connection, Database


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


def _seal_holds(data: bytes, private: bytes | None) -> bool:
    seal = canonical.decode(data).get("sealed")
    return isinstance(seal, str) and private is not None and sealed.matches(seal, private)


async def verify_chains(db: Database, progress: Progress | None = None, max_faults: int = 100) -> Report:
    """Recompute every chain; record the first broken link of each broken batch."""
    report = Report()

    async def audit(conn: Connection) -> int:
        total = await events_repo.count_events(conn)
        codes = await events_repo.batch_codes(conn)
        current_id: int | None = None
        current: str | None = None
        expected_prev = b""
        expected_seq = 0
        broken = False
        link = chain.link
        heads: dict[str, tuple[int, bytes]] = {}
        async for row in events_repo.scan_chains(conn):
            batch_id, seq, prev, stored, data, private = row
            if batch_id != current_id:
                if current is not None and not broken:
                    heads[current] = (expected_seq - 1, expected_prev)
                code = codes.get(batch_id, f"(batch id {batch_id})")
                current_id, current = batch_id, code
                expected_prev, expected_seq, broken = chain.genesis(code), 1, False
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
            elif (private is not None or b'"sealed":' in data) and not _seal_holds(data, private):
                reason = "the sealed commercial details do not match their seal"
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
        for row in await events_repo.orphans(conn):
            missing = [
                w
                for w, flag in (("batch", row["no_batch"]), ("node", row["no_node"]), ("device", row["no_device"]))
                if flag
            ]
            report.faults.append(
                Fault(
                    "event",
                    f"{row['event_id']} (batch id {row['batch_id']} seq {row['seq']})",
                    f"names no existing {' or '.join(missing)}",
                )
            )
        # A deleted last event leaves a chain that verifies on its own: the head still names it.
        async for code, seq, head_hash in events_repo.scan_heads(conn):
            seen = heads.get(code)
            if seen is None and seq > 0 and not any(code in f.where for f in report.faults):
                report.faults.append(Fault("chain", f"batch {code} seq 1", "batch has no events"))
            elif seen is not None and (seen[0] != seq or seen[1] != head_hash):
                report.faults.append(
                    Fault(
                        "chain",
                        f"batch {code} seq {seen[0] + 1}",
                        f"chain ends at seq {seen[0]} but the batch head is at seq {seq}",
                    )
                )
        return total

    # One snapshot for the whole walk (events and heads appended meanwhile are not half-seen), run once:
    # the report fills as it goes.
    total = await db.transaction(audit, isolation="repeatable_read", readonly=True, attempts=1)
    if progress is not None:
        progress(report.events, total)
    return report


async def verify_log(
    db: Database, trusted_key: str | None = None, progress: Progress | None = None, max_faults: int = 100
) -> Report:
    """Audit every log: leaves against events, tiles and checkpoint roots recomputed from the leaves,
    every checkpoint signature, and no event missing from the log.

    ``trusted_key`` is the verifier key the auditor trusts (from the signing key file); without it the
    key registered in the database is used, and a mismatch between the two is itself a fault.
    """
    report = Report()

    def fault(kind: str, where: str, reason: str) -> bool:
        report.faults.append(Fault(kind, where, reason))
        return len(report.faults) >= max_faults

    async def audit(conn: Connection) -> None:
        for lg in await log_repo.list_logs(conn):
            key = lg["public_key"]
            if trusted_key is not None and trusted_key != key:
                fault("log", lg["origin"], "the key registered in the database is not the trusted signing key")
                key = trusted_key
            verifier = notes.parse_verifier_key(key)
            checkpoints = await log_repo.scan_checkpoints(conn, lg["id"])
            for cp in checkpoints:
                try:
                    seen = notes.verify_checkpoint(cp["note"], verifier, origin=lg["origin"])
                except notes.NoteError as exc:
                    fault("checkpoint", f"size {cp['size']}", f"signature or format: {exc}")
                    continue
                if seen.size != cp["size"] or seen.root != cp["root"]:
                    fault("checkpoint", f"size {cp['size']}", "the signed note does not match the stored size/root")
            stored_tiles = {(r["level"], r["idx"]): r["hashes"] async for r in log_repo.scan_tiles(conn, lg["id"])}
            head = await log_repo.get_head(conn, lg["id"])
            stops = sorted(s for s in {cp["size"] for cp in checkpoints} | {head["size"]} if s > 0)
            roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
            tiles: dict[tuple[int, int], bytes] = {}
            size = 0
            pending: list[bytes] = []

            # flush runs only within this log's iteration; the defaults bind this log's buffers explicitly.
            def flush(
                pending: list[bytes] = pending, stored_tiles: dict[tuple[int, int], bytes] = stored_tiles
            ) -> None:
                nonlocal size, tiles
                if not pending:
                    return
                size, _root, changed = merkle.append(size, tiles, pending)
                pending.clear()
                for key_, content in changed.items():
                    stored = stored_tiles.get(key_)
                    if len(content) == merkle.TILE_WIDTH * merkle.HASH_SIZE and stored != content:
                        fault("tile", f"({key_[0]}, {key_[1]})", "does not match the leaves")
                tiles = {**tiles, **changed}
                keep = merkle.tiles_for_append(size)
                tiles = {k: v for k, v in tiles.items() if k in keep}

            next_stop = iter(stops)
            stop = next(next_stop, None)
            expected = 0
            async for row in log_repo.scan_leaves(conn, lg["id"]):
                index = row["leaf_index"]
                if index != expected:
                    if fault("leaf", f"index {expected}", f"missing: the next stored leaf is {index}"):
                        return
                    break
                if row["event_hash"] is None:
                    if fault("leaf", f"index {index}", "names no recorded event (a forged leaf)"):
                        return
                elif merkle.leaf_hash(row["event_hash"]) != row["leaf_hash"]:
                    if fault("leaf", f"index {index}", f"does not match event {row['event_id']}"):
                        return
                pending.append(row["leaf_hash"])
                expected += 1
                report.events += 1
                while stop is not None and expected == stop:
                    flush()
                    roots[stop] = merkle.root(stop, tiles) if stop else merkle.EMPTY_ROOT
                    stop = next(next_stop, None)
                if progress is not None and expected % 100_000 == 0:
                    progress(expected, head["size"])
            flush()
            for cp in checkpoints:
                if cp["size"] not in roots:
                    fault("checkpoint", f"size {cp['size']}", f"the log holds only {expected} leaves")
                elif roots[cp["size"]] != cp["root"]:
                    fault("checkpoint", f"size {cp['size']}", "root does not match the leaves")
            if head["size"] != expected or roots.get(head["size"]) != head["root"]:
                fault("log", lg["origin"], f"head (size {head['size']}) does not match the {expected} leaves")
            for k, content in stored_tiles.items():
                if len(content) < merkle.TILE_WIDTH * merkle.HASH_SIZE and tiles.get(k, b"")[: len(content)] != content:
                    fault("tile", f"({k[0]}, {k[1]})", "partial tile does not match the leaves")
        for row in await log_repo.unlogged_events(conn):
            fault(
                "event",
                f"batch {row['trace_code']} seq {row['seq']}",
                f"event {row['event_id']} is neither in the log nor waiting to enter it",
            )

    await db.transaction(audit, isolation="repeatable_read", readonly=True, attempts=1)
    return report
