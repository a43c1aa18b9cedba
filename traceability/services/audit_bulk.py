"""The fast way through an audit part: whole ranges of rows checked at once.

Chains are streamed from PostgreSQL as binary COPY rows (:mod:`traceability.storage.audit_repo`) and
checked in one tight loop as they arrive (:class:`ChainWalk`); leaves come as bundles, one row of
concatenated columns standing for many rows, so that every comparison is one comparison of two byte
strings. Each check here says only whether the whole range holds; when it does not, the caller checks
that range row by row (:mod:`traceability.services.audit_parts`), which names the exact batch and seq,
or leaf index. The database only hands over stored bytes: every hash is computed and every comparison
made here. The per-row loops run compiled (traceability/_chainwalk.c) where the install could build it,
and in Python otherwise; tests/test_chainwalk.py holds the two to the same verdicts.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256

from traceability.ledger import canonical, chain, sealed
from traceability.storage.database import Record

Walk = Callable[[bytes, int, bytes, bytes, int, int, bytes, bytes, bytes], tuple[int, int, int, bytes, int, int, int]]
compiled_walk: Walk | None
compiled_digests: Callable[[bytes, int, bytes], bool] | None
compiled_counts_up: Callable[[bytes, int], int] | None
try:  # the compiled inner loops (traceability/_chainwalk.c), built by the install where a C compiler is at hand
    from traceability._chainwalk import counts_up as compiled_counts_up
    from traceability._chainwalk import digests_are as compiled_digests
    from traceability._chainwalk import walk as compiled_walk
except ImportError:  # pragma: no cover - the Python loops here give the same verdicts, more slowly
    compiled_walk = compiled_digests = compiled_counts_up = None

HASH = 32
SEALED = b'"sealed":'  # canonical bytes that carry a seal, whose opening the row-by-row check compares


def _big_endian(data: bytes, code: str) -> array[int]:
    values = array(code)
    values.frombytes(data)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def indexes(first: int, n: int) -> bytes:
    """``first .. first + n - 1`` as 8-byte big-endian integers (PostgreSQL's int8send), concatenated."""
    values = array("q", range(first, first + n))
    if sys.byteorder == "little":
        values.byteswap()
    return values.tobytes()


def first_gap(data: bytes, first: int, compiled: bool = True) -> int:
    """Where the 8-byte big-endian integers ``data`` stop counting up from ``first`` (their number if never)."""
    if compiled and compiled_counts_up is not None:
        return compiled_counts_up(data, first)
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


COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # binary COPY's signature, no flags, no header extension
COPY_TRAILER = b"\xff\xff"
# A row of ``audit_repo.CHAIN_COPY``: its field count, then each field's length (-1 for NULL) and value, up to
# the device's length; the device (unless NULL), the canonical bytes and the opening (unless NULL) follow.
_HEAD = struct.Struct(">hiqiii32si32siqi")
_FIXED = (8, 8, 4, 32, 32, 8)  # the field count and the lengths of the fixed-size fields
_INT4 = struct.Struct(">i")
_INT8 = struct.Struct(">q")
_HEAD_PACKED = struct.Struct(">qq32s32s")  # a head for the compiled walk: id, seq, head hash, where its chain starts

Row = tuple[int, int, bytes, bytes, int, int | None, int, int, bytes | None, int]


def _row(data: bytes, pos: int, end: int) -> Row | None:
    """The row at ``data[pos:end]``: batch, seq, hash, prev hash, node, device, where its canonical bytes start
    and stop, its opening and where the next row starts; None when it is not all here. ValueError when it is
    not a row of ``CHAIN_COPY``."""
    if pos + _HEAD.size > end:
        return None
    nf, l1, batch, l2, seq, l3, stored, l4, prev, l5, node, device_length = _HEAD.unpack_from(data, pos)
    if (nf, l1, l2, l3, l4, l5) != _FIXED or device_length not in (8, -1):
        raise ValueError("not a row of the chain stream")
    at = pos + _HEAD.size
    device = None
    if device_length == 8:
        if at + 8 > end:
            return None
        device, at = _INT8.unpack_from(data, at)[0], at + 8
    if at + 4 > end:
        return None
    size = _INT4.unpack_from(data, at)[0]
    start, at = at + 4, at + 4 + size
    if size < 0:
        raise ValueError("canonical bytes of negative length")
    if at + 4 > end:
        return None
    opening_length = _INT4.unpack_from(data, at)[0]
    at += 4
    opening = None
    if opening_length >= 0:
        if at + opening_length > end:
            return None
        opening, at = bytes(data[at : at + opening_length]), at + opening_length
    elif opening_length != -1:
        raise ValueError("an opening of negative length")
    return batch, seq, stored, prev, node, device, start, start + size, opening, at


def _ids(data: bytes) -> set[int]:
    return set(_big_endian(data, "q"))


class ChainWalk:
    """Whether the events of a range of batches, streamed in chain order as binary COPY rows (see
    ``audit_repo.CHAIN_COPY``), are exactly the chains of these batch heads: for each batch in id order,
    seqs 1 .. its head's seq, each linking to the one before (the first to its genesis or, for a batch
    received from another ledger, to where its chain starts here), each hash that of its link's bytes
    (``tag || prev || canonical``), the last one the head's hash; and every event that carries a seal or
    an opening, the one matching the other. Checked row by row as the data arrives (``feed``), so nothing
    is held but what PostgreSQL sent last; after the last row, ``holds()`` says whether the whole range held.
    ``unnamed`` counts the events naming a node or device not among ``nodes`` and ``devices`` (the ids that
    exist, ascending, as 8-byte big-endian integers: ``audit_repo.known_ids``).
    """

    def __init__(
        self,
        heads: Sequence[Record],
        nodes: bytes,
        devices: bytes,
        tag: bytes = chain.CHAIN_TAG,
        compiled: bool = True,
    ) -> None:
        self.ok = all(h["seq"] is not None for h in heads)
        self.order = [h for h in heads if h["seq"]]
        self.starts = [h["chain_start"] or chain.genesis(h["trace_code"]) for h in self.order]
        self.at = -1  # the head whose chain is being walked
        self.head: Record | None = None
        self.tag = tag
        self.nodes, self.devices = bytes(nodes), bytes(devices)
        self.node_ids, self.device_ids = _ids(self.nodes), _ids(self.devices)
        self.seq = 0  # the seq and prev hash the next row must have
        self.prev = b""
        self.events = 0
        self.batches = 0
        self.unnamed = 0
        self.started = False
        self.rest = b""
        # Takes the ordinary rows (see traceability/_chainwalk.c); the loop in ``feed`` takes the others: those
        # with an opening, and any that does not hold.
        self.walk = compiled_walk if compiled else None
        self.packed = b"".join(
            _HEAD_PACKED.pack(h["id"], h["seq"], h["head_hash"], start)
            for h, start in zip(self.order, self.starts, strict=True)
        )
        if any(len(h["head_hash"]) != HASH or len(s) != HASH for h, s in zip(self.order, self.starts, strict=True)):
            self.walk = None  # a hash of another length holds for no row: the loop in ``feed`` says so

    def _next_batch(self, batch: int) -> bool:
        """Close the current batch at its head and open ``batch``, which must be the next head's."""
        if self.head is not None and (self.seq - 1 != self.head["seq"] or self.prev != self.head["head_hash"]):
            return False
        if self.at + 1 >= len(self.order) or self.order[self.at + 1]["id"] != batch:
            return False
        self.at += 1
        self.head = self.order[self.at]
        self.seq, self.prev = 1, self.starts[self.at]
        self.batches += 1
        return True

    async def feed(self, data: bytes) -> None:
        """Check the next rows (an ``output`` for asyncpg's ``copy_from_query``)."""
        if not self.ok:
            return
        if self.rest:
            data, self.rest = self.rest + data, b""
        pos = 0
        if not self.started:
            if len(data) < len(COPY_HEADER):
                self.rest = data
                return
            if not data.startswith(COPY_HEADER):
                self.ok = False
                return
            pos, self.started = len(COPY_HEADER), True
        view = memoryview(data)
        end = len(data)
        tag, nodes, devices, packed, sha = self.tag, self.nodes, self.devices, self.packed, sha256
        seq_next, prev_next, events = self.seq, self.prev, self.events
        current = -1 if self.head is None else self.head["id"]
        walk = self.walk
        while True:
            if walk is not None:
                pos, at, seq_next, prev_next, taken, opened, unnamed = walk(
                    data, pos, tag, packed, self.at, seq_next, prev_next, nodes, devices
                )
                if at != self.at:
                    self.at, self.head = at, self.order[at]
                    current = self.head["id"]
                events += taken
                self.batches += opened
                self.unnamed += unnamed
            try:
                row = _row(data, pos, end)
            except ValueError:
                self.ok = False
                return
            if row is None:
                break
            batch, seq, stored, prev, node, device, start, stop, opening, pos = row
            if batch != current:
                self.seq, self.prev = seq_next, prev_next
                if not self._next_batch(batch):
                    self.ok = False
                    return
                current, seq_next, prev_next = batch, self.seq, self.prev
            canonical = view[start:stop]
            digest = sha(tag)
            digest.update(prev)
            digest.update(canonical)
            if seq != seq_next or prev != prev_next or digest.digest() != stored:
                self.ok = False
                return
            sealed = data.find(SEALED, start, stop) >= 0
            if (opening is not None or sealed) and (opening is None or not seal_holds(bytes(canonical), opening)):
                self.ok = False  # an opening needs its seal, and a seal its opening
                return
            if node not in self.node_ids or (device is not None and device not in self.device_ids):
                self.unnamed += 1
            prev_next = stored
            seq_next += 1
            events += 1
        self.seq, self.prev, self.events = seq_next, prev_next, events
        self.rest = data[pos:]

    def holds(self) -> bool:
        """Whether every row came, each held, and every head was reached."""
        if not (self.ok and self.started and self.rest == COPY_TRAILER):
            return False
        head = self.head
        if head is not None and (self.seq - 1 != head["seq"] or self.prev != head["head_hash"]):
            return False
        return self.at + 1 == len(self.order)


def leaves_hold(bundle: Record, prefix: bytes, compiled: bool = True) -> bool:
    """Whether every event of a bundle has a leaf and every leaf an event, each leaf hash that of its event's
    hash after ``prefix`` (RFC 9162's 0x00)."""
    n = bundle["pairs"]
    hashed: bytes = bundle["hashed"] or b""
    leaves: bytes = bundle["leaves"] or b""
    width = len(prefix) + HASH
    if len(hashed) != width * n or len(leaves) != HASH * n:
        return False
    if compiled and compiled_digests is not None:
        return compiled_digests(hashed, width, leaves)
    view = memoryview(hashed)
    sha = sha256
    return b"".join([sha(view[i : i + width]).digest() for i in range(0, len(hashed), width)]) == leaves
