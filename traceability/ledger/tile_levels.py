"""The node hashes between a tile's stored levels (c2sp.org/tlog-tiles stores every eighth tree level).

A proof reads nodes at the levels a tile does not store: they are the RFC 9162 node hashes
``SHA-256(0x01 || left || right)`` of the rows below, up to the tile's root. Computing them costs 255
hashes for a full tile, so they are kept: with the tile itself (:class:`Tile`), by whoever keeps
tiles between computations, or in a :class:`LevelCache` keyed by the tile's content.
"""

from __future__ import annotations

from collections import OrderedDict
from hashlib import sha256

HASH_SIZE = 32
NODE_PREFIX = b"\x01"  # RFC 9162 section 2.1.1
TILE_HEIGHT = 8
GROUP_HEIGHT = 4
"""A proof inside a full tile is computed from its leaf's group of ``2**GROUP_HEIGHT`` stored hashes and
the tile's upper rows (:func:`upper_rows`): 11 node hashes instead of the tile's 255."""
GROUP_BYTES = HASH_SIZE << GROUP_HEIGHT
UPPER_BYTES = HASH_SIZE * ((2 << (TILE_HEIGHT - GROUP_HEIGHT)) - 2)
"""The rows of a full tile from ``GROUP_HEIGHT`` up to its root's children: 16 + 8 + 4 + 2 hashes."""


def python_node_row(row: bytes) -> bytes:
    """The node hashes of each whole pair of hashes in ``row``, concatenated (an odd last hash is left out)."""
    whole = len(row) - len(row) % (2 * HASH_SIZE)
    return b"".join([sha256(NODE_PREFIX + row[i : i + 64]).digest() for i in range(0, whole, 64)])


try:  # the same loop compiled (traceability/_chainwalk.c), where the install could build it
    from traceability._chainwalk import node_row
except ImportError:  # pragma: no cover - the Python loop gives the same bytes, more slowly
    node_row = python_node_row


def _levels_of(tile: bytes) -> list[bytes]:
    """``levels[k]`` is the row of node hashes ``k`` levels above the tile's stored hashes."""
    rows = [tile]
    while len(rows[-1]) >= 2 * HASH_SIZE:
        # A partial row's odd last hash has no sibling yet: only complete subtrees are ever read.
        rows.append(node_row(rows[-1]))
    return rows


def _reduce(hashes: bytes) -> bytes:
    """The root of a perfect subtree given its bottom row of hashes (a power of two of them)."""
    while len(hashes) > HASH_SIZE:
        hashes = node_row(hashes)
    return hashes


def upper_rows(levels: list[bytes]) -> bytes:
    """A full tile's rows from ``GROUP_HEIGHT`` to just below its root, concatenated (``UPPER_BYTES``), from
    its levels: with them and a leaf's group, :func:`path_within` needs no other hash of the tile."""
    if len(levels) != TILE_HEIGHT + 1 or len(levels[0]) != HASH_SIZE << TILE_HEIGHT:
        raise ValueError("upper rows are kept for full tiles only")
    return b"".join(levels[GROUP_HEIGHT:TILE_HEIGHT])


def python_path_within(at: int, group: bytes, upper: bytes) -> list[bytes]:
    """The 8 hashes of the inclusion proof of the leaf at offset ``at`` (0-255) of a full tile, from the
    ``2**GROUP_HEIGHT`` stored hashes of its aligned group (``GROUP_BYTES``) and the tile's
    :func:`upper_rows`; the same as reading them from the tile's levels."""
    if len(group) != GROUP_BYTES or len(upper) != UPPER_BYTES or not 0 <= at < 1 << TILE_HEIGHT:
        raise ValueError("a leaf offset in 0-255, a group of 16 hashes and a tile's 30 upper hashes are needed")
    path = []
    inside = at & ((1 << GROUP_HEIGHT) - 1)
    for height in range(GROUP_HEIGHT):  # the sibling subtree's leaves are in the group: reduce them
        first = ((inside >> height) ^ 1) << height
        path.append(_reduce(group[first * HASH_SIZE : (first + (1 << height)) * HASH_SIZE]))
    row = 0  # where the row of the current height starts in ``upper``
    for height in range(GROUP_HEIGHT, TILE_HEIGHT):
        sibling = row + ((at >> height) ^ 1) * HASH_SIZE
        path.append(upper[sibling : sibling + HASH_SIZE])
        row += HASH_SIZE << (TILE_HEIGHT - height)
    return path


try:  # the same computed (traceability/_chainwalk.c): every proof of a full tile's leaf takes this path
    from traceability._chainwalk import path_within as path_within
except ImportError:  # pragma: no cover - the Python function gives the same hashes, more slowly
    path_within = python_path_within


class Tile(bytes):
    """A tile's bytes that keep the node hashes between its stored levels once they are computed.

    Whoever keeps tiles between computations (a proof server's cache) keeps them as ``Tile`` and
    pays for each tile's 255 interior hashes once; plain ``bytes`` are looked up in a small cache
    keyed by their content instead. Holds at most about twice the tile's size.
    """

    _levels: list[bytes]  # in the instance's __dict__: a bytes subclass cannot have slots

    def levels(self) -> list[bytes]:
        try:
            return self._levels
        except AttributeError:
            self._levels = _levels_of(bytes(self))
            return self._levels


def upper_of(tile: bytes) -> bytes:
    """The :func:`upper_rows` of a full tile (a :class:`Tile` computes its levels once for this and the rest)."""
    return upper_rows(tile.levels() if isinstance(tile, Tile) else _levels_of(tile))


class LevelCache:
    """The internal levels of plain-bytes tiles: a proof's upper tiles and the right edge are the same
    for nearly every proof, so each tile's node hashes are computed once. Keyed by SHA-256 of the
    tile's bytes, so two trees (or two widths of a growing tile) never share an entry; bounded by
    ``budget`` bytes (a full tile with its levels holds about 16 KB), least recently used first out."""

    def __init__(self, budget: int = 4 << 20) -> None:
        self.budget = budget
        self.used = 0
        self._levels: OrderedDict[bytes, list[bytes]] = OrderedDict()

    def levels(self, tile: bytes) -> list[bytes]:
        """``levels[k]`` is the row of node hashes ``k`` levels above the tile's stored hashes."""
        if isinstance(tile, Tile):
            return tile.levels()
        key = sha256(tile).digest()
        found = self._levels.get(key)
        if found is not None:
            self._levels.move_to_end(key)
            return found
        rows = _levels_of(tile)
        self._levels[key] = rows
        self.used += _footprint(rows)
        while self.used > self.budget and self._levels:
            self.used -= _footprint(self._levels.popitem(last=False)[1])
        return rows


def _footprint(rows: list[bytes]) -> int:
    return sum(len(r) for r in rows)
