"""Checking RFC 9162 inclusion and consistency proofs, as pure functions on bytes.

What a witness, an auditor or any client runs against a signed checkpoint's root (the proofs
themselves come from :mod:`traceability.ledger.merkle`). The verifiers follow the RFC 9162
algorithms in their bit-decomposition form (as in the transparency-dev ``proof`` package): the
inclusion path splits into an "inner" part, below the point where the leaf's path and the tree's
right edge meet, and a "border" part along the right edge. A proof that does not hold raises
:class:`~traceability.ledger.merkle.InvalidProofError` naming the check that failed.

A **multiproof** proves several leaves of one tree at once: the RFC 9162 audit paths of all of them,
each hash sent once, without the hashes the verifier computes from the other leaves. What is left
are the tree's largest subtrees holding none of the leaves, left to right (docs/ledger.md, "Proof
bundles"); the verifier rebuilds the root from the leaves and them.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from traceability.ledger.merkle import HASH_SIZE, InvalidProofError, MerkleError, node_hash

__all__ = ["multiproof", "multiproof_root", "verify_consistency", "verify_inclusion", "verify_multiproof"]


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash up the inner part of a path: bit i of ``index`` says whether the node is a right child."""
    for i, p in enumerate(proof):
        seed = node_hash(p, seed) if index >> i & 1 else node_hash(seed, p)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like ``_chain_inner`` but only through left siblings: the hashes an older, smaller tree also has."""
    for i, p in enumerate(proof):
        if index >> i & 1:
            seed = node_hash(p, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash up the right edge of the tree, where every sibling is on the left."""
    for p in proof:
        seed = node_hash(p, seed)
    return seed


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split the inclusion path of leaf ``index`` in tree ``size`` into (inner, border) lengths.

    Below level ``inner`` (the highest bit where ``index`` and ``size - 1`` differ) the leaf's path
    and the last leaf's path are apart; above it they share the right edge, where a node has a
    left sibling for each 1 bit of ``index`` and none (the tree is lopsided) for each 0 bit.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` leaves with ``root_hash``.

    Returns None when the proof holds; raises ``InvalidProofError`` naming the failed check otherwise.
    Equivalent to the algorithm of RFC 9162 section 2.1.3.2.
    """
    _check_hash("leaf hash", leaf)
    _check_hash("root hash", root_hash)
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
    if not 0 <= index < size:
        raise InvalidProofError(f"leaf index {index} is not in a tree of size {size}")
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise InvalidProofError(
            f"proof has {len(proof)} hashes; leaf {index} of a tree of size {size} needs {inner + border}"
        )
    calculated = _chain_border(_chain_inner(leaf, proof[:inner], index), proof[inner:])
    if not hmac.compare_digest(calculated, root_hash):
        raise InvalidProofError(f"inclusion proof of leaf {index} does not lead to the root of size {size}")


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes) -> None:
    """Check that the tree of ``second`` leaves with ``second_root`` extends the one of ``first`` leaves.

    Returns None when the proof holds; raises ``InvalidProofError`` naming the failed check otherwise.
    Equivalent to RFC 9162 section 2.1.4.2 for ``0 < first < second``; in addition an empty proof
    proves ``first == second`` with equal roots, and ``first == 0`` (everything extends the empty
    tree).
    """
    _check_hash("first root hash", first_root)
    _check_hash("second root hash", second_root)
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
    if not 0 <= first <= second:
        raise InvalidProofError(f"tree sizes {first} and {second} are not 0 <= first <= second")
    if first == second or first == 0:
        if proof:
            raise InvalidProofError(f"a consistency proof from size {first} to {second} must be empty")
        if first == second and not hmac.compare_digest(first_root, second_root):
            raise InvalidProofError(f"two trees of size {first} have different roots")
        return
    if not proof:
        raise InvalidProofError(f"consistency proof from size {first} to {second} is empty")

    # The proof is the inclusion path of leaf first-1 in tree second, without the levels below the
    # largest perfect subtree ending at first (height = trailing zero bits of first), whose root is
    # the proof's first hash, or first_root itself when that subtree is the whole first tree.
    inner, border = _decompose(first - 1, second)
    shift = (first & -first).bit_length() - 1
    inner -= shift
    if first == 1 << shift:
        seed, path = first_root, proof
    else:
        seed, path = proof[0], proof[1:]
    if len(path) != inner + border:
        raise InvalidProofError(
            f"proof has {len(proof)} hashes; sizes {first} to {second} need {len(proof) - len(path) + inner + border}"
        )
    mask = (first - 1) >> shift
    first_calculated = _chain_border(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    if not hmac.compare_digest(first_calculated, first_root):
        raise InvalidProofError(f"consistency proof does not lead to the root of size {first}")
    second_calculated = _chain_border(_chain_inner(seed, path[:inner], mask), path[inner:])
    if not hmac.compare_digest(second_calculated, second_root):
        raise InvalidProofError(f"consistency proof does not lead to the root of size {second}")


H = TypeVar("H")


def _split(width: int) -> int:
    """RFC 9162's k: the largest power of two strictly less than ``width`` (``width >= 2``)."""
    return 1 << ((width - 1).bit_length() - 1)


def _path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up leaf ``index``'s audit path in the tree of ``size``, in order."""
    start, end, ranges = 0, size, []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _without_leaves(indexes: Sequence[int], size: int) -> Iterator[tuple[int, int]]:
    """The largest subtrees of the tree of ``size`` holding none of the sorted ``indexes``, left to right."""

    def walk(start: int, end: int) -> Iterator[tuple[int, int]]:
        at = bisect_left(indexes, start)
        if at == len(indexes) or indexes[at] >= end:
            yield start, end
        elif end - start > 1:
            k = _split(end - start)
            yield from walk(start, start + k)
            yield from walk(start + k, end)

    if size:
        yield from walk(0, size)


def multiproof(paths: Mapping[int, Sequence[H]], size: int) -> list[H]:
    """The multiproof of the leaves at the indexes of ``paths`` (each leaf's audit path in the tree of
    ``size``): the hashes of the largest subtrees holding none of them, left to right, each taken from
    the audit path it is on. Every hash sent is on some leaf's path; none can be computed from the others."""
    if not paths:
        return []
    if any(not 0 <= i < size for i in paths):
        raise MerkleError(f"a leaf index is not in a tree of size {size}")
    on_paths: dict[tuple[int, int], H] = {}
    for index, path in paths.items():
        on_paths.update(zip(_path_ranges(index, size), path, strict=True))
    return [on_paths[r] for r in _without_leaves(sorted(paths), size)]


def multiproof_root(leaves: Mapping[int, bytes], size: int, nodes: Sequence[bytes]) -> bytes:
    """The root of the tree of ``size`` that the leaf hashes ``leaves`` (by index) and the multiproof
    ``nodes`` make; raises ``InvalidProofError`` when the nodes are too few or too many for them."""
    if not leaves or any(not 0 <= i < size for i in leaves):
        raise InvalidProofError(f"a multiproof needs leaves, each in the tree of size {size}")
    for i, p in enumerate(nodes):
        _check_hash(f"multiproof hash {i}", p)
    for i, leaf in leaves.items():
        _check_hash(f"leaf hash {i}", leaf)
    indexes, given = sorted(leaves), iter(nodes)

    def mth(start: int, end: int) -> bytes:
        at = bisect_left(indexes, start)
        if at == len(indexes) or indexes[at] >= end:
            found = next(given, None)
            if found is None:
                raise InvalidProofError(f"the multiproof has {len(nodes)} hashes, too few for its leaves")
            return found
        if end - start == 1:
            return leaves[start]
        k = _split(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    root = mth(0, size)
    if next(given, None) is not None:
        raise InvalidProofError(f"the multiproof has {len(nodes)} hashes, more than its leaves need")
    return root


def verify_multiproof(leaves: Mapping[int, bytes], size: int, nodes: Sequence[bytes], root_hash: bytes) -> None:
    """Check that each of ``leaves`` (leaf hashes by index) is that leaf of the tree of ``size`` leaves with
    ``root_hash``, with the multiproof ``nodes``. Returns None when it holds; raises ``InvalidProofError``
    otherwise (a multiproof cannot tell which of its leaves differs from the log's)."""
    _check_hash("root hash", root_hash)
    if not hmac.compare_digest(multiproof_root(leaves, size, nodes), root_hash):
        raise InvalidProofError(f"the multiproof of {len(leaves)} leaves does not lead to the root of size {size}")
