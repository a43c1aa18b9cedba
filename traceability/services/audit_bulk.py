"""The fast way through an audit part: many rows checked at once, from one row of concatenated columns.

A bundle (:mod:`traceability.storage.audit_repo`) stands for a range of rows: each column of theirs
concatenated in order, so that this process makes no object per row and every comparison is one
comparison of two byte strings. Each check here says only whether the whole range holds; when it does
not, the caller checks that range row by row (:mod:`traceability.services.audit_parts`), which names
the exact batch and seq, or leaf index. The database only hands over stored bytes: every hash is
computed and every comparison made here.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from hashlib import sha256
from itertools import accumulate, pairwise

from traceability.ledger import canonical, chain, sealed
from traceability.storage.database import Record

HASH = 32
SEALED = b'"sealed":'  # canonical bytes that carry a seal, whose opening the row-by-row check compares
_seqs = b""  # 1, 2, 3, ... as 4-byte big-endian integers, grown as needed


def _big_endian(data: bytes, code: str) -> array[int]:
    values = array(code)
    values.frombytes(data)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _counting(n: int) -> bytes:
    """1 .. n as 4-byte big-endian integers (PostgreSQL's int4send), concatenated."""
    global _seqs
    if len(_seqs) < 4 * n:
        values = array("i", range(1, 2 * n + 1))
        if sys.byteorder == "little":
            values.byteswap()
        _seqs = values.tobytes()
    return _seqs[: 4 * n]


def indexes(first: int, n: int) -> bytes:
    """``first .. first + n - 1`` as 8-byte big-endian integers (PostgreSQL's int8send), concatenated."""
    values = array("q", range(first, first + n))
    if sys.byteorder == "little":
        values.byteswap()
    return values.tobytes()


def first_gap(data: bytes, first: int) -> int:
    """Where the 8-byte big-endian integers ``data`` stop counting up from ``first`` (their number if never)."""
    values = _big_endian(data, "q")
    return next((k for k, v in enumerate(values) if v != first + k), len(values))


def batch_ranges(heads: Mapping[int, Record], lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """Ranges of batch ids ``[a, b)`` covering ``[lo, hi)``, each holding about ``size`` events by the heads."""
    ranges: list[tuple[int, int]] = []
    start, events = lo, 0
    for batch_id in sorted(heads):
        if events >= size and batch_id > start:
            ranges.append((start, batch_id))
            start, events = batch_id, 0
        events += heads[batch_id]["seq"] or 0
    if start < hi:
        ranges.append((start, hi))
    return ranges


def heads_between(ordered: Sequence[int], lo: int, hi: int) -> Sequence[int]:
    """The batch ids of ``ordered`` (sorted) with ``lo <= id < hi``."""
    return ordered[bisect_left(ordered, lo) : bisect_left(ordered, hi)]


def seal_holds(data: bytes, private: bytes | None) -> bool:
    """Whether an event's canonical bytes carry a seal and its stored opening matches it."""
    seal = canonical.decode(data).get("sealed")
    return isinstance(seal, str) and private is not None and sealed.matches(seal, private)


def events_between(heads: Mapping[int, Record], ordered: Sequence[int], lo: int, hi: int) -> int:
    """How many events the heads of batches ``lo <= id < hi`` say they have."""
    return sum(heads[k]["seq"] or 0 for k in heads_between(ordered, lo, hi))


def chains_hold(bundle: Record, heads: Sequence[Record], tag: bytes = chain.CHAIN_TAG) -> bool:
    """Whether the events of a bundle are exactly the chains of these batch heads: for each batch in id
    order, seqs 1 .. its head's seq, each linking to the one before (the first to its genesis or, for a
    batch received from another ledger, to where its chain starts here), each hash that of its link's
    bytes (``tag || prev || canonical``), the last one the head's hash; and every event that carries a seal
    or an opening, the one matching the other."""
    n = bundle["events"]
    if any(h["seq"] is None for h in heads) or n != sum(h["seq"] for h in heads):
        return False
    if n == 0:
        return True
    linked: bytes = bundle["linked"]
    hashes: bytes = bundle["hashes"]
    if len(hashes) != HASH * n:
        return False
    ids: list[bytes] = []
    seqs: list[bytes] = []
    prevs: list[bytes] = []
    starts: dict[bytes, tuple[int, int]] = {}  # batch id (8 bytes) -> (index of its first event, its last seq)
    at = 0
    for head in heads:
        seq = head["seq"]
        if not seq:
            continue
        ids.append(key := head["id"].to_bytes(8, "big"))
        ids[-1] *= seq
        starts[key] = (at, seq)
        seqs.append(_counting(seq))
        prevs += (head["chain_start"] or chain.genesis(head["trace_code"]), hashes[HASH * at : HASH * (at + seq - 1)])
        at += seq
        if hashes[HASH * (at - 1) : HASH * at] != head["head_hash"]:
            return False
    if b"".join(ids) != bundle["batch_ids"] or b"".join(seqs) != bundle["seqs"] or b"".join(prevs) != bundle["prevs"]:
        return False
    offsets = list(accumulate(_big_endian(bundle["lengths"], "i"), initial=0))
    view = memoryview(linked)
    sha = sha256
    if b"".join([sha(view[a:b]).digest() for a, b in pairwise(offsets)]) != hashes:
        return False
    return _seals_hold(bundle, linked, offsets, starts, len(tag) + HASH)


def _seals_hold(
    bundle: Record, linked: bytes, offsets: list[int], starts: dict[bytes, tuple[int, int]], skip: int
) -> bool:
    """Every event whose canonical bytes hold a seal, and every event with an opening, has both, matching.
    Events are found by index: sealed ones by searching the bundle's bytes, opened ones by batch and seq."""
    openings: dict[int, bytes] = {}
    for opening in bundle["openings"] or ():
        batch, seq = opening[:8], int.from_bytes(opening[8:12], "big")
        first, last = starts.get(batch, (0, 0))
        if not 1 <= seq <= last:
            return False
        openings[first + seq - 1] = opening[12:]
    todo = set(openings)
    found = linked.find(SEALED)
    while found >= 0:  # a match in a link's tag or prev hash costs only a needless check
        i = bisect_right(offsets, found) - 1
        todo.add(i)
        found = linked.find(SEALED, offsets[i + 1])
    return all(seal_holds(linked[offsets[i] + skip : offsets[i + 1]], openings.get(i)) for i in todo)


def leaves_hold(bundle: Record, prefix: bytes) -> bool:
    """Whether every event of a bundle has a leaf and every leaf an event, each leaf hash that of its event's
    hash after ``prefix`` (RFC 9162's 0x00)."""
    n = bundle["pairs"]
    hashed: bytes = bundle["hashed"] or b""
    leaves: bytes = bundle["leaves"] or b""
    width = len(prefix) + HASH
    if len(hashed) != width * n or len(leaves) != HASH * n:
        return False
    view = memoryview(hashed)
    sha = sha256
    return b"".join([sha(view[i : i + width]).digest() for i in range(0, len(hashed), width)]) == leaves
