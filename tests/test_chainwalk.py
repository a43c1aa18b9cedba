"""The compiled chain walker (traceability/_chainwalk.c) gives the verdicts of the Python one.

Both walk the same binary COPY stream (the rows of ``audit_repo.CHAIN_COPY``), cut into pieces at random
places, for intact chains and for every kind of tampering the audit is meant to catch; they must agree on
whether the range holds and on what they counted. tests/test_verify.py runs the same comparison on the
streams PostgreSQL sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.ledger import canonical, chain, sealed, tile_levels
from traceability.services import audit_bulk

HEAD = struct.Struct(">hiqiii32si32siq")
NODES, DEVICES = [3, 5, 8], [2, 40]  # the ids that exist


@dataclass(frozen=True)
class Row:
    batch: int
    seq: int
    stored: bytes
    prev: bytes
    data: bytes  # the event's canonical bytes
    private: bytes | None = None
    node: int = 5
    device: int | None = 40

    @property
    def unnamed(self) -> bool:
        return self.node not in NODES or (self.device is not None and self.device not in DEVICES)


def nullable(value: bytes | None) -> bytes:
    """A field's length and value (-1 and nothing for NULL)."""
    return struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value


def row_bytes(r: Row) -> bytes:
    fields = (8, 8, r.batch, 4, r.seq, 32, r.stored, 32, r.prev, 8, r.node)
    device = None if r.device is None else struct.pack(">q", r.device)
    return HEAD.pack(*fields) + nullable(device) + nullable(r.data) + nullable(r.private)


def ids(values: list[int]) -> bytes:
    return b"".join(struct.pack(">q", v) for v in sorted(values))


def stream(rows: list[Row]) -> bytes:
    """The binary COPY stream PostgreSQL sends for these rows."""
    return audit_bulk.COPY_HEADER + b"".join(row_bytes(r) for r in rows) + audit_bulk.COPY_TRAILER


