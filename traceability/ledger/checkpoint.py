"""Signed notes, checkpoints and witness cosignatures (C2SP), with Ed25519 keys, as pure functions.

Formats, from c2sp.org/signed-note, c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature:

* A **checkpoint body** is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed by optional,
  non-empty extension lines.
* A **signed note** is the body, an empty line, then one or more signature lines
  ``— <key name> <base64(4-byte key ID || signature)>\\n`` (U+2014 em dash). Verifiers ignore lines
  from keys they do not know, reject the note if a known key's signature fails, and reject it if no
  known key signed it.
* **Ed25519 note signatures** (type 0x01) sign the body; the key ID is
  ``SHA-256(name || "\\n" || 0x01 || 32-byte public key)[:4]``.
* **Witness cosignatures** (``cosignature/v1``, type 0x04) sign
  ``"cosignature/v1\\ntime <unix seconds>\\n" || body``; the key ID uses type byte 0x04 and the
  signature is ``8-byte big-endian timestamp || Ed25519 signature``.
* A **verifier key** is ``<name>+<8 hex digits of key ID>+<base64(type byte || public key)>``; a
  **signer key** (the private key file's content) is
  ``PRIVATE+KEY+<name>+<8 hex digits of key ID>+<base64(0x01 || 32-byte Ed25519 seed)>``. The same
  signer key serves a witness: its cosigning verifier key is the same public key with type 0x04.

Exceptions::

    NoteError (ValueError)
     ├── MalformedNoteError     text that is not a well-formed note, checkpoint or signature line
     ├── MalformedKeyError      a verifier or signer key string that does not parse or check out
     ├── UnknownKeyError        no signature on the note is from a key the caller trusts
     └── BadSignatureError      a signature from a trusted key does not verify
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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

ED25519 = 0x01
"""Signature type of Ed25519 note signatures (c2sp.org/signed-note)."""
COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature)."""
MAX_SIGNATURES = 100
"""Most signature lines accepted on one note (the spec asks verifiers to accept at least 16)."""

_EM_DASH = "\u2014"
_SIG_PREFIX = _EM_DASH + " "
_COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = (1 << 63) - 1
_HASH_SIZE = 32
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX8_RE = re.compile(r"[0-9a-f]{8}")
_TYPE_NAMES = {ED25519: "Ed25519", COSIGNATURE_V1: "cosignature/v1"}


class NoteError(ValueError):
    """A signed note, checkpoint or key was refused."""


class MalformedNoteError(NoteError):
    """The text is not a well-formed signed note, checkpoint body or signature line."""


class MalformedKeyError(NoteError):
    """The verifier or signer key string does not parse, or its key ID does not match its key."""


class UnknownKeyError(NoteError):
    """None of the note's signatures is from a key the caller trusts."""


class BadSignatureError(NoteError):
    """A signature from a trusted key does not verify: the note or the signature was altered."""


