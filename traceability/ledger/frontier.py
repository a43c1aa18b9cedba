"""The right edge of an RFC 9162 Merkle tree: enough to extend it leaf by leaf and give its root.

A reader that receives a log's leaves in order (a province receiving a member's log by replication)
recomputes the root at each size with O(log n) hashes kept, and compares it with the log's signed
checkpoint of that size. The frontier holds the roots of the perfect subtrees the tree splits into,
largest first; the tree's root folds them from the right (RFC 9162 section 2.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

from traceability.ledger.merkle import node_hash

EMPTY_ROOT = sha256(b"").digest()


@dataclass(slots=True)
class Frontier:
    size: int = 0
    subtrees: list[tuple[int, bytes]] = field(default_factory=list)
    """(height, root) of each perfect subtree along the right edge, largest first."""

    def append(self, leaf_hash: bytes) -> None:
        height, node = 0, leaf_hash
        while self.subtrees and self.subtrees[-1][0] == height:
            _, left = self.subtrees.pop()
            node = node_hash(left, node)
            height += 1
        self.subtrees.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self.subtrees:
            return EMPTY_ROOT
        node = self.subtrees[-1][1]
        for _, left in reversed(self.subtrees[:-1]):
            node = node_hash(left, node)
        return node
