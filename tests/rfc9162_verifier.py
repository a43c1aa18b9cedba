"""An independent RFC 9162 reference, written from the RFC's text and sharing no code with the ledger.

* ``mth``, ``path`` and ``proof`` are the recursive definitions of sections 2.1.1, 2.1.3.1 and
  2.1.4.1 over a plain list of leaf data (fine for the few thousand leaves the tests use).
* ``verify_inclusion`` and ``verify_consistency`` follow the numbered steps of sections 2.1.3.2
  and 2.1.4.2 literally, with the RFC's variable names; each returns True or False.

The production code (``traceability.ledger.merkle``) is checked against this module, so keep it
literal: a clever rewrite here would make the cross-check worth less.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# Section 2.1.1: MTH({}) = HASH(); MTH({d(0)}) = HASH(0x00 || d(0));
# MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
def mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _hash(b"")
    if n == 1:
        return _hash(b"\x00" + d[0])
    k = _k(n)
    return _hash(b"\x01" + mth(d[:k]) + mth(d[k:]))


# Section 2.1.3.1: PATH(m, {d(0)}) = {};
# PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k, PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k.
def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


# Section 2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return _subproof(m, d, True)


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), mth(d[:k])]


def _lsb(x: int) -> bool:
    return x & 1 == 1


# Section 2.1.3.2: verifying an inclusion proof.
def verify_inclusion(
    hash: bytes, leaf_index: int, tree_size: int, inclusion_path: Sequence[bytes], root_hash: bytes
) -> bool:
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn = leaf_index
    sn = tree_size - 1
    # 3. Set r to hash.
    r = hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if _lsb(fn) or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = _hash(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either LSB(fn)
            #     is set or fn is 0.
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set r to HASH(0x01 || r || p).
        else:
            r = _hash(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the root_hash
    #    are equal, then the log has proven the inclusion of hash. Otherwise, fail.
    return sn == 0 and r == root_hash


# Section 2.1.4.2: verifying consistency between two tree heads (first < second).
def verify_consistency(
    first: int, second: int, consistency_path: Sequence[bytes], first_hash: bytes, second_hash: bytes
) -> bool:
    if not 0 < first < second:
        return False
    path_ = list(consistency_path)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path_:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path_.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = path_[0]
    sr = path_[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path_[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if _lsb(fn) or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = _hash(b"\x01" + c + fr)
            sr = _hash(b"\x01" + c + sr)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either LSB(fn)
            #     is set or fn is 0.
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set sr to HASH(0x01 || sr || c).
        else:
            sr = _hash(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash and sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0