# ------------------------------------------------------------------------------------------- keys


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise MalformedKeyError(f"key name {name!r} must be non-empty, without spaces, control characters or '+'")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise MalformedKeyError(f"key name {name!r} is not valid UTF-8") from None


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Return the 4-byte key ID ``SHA-256(name || "\\n" || sig_type || public_key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Signer:
    """An Ed25519 private key with the name it signs under (a log's origin or a witness's name)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def seed(self) -> bytes:
        """The 32-byte Ed25519 private key seed (RFC 8032); keep it secret."""
        return self.private_key.private_bytes_raw()


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: its name, signature type (``ED25519`` or ``COSIGNATURE_V1``) and key."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID signature lines carry."""
        return key_id(self.name, self.sig_type, self.public_key)

    def _verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def signer_from_seed(name: str, seed: bytes) -> Signer:
    """Return the signer for a 32-byte Ed25519 seed (fixed seeds make reproducible test vectors)."""
    _check_name(name)
    if len(seed) != 32:
        raise MalformedKeyError(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def generate_signer(name: str) -> Signer:
    """Return a new random Ed25519 signer named ``name``."""
    _check_name(name)
    return Signer(name, Ed25519PrivateKey.generate())


def verifier_for(signer: Signer, sig_type: int = ED25519) -> Verifier:
    """Return the verifier of ``signer``'s note signatures, or of its cosignatures with ``COSIGNATURE_V1``."""
    if sig_type not in _TYPE_NAMES:
        raise MalformedKeyError(f"signature type 0x{sig_type:02x} is not supported")
    return Verifier(signer.name, sig_type, signer.public_key)


def verifier_key(signer: Signer, sig_type: int = ED25519) -> str:
    """Return the verifier key string ``<name>+<key ID hex>+<base64(type || public key)>`` to publish."""
    v = verifier_for(signer, sig_type)
    return f"{v.name}+{v.key_id.hex()}+{_b64(bytes([sig_type]) + v.public_key)}"


def parse_verifier_key(text: str) -> Verifier:
    """Parse a verifier key string (types ``ED25519`` and ``COSIGNATURE_V1``), checking its key ID."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedKeyError("a verifier key is <name>+<key ID>+<key>")
    name, hex_id, encoded = parts
    _check_name(name)
    if not _HEX8_RE.fullmatch(hex_id):
        raise MalformedKeyError(f"key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = _unb64(encoded, MalformedKeyError, "verifier key")
    if len(raw) != 33 or raw[0] not in _TYPE_NAMES:
        raise MalformedKeyError("the key is not a 1-byte Ed25519 or cosignature/v1 type and a 32-byte key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise MalformedKeyError(f"key ID {hex_id} does not match the key (expected {verifier.key_id.hex()})")
    return verifier


def dump_signer_key(signer: Signer) -> str:
    """Return the signer key string ``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>`` (secret)."""
    kid = key_id(signer.name, ED25519, signer.public_key)
    return f"PRIVATE+KEY+{signer.name}+{kid.hex()}+{_b64(bytes([ED25519]) + signer.seed)}"


def load_signer_key(text: str | bytes) -> Signer:
    """Parse a signer key string (a key file's content; surrounding whitespace is ignored).

    Error messages never include the key material.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedKeyError("a signer key file is ASCII text") from None
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise MalformedKeyError("a signer key is PRIVATE+KEY+<name>+<key ID>+<key>")
    _, _, name, hex_id, encoded = parts
    _check_name(name)
    if not _HEX8_RE.fullmatch(hex_id):
        raise MalformedKeyError("the signer key's ID is not 8 lowercase hex digits")
    raw = _unb64(encoded, MalformedKeyError, "the signer key's key part")
    if len(raw) != 33 or raw[0] != ED25519:
        raise MalformedKeyError("the signer key is not an Ed25519 (type 0x01) 32-byte seed")
    signer = signer_from_seed(name, raw[1:])
    if key_id(name, ED25519, signer.public_key).hex() != hex_id:
        raise MalformedKeyError("the signer key's ID does not match its key")
    return signer


def log_id(origin: str) -> str:
    """Return the log ID of the log named ``origin``: lowercase hex SHA-256 of the origin's UTF-8 bytes.

    Derived from the origin line, so every checkpoint carries it and a verifier recomputes it.
    """
    return hashlib.sha256(origin.encode()).hexdigest()


# ------------------------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, ending in a newline."""
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A signed note split into its text (ending in a newline) and its signature lines, unverified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: who signed, how, and for a cosignature the witness's timestamp."""

    name: str
    key_id: bytes
    sig_type: int
    timestamp: int | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, error: type[NoteError], what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not standard base64") from None
    if _b64(raw) != text:
        raise error(f"{what} is not canonical base64")
    return raw


def _check_text(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNoteError("a note must not contain control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedNoteError("a note must be valid UTF-8 (it contains a lone surrogate)") from None


def _as_text(note: str | bytes) -> str:
    if isinstance(note, bytes):
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError("a note must be valid UTF-8") from None
    return note


def _parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line without its newline."""
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(f"signature line {line[:40]!r} does not start with an em dash and a space")
    parts = line[len(_SIG_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0]:
        raise MalformedNoteError(f"signature line {line[:40]!r} is not '— <name> <base64>'")
    name, encoded = parts
    if "+" in name or any(c.isspace() for c in name):
        raise MalformedNoteError(f"key name {name!r} contains a space or '+'")
    raw = _unb64(encoded, MalformedNoteError, f"the signature of {name}")
    if len(raw) < 5:
        raise MalformedNoteError(f"the signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, checking the format but not signatures."""
    text = _as_text(note)
    _check_text(text)
    if not text.endswith("\n"):
        raise MalformedNoteError("a signed note ends with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("a signed note has an empty line between its text and its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise MalformedNoteError("a signed note has at least one signature line")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note has at most {MAX_SIGNATURES} signatures, not {len(lines)}")
    return Note(body, tuple(_parse_signature_line(line) for line in lines))


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (ending in a newline) with Ed25519 note signatures and return the signed note."""
    _check_text(text)
    if not text.endswith("\n"):
        raise MalformedNoteError("a note's text ends with a newline")
    if not signers:
        raise NoteError("a note needs at least one signer")
    message = text.encode()
    signatures = tuple(
        NoteSignature(s.name, key_id(s.name, ED25519, s.public_key), s.private_key.sign(message)) for s in signers
    )
    return str(Note(text, signatures))


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def _verify_one(note_text: str, sig: NoteSignature, verifier: Verifier) -> VerifiedSignature:
    if verifier.sig_type == COSIGNATURE_V1:
        if len(sig.signature) != 8 + 64:
            raise BadSignatureError(f"the cosignature of {sig.name} is not a timestamp and an Ed25519 signature")
        timestamp = int.from_bytes(sig.signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise BadSignatureError(f"the cosignature of {sig.name} has a timestamp above 2**63 - 1")
        if not verifier._verify(sig.signature[8:], _cosigned_message(note_text, timestamp)):
            raise BadSignatureError(f"the cosignature of {sig.name} does not verify")
        return VerifiedSignature(sig.name, sig.key_id, COSIGNATURE_V1, timestamp)
    if len(sig.signature) != 64 or not verifier._verify(sig.signature, note_text.encode()):
        raise BadSignatureError(f"the signature of {sig.name} does not verify")
    return VerifiedSignature(sig.name, sig.key_id, verifier.sig_type)


def _verify_signatures(note: Note, verifiers: Iterable[Verifier]) -> tuple[VerifiedSignature, ...]:
    """Verify every signature from a known (name, key ID); ignore the rest (c2sp.org/signed-note)."""
    known = {(v.name, v.key_id): v for v in verifiers}
    return tuple(
        _verify_one(note.text, sig, known[(sig.name, sig.key_id)])
        for sig in note.signatures
        if (sig.name, sig.key_id) in known
    )


def verify_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[Note, tuple[VerifiedSignature, ...]]:
    """Verify a signed note against trusted ``verifiers`` and return it with the signatures that verified.

    Raises ``BadSignatureError`` if any signature from a trusted key fails, and ``UnknownKeyError``
    if no trusted key signed the note.
    """
    parsed = parse_note(note)
    verified = _verify_signatures(parsed, verifiers)
    if not verified:
        names = ", ".join(sorted({s.name for s in parsed.signatures}))
        raise UnknownKeyError(f"the note is not signed by any trusted key (signed by: {names})")
    return parsed, verified


def add_signatures(note: str | bytes, lines: Iterable[str]) -> str:
    """Return the signed note with extra signature lines (e.g. cosignatures) appended.

    Lines already on the note are not repeated; each line is checked for format, not verified.
    """
    parsed = parse_note(note)
    signatures = list(parsed.signatures)
    for line in lines:
        sig = _parse_signature_line(line.removesuffix("\n"))
        if sig not in signatures:
            signatures.append(sig)
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    return str(Note(parsed.text, tuple(signatures)))


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
    body = "".join(f"{line}\n" for line in (origin, str(size), _b64(root), *extensions))
    _check_text(body)
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
    root = _unb64(encoded, MalformedNoteError, "the root hash")
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
    verified = _verify_signatures(parsed, [log, *witnesses])
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
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"timestamp {timestamp} is not between 0 and 2**63 - 1")
    signature = witness.private_key.sign(_cosigned_message(body, timestamp))
    kid = key_id(witness.name, COSIGNATURE_V1, witness.public_key)
    return NoteSignature(witness.name, kid, timestamp.to_bytes(8, "big") + signature).line()


def verify_cosignature(body: str, line: str, witness: Verifier) -> int:
    """Verify one cosignature line on a checkpoint body against a ``COSIGNATURE_V1`` verifier.

    Returns the cosignature's timestamp (POSIX seconds); raises ``UnknownKeyError`` when the line is
    from another key and ``BadSignatureError`` when it does not verify.
    """
    if witness.sig_type != COSIGNATURE_V1:
        raise MalformedKeyError(f"{witness.name} is not a cosignature/v1 verifier key")
    sig = _parse_signature_line(line.removesuffix("\n"))
    if (sig.name, sig.key_id) != (witness.name, witness.key_id):
        raise UnknownKeyError(f"the line is signed by {sig.name}+{sig.key_id.hex()}, not {witness.name}")
    result = _verify_one(body, sig, witness)
    assert result.timestamp is not None
    return result.timestamp
