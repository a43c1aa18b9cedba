"""Checkpoints and witness cosignatures (C2SP), as pure functions; the signed notes they are in.

From c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature: a **checkpoint body** is
``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed by optional, non-empty extension lines;
the log signs it as a signed note (:mod:`traceability.ledger.signed_note`, whose names this module
also offers, so ``checkpoint`` is the one import a log or a witness needs); a witness cosigns it
with a ``cosignature/v1`` line. The log ID is the hex SHA-256 of the origin line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from traceability.ledger.signed_note import (
    COSIGNATURE_V1,
    ED25519,
    MAX_SIGNATURES,
    MAX_TIMESTAMP,
    BadSignatureError,
    MalformedKeyError,
    MalformedNoteError,
    Note,
    NoteError,
    NoteSignature,
    Signer,
    UnknownKeyError,
    VerifiedSignature,
    Verifier,
    add_signatures,
    b64,
    check_text,
    cosigned_message,
    dump_signer_key,
    generate_signer,
    key_id,
    load_signer_key,
    parse_note,
    parse_signature_line,
    parse_verifier_key,
    sign_note,
    signer_from_seed,
    unb64,
    verifier_for,
    verifier_key,
    verify_note,
    verify_signature,
    verify_signatures,
)

__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "MAX_SIGNATURES",
    "BadSignatureError",
    "Checkpoint",
    "MalformedKeyError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "UnknownKeyError",
    "VerifiedSignature",
    "Verifier",
    "add_signatures",
    "checkpoint_body",
    "cosign",
    "dump_signer_key",
    "generate_signer",
    "key_id",
    "load_signer_key",
    "log_id",
    "parse_checkpoint",
    "parse_checkpoint_body",
    "parse_note",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "signer_from_seed",
    "verifier_for",
    "verifier_key",
    "verify_checkpoint",
    "verify_cosignature",
    "verify_note",
]

_HASH_SIZE = 32
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


def log_id(origin: str) -> str:
    """Return the log ID of the log named ``origin``: lowercase hex SHA-256 of the origin's UTF-8 bytes.

    Derived from the origin line, so every checkpoint carries it and a verifier recomputes it.
    """
    return hashlib.sha256(origin.encode()).hexdigest()


# ------------------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint: the log's origin, tree size and root hash, with its extension lines and signatures.

    ``signatures`` lists every signature line on the note; ``verified`` those that verified against
    trusted keys (empty from ``parse_checkpoint``, which checks no signatures).
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = ()
    verified: tuple[VerifiedSignature, ...] = ()

    @property
    def body(self) -> str:
        """The checkpoint's note text, the bytes that were signed."""
        return checkpoint_body(self.origin, self.size, self.root, self.extensions)

    @property
    def log_id(self) -> str:
        """The log ID derived from the origin (see ``log_id``)."""
        return log_id(self.origin)


def checkpoint_body(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """Return the checkpoint note text ``<origin>\\n<size>\\n<base64 root>\\n<extension lines>``."""
    if not origin or "\n" in origin:
        raise MalformedNoteError("a checkpoint origin is one non-empty line")
    if size < 0:
        raise MalformedNoteError(f"tree size {size} is negative")
    if len(root) != _HASH_SIZE:
        raise MalformedNoteError(f"a root hash is {_HASH_SIZE} bytes, not {len(root)}")
    for line in extensions:
        if not line or "\n" in line:
            raise MalformedNoteError("a checkpoint extension is one non-empty line")
    body = "".join(f"{line}\n" for line in (origin, str(size), b64(root), *extensions))
    check_text(body)
    return body


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parse a checkpoint note text (no signatures) into a ``Checkpoint``."""
    if not body.endswith("\n"):
        raise MalformedNoteError("a checkpoint body ends with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNoteError("a checkpoint body has an origin, a tree size and a root hash line")
    origin, size, encoded, *extensions = lines
    if not origin:
        raise MalformedNoteError("the checkpoint origin is empty")
    if not _SIZE_RE.fullmatch(size):
        raise MalformedNoteError(f"tree size {size[:40]!r} is not a decimal number without leading zeros")
    root = unb64(encoded, MalformedNoteError, "the root hash")
    if len(root) != _HASH_SIZE:
        raise MalformedNoteError(f"the root hash is {len(root)} bytes, not {_HASH_SIZE}")
    if any(not line for line in extensions):
        raise MalformedNoteError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size), root, tuple(extensions))


def parse_checkpoint(note: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint without verifying any signature (for display or forwarding only)."""
    parsed = parse_note(note)
    cp = parse_checkpoint_body(parsed.text)
    return Checkpoint(cp.origin, cp.size, cp.root, cp.extensions, parsed.signatures)


def sign_checkpoint(origin: str, size: int, root: bytes, signer: Signer, extensions: Sequence[str] = ()) -> str:
    """Return the signed checkpoint note for the tree of ``size`` leaves with ``root``."""
    return sign_note(checkpoint_body(origin, size, root, extensions), [signer])


def verify_checkpoint(
    note: str | bytes, log: Verifier, witnesses: Iterable[Verifier] = (), *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint: the ``log`` key must have signed it; known witnesses' cosignatures
    are verified too (unknown ones are ignored). ``origin``, if given, must be the checkpoint's.

    Raises ``UnknownKeyError`` without a signature from the log key, ``BadSignatureError`` when a
    signature from a known key fails, and ``MalformedNoteError`` when the text is not a checkpoint.
    """
    parsed = parse_note(note)
    cp = parse_checkpoint_body(parsed.text)
    if origin is not None and cp.origin != origin:
        raise MalformedNoteError(f"the checkpoint is from {cp.origin!r}, not {origin!r}")
    verified = verify_signatures(parsed, [log, *witnesses])
    if not any(v.name == log.name and v.key_id == log.key_id for v in verified):
        raise UnknownKeyError(f"the checkpoint is not signed by the log key {log.name}+{log.key_id.hex()}")
    return Checkpoint(cp.origin, cp.size, cp.root, cp.extensions, parsed.signatures, verified)


def cosign(body: str, witness: Signer, timestamp: int) -> str:
    """Return the ``cosignature/v1`` signature line of ``witness`` on a checkpoint body at ``timestamp``.

    ``body`` is the checkpoint's note text (all of it, extension lines included, no signatures);
    ``timestamp`` is POSIX seconds. The witness should first check the checkpoint's signature and its
    consistency with the last checkpoint it cosigned.
    """
    parse_checkpoint_body(body)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"timestamp {timestamp} is not between 0 and 2**63 - 1")
    signature = witness.private_key.sign(cosigned_message(body, timestamp))
    kid = key_id(witness.name, COSIGNATURE_V1, witness.public_key)
    return NoteSignature(witness.name, kid, timestamp.to_bytes(8, "big") + signature).line()


def verify_cosignature(body: str, line: str, witness: Verifier) -> int:
    """Verify one cosignature line on a checkpoint body against a ``COSIGNATURE_V1`` verifier.

    Returns the cosignature's timestamp (POSIX seconds); raises ``UnknownKeyError`` when the line is
    from another key and ``BadSignatureError`` when it does not verify.
    """
    if witness.sig_type != COSIGNATURE_V1:
        raise MalformedKeyError(f"{witness.name} is not a cosignature/v1 verifier key")
    sig = parse_signature_line(line.removesuffix("\n"))
    if (sig.name, sig.key_id) != (witness.name, witness.key_id):
        raise UnknownKeyError(f"the line is signed by {sig.name}+{sig.key_id.hex()}, not {witness.name}")
    result = verify_signature(body, sig, witness)
    assert result.timestamp is not None
    return result.timestamp
