"""The pieces of a full audit, each run in a process of its own on a connection of its own, all inside
one exported snapshot (:mod:`traceability.services.verify` plans them and gathers what they find).

* ``Chains(lo, hi)``: every chain of the batches ``lo <= id < hi``, link by link, and their heads;
* ``Leaves(lo, hi)``: every event with key ``lo <= k < hi`` against its leaf (leaf hash of its chain
  hash), every leaf naming such a key against its event, and events neither in the log nor queued;
* ``Tree(log)``: a log's leaves in index order, rebuilt into tiles and roots, against its stored tiles,
  checkpoints (and their signatures) and head.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from hashlib import sha256

from traceability.ledger import chain, merkle
from traceability.ledger import checkpoint as notes
from traceability.services import audit_bulk as bulk
from traceability.storage import audit_repo, log_repo
from traceability.storage.database import Connection, Record

HASH = merkle.HASH_SIZE


@dataclass(slots=True)
class Fault:
    """One thing that does not verify, named precisely."""

    kind: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Chains:
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Leaves:
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Tree:
    log_id: int
    origin: str
    public_key: str
    trusted_key: str | None


Part = Chains | Leaves | Tree


@dataclass(slots=True)
class Found:
    """What one part saw: how many events (or leaves) and batches, and its faults (at most ``max_faults``)."""

    part: Part
    events: int = 0
    batches: int = 0
    faults: list[Fault] = field(default_factory=list)


@dataclass(slots=True)
class _Worker:
    """A worker process's event loop and its reader of the snapshot, kept from one part to the next (a
    connection costs the server a process of its own); the reader ends with the worker process."""

    loop: asyncio.AbstractEventLoop = field(default_factory=lambda: _new_loop())
    snapshot: str = ""
    reader: contextlib.AbstractAsyncContextManager[Connection] | None = None
    conn: Connection | None = None


_worker: _Worker | None = None


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where there is one: it reads the COPY stream with less work per read."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other platforms working
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(url: str, snapshot: str, part: Part, max_faults: int) -> Found:
    """Audit one part (the entry point of a worker process), on the worker's reader of ``snapshot``."""
    global _worker
    if _worker is None:
        _worker = _Worker()
    worker = _worker

    async def audit_on_reader() -> Found:
        if worker.conn is None or worker.snapshot != snapshot:
            if worker.reader is not None:
                await worker.reader.__aexit__(None, None, None)
            worker.reader, worker.snapshot = audit_repo.snapshot_reader(url, snapshot), snapshot
            worker.conn = await worker.reader.__aenter__()
        return await audit_on(worker.conn, part, max_faults)

    return worker.loop.run_until_complete(audit_on_reader())


async def audit(url: str, snapshot: str, part: Part, max_faults: int) -> Found:
    """Audit one part on a reader of ``snapshot`` of its own."""
    async with audit_repo.snapshot_reader(url, snapshot) as conn:
        return await audit_on(conn, part, max_faults)


async def audit_on(conn: Connection, part: Part, max_faults: int) -> Found:
    found = Found(part)
    if isinstance(part, Chains):
        await _chains(conn, part, found, max_faults)
    elif isinstance(part, Leaves):
        await _leaves(conn, part, found, max_faults)
    else:
        await _tree(conn, part, found, max_faults)
    return found


async def _chains(conn: Connection, part: Chains, found: Found, max_faults: int) -> None:
    heads = {r["id"]: r for r in await audit_repo.heads_in(conn, part.lo, part.hi)}
    ordered = sorted(heads)
    # Each range is streamed and checked as it arrives, so memory stays flat however long its batches; a
    # range that does not hold is read again row by row, to name what is wrong.
    ranges = bulk.batch_ranges(heads, part.lo, part.hi, 8 * audit_repo.CHUNK)
    unsure: list[tuple[int, int]] = []
    unnamed: list[tuple[int, int]] = []  # ranges with events naming a batch, node or device that does not exist
    nodes, devices = await audit_repo.known_ids(conn)
    for lo, hi in ranges:
        walk = bulk.ChainWalk([heads[k] for k in bulk.heads_between(ordered, lo, hi)], nodes, devices, chain.CHAIN_TAG)
        await audit_repo.copy_chains(conn, lo, hi, walk.feed)
        held = walk.holds()
        if held:
            found.events += walk.events
            found.batches += walk.batches
        else:
            unsure.append((lo, hi))
        if walk.unnamed or not held:  # an event of a batch that does not exist makes a range not hold
            unnamed.append((lo, hi))
    for lo, hi in sorted(unsure):
        if not await _chain_rows(
            conn, lo, hi, {k: heads[k] for k in bulk.heads_between(ordered, lo, hi)}, found, max_faults
        ):
            break
    for lo, hi in sorted(unnamed):
        for row in await audit_repo.orphans_in(conn, lo, hi, max_faults):
            missing = [w for w in ("batch", "node", "device") if row[f"no_{w}"]]
            found.faults.append(
                Fault(
                    "event",
                    f"{row['event_id']} (batch id {row['batch_id']} seq {row['seq']})",
                    f"names no existing {' or '.join(missing)}",
                )
            )
    del found.faults[max_faults:]


