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


def _levels_of(tile: bytes) -> list[bytes]:
    """``levels[k]`` is the row of node hashes ``k`` levels above the tile's stored hashes."""
    rows = [tile]
    while len(rows[-1]) >= 2 * HASH_SIZE:
        row = rows[-1]
        # A partial row's odd last hash has no sibling yet: only complete subtrees are ever read.
        whole = len(row) - len(row) % (2 * HASH_SIZE)
        rows.append(b"".join([sha256(NODE_PREFIX + row[i : i + 64]).digest() for i in range(0, whole, 64)]))
    return rows


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
