"""Sealing the private part of an event: commercial details committed to, not published.

    sealed = SHA-256("trace/sealed/v1" || 0x00 || salt || canonical bytes of the private fields)

The 16-byte random salt keeps a price from being guessed by hashing candidates. The canonical
event bytes carry the seal as hex under ``"sealed"``; salt and private bytes are stored beside
them (``salt || private bytes``), shown only to those entitled to see them.
"""

from __future__ import annotations

import hmac
import os
from hashlib import sha256

SEAL_TAG = b"trace/sealed/v1\x00"
SALT_SIZE = 16


def seal(private: bytes, salt: bytes | None = None) -> tuple[str, bytes]:
    """Return the seal (hex) and the blob to store (salt followed by the private bytes)."""
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    if len(salt) != SALT_SIZE:
        raise ValueError(f"a salt is {SALT_SIZE} bytes")
    return sha256(SEAL_TAG + salt + private).hexdigest(), salt + private


def private_bytes(blob: bytes) -> bytes:
    """The private canonical bytes inside a stored blob."""
    return blob[SALT_SIZE:]


def matches(seal_hex: str, blob: bytes) -> bool:
    """Whether a stored blob is the one the seal commits to."""
    digest = sha256(SEAL_TAG + blob).hexdigest()
    return hmac.compare_digest(digest, seal_hex)
