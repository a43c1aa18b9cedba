"""The station's side of the wire: its Ed25519 key, and HTTP requests signed with it.

The signing string and header are defined in :mod:`traceability.domain.stations` (docs/scanners.md),
so station and server cannot drift apart. The client keeps its own estimate of the server's clock
from each response's ``Date`` header, so a station whose clock is off still signs a fresh ``created``.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceability.domain import stations

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


class Unreachable(Exception):
    """The server could not be reached or did not answer in time; try again later."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        err = self.data.get("error") if isinstance(self.data, dict) else None
        return err if isinstance(err, dict) else {"code": f"http_{self.status}", "message": str(self.data)[:200]}

    @property
    def message(self) -> str:
        return f"{self.status} {self.error.get('code')}: {self.error.get('message')}"


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def save_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write the private key (PKCS#8 PEM, mode 0600) atomically: a crash leaves the old file or the new one."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return key


class SigningClient:
    """Signed JSON requests to one server. Use as an async context manager."""

    def __init__(self, server: str, key: Ed25519PrivateKey, clock_offset: float = 0.0) -> None:
        self.server = server.rstrip("/")
        self.key = key
        self.key_id = stations.key_id(public_bytes(key))
        self.clock_offset = clock_offset
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SigningClient:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def sign(self, method: str, path: str, body: bytes) -> str:
        created = int(time.time() + self.clock_offset)
        message = stations.signing_string(method, path, created, hashlib.sha256(body).digest())
        return stations.authorization(self.key_id, created, self.key.sign(message))

    async def call(self, method: str, path: str, payload: Any = None, *, signed: bool = True) -> Answer:
        """One request; raises :class:`Unreachable` on network failure or timeout."""
        assert self._session is not None, "use SigningClient as an async context manager"
        body = b"" if payload is None else orjson.dumps(payload)
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if signed:
            headers["Authorization"] = self.sign(method, path, body)
        try:
            async with self._session.request(method, self.server + path, data=body or None, headers=headers) as resp:
                self._note_clock(resp.headers.get("Date"))
                raw = await resp.read()
                try:
                    data = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    data = raw[:200].decode("utf-8", "replace")
                return Answer(resp.status, data)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    def _note_clock(self, date: str | None) -> None:
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        skew = server - time.time()
        # Date has whole seconds; only a real drift is worth correcting.
        self.clock_offset = skew if abs(skew) > 30 else 0.0
