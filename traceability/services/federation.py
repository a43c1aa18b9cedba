"""The federation this ledger belongs to: read from ``TRACE_FEDERATION`` at startup, checked strictly.

The file is JSON or TOML (by its suffix: ``.toml`` is TOML, anything else JSON) with the shape
:mod:`traceability.domain.federation` describes. A file that does not parse, or breaks a rule, stops
the server at startup with a :class:`~traceability.errors.ConfigError` naming the file and the problem;
so does a file that does not list this ledger (by its checkpoints' origin) under its own key.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from traceability import errors
from traceability.domain.federation import Federation, FederationError, Member, parse_federation
from traceability.ledger import checkpoint as notes
from traceability.storage import federation_repo
from traceability.storage.database import Connection, Database

MAX_FILE_BYTES = 1 << 20


def key_name(key: str) -> str:
    """The name of an Ed25519 note verifier key; ValueError when it is not one."""
    verifier = notes.parse_verifier_key(key)
    if verifier.sig_type != notes.ED25519:
        raise ValueError("not an Ed25519 note verifier key (type 0x01)")
    return verifier.name


def verifier(member: Member) -> notes.Verifier:
    """The member's pinned checkpoint key."""
    return notes.parse_verifier_key(member.key)


def load(path: Path | None) -> Federation:
    """The federation in ``path`` (no file: a federation of none, where every code is this ledger's)."""
    if path is None:
        return Federation()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise errors.ConfigError(f"TRACE_FEDERATION: cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise errors.ConfigError(f"TRACE_FEDERATION: {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise errors.ConfigError(f"TRACE_FEDERATION: {path} does not parse: {exc}") from None
    try:
        return parse_federation(data, key_name)
    except FederationError as exc:
        raise errors.ConfigError(f"TRACE_FEDERATION: {path}: {exc}") from None


def join(federation: Federation, origin: str, verifier_key: str, path: Path | None) -> Federation:
    """The federation as this ledger (``origin``, signing with ``verifier_key``) takes part in it."""
    try:
        return federation.with_own(origin, verifier_key)
    except FederationError as exc:
        raise errors.ConfigError(f"TRACE_FEDERATION: {path}: {exc}") from None


def pointer(member: Member, path: str) -> dict[str, str]:
    """Where a code whose home is ``member`` is answered: that ledger's origin and URL for ``path``."""
    return {"origin": member.origin, "name": member.name, "url": f"{member.url}{path}"}


def describe(federation: Federation) -> dict[str, Any]:
    """The federation as the public may read it: every member's origin, URL, areas and key."""
    return {
        "own": federation.own or None,
        "members": [
            {"origin": m.origin, "name": m.name, "url": m.url, "areas": list(m.areas), "key": m.key}
            for m in federation.members
        ],
    }


async def publish(db: Database, fed: Federation) -> None:
    """Tell the write path which node codes are other members' (a shipment there leaves this ledger)."""
    rows = [(m.origin, m.url, list(m.areas), m.origin == fed.own) for m in fed.members]

    async def work(conn: Connection) -> None:
        await federation_repo.replace_members(conn, rows)

    await db.transaction(work)
