"""RFC 9162 Merkle tree hashing, proofs and appends over C2SP tlog-tiles, as pure functions on bytes.

Hashing (RFC 9162 section 2.1.1, the same as RFC 6962)::

    leaf hash  = SHA-256(0x00 || leaf data)          leaf data = the 32-byte event chain hash
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")                          root of the empty tree
    MTH(D[n])  = node hash(MTH(D[0:k]), MTH(D[k:n]))  k = largest power of two < n

Storage (c2sp.org/tlog-tiles, tile height 8): tile ``(L, N)`` holds the hashes stored at tree level
``8*L`` with indexes ``N*256 .. N*256+w-1``, concatenated, 32 bytes each. Level 0 holds the leaf
hashes, level 8 the roots of complete 256-leaf subtrees, and so on; the levels in between are
recomputed from the tile below them when needed. A right-edge tile is partial (``w < 256``) and is
rewritten as it grows; a full tile never changes. That costs about 32.2 bytes of storage per leaf
and nothing in memory between calls.

Every operation takes two pure steps, so storage can fetch everything in one query:

1. ``tiles_for_inclusion``, ``tiles_for_consistency``, ``tiles_for_root`` or ``tiles_for_append``
   says which tiles are needed, as a set of ``(level, index)`` keys (O(log n) of them);
2. ``inclusion_proof``, ``consistency_proof``, ``root`` or ``append`` computes the answer from a
   ``Mapping[(level, index)] -> bytes`` holding those tiles.

A tile may be given wider than needed (a partial tile that has grown since, or the full tile):
stored hashes never change, so only the needed prefix is read.

Roots are computed by pymerkle's tree algorithms, over a read-only pymerkle tree whose subtree
roots are read from the tiles. Proofs are built here, straight from RFC 9162's ranges: consistency
proofs because pymerkle's are not in RFC 9162 form, inclusion proofs because a proof server makes
thousands a second and pymerkle's walk costs as much as the hashing (the tests check both against
pymerkle and the RFC). Checking proofs is :mod:`traceability.ledger.proofs`.

Exceptions::

    MerkleError (ValueError)    bad arguments, e.g. a leaf index outside the tree
     ├── TileError              a needed tile is missing or holds too few (or, for append, too many) hashes
     └── InvalidProofError      a proof does not verify; the message says which check failed
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pymerkle import BaseMerkleTree
from pymerkle.hasher import MerkleHasher

from traceability.ledger.tile_levels import NODE_PREFIX, LevelCache, Tile, upper_of

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "InvalidProofError",
    "MerkleError",
    "Tile",
    "TileError",
    "TileKey",
    "Tiles",
    "append",
    "append_hashes",
    "completed_uppers",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proof_above",
    "inclusion_proof_within",
    "leaf_hash",
    "node_hash",
    "root",
    "tile_width",
    "tiles_for_append",
    "tiles_for_consistency",
    "tiles_for_inclusion",
    "tiles_for_inclusion_above",
    "tiles_for_root",
]

HASH_SIZE = 32
"""Bytes in a SHA-256 hash."""
TILE_HEIGHT = 8
"""Tree levels covered by one tile (c2sp.org/tlog-tiles uses 8)."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile: 256."""
_TILE_BYTES = TILE_WIDTH * HASH_SIZE

TileKey = tuple[int, int]
"""A tile's ``(level, index)``: tile level L holds tree level 8*L."""
Tiles = Mapping[TileKey, bytes]
"""Tiles fetched from storage: ``(level, index)`` -> the tile's concatenated hashes."""

_HASHER = MerkleHasher("sha256", security=True)
_NODE_PREFIX: bytes = _HASHER.node_prefix
assert _HASHER.leaf_prefix == b"\x00" and _NODE_PREFIX == b"\x01", "pymerkle must hash as RFC 9162"
assert _NODE_PREFIX == NODE_PREFIX, "tile_levels must hash nodes as RFC 9162"

