"""The per-batch hash chain.

Domain-separated and versioned (docs/ledger.md, "Per-batch hash chain")::

    genesis(code) = SHA-256("trace/genesis/v1" || 0x00 || code as ASCII)
    link(prev, c) = SHA-256("trace/chain/v1"   || 0x00 || prev || c)

where ``c`` is the event's canonical bytes. Event ``seq = 1`` links to the genesis value.
"""

from __future__ import annotations

from hashlib import sha256

GENESIS_TAG = b"trace/genesis/v1\x00"
CHAIN_TAG = b"trace/chain/v1\x00"
HASH_SIZE = 32


def genesis(trace_code: str) -> bytes:
    """The value the first event of a batch chains to."""
    return sha256(GENESIS_TAG + trace_code.encode("ascii")).digest()


def link(prev_hash: bytes, canonical: bytes) -> bytes:
    """The hash of an event given its predecessor's hash and its own canonical bytes."""
    h = sha256(CHAIN_TAG)
    h.update(prev_hash)
    h.update(canonical)
    return h.digest()
