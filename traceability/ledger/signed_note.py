"""Signed notes (C2SP) with Ed25519 keys, as pure functions: keys, signature lines, signing, verifying.

Formats, from c2sp.org/signed-note and c2sp.org/tlog-cosignature (checkpoints, the notes a log
signs, are in :mod:`traceability.ledger.checkpoint`):

* A **signed note** is a text, an empty line, then one or more signature lines
  ``— <key name> <base64(4-byte key ID || signature)>\\n`` (U+2014 em dash). Verifiers ignore lines
  from keys they do not know, reject the note if a known key's signature fails, and reject it if no
  known key signed it.
* **Ed25519 note signatures** (type 0x01) sign the text; the key ID is
  ``SHA-256(name || "\\n" || 0x01 || 32-byte public key)[:4]``.
* **Witness cosignatures** (``cosignature/v1``, type 0x04) sign
  ``"cosignature/v1\\ntime <unix seconds>\\n" || text``; the key ID uses type byte 0x04 and the
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
    "MAX_TIMESTAMP",
    "BadSignatureError",
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
    "b64",
    "check_text",
    "cosigned_message",
    "dump_signer_key",
    "generate_signer",
    "key_id",
    "load_signer_key",
    "parse_note",
    "parse_signature_line",
    "parse_verifier_key",
    "sign_note",
    "signer_from_seed",
    "unb64",
    "verifier_for",
    "verifier_key",
    "verify_note",
    "verify_signature",
    "verify_signatures",
]


ED25519 = 0x01
"""Signature type of Ed25519 note signatures (c2sp.org/signed-note)."""
COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature)."""
MAX_SIGNATURES = 100
"""Most signature lines accepted on one note (the spec asks verifiers to accept at least 16)."""
MAX_TIMESTAMP = (1 << 63) - 1
"""The latest cosignature timestamp (POSIX seconds) the format allows."""

_EM_DASH = "\u2014"
_SIG_PREFIX = _EM_DASH + " "
_COSIGNATURE_HEADER = "cosignature/v1\n"
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

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
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
    return f"{v.name}+{v.key_id.hex()}+{b64(bytes([sig_type]) + v.public_key)}"


def parse_verifier_key(text: str) -> Verifier:
    """Parse a verifier key string (types ``ED25519`` and ``COSIGNATURE_V1``), checking its key ID."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedKeyError("a verifier key is <name>+<key ID>+<key>")
    name, hex_id, encoded = parts
    _check_name(name)
    if not _HEX8_RE.fullmatch(hex_id):
        raise MalformedKeyError(f"key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = unb64(encoded, MalformedKeyError, "verifier key")
    if len(raw) != 33 or raw[0] not in _TYPE_NAMES:
        raise MalformedKeyError("the key is not a 1-byte Ed25519 or cosignature/v1 type and a 32-byte key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise MalformedKeyError(f"key ID {hex_id} does not match the key (expected {verifier.key_id.hex()})")
    return verifier


def dump_signer_key(signer: Signer) -> str:
    """Return the signer key string ``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>`` (secret)."""
    kid = key_id(signer.name, ED25519, signer.public_key)
    return f"PRIVATE+KEY+{signer.name}+{kid.hex()}+{b64(bytes([ED25519]) + signer.seed)}"


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
    raw = unb64(encoded, MalformedKeyError, "the signer key's key part")
    if len(raw) != 33 or raw[0] != ED25519:
        raise MalformedKeyError("the signer key is not an Ed25519 (type 0x01) 32-byte seed")
    signer = signer_from_seed(name, raw[1:])
    if key_id(name, ED25519, signer.public_key).hex() != hex_id:
        raise MalformedKeyError("the signer key's ID does not match its key")
    return signer


# ------------------------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, ending in a newline."""
        return f"{_SIG_PREFIX}{self.name} {b64(self.key_id + self.signature)}\n"


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


def b64(data: bytes) -> str:
    """Standard base64 with padding, as every field of these formats uses."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, error: type[NoteError], what: str) -> bytes:
    """Decode canonical standard base64, or raise ``error`` naming ``what``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not standard base64") from None
    if b64(raw) != text:
        raise error(f"{what} is not canonical base64")
    return raw


def check_text(text: str) -> None:
    """Refuse note text with control characters (other than newline) or that is not UTF-8."""
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


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line without its newline."""
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(f"signature line {line[:40]!r} does not start with an em dash and a space")
    parts = line[len(_SIG_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0]:
        raise MalformedNoteError(f"signature line {line[:40]!r} is not '— <name> <base64>'")
    name, encoded = parts
    if "+" in name or any(c.isspace() for c in name):
        raise MalformedNoteError(f"key name {name!r} contains a space or '+'")
    raw = unb64(encoded, MalformedNoteError, f"the signature of {name}")
    if len(raw) < 5:
        raise MalformedNoteError(f"the signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, checking the format but not signatures."""
    text = _as_text(note)
    check_text(text)
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
    return Note(body, tuple(parse_signature_line(line) for line in lines))


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (ending in a newline) with Ed25519 note signatures and return the signed note."""
    check_text(text)
    if not text.endswith("\n"):
        raise MalformedNoteError("a note's text ends with a newline")
    if not signers:
        raise NoteError("a note needs at least one signer")
    message = text.encode()
    signatures = tuple(
        NoteSignature(s.name, key_id(s.name, ED25519, s.public_key), s.private_key.sign(message)) for s in signers
    )
    return str(Note(text, signatures))


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signs: the header, the timestamp line, then the note text."""
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def verify_signature(note_text: str, sig: NoteSignature, verifier: Verifier) -> VerifiedSignature:
    """Verify one signature line from ``verifier``'s key (a note signature or a cosignature), or raise."""
    if verifier.sig_type == COSIGNATURE_V1:
        if len(sig.signature) != 8 + 64:
            raise BadSignatureError(f"the cosignature of {sig.name} is not a timestamp and an Ed25519 signature")
        timestamp = int.from_bytes(sig.signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            raise BadSignatureError(f"the cosignature of {sig.name} has a timestamp above 2**63 - 1")
        if not verifier.verify(sig.signature[8:], cosigned_message(note_text, timestamp)):
            raise BadSignatureError(f"the cosignature of {sig.name} does not verify")
        return VerifiedSignature(sig.name, sig.key_id, COSIGNATURE_V1, timestamp)
    if len(sig.signature) != 64 or not verifier.verify(sig.signature, note_text.encode()):
        raise BadSignatureError(f"the signature of {sig.name} does not verify")
    return VerifiedSignature(sig.name, sig.key_id, verifier.sig_type)


def verify_signatures(note: Note, verifiers: Iterable[Verifier]) -> tuple[VerifiedSignature, ...]:
    """Verify every signature from a known (name, key ID); ignore the rest (c2sp.org/signed-note)."""
    known = {(v.name, v.key_id): v for v in verifiers}
    return tuple(
        verify_signature(note.text, sig, known[(sig.name, sig.key_id)])
        for sig in note.signatures
        if (sig.name, sig.key_id) in known
    )


def verify_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[Note, tuple[VerifiedSignature, ...]]:
    """Verify a signed note against trusted ``verifiers`` and return it with the signatures that verified.

    Raises ``BadSignatureError`` if any signature from a trusted key fails, and ``UnknownKeyError``
    if no trusted key signed the note.
    """
    parsed = parse_note(note)
    verified = verify_signatures(parsed, verifiers)
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
        sig = parse_signature_line(line.removesuffix("\n"))
        if sig not in signatures:
            signatures.append(sig)
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    return str(Note(parsed.text, tuple(signatures)))
