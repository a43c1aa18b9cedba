"""Checking RFC 9162 inclusion and consistency proofs, as pure functions on bytes.

What a witness, an auditor or any client runs against a signed checkpoint's root (the proofs
themselves come from :mod:`traceability.ledger.merkle`). The verifiers follow the RFC 9162
algorithms in their bit-decomposition form (as in the transparency-dev ``proof`` package): the
inclusion path splits into an "inner" part, below the point where the leaf's path and the tree's
right edge meet, and a "border" part along the right edge. A proof that does not hold raises
:class:`~traceability.ledger.merkle.InvalidProofError` naming the check that failed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from traceability.ledger.merkle import HASH_SIZE, InvalidProofError, node_hash

__all__ = ["verify_consistency", "verify_inclusion"]


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