def ledger(
    sizes: list[int], sealed_at: set[tuple[int, int]], foreign: set[int]
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Intact chains: batch ``i`` (id ``10 + 3 i``) holds ``sizes[i]`` events; ``sealed_at`` (batch index, seq)
    carry a seal and its opening; batches in ``foreign`` were received from another ledger."""
    rows: list[Row] = []
    heads: list[dict[str, Any]] = []
    for i, n in enumerate(sizes):
        batch, code = 10 + 3 * i, f"CODE{i:04d}"
        start = chain.link(b"\x01" * 32, b"elsewhere") if i in foreign else None
        prev = start or chain.genesis(code)
        for seq in range(1, n + 1):
            event: dict[str, Any] = {"batch": code, "seq": seq, "step": "shipping" * (seq % 5)}
            private = None
            if (i, seq) in sealed_at:
                event["sealed"], private = sealed.seal(canonical.encode({"unit_price": seq}), bytes(16))
            data = canonical.encode(event)
            stored = chain.link(prev, data)
            rows.append(Row(batch, seq, stored, prev, data, private))
            prev = stored
        heads.append({"id": batch, "trace_code": code, "seq": n, "head_hash": prev, "chain_start": start})
    return rows, heads


def walk(data: bytes, heads: list[dict[str, Any]], cuts: list[int], compiled: bool) -> tuple[bool, int, int, int]:
    walker = audit_bulk.ChainWalk(heads, ids(NODES), ids(DEVICES), chain.CHAIN_TAG, compiled=compiled)

    async def feed() -> None:
        at = 0
        for cut in [*sorted(set(cuts)), len(data)]:
            if at < cut <= len(data):
                await walker.feed(data[at:cut])
                at = cut

    asyncio.run(feed())
    return walker.holds(), walker.events, walker.batches, walker.unnamed


def both(data: bytes, heads: list[dict[str, Any]], cuts: list[int]) -> tuple[bool, int, int, int]:
    """The verdict of both walkers, which must agree; what they counted must agree too when the range holds
    (the audit reads the counts of a range that holds only: one that does not is read again row by row)."""
    fast, slow = walk(data, heads, cuts, True), walk(data, heads, cuts, False)
    assert fast[0] == slow[0]
    assert not fast[0] or fast == slow
    return fast


def test_the_compiled_walker_is_built() -> None:
    """`make install` compiles it; without it the audit is correct but slower than its goal."""
    assert audit_bulk.compiled_walk is not None


def with_row(rows: list[Row], k: int, **changes: Any) -> list[Row]:
    return [*rows[:k], replace(rows[k], **changes), *rows[k + 1 :]]


def rehashed(rows: list[Row], k: int, data: bytes) -> list[Row]:
    """Event ``k`` rewritten with its hash recomputed (the next event still links to the old one)."""
    return with_row(rows, k, data=data, stored=chain.link(rows[k].prev, data))


TAMPERING = [
    "none",
    "byte",  # any one byte of the stream changed
    "canonical",
    "rehashed",
    "deleted",
    "swapped",
    "prev",
    "unnamed node",
    "unnamed device",
    "no device",
    "opening longer",
    "opening shorter",
    "opening gone",
    "seal nested",
    "head seq",
    "head hash",
    "head hash short",
    "no head",
    "extra head",
    "truncated",
]


@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    sealed_rows=st.sets(st.tuples(st.integers(0, 5), st.integers(1, 9)), max_size=4),
    foreign=st.sets(st.integers(0, 5), max_size=2),
    kind=st.sampled_from(TAMPERING),
    where=st.integers(0, 10**6),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
)
def test_both_walkers_agree(
    sizes: list[int], sealed_rows: set[tuple[int, int]], foreign: set[int], kind: str, where: int, cuts: list[int]
) -> None:
    rows, heads = ledger(sizes, sealed_rows, foreign)
    k = where % len(rows)
    r = rows[k]
    h = where % len(heads)
    data = b""
    if kind == "canonical":
        rows = with_row(rows, k, data=r.data[:-1] + b" ")
    elif kind == "rehashed":
        rows = rehashed(rows, k, r.data.replace(b"shipping", b"shopping") + b" ")
    elif kind == "deleted":
        rows = [*rows[:k], *rows[k + 1 :]]
    elif kind == "swapped" and k + 1 < len(rows):
        rows = [*rows[:k], replace(rows[k + 1], seq=r.seq), replace(r, seq=rows[k + 1].seq), *rows[k + 2 :]]
    elif kind == "prev":
        rows = with_row(rows, k, prev=r.stored)
    elif kind == "unnamed node":
        rows = with_row(rows, k, node=4)
    elif kind == "unnamed device":
        rows = with_row(rows, k, device=-40)
    elif kind == "no device":
        rows = with_row(rows, k, device=None)
    elif kind == "opening longer" and r.private is not None:
        rows = with_row(rows, k, private=r.private + b"\x00")
    elif kind == "opening shorter" and r.private is not None:
        rows = with_row(rows, k, private=r.private[:-1])
    elif kind == "opening gone":
        rows = with_row(rows, k, private=None)
    elif kind == "seal nested":  # a "sealed": key inside, with no opening
        rows = rehashed(rows, k, canonical.encode({"inner": {"sealed": "00"}, "seq": r.seq}))
    elif kind == "head seq":
        heads[h] = {**heads[h], "seq": heads[h]["seq"] - 1}
    elif kind == "head hash":
        heads[h] = {**heads[h], "head_hash": bytes(32)}
    elif kind == "head hash short":  # the compiled walk takes heads of 32-byte hashes only
        heads[h] = {**heads[h], "head_hash": heads[h]["head_hash"][:31]}
    elif kind == "no head":
        heads[h] = {**heads[h], "seq": None}
    elif kind == "extra head":
        heads.append({"id": 10**6, "trace_code": "EXTRA", "seq": 1, "head_hash": bytes(32), "chain_start": None})
    data = stream(rows)
    if kind == "byte":
        at = where % len(data)
        data = data[:at] + bytes([data[at] ^ (1 + where % 255)]) + data[at + 1 :]
    elif kind == "truncated":
        data = data[: where % len(data)]
    held, events, batches, unnamed = both(data, heads, cuts)
    if kind == "none":
        assert (held, events, batches, unnamed) == (True, sum(sizes), len(sizes), 0)
    elif kind in (
        "canonical",
        "rehashed",
        "deleted",
        "prev",
        "seal nested",
        "head hash",
        "head hash short",
        "no head",
        "extra head",
    ):
        assert not held
    elif kind in ("unnamed node", "unnamed device"):
        assert held and unnamed == 1
    elif kind == "no device":
        assert held and unnamed == 0


@pytest.mark.parametrize("opening", [None, b"", b"\x00" * 40])
def test_a_row_with_an_opening_is_taken_by_python(opening: bytes | None) -> None:
    """An opening in any row of a long chain (including an empty one) is checked against its seal."""
    rows, heads = ledger([30], set(), set())
    rows = with_row(rows, 12, private=opening)
    assert both(stream(rows), heads, [])[0] is (opening is None)


def test_rows_naming_nothing_are_counted() -> None:
    """Events naming a node or device that does not exist hold as links, and are counted to be named later."""
    rows, heads = ledger([30, 5], set(), set())
    for k, node, device in ((0, 9, 40), (7, 3, 41), (8, 0, None), (31, 2**62, 2)):
        rows = with_row(rows, k, node=node, device=device)
    rows = with_row(rows, 9, device=None)  # an event without a device names none
    assert both(stream(rows), heads, [1000]) == (True, 35, 2, 4)


@given(
    hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=20),
    kind=st.sampled_from(["none", "leaf byte", "event byte", "leaf missing", "event missing", "event short"]),
    where=st.integers(0, 10**6),
)
def test_both_leaf_checks_agree(hashes: list[bytes], kind: str, where: int) -> None:
    """A bundle of events' chain hashes (each after the prefix) against their leaves, compiled and in Python."""
    prefix = b"\x00"
    hashed = b"".join(prefix + h for h in hashes)
    leaves = b"".join(merkle_leaf(prefix + h) for h in hashes)
    n = len(hashes)
    if kind == "leaf byte" and leaves:
        at = where % len(leaves)
        leaves = leaves[:at] + bytes([leaves[at] ^ 1]) + leaves[at + 1 :]
    elif kind == "event byte" and hashed:
        at = where % len(hashed)
        hashed = hashed[:at] + bytes([hashed[at] ^ 0x80]) + hashed[at + 1 :]
    elif kind == "leaf missing" and n:
        leaves = leaves[32:]
    elif kind == "event missing" and n:
        hashed = hashed[33:]
    elif kind == "event short" and n:
        hashed = hashed[:-1]
    bundle = {"pairs": n, "hashed": hashed or None, "leaves": leaves or None}
    fast = audit_bulk.leaves_hold(bundle, prefix)
    assert fast == audit_bulk.leaves_hold(bundle, prefix, compiled=False)
    assert fast is (kind == "none" or n == 0)


def merkle_leaf(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@given(hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_both_node_rows_agree(hashes: list[bytes]) -> None:
    """The node hashes above a row of a tile (an odd last hash left out), compiled and in Python."""
    row = b"".join(hashes)
    assert tile_levels.node_row is not tile_levels.python_node_row
    expected = b"".join(
        hashlib.sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest() for i in range(0, len(hashes) - 1, 2)
    )
    assert tile_levels.node_row(row) == tile_levels.python_node_row(row) == expected


@pytest.mark.parametrize("k", [0, 1, 12, 29])
def test_a_seal_without_its_opening_does_not_hold(k: int) -> None:
    """Canonical bytes that carry a seal (even one nested deeper) need an opening, wherever the row is; the
    chain is otherwise whole (rehashed from the changed row on, the head with it)."""
    for key, holds in (("sealer", True), ("sealed", False)):
        rows, heads = ledger([30], set(), set())
        rows = relinked(with_row(rows, k, data=canonical.encode({"inner": {key: "00"}, "seq": k + 1})))
        heads[0]["head_hash"] = rows[-1].stored
        assert both(stream(rows), heads, [])[0] is holds


def relinked(rows: list[Row]) -> list[Row]:
    """The chain rehashed from its first row on, so that every link holds whatever the rows' bytes."""
    out: list[Row] = []
    for r in rows:
        prev = out[-1].stored if out and out[-1].batch == r.batch else r.prev
        out.append(replace(r, prev=prev, stored=chain.link(prev, r.data)))
    return out


@given(
    first=st.integers(-(2**40), 2**40),
    n=st.integers(0, 60),
    at=st.integers(0, 70),
    value=st.integers(-(2**63), 2**63 - 1),
)
def test_both_gap_finders_agree(first: int, n: int, at: int, value: int) -> None:
    """Where a log's leaf indexes (8-byte big-endian integers) stop counting up, compiled and in Python."""
    data = audit_bulk.indexes(first, n)
    if at < n:
        data = data[: 8 * at] + value.to_bytes(8, "big", signed=True) + data[8 * at + 8 :]
    found = audit_bulk.first_gap(data, first)
    assert found == audit_bulk.first_gap(data, first, compiled=False)
    assert found == (at if at < n and value != first + at else n)


@given(at=st.integers(0, 255), group=st.binary(min_size=512, max_size=512), upper=st.binary(min_size=960, max_size=960))
def test_both_paths_within_a_tile_agree(at: int, group: bytes, upper: bytes) -> None:
    """A full tile's leaf's proof inside the tile from its group and the tile's upper rows, compiled and in Python."""
    assert tile_levels.path_within is not tile_levels.python_path_within
    assert tile_levels.path_within(at, group, upper) == tile_levels.python_path_within(at, group, upper)


@pytest.mark.parametrize("at, group, upper", [(256, 512, 960), (-1, 512, 960), (3, 480, 960), (3, 512, 928)])
def test_both_paths_within_refuse_what_is_not_a_full_tile(at: int, group: int, upper: int) -> None:
    for path_within in (tile_levels.path_within, tile_levels.python_path_within):
        with pytest.raises(ValueError, match="a leaf offset in 0-255"):
            path_within(at, bytes(group), bytes(upper))
