"""The Merkle log over tiles: known answers, the RFC 9162 reference, pymerkle, and tampering."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from tests import rfc9162_verifier as rfc
from traceability.ledger import merkle, proofs, tile_levels
from traceability.ledger.merkle import InvalidProofError, MerkleError, TileError, TileKey

VECTORS = json.loads((Path(__file__).parent / "vectors" / "merkle.json").read_text())
RFC6962 = VECTORS["rfc6962_tree"]
TILED = VECTORS["tiled_tree"]
MAX = 3000  # leaves in the tree the property tests draw from
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def build(leaf_hashes: list[bytes], batch: int) -> dict[TileKey, bytes]:
    """Build a tree the way the sequencer does: fetch the append tiles, append, store what changed."""
    tiles: dict[TileKey, bytes] = {}
    size = 0
    for start in range(0, len(leaf_hashes), batch):
        needed = {k: tiles[k] for k in merkle.tiles_for_append(size)}
        size, _, changed = merkle.append(size, needed, leaf_hashes[start : start + batch])
        tiles.update(changed)
    return tiles


def fetch(tiles: Mapping[TileKey, bytes], keys: set[TileKey], size: int | None = None) -> dict[TileKey, bytes]:
    """Exactly the requested tiles, as storage returns them; with ``size``, cut to that tree's widths."""
    out = {k: tiles[k] for k in keys}
    if size is not None:
        for level, index in keys:
            stored = size >> (merkle.TILE_HEIGHT * level)
            width = min(merkle.TILE_WIDTH, stored - index * merkle.TILE_WIDTH)
            out[(level, index)] = tiles[(level, index)][: width * merkle.HASH_SIZE]
    return out


@cache
def big() -> tuple[list[bytes], list[bytes], dict[TileKey, bytes], Any]:
    """MAX random leaves: their data, leaf hashes, tiles, and pymerkle's in-memory tree of them."""
    rng = random.Random(9162)
    data = [rng.randbytes(32) for _ in range(MAX)]
    hashes = [merkle.leaf_hash(d) for d in data]
    return data, hashes, build(hashes, 97), InmemoryTree.init_from_entries(data)


@cache
def tiled() -> tuple[list[bytes], dict[TileKey, bytes]]:
    data = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(TILED["size"])]
    return data, build([merkle.leaf_hash(d) for d in data], 1000)


def flip(value: bytes, position: int) -> bytes:
    i = position % len(value)
    return value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :]


# ------------------------------------------------------------------------------------------ hashing


def test_hashes_match_the_rfc6962_vectors_and_hashlib() -> None:
    for data, expected in zip(unhex(RFC6962["leaf_data"]), unhex(RFC6962["leaf_hashes"]), strict=True):
        assert merkle.leaf_hash(data) == expected == hashlib.sha256(b"\x00" + data).digest()
    left, right = unhex(RFC6962["leaf_hashes"])[:2]
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.node_hash(left, right) == unhex(RFC6962["roots_by_size"])[2]
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_roots_agree_with_pymerkle_and_the_rfc_definition() -> None:
    data, _, tiles, tree = big()
    for size in [0, 1, 2, 3, 255, 256, 257, 511, 512, 1000, MAX]:
        got = merkle.root(size, fetch(tiles, merkle.tiles_for_root(size), size))
        assert got == tree.get_root(size)
        if size <= 512:
            assert got == rfc.mth(data[:size])


# ---------------------------------------------------------------------------------- RFC 6962 vectors


def test_rfc6962_roots_by_appending_one_leaf_at_a_time() -> None:
    tiles: dict[TileKey, bytes] = {}
    roots = unhex(RFC6962["roots_by_size"])
    assert merkle.root(0, {}) == roots[0]
    for size, data in enumerate(unhex(RFC6962["leaf_data"])):
        new_size, new_root, changed = merkle.append(
            size, fetch(tiles, merkle.tiles_for_append(size)), [merkle.leaf_hash(data)]
        )
        tiles.update(changed)
        assert (new_size, new_root) == (size + 1, roots[size + 1])
        assert changed == {(0, 0): b"".join(unhex(RFC6962["leaf_hashes"])[: size + 1])}


def test_rfc6962_inclusion_vectors() -> None:
    leaf_hashes = unhex(RFC6962["leaf_hashes"])
    roots = unhex(RFC6962["roots_by_size"])
    tiles = build(leaf_hashes, 8)
    for v in RFC6962["inclusion"]:
        index, size, expected = v["index"], v["size"], unhex(v["path"])
        got = merkle.inclusion_proof(index, size, fetch(tiles, merkle.tiles_for_inclusion(index, size), size))
        assert got == expected
        proofs.verify_inclusion(leaf_hashes[index], index, size, expected, roots[size])
        assert rfc.verify_inclusion(leaf_hashes[index], index, size, expected, roots[size])