async def _along(
    ranges: list[tuple[int, int]], bundles: AsyncIterator[Record]
) -> AsyncIterator[tuple[tuple[int, int], Record]]:
    at = iter(ranges)
    async for bundle in bundles:
        yield next(at), bundle


async def _chain_rows(
    conn: Connection, lo: int, hi: int, heads: dict[int, Record], found: Found, max_faults: int
) -> bool:
    """The chains of batches ``lo <= id < hi`` row by row, naming the first broken link of each; False once
    ``max_faults`` faults are found."""
    faults = found.faults
    link = chain.link
    ends: dict[int, tuple[int, bytes]] = {}  # batch id -> (last seq, last hash) of each chain that held
    broken: set[int] = set()
    current: int | None = None
    code = ""
    expected_prev = b""
    expected_seq = 0
    skipping = False
    events = 0
    async with contextlib.aclosing(audit_repo.chain_chunks(conn, lo, hi)) as chunks:
        async for rows in chunks:
            events += len(rows)
            for batch_id, seq, prev, stored, data, private in rows:
                if batch_id != current:
                    if current is not None and not skipping:
                        ends[current] = (expected_seq - 1, expected_prev)
                    head = heads.get(batch_id)
                    code = head["trace_code"] if head is not None else f"(batch id {batch_id})"
                    start = head["chain_start"] if head is not None else None  # received from another ledger
                    current, expected_prev, expected_seq, skipping = batch_id, start or chain.genesis(code), 1, False
                    found.batches += 1
                if skipping:
                    continue
                reason = None
                if seq != expected_seq:
                    reason = f"sequence jumps from {expected_seq - 1} to {seq}"
                elif prev != expected_prev:
                    reason = "prev_hash does not match the previous event's hash"
                elif link(prev, data) != stored:
                    reason = "hash does not match the event's canonical bytes"
                elif (private is not None or b'"sealed":' in data) and not bulk.seal_holds(data, private):
                    reason = "the sealed commercial details do not match their seal"
                if reason is None:
                    expected_prev = stored
                    expected_seq += 1
                    continue
                skipping = True
                broken.add(batch_id)
                faults.append(Fault("chain", f"batch {code} seq {expected_seq}", reason))
                if len(faults) >= max_faults:
                    found.events += events
                    return False
    if current is not None and not skipping:
        ends[current] = (expected_seq - 1, expected_prev)
    found.events += events
    # A deleted last event leaves a chain that verifies on its own: the head still names it.
    for batch_id in sorted(heads):
        head = heads[batch_id]
        seq, head_hash = head["seq"], head["head_hash"]
        if seq is None or batch_id in broken:
            continue
        end = ends.get(batch_id)
        if end is None and seq > 0:
            faults.append(Fault("chain", f"batch {head['trace_code']} seq 1", "batch has no events"))
        elif end is not None and (end[0] != seq or end[1] != head_hash):
            faults.append(
                Fault(
                    "chain",
                    f"batch {head['trace_code']} seq {end[0] + 1}",
                    f"chain ends at seq {end[0]} but the batch head is at seq {seq}",
                )
            )
    return len(faults) < max_faults


async def _leaves(conn: Connection, part: Leaves, found: Found, max_faults: int) -> None:
    mismatched: list[tuple[int, int]] = []  # (leaf index, event key)
    forged: list[int] = []
    unlogged: list[int] = []
    prefix = b"\x00"  # RFC 9162 leaf hash: SHA-256(0x00 || the event's chain hash)
    width = 4 * audit_repo.CHUNK
    ranges = [(a, min(a + width, part.hi)) for a in range(part.lo, part.hi, width)]
    unsure: list[tuple[int, int]] = []
    async with contextlib.aclosing(audit_repo.leaf_event_bundles(conn, ranges, prefix)) as bundles:
        async for (lo, hi), bundle in _along(ranges, bundles):
            if bulk.leaves_hold(bundle, prefix):
                found.events += bundle["pairs"]
            else:
                unsure.append((lo, hi))
    for lo, hi in unsure:
        async with contextlib.aclosing(audit_repo.leaf_event_chunks(conn, lo, hi)) as chunks:
            async for rows in chunks:
                for pk, event_hash, _log, index, leaf in rows:
                    if index is None:
                        unlogged.append(pk)
                        continue
                    found.events += 1
                    if event_hash is None:
                        forged.append(index)
                    elif sha256(prefix + event_hash).digest() != leaf:
                        mismatched.append((index, pk))
        if len(forged) + len(mismatched) >= max_faults:
            break
    named = await audit_repo.events_by_pk(conn, [pk for _, pk in mismatched])
    faults = [Fault("leaf", f"index {i}", "names no recorded event (a forged leaf)") for i in forged]
    faults += [Fault("leaf", f"index {i}", f"does not match event {named[pk]['event_id']}") for i, pk in mismatched]
    if unlogged:  # normally only the last moment's events, still in the queue
        waiting = await audit_repo.queued(conn, unlogged)
        lost = [pk for pk in unlogged if pk not in waiting][:max_faults]
        named = await audit_repo.events_by_pk(conn, lost)
        faults += [
            Fault(
                "event",
                f"batch {named[pk]['trace_code']} seq {named[pk]['seq']}",
                f"event {named[pk]['event_id']} is neither in the log nor waiting to enter it",
            )
            for pk in lost
        ]
    found.faults = faults[:max_faults]


