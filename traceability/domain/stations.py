"""Scanner stations: how a station signs its requests, names its keys and numbers its code blocks.

Both sides use this module: the station to sign, the server to verify, an auditor to re-verify a
stored upload years later. It is pure: no I/O, no clock (callers pass the time).

Signed requests (docs/scanners.md)::

    Authorization: Signature keyId="st_<32 hex>",created=<unix seconds>,signature="<base64 Ed25519>"

The signature is Ed25519 over the signing string, five lines joined by LF (no trailing LF)::

    trace-station/v1
    <METHOD>                  upper case, e.g. POST
    <path?query>              exactly as sent, e.g. /api/v1/stations/events
    <created>                 the same decimal number as in the header
    <hex SHA-256 of the body> of the exact body bytes (the empty body hashes too)

A key id is ``st_`` plus the first 16 bytes, in hex, of ``SHA-256("trace/station-key/v1" ‖ 0x00 ‖
raw 32-byte public key)``, so anyone holding the public key can check which id it has.

Code blocks: block ``n`` is the :data:`BLOCK_SIZE` serials starting at
``LEASE_SERIAL_BASE + BLOCK_SIZE * n``; block numbers come from one database sequence, so blocks never
overlap and are never handed out twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from traceability.domain import tracecode

SCHEME = "trace-station/v1"
MAX_SKEW_SECONDS = 300
BLOCK_SIZE = 100
MAX_BLOCK = (tracecode.MAX_SERIAL + 1 - tracecode.LEASE_SERIAL_BASE) // BLOCK_SIZE - 1
_KEY_DOMAIN = b"trace/station-key/v1\x00"
_ROTATE = "trace-station/v1 rotate"
_KEY_ID = re.compile(r"st_[0-9a-f]{32}")
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*(?:,|$)')


class SignatureFormatError(ValueError):
    """A Signature header, key or signature that is malformed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a station signed: enough to verify the signature now or from storage later."""

    key_id: str
    created: int
    signature: bytes
    method: str
    path: str
    body: bytes

    @property
    def body_digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    @property
    def message(self) -> bytes:
        return signing_string(self.method, self.path, self.created, self.body_digest)


def key_id(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise SignatureFormatError("an Ed25519 public key has 32 bytes")
    return "st_" + hashlib.sha256(_KEY_DOMAIN + public_key).hexdigest()[:32]


def signing_string(method: str, path: str, created: int, body_digest: bytes) -> bytes:
    """The exact bytes a station signs for one request."""
    return "\n".join([SCHEME, method.upper(), path, str(created), body_digest.hex()]).encode()


def authorization(key: str, created: int, signature: bytes) -> str:
    """The Authorization header value for a signed request."""
    return f'Signature keyId="{key}",created={created},signature="{b64(signature)}"'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str, length: int) -> bytes:
    """Standard or URL-safe base64 of exactly ``length`` bytes."""
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(f"{what} is not base64") from None
    if len(raw) != length:
        raise SignatureFormatError(f"{what} must be {length} bytes, not {len(raw)}")
    return raw


def parse_authorization(params: str, method: str, path: str, body: bytes) -> SignedRequest:
    """Parse the part after ``Signature `` of an Authorization header."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(params):
        m = _PARAM.match(params, pos)
        if m is None or m.end() == pos:
            raise SignatureFormatError(
                'the Signature header must look like keyId="st_…",created=1767225600,signature="…"'
            )
        found[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    missing = [k for k in ("keyId", "created", "signature") if k not in found]
    if missing:
        raise SignatureFormatError(f"the Signature header lacks {', '.join(missing)}")
    if not _KEY_ID.fullmatch(found["keyId"]):
        raise SignatureFormatError("keyId must be st_ and 32 hex digits")
    if not found["created"].isdigit() or len(found["created"]) > 12:
        raise SignatureFormatError("created must be Unix time in whole seconds")
    signature = unb64(found["signature"], "signature", 64)
    return SignedRequest(found["keyId"], int(found["created"]), signature, method.upper(), path, body)


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def rotation_message(old_key_id: str, new_key_id: str) -> bytes:
    """What a new key signs to prove its holder asked to replace ``old_key_id`` with it."""
    return f"{_ROTATE}\n{old_key_id}\n{new_key_id}".encode()


def block_range(block_no: int) -> tuple[int, int]:
    """(first serial, number of serials) of code block ``block_no``."""
    return tracecode.LEASE_SERIAL_BASE + BLOCK_SIZE * block_no, BLOCK_SIZE


def block_of(code: str) -> int | None:
    """The block number a valid trace code falls in, or None for a server-issued serial."""
    serial = tracecode.serial_of(code)
    if serial < tracecode.LEASE_SERIAL_BASE:
        return None
    return (serial - tracecode.LEASE_SERIAL_BASE) // BLOCK_SIZE


# -- the enrolment QR code -------------------------------------------------------------------------

ENROL_PREFIX = "TRACE-ENROL/1"
"""First word of an enrolment QR code: ``TRACE-ENROL/1 <server URL> <one-time code>``. Not a web address, so
a phone camera that reads it by chance does not send the code to any site (or to a browser's history)."""
_ENROL_CODE = re.compile(r"[0-9A-Za-z]{4}(?:-?[0-9A-Za-z]{4}){3}")


class EnrolmentPayloadError(ValueError):
    """Text that is not an enrolment QR code; the message says what is wrong."""


def enrolment_payload(server: str, code: str) -> str:
    """The text of the enrolment QR code that binds a station to ``server`` with the one-time ``code``."""
    return f"{ENROL_PREFIX} {server.rstrip('/')} {code}"


def parse_enrolment_payload(text: str) -> tuple[str, str]:
    """(server URL, one-time code) from a scanned enrolment QR code."""
    parts = text.strip().split()
    if len(parts) != 3 or parts[0].upper() != ENROL_PREFIX:
        raise EnrolmentPayloadError(f"not an enrolment code: it starts with {ENROL_PREFIX} and holds a URL and a code")
    server, code = parts[1], parts[2]
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", server):
        raise EnrolmentPayloadError("the enrolment code's server is not an http(s) address")
    if not _ENROL_CODE.fullmatch(code):
        raise EnrolmentPayloadError("the enrolment code's one-time code is not 16 letters and digits")
    return server.rstrip("/"), code.upper()


# -- the stall card ---------------------------------------------------------------------------------

CARD_PREFIX = "TRACE-STALL/1"
"""A stall card's QR code: ``TRACE-STALL/1 tvc_<token>``. The vendor page reads it (a photo, or a barcode
gun typing it) together with the vendor's PIN; on its own it signs nobody in, and it is no web address."""
CARD_TOKEN_PREFIX = "tvc_"  # noqa: S105 - the prefix that names the kind of token, not a secret
_CARD_TOKEN = re.compile(r"tvc_[A-Za-z0-9_-]{20,64}")
PIN_DIGITS = 6


def card_payload(token: str) -> str:
    """The text of a stall card's QR code."""
    return f"{CARD_PREFIX} {token}"


def card_token(text: str) -> str | None:
    """The card token in a scanned stall card (or the bare token), or None when it is not one."""
    parts = text.strip().split()
    if len(parts) == 2 and parts[0].upper() == CARD_PREFIX:
        parts = parts[1:]
    if len(parts) == 1 and _CARD_TOKEN.fullmatch(parts[0]):
        return parts[0]
    return None


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` is not a usable PIN (six digits, not all the same, not a run like 123456), or None."""
    if not re.fullmatch(rf"[0-9]{{{PIN_DIGITS}}}", pin):
        return f"the PIN is {PIN_DIGITS} digits"
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if steps in ({0}, {1}, {-1}):
        return "the PIN is too easy to guess (all the same digit, or a run like 123456)"
    return None