def test_rfc6962_consistency_vectors() -> None:
    roots = unhex(RFC6962["roots_by_size"])
    tiles = build(unhex(RFC6962["leaf_hashes"]), 8)
    for v in RFC6962["consistency"]:
        first, second, expected = v["first"], v["second"], unhex(v["proof"])
        got = merkle.consistency_proof(first, second, fetch(tiles, merkle.tiles_for_consistency(first, second)))
        assert got == expected
        proofs.verify_consistency(first, second, expected, roots[first], roots[second])
        if first < second:
            assert rfc.verify_consistency(first, second, expected, roots[first], roots[second])


# --------------------------------------------------------------------------------- tiled vectors


def test_tiled_tree_vectors() -> None:
    data, tiles = tiled()
    hashes = {int(size): bytes.fromhex(r) for size, r in TILED["roots_by_size"].items()}
    for size, root in hashes.items():
        assert merkle.root(size, fetch(tiles, merkle.tiles_for_root(size))) == root
    for v in TILED["inclusion"]:
        index, size, expected = v["index"], v["size"], unhex(v["path"])
        got = merkle.inclusion_proof(index, size, fetch(tiles, merkle.tiles_for_inclusion(index, size), size))
        assert got == expected
        if size in hashes:
            proofs.verify_inclusion(merkle.leaf_hash(data[index]), index, size, got, hashes[size])
    for v in TILED["consistency"]:
        first, second, expected = v["first"], v["second"], unhex(v["proof"])
        assert (
            merkle.consistency_proof(first, second, fetch(tiles, merkle.tiles_for_consistency(first, second)))
            == expected
        )