async def _tree(conn: Connection, part: Tree, found: Found, max_faults: int) -> None:
    faults = found.faults

    def fault(kind: str, where: str, reason: str) -> bool:
        faults.append(Fault(kind, where, reason))
        return len(faults) >= max_faults

    key = part.public_key
    if part.trusted_key is not None and part.trusted_key != key:
        fault("log", part.origin, "the key registered in the database is not the trusted signing key")
        key = part.trusted_key
    verifier = notes.parse_verifier_key(key)
    checkpoints = await log_repo.scan_checkpoints(conn, part.log_id)
    for cp in checkpoints:
        try:
            seen = notes.verify_checkpoint(cp["note"], verifier, origin=part.origin)
        except notes.NoteError as exc:
            fault("checkpoint", f"size {cp['size']}", f"signature or format: {exc}")
            continue
        if seen.size != cp["size"] or seen.root != cp["root"]:
            fault("checkpoint", f"size {cp['size']}", "the signed note does not match the stored size/root")
    head = await log_repo.get_head(conn, part.log_id)
    stops = sorted(s for s in {cp["size"] for cp in checkpoints} | {head["size"]} if s > 0)
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    tiles: dict[merkle.TileKey, bytes] = {}
    size = 0
    pending: list[bytes] = []
    full = merkle.TILE_WIDTH * merkle.HASH_SIZE
    digests: dict[merkle.TileKey, bytes] = {}  # every complete tile the leaves make, by its SHA-256
    uppers: dict[int, bytes] = {}  # every complete level-0 tile's upper rows, by their SHA-256

    def flush() -> None:
        nonlocal size, tiles
        if not pending:
            return
        size, _root, changed = merkle.append_hashes(size, tiles, b"".join(pending))
        pending.clear()
        digests.update((k, sha256(content).digest()) for k, content in changed.items() if len(content) == full)
        uppers.update((i, sha256(rows).digest()) for i, rows in merkle.completed_uppers(changed).items())
        keep = merkle.tiles_for_append(size)
        tiles = {k: v for k, v in {**tiles, **changed}.items() if k in keep}

    next_stop = iter(stops)
    stop = next(next_stop, None)
    expected = 0
    async with contextlib.aclosing(audit_repo.leaf_bundles(conn, part.log_id, 8 * audit_repo.CHUNK)) as bundles:
        async for bundle in bundles:
            leaves: bytes = bundle["hashes"]
            n = bundle["leaves"]
            gap = None
            if (counted := bulk.first_gap(bundle["indexes"], expected)) != n or len(bundle["indexes"]) != 8 * n:
                n = min(counted, n)
                gap, leaves = int.from_bytes(bundle["indexes"][8 * n : 8 * n + 8], "big"), leaves[: HASH * n]
            first, taken = expected, 0
            while stop is not None and stop <= first + n:
                pending.append(leaves[HASH * taken : HASH * (stop - first)])
                taken = stop - first
                flush()
                roots[stop] = merkle.root(stop, tiles)
                stop = next(next_stop, None)
            pending.append(leaves[HASH * taken :])
            expected = first + n
            if sum(map(len, pending)) >= HASH << 16:  # keep memory flat between checkpoints far apart
                flush()
            if gap is not None:
                fault("leaf", f"index {expected}", f"missing: the next stored leaf is {gap}")
                break
    flush()
    found.events = expected
    for cp in checkpoints:
        if cp["size"] not in roots:
            fault("checkpoint", f"size {cp['size']}", f"the log holds only {expected} leaves")
        elif roots[cp["size"]] != cp["root"]:
            fault("checkpoint", f"size {cp['size']}", "root does not match the leaves")
    if head["size"] != expected or roots.get(head["size"]) != head["root"]:
        fault("log", part.origin, f"head (size {head['size']}) does not match the {expected} leaves")
    async with contextlib.aclosing(audit_repo.tile_chunks(conn, part.log_id)) as chunks:
        async for rows in chunks:
            for level, idx, content, upper in rows:
                k = (level, idx)
                if len(content) == full:
                    if digests.pop(k, None) not in (None, sha256(content).digest()):
                        fault("tile", f"({level}, {idx})", "does not match the leaves")
                    elif upper is not None and uppers.pop(idx, None) not in (None, sha256(upper).digest()):
                        fault("tile", f"({level}, {idx})", "upper rows do not match the leaves")
                elif tiles.get(k, b"")[: len(content)] != content:
                    fault("tile", f"({level}, {idx})", "partial tile does not match the leaves")
    for level, idx in sorted(digests):  # complete tiles the leaves make that are not stored
        fault("tile", f"({level}, {idx})", "does not match the leaves")
    del found.faults[max_faults:]
