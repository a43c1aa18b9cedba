# The compiled inner loop of audit_bulk.ChainWalk (traceability/_chainwalk.c).

DIGEST: str  # "openssl" or "builtin": where its SHA-256 comes from

def walk(
    data: bytes,
    pos: int,
    tag: bytes,
    heads: bytes,
    at: int,
    seq: int,
    prev: bytes,
    nodes: bytes,
    devices: bytes,
    /,
) -> tuple[int, int, int, bytes, int, int, int]:
    """The ordinary links of the chains from data[pos:] on: (pos, at, seq, prev, events, batches, unnamed)."""

def digests_are(data: bytes, width: int, expected: bytes, /) -> bool:
    """Whether expected is the SHA-256 of each width bytes of data, in order."""

def counts_up(data: bytes, first: int, /) -> int:
    """How many of the whole 8-byte big-endian integers of data count up from first before one does not."""

def node_row(row: bytes, /) -> bytes:
    """SHA-256(0x01 || left || right) of each whole pair of 32-byte hashes in row, concatenated."""

def path_within(at: int, group: bytes, upper: bytes, /) -> list[bytes]:
    """The 8 hashes of the inclusion proof of the leaf at offset at of a full tile, from its group and upper rows."""