def test_tile_layout_follows_tlog_tiles() -> None:
    data, tiles = tiled()
    size = TILED["size"]
    # Level 0 holds the leaf hashes, 256 to a tile, the last one partial.
    assert tiles[(0, 0)] == b"".join(merkle.leaf_hash(d) for d in data[:256])
    assert len(tiles[(0, size // 256)]) == (size % 256) * 32
    # Tile level 1 holds the roots of complete 256-leaf subtrees: tree level 8.
    assert tiles[(1, 0)][:32] == rfc.mth(data[:256])
    assert tiles[(1, 0)][-32:] == rfc.mth(data[255 * 256 : 256 * 256])
    assert len(tiles[(1, 0)]) == 256 * 32
    assert len(tiles[(1, 1)]) == (size // 256 - 256) * 32
    # Tile level 2 would need a complete 65536-leaf tile at level 1: one hash so far.
    assert tiles[(2, 0)] == rfc.mth(data[:65536]) == bytes.fromhex(TILED["roots_by_size"]["65536"])
    assert set(tiles) == {(0, i) for i in range(size // 256 + 1)} | {(1, 0), (1, 1), (2, 0)}


def test_a_proof_reads_few_tiles() -> None:
    # log256 of the size, times two (the leaf's path and the right edge), at most.
    for size in [1, 300, 70000, 10**6, 2**40 + 12345]:
        levels = max(1, -(-size.bit_length() // merkle.TILE_HEIGHT))
        for index in {0, size // 3, size - 1}:
            assert len(merkle.tiles_for_inclusion(index, size)) <= 2 * levels
        assert len(merkle.tiles_for_consistency(max(1, size // 3), size)) <= 2 * levels
        assert len(merkle.tiles_for_root(size)) <= levels
        assert merkle.tiles_for_append(size) == merkle.tiles_for_root(size)


# ------------------------------------------------------------------------------------- properties


@PROPERTY
@given(size=st.integers(1, MAX), data=st.data(), exact=st.booleans())
def test_every_inclusion_proof_verifies_with_both_verifiers(size: int, data: st.DataObject, exact: bool) -> None:
    _, hashes, tiles, tree = big()
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(
        index, size, fetch(tiles, merkle.tiles_for_inclusion(index, size), size if exact else None)
    )
    root = merkle.root(size, fetch(tiles, merkle.tiles_for_root(size), size))
    assert proof == tree.prove_inclusion(index + 1, size).path[1:]
    proofs.verify_inclusion(hashes[index], index, size, proof, root)
    assert rfc.verify_inclusion(hashes[index], index, size, proof, root)


@PROPERTY
@given(size=st.integers(1, MAX), data=st.data())
def test_a_tampered_inclusion_proof_fails_both_verifiers(size: int, data: st.DataObject) -> None:
    _, hashes, tiles, _ = big()
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, fetch(tiles, merkle.tiles_for_inclusion(index, size)))
    root = merkle.root(size, fetch(tiles, merkle.tiles_for_root(size)))
    leaf = hashes[index]
    byte = data.draw(st.integers(0, 31))
    cases = [(flip(leaf, byte), index, size, proof, root), (leaf, index, size, proof, flip(root, byte))]
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        cases.append((leaf, index, size, [*proof[:which], flip(proof[which], byte), *proof[which + 1 :]], root))
        cases.append((leaf, index, size, proof[:-1], root))
    cases.append((leaf, index, size, [*proof, root], root))
    other = data.draw(st.integers(0, MAX))
    if other != index:
        cases.append((leaf, other, size, proof, root))
    for bad in cases:
        assert not rfc.verify_inclusion(*bad)
        with pytest.raises(InvalidProofError):
            proofs.verify_inclusion(*bad)


@PROPERTY
@given(size=st.integers(1, MAX), data=st.data())
def test_a_multiproof_sends_each_needed_hash_once_and_verifies(size: int, data: st.DataObject) -> None:
    _, hashes, tiles, _ = big()
    picked = sorted(set(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=40))))
    paths = {i: merkle.inclusion_proof(i, size, fetch(tiles, merkle.tiles_for_inclusion(i, size))) for i in picked}
    root = merkle.root(size, fetch(tiles, merkle.tiles_for_root(size)))
    nodes = proofs.multiproof(paths, size)
    leaves = {i: hashes[i] for i in picked}
    proofs.verify_multiproof(leaves, size, nodes, root)
    # Exactly the hashes on the paths that no other picked leaf lets the verifier compute, each once.
    needed = {
        (h, r)
        for i, path in paths.items()
        for h, r in zip(path, proofs._path_ranges(i, size), strict=True)
        if not any(r[0] <= j < r[1] for j in picked)
    }
    assert sorted(nodes) == sorted(h for h, _ in needed) and len(nodes) == len(needed)
    assert len(nodes) <= len({h for path in paths.values() for h in path})
    # Any changed leaf or hash, a missing or extra hash, another root, a leaf left out: refused.
    byte = data.draw(st.integers(0, 31))
    which = data.draw(st.sampled_from(picked))
    bad = [({**leaves, which: flip(leaves[which], byte)}, size, nodes, root), (leaves, size, nodes, flip(root, byte))]
    if nodes:
        n = data.draw(st.integers(0, len(nodes) - 1))
        bad += [
            (leaves, size, [*nodes[:n], flip(nodes[n], byte), *nodes[n + 1 :]], root),
            (leaves, size, nodes[:-1], root),
        ]
    bad += [(leaves, size, [*nodes, root], root)]  # (the size is bound to the root by the signed checkpoint)
    if len(picked) > 1:
        bad.append(({i: h for i, h in leaves.items() if i != which}, size, nodes, root))
    for args in bad:
        with pytest.raises(InvalidProofError):
            proofs.verify_multiproof(*args)


def test_a_multiproof_of_the_rfc_6962_tree() -> None:
    """Leaves 2 and 5 of the 8-leaf test tree: the four subtrees without them, [0,2) [3,4) [4,5) [6,8)."""
    leaves = unhex(RFC6962["leaf_hashes"])
    root = unhex(RFC6962["roots_by_size"])[8]
    _, _, tiles = merkle.append(0, {}, leaves)
    paths = {i: merkle.inclusion_proof(i, 8, tiles) for i in (2, 5)}
    nodes = proofs.multiproof(paths, 8)
    assert nodes == [unhex(RFC6962["roots_by_size"])[2], leaves[3], leaves[4], merkle.node_hash(leaves[6], leaves[7])]
    proofs.verify_multiproof({2: leaves[2], 5: leaves[5]}, 8, nodes, root)
    assert proofs.multiproof({2: paths[2]}, 8) == [paths[2][1], paths[2][0], paths[2][2]]  # its path, left to right
    assert proofs.multiproof({}, 8) == []


@settings(max_examples=60, deadline=None)
@given(second=st.integers(1, MAX), data=st.data())
def test_every_consistency_proof_verifies_and_matches_the_rfc(second: int, data: st.DataObject) -> None:
    raw, _, tiles, tree = big()
    first = data.draw(st.integers(0, second))
    proof = merkle.consistency_proof(first, second, fetch(tiles, merkle.tiles_for_consistency(first, second), second))
    first_root, second_root = tree.get_root(first), tree.get_root(second)
    proofs.verify_consistency(first, second, proof, first_root, second_root)
    if 0 < first < second:
        assert rfc.verify_consistency(first, second, proof, first_root, second_root)
        if second <= 1200:  # the recursive definition is slow; smaller trees suffice for it
            assert proof == rfc.proof(first, raw[:second])
    else:
        assert proof == []


@PROPERTY
@given(second=st.integers(2, MAX), data=st.data())
def test_a_tampered_consistency_proof_fails_both_verifiers(second: int, data: st.DataObject) -> None:
    _, _, tiles, tree = big()
    first = data.draw(st.integers(1, second - 1))
    proof = merkle.consistency_proof(first, second, fetch(tiles, merkle.tiles_for_consistency(first, second)))
    first_root, second_root = tree.get_root(first), tree.get_root(second)
    byte = data.draw(st.integers(0, 31))
    which = data.draw(st.integers(0, len(proof) - 1))
    cases = [
        (first, second, [*proof[:which], flip(proof[which], byte), *proof[which + 1 :]], first_root, second_root),
        (first, second, proof, flip(first_root, byte), second_root),
        (first, second, proof, first_root, flip(second_root, byte)),
        (first, second, proof[:-1], first_root, second_root),
        (first, second, [*proof, second_root], first_root, second_root),
        (first, second, proof, second_root, first_root),
    ]
    other = data.draw(st.integers(1, MAX))
    if other != first and other != second:
        cases.append((other, second, proof, first_root, second_root))
    for bad in cases:
        assert not rfc.verify_consistency(*bad)
        with pytest.raises(InvalidProofError):
            proofs.verify_consistency(*bad)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=12))
def test_appending_in_any_batches_gives_pymerkles_roots(batches: list[int]) -> None:
    _data, hashes, _, tree = big()
    tiles: dict[TileKey, bytes] = {}
    size = 0
    for count in batches:
        count = min(count, MAX - size)
        new_size, new_root, changed = merkle.append(
            size, fetch(tiles, merkle.tiles_for_append(size)), hashes[size : size + count]
        )
        # Only right-edge tiles change, and full tiles are written once, whole.
        for key, content in changed.items():
            assert key not in tiles or len(tiles[key]) < merkle.TILE_WIDTH * merkle.HASH_SIZE
            assert len(content) % merkle.HASH_SIZE == 0 and content.startswith(tiles.get(key, b""))
        tiles.update(changed)
        size = new_size
        assert new_root == tree.get_root(size)
    assert tiles == fetch(big()[2], set(tiles), size)


# ---------------------------------------------------------------------------------------- errors


def test_missing_and_short_tiles_are_named() -> None:
    _, _, tiles, _ = big()
    needed = merkle.tiles_for_inclusion(700, 2000)
    for key in needed:
        partial = fetch(tiles, needed - {key})
        with pytest.raises(TileError, match=rf"tile \({key[0]}, {key[1]}\) is needed"):
            merkle.inclusion_proof(700, 2000, partial)
    short = fetch(tiles, needed, 2000)
    short[(0, 2000 // 256)] = short[(0, 2000 // 256)][:-32]
    with pytest.raises(TileError, match=r"tile \(0, 7\)"):
        merkle.inclusion_proof(1999, 2000, short)


def test_append_refuses_tiles_that_disagree_with_the_size() -> None:
    _, hashes, tiles, _ = big()
    wider = fetch(tiles, merkle.tiles_for_append(1000))  # the stored tiles hold up to MAX leaves
    with pytest.raises(TileError, match=r"tile \(0, 3\) is 8192 bytes; a tree of size 1000 has 232 hashes"):
        merkle.append(1000, wider, hashes[1000:1010])
    with pytest.raises(TileError, match=r"tile \(0, 3\) is needed"):
        merkle.append(1000, {}, hashes[1000:1010])
    with pytest.raises(MerkleError, match="leaf hash 1 is 31 bytes"):
        merkle.append(0, {}, [hashes[0], hashes[1][:31]])
    assert merkle.append(0, {}, []) == (0, merkle.EMPTY_ROOT, {})


def test_impossible_requests_are_refused() -> None:
    calls: list[Callable[[], object]] = [
        lambda: merkle.tiles_for_inclusion(5, 5),
        lambda: merkle.tiles_for_inclusion(-1, 5),
        lambda: merkle.inclusion_proof(0, 0, {}),
        lambda: merkle.tiles_for_consistency(6, 5),
        lambda: merkle.consistency_proof(-1, 5, {}),
        lambda: merkle.tiles_for_root(-1),
    ]
    for call in calls:
        with pytest.raises(MerkleError):
            call()


def test_verifier_edge_cases() -> None:
    roots = unhex(RFC6962["roots_by_size"])
    some, empty = roots[3], roots[0]
    # Trivially consistent: the empty tree, and a tree with itself (empty proofs only).
    proofs.verify_consistency(0, 0, [], empty, empty)
    proofs.verify_consistency(0, 5, [], empty, some)
    proofs.verify_consistency(4, 4, [], some, some)
    bad = [
        (4, 4, [], some, roots[4]),  # same size, different roots
        (4, 4, [some], some, some),  # same size, proof not empty
        (0, 5, [some], empty, some),  # from the empty tree, proof not empty
        (2, 1, [], some, some),  # backwards
        (1, 2, [], roots[1], roots[2]),  # empty proof for a real extension
        (1, 2, [b"short"], roots[1], roots[2]),  # not a hash
        (1, 2, [roots[1]], b"short", roots[2]),
    ]
    for args in bad:
        with pytest.raises(InvalidProofError):
            proofs.verify_consistency(*args)
    leaf = unhex(RFC6962["leaf_hashes"])[0]
    proofs.verify_inclusion(leaf, 0, 1, [], leaf)
    bad_inclusion: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, 0, 0, [], leaf),
        (leaf, 1, 1, [], leaf),
        (leaf, 0, 1, [], some),
        (leaf[:31], 0, 1, [], leaf),
    ]
    for args2 in bad_inclusion:
        with pytest.raises(InvalidProofError):
            proofs.verify_inclusion(*args2)


def test_a_proof_inside_a_full_tile_needs_only_its_group_and_the_tile_upper_rows() -> None:
    _, _, tiles, tree = big()
    for tile in (0, 5):
        hashes = tiles[(0, tile)]
        upper = tile_levels.upper_rows(merkle.Tile(hashes).levels())
        assert len(upper) == tile_levels.UPPER_BYTES == 30 * 32
        for at in range(merkle.TILE_WIDTH):
            first = at - at % 16
            group = hashes[first * 32 : (first + 16) * 32]
            within = tile_levels.path_within(at, group, upper)
            assert within == merkle.inclusion_proof_within(tile * 256 + at, merkle.Tile(hashes)), at
            assert within == tree.prove_inclusion(tile * 256 + at + 1, 2048).path[1:9], at
        bent = upper[:32] + bytes([upper[32] ^ 1]) + upper[33:]  # a wrong kept hash: a wrong path, not an error
        assert tile_levels.path_within(0, hashes[:512], bent) != tile_levels.path_within(0, hashes[:512], upper)
    with pytest.raises(ValueError, match="full tiles"):
        tile_levels.upper_rows(merkle.Tile(tiles[(0, 0)][:-32]).levels())
    with pytest.raises(ValueError):
        tile_levels.path_within(256, tiles[(0, 0)][:512], upper)
    with pytest.raises(ValueError):
        tile_levels.path_within(3, tiles[(0, 0)][:480], upper)


def test_the_sequencer_gets_each_new_full_tile_with_its_node_hashes() -> None:
    leaves = big()[1]
    _size, _root, changed = merkle.append(0, {}, leaves[:300])
    full = changed[(0, 0)]
    assert isinstance(full, merkle.Tile) and full.levels()[-1] == changed[(1, 0)]
    assert not isinstance(changed[(0, 1)], merkle.Tile)  # partial: still growing


def test_the_leaves_of_a_full_tile_share_the_proof_above_it() -> None:
    _, _, tiles, tree = big()
    size = 2000
    for index in (0, 255, 700, 1791):
        tile = index >> merkle.TILE_HEIGHT
        above = merkle.inclusion_proof_above(tile, size, fetch(tiles, merkle.tiles_for_inclusion_above(tile, size)))
        within = merkle.inclusion_proof_within(index, merkle.Tile(tiles[(0, tile)]))
        assert within + above == tree.prove_inclusion(index + 1, size).path[1:]
    with pytest.raises(merkle.MerkleError, match="not full"):
        merkle.tiles_for_inclusion_above(size >> merkle.TILE_HEIGHT, size)
    with pytest.raises(TileError, match="not a full"):
        merkle.inclusion_proof_within(1999, tiles[(0, 7)][:-32])