EMPTY_ROOT: bytes = _HASHER.hash_empty()
"""MTH({}) = SHA-256 of the empty string, the root of the empty tree."""


class MerkleError(ValueError):
    """The request does not make sense for this tree (an index or size out of range, a bad hash length)."""


class TileError(MerkleError):
    """A tile the computation needs is missing or does not hold the hashes it should."""


class InvalidProofError(MerkleError):
    """The proof does not verify against the given hashes and sizes."""


# ---------------------------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)``."""
    digest: bytes = _HASHER.hash_buff(data)
    return digest


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``."""
    digest: bytes = _HASHER.hash_pair(left, right)
    return digest


# ---------------------------------------------------------------------------------------- tree shape


def _split(width: int) -> int:
    """The largest power of two strictly less than ``width`` (``width >= 2``): RFC 9162's k."""
    return 1 << ((width - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges ``[start, end)`` whose MTH make up RFC 9162's PATH(index, D[size]), in proof order."""
    start, end = 0, size
    path: list[tuple[int, int]] = []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def _consistency_ranges(first: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH make up RFC 9162's PROOF(first, D[size]) (``0 < first <= size``), in order.

    This is SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1 unrolled: each step keeps one child and
    records the MTH of the other, and the recorded nodes come out of the recursion in reverse.
    """
    start, end, m = 0, size, first
    known = True  # RFC 9162's b: is the current subtree's MTH one the verifier already has?
    path: list[tuple[int, int]] = []
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
            m -= k
            known = False
    if not known:
        path.append((start, end))
    path.reverse()
    return path


def _subtrees(start: int, end: int) -> Iterator[tuple[int, int]]:
    """The perfect subtrees ``(height, index)`` that make up a proof range, left to right.

    Every range RFC 9162 uses starts at a multiple of a power of two at least as large as the range,
    so the binary digits of its width, from the highest, give aligned subtrees.
    """
    position, width = start, end - start
    while width:  # one step per binary digit set: a sibling range is one perfect subtree
        height = width.bit_length() - 1
        yield height, position >> height
        position += 1 << height
        width -= 1 << height


def _tile_of(height: int, index: int) -> TileKey:
    """The tile holding what is needed for the perfect subtree ``(height, index)``."""
    level, rest = divmod(height, TILE_HEIGHT)
    return level, (index << rest) >> TILE_HEIGHT


def _tiles_of_ranges(ranges: Sequence[tuple[int, int]]) -> set[TileKey]:
    return {_tile_of(h, i) for start, end in ranges for h, i in _subtrees(start, end)}


# ------------------------------------------------------------------------------------- reading tiles


def _tile(tiles: Tiles, level: int, first: int, count: int) -> bytes:
    """The tile holding the ``count`` hashes at tile level ``level`` from index ``first``, checked to hold them."""
    index, offset = divmod(first, TILE_WIDTH)
    try:
        tile = tiles[(level, index)]
    except KeyError:
        raise TileError(f"tile ({level}, {index}) is needed but was not given") from None
    if len(tile) < (offset + count) * HASH_SIZE or len(tile) % HASH_SIZE:
        raise TileError(f"tile ({level}, {index}) is {len(tile)} bytes; hashes up to {offset + count - 1} are needed")
    return tile


def _tile_hashes(tiles: Tiles, level: int, first: int, count: int) -> bytes:
    """The ``count`` hashes stored at tile level ``level`` from index ``first``, within one tile."""
    start = (first % TILE_WIDTH) * HASH_SIZE
    return _tile(tiles, level, first, count)[start : start + count * HASH_SIZE]


_tile_levels = LevelCache()


Levels = dict[int, list[bytes]]
"""Within one computation: each tile's levels by the tile object's id (the tiles mapping holds the
objects meanwhile), so that a tile's bytes are hashed for the cache key once, not once per node read."""


def _subtree_hash(tiles: Tiles, height: int, index: int, memo: Levels | None = None) -> bytes:
    """MTH of the perfect subtree of ``2**height`` leaves starting at leaf ``index << height``."""
    level, rest = divmod(height, TILE_HEIGHT)
    first = index << rest
    if not rest:
        return _tile_hashes(tiles, level, first, 1)
    tile = _tile(tiles, level, first, 1 << rest)  # the tile exists and is wide enough, or TileError
    if memo is None:
        levels = _tile_levels.levels(tile)
    elif (levels := memo.get(id(tile))) is None:  # type: ignore[assignment]
        levels = memo[id(tile)] = _tile_levels.levels(tile)
    at = (first & (TILE_WIDTH - 1)) >> rest
    return levels[rest][at * HASH_SIZE : (at + 1) * HASH_SIZE]


def _range_hash(
    tiles: Tiles, start: int, end: int, memo: Levels | None = None, known: dict[tuple[int, int], bytes] | None = None
) -> bytes:
    """MTH(D[start:end]) for a range as RFC 9162 proofs use them (see ``_subtrees``). ``known`` keeps the
    hashes of ranges that are not one perfect subtree (they end at the tree's right edge), by range."""
    if known is not None and (found := known.get((start, end))) is not None:
        return found
    hashes = [_subtree_hash(tiles, h, i, memo) for h, i in _subtrees(start, end)]
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    if known is not None and len(hashes) > 1:
        known[(start, end)] = result
    return result


class _TileTree(BaseMerkleTree):  # type: ignore[misc]  # pymerkle ships no type information
    """A read-only pymerkle tree of ``size`` leaves whose perfect subtree roots come from tiles.

    pymerkle computes every root and proof from ``_get_subroot(offset, width)`` (a perfect subtree,
    aligned) and ``_get_size``; answering those from the fetched tiles keeps its algorithms while
    reading O(log n) tiles instead of holding the tree. Replacing ``_get_subroot`` also bypasses
    pymerkle's subtree cache, which would otherwise grow with the tree.
    """

    def __init__(self, size: int, tiles: Tiles) -> None:
        super().__init__("sha256")
        self._size = size
        self._tiles = tiles

    def _get_size(self) -> int:
        return self._size

    def _get_subroot(self, offset: int, width: int) -> bytes:
        height = width.bit_length() - 1
        return _subtree_hash(self._tiles, height, offset >> height)

    def _get_leaf(self, index: int) -> bytes:
        return _tile_hashes(self._tiles, 0, index - 1, 1)

    def _get_leaves(self, offset: int, width: int) -> list[bytes]:
        return [self._get_leaf(offset + i + 1) for i in range(width)]

    def _encode_entry(self, data: Any) -> bytes:
        raise TypeError("a tile tree is read-only; use merkle.append")

    def _store_leaf(self, data: Any, digest: bytes) -> int:
        raise TypeError("a tile tree is read-only; use merkle.append")


# ------------------------------------------------------------------------------------ which tiles


def completed_uppers(tiles: Tiles) -> dict[int, bytes]:
    """The upper rows (:func:`tile_levels.upper_rows`) of the full level-0 tiles among ``tiles``, by tile index:
    what the log stores with each tile it completes (:func:`append` gives them with their levels computed)."""
    return {index: upper_of(t) for (level, index), t in tiles.items() if level == 0 and len(t) == _TILE_BYTES}


def tile_width(key: TileKey, size: int) -> int:
    """Return how many hashes a tree of ``size`` leaves has in tile ``key``: 256 when full, 0 when none."""
    level, index = key
    return max(0, min(TILE_WIDTH, (size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH))


def _check_size(size: int) -> None:
    if size < 0:
        raise MerkleError(f"tree size {size} is negative")


def tiles_for_root(size: int) -> set[TileKey]:
    """Return the tiles ``root(size, tiles)`` needs: the right-edge partial tile of each level.

    At tile level L the tree stores ``size >> 8L`` hashes; the last ``(size >> 8L) % 256`` of them are
    in the partial tile ``(L, size >> 8(L+1))``, and a level with no partial tile needs nothing.
    """
    _check_size(size)
    return _tiles_of_ranges([(0, size)])


def tiles_for_append(size: int) -> set[TileKey]:
    """Return the tiles ``append(size, tiles, ...)`` needs: the same right-edge tiles as the root.

    New hashes at a level only ever fill that level's partial tile and then new tiles, and a hash one
    tile level up needs exactly the 256 hashes of a completed tile below it.
    """
    return tiles_for_root(size)


def tiles_for_inclusion(index: int, size: int) -> set[TileKey]:
    """Return the tiles ``inclusion_proof(index, size, tiles)`` needs (the leaf's own tile included)."""
    _check_leaf(index, size)
    return _tiles_of_ranges([(index, index + 1), *_inclusion_ranges(index, size)])


def tiles_for_inclusion_above(tile: int, size: int) -> set[TileKey]:
    """Return the tiles ``inclusion_proof_above(tile, size, tiles)`` needs (full level-0 tile ``tile``)."""
    if not _full_tile(tile, size):
        raise MerkleError(f"level-0 tile {tile} is not full in a tree of size {size}")
    return _tiles_of_ranges(_inclusion_ranges(tile << TILE_HEIGHT, size)[TILE_HEIGHT:])


def tiles_for_consistency(first: int, second: int) -> set[TileKey]:
    """Return the tiles ``consistency_proof(first, second, tiles)`` needs (none for a trivial proof)."""
    _check_sizes(first, second)
    if first == 0:
        return set()
    return _tiles_of_ranges(_consistency_ranges(first, second))


# ------------------------------------------------------------------------------------ computations


def _check_leaf(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")


def _check_sizes(first: int, second: int) -> None:
    if not 0 <= first <= second:
        raise MerkleError(f"tree sizes {first} and {second} are not 0 <= first <= second")


def root(size: int, tiles: Tiles) -> bytes:
    """Return MTH(D[size]), the root hash of the first ``size`` leaves, from ``tiles_for_root(size)``."""
    _check_size(size)
    digest: bytes = _TileTree(size, tiles).get_root(size)
    return digest


def inclusion_proof(index: int, size: int, tiles: Tiles) -> list[bytes]:
    """Return the RFC 9162 inclusion proof (audit path) of leaf ``index`` (from 0) in tree ``size``.

    The path runs from the leaf's sibling up to the root's child, as RFC 9162 section 2.1.3.1 and
    RFC 6962 order it. ``tiles`` must hold ``tiles_for_inclusion(index, size)``.
    """
    _check_leaf(index, size)
    if _full_tile(index >> TILE_HEIGHT, size):
        within = inclusion_proof_within(index, _tile(tiles, 0, index - index % TILE_WIDTH, TILE_WIDTH))
        return within + inclusion_proof_above(index >> TILE_HEIGHT, size, tiles)
    _tile(tiles, 0, index, 1)  # the leaf itself is in the tiles given, or TileError
    memo: Levels = {}
    return [_range_hash(tiles, start, end, memo) for start, end in _inclusion_ranges(index, size)]


def _full_tile(tile: int, size: int) -> bool:
    return (tile + 1) << TILE_HEIGHT <= size


def inclusion_proof_within(index: int, tile: bytes) -> list[bytes]:
    """The first 8 hashes of leaf ``index``'s inclusion proof, all inside its level-0 ``tile`` (given
    full: 256 leaf hashes), in any tree holding that whole tile. A :class:`Tile` keeps the node hashes
    it computes for this."""
    if len(tile) != _TILE_BYTES:
        raise TileError(f"tile (0, {index >> TILE_HEIGHT}) is {len(tile)} bytes, not a full {_TILE_BYTES}")
    levels = _tile_levels.levels(tile)
    at = index & (TILE_WIDTH - 1)
    path = []
    for height in range(TILE_HEIGHT):
        sibling = ((at >> height) ^ 1) * HASH_SIZE
        path.append(levels[height][sibling : sibling + HASH_SIZE])
    return path


def inclusion_proof_above(
    tile: int, size: int, tiles: Tiles, known: dict[tuple[int, int], bytes] | None = None
) -> list[bytes]:
    """The rest of the inclusion proof, above the leaves' level-0 tile: the same for all 256 leaves of
    full tile ``tile`` in the tree of ``size``. ``tiles`` must hold ``tiles_for_inclusion_above``.
    ``known``: hashes of right-edge ranges computed before (a leaf range's hash never changes), kept
    there too."""
    if not _full_tile(tile, size):
        raise MerkleError(f"level-0 tile {tile} is not full in a tree of size {size}")
    memo: Levels = {}
    ranges = _inclusion_ranges(tile << TILE_HEIGHT, size)[TILE_HEIGHT:]
    return [_range_hash(tiles, start, end, memo, known) for start, end in ranges]


def consistency_proof(first: int, second: int, tiles: Tiles) -> list[bytes]:
    """Return the RFC 9162 consistency proof PROOF(first, D[second]) (section 2.1.4.1).

    Empty when ``first`` is 0 or equal to ``second``. ``tiles`` must hold
    ``tiles_for_consistency(first, second)``.
    """
    _check_sizes(first, second)
    if first == 0:
        return []
    memo: Levels = {}
    return [_range_hash(tiles, start, end, memo) for start, end in _consistency_ranges(first, second)]


def append(size: int, tiles: Tiles, leaf_hashes: Sequence[bytes]) -> tuple[int, bytes, dict[TileKey, bytes]]:
    """Integrate ``leaf_hashes`` after the first ``size`` leaves.

    ``tiles`` must hold ``tiles_for_append(size)``, each partial tile exactly as wide as the tree of
    ``size`` leaves makes it: a wider one means storage and ``size`` disagree, and is refused.
    Returns ``(new_size, new_root, changed)`` where ``changed`` maps every tile whose content is new
    or different to its full new content (store them all, replacing any partial tile of the same key);
    a full tile comes as a :class:`Tile` with its node hashes computed (they gave its root).
    """
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise MerkleError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
    return append_hashes(size, tiles, b"".join(leaf_hashes))


def append_hashes(size: int, tiles: Tiles, leaf_hashes: bytes) -> tuple[int, bytes, dict[TileKey, bytes]]:
    """:func:`append` with the leaf hashes given concatenated (no object per leaf)."""
    _check_size(size)
    if len(leaf_hashes) % HASH_SIZE:
        raise MerkleError(f"{len(leaf_hashes)} bytes of leaf hashes is not a whole number of {HASH_SIZE}-byte hashes")
    changed: dict[TileKey, bytes] = {}
    level, stored, new = 0, size, leaf_hashes
    while new:
        index, width = divmod(stored, TILE_WIDTH)
        row = new
        if width:
            try:
                old = tiles[(level, index)]
            except KeyError:
                raise TileError(f"tile ({level}, {index}) is needed but was not given") from None
            if len(old) != width * HASH_SIZE:
                raise TileError(
                    f"tile ({level}, {index}) is {len(old)} bytes; a tree of size {size} has"
                    f" {width} hashes ({width * HASH_SIZE} bytes) there"
                )
            row = old + new
        parents = []
        for offset in range(0, len(row), _TILE_BYTES):
            tile = row[offset : offset + _TILE_BYTES]
            if len(tile) == _TILE_BYTES:  # complete: its root goes up; its node hashes stay with it
                tile = Tile(tile)
                parents.append(tile.levels()[-1])
            changed[(level, index + offset // _TILE_BYTES)] = tile
        level, stored, new = level + 1, stored >> TILE_HEIGHT, b"".join(parents)
    new_size = size + len(leaf_hashes) // HASH_SIZE
    return new_size, root(new_size, {**tiles, **changed}), changed
