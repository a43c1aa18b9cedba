"""Federation: the city ledgers that know each other, and which one is home for a code or a node.

A federation file lists member ledgers (docs/federation.md)::

    {"members": [{"origin": "xuzhou.example/log", "url": "https://xuzhou.example",
                  "areas": ["3203"], "key": "xuzhou.example/log+1a2b3c4d+AV..."}, ...]}

``origin`` is the signed-note origin of the member's checkpoints, ``key`` its Ed25519 note verifier
key (the form ``/api/v1/log/public-key`` serves; its name is the origin), ``areas`` the GB/T 2260
area-code prefixes it is home for: 2 digits (a province), 4 (a city) or 6 (a district), a 6-digit
code ending in ``00`` or ``0000`` standing for its city or province (``320300`` is ``3203``).
No prefix may cover another (two homes for one code), within a member or across members.

A trace code's home is the member whose prefix covers the code's first six digits (the issuing
node's area code); a node's home likewise by its code's first six digits. A code no member covers is
nobody's: the ledger answers for it as it always did. Pure: parsing and lookups, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_MEMBERS = 1000
MAX_AREAS = 500
_PREFIX = re.compile(r"[1-8][0-9](?:[0-9]{2}){0,2}")
_MEMBER_FIELDS = frozenset({"origin", "url", "areas", "key", "name", "replication"})
_CONNINFO_KEYS = frozenset({"host", "hostaddr", "port", "dbname", "user", "sslmode", "sslrootcert", "application_name"})


class FederationError(ValueError):
    """A federation file that is not well-formed; the message names the member and the field."""


@dataclass(frozen=True, slots=True)
class Member:
    """One member ledger: its checkpoints' origin, where it serves, what it is home for, its pinned key."""

    origin: str
    url: str
    areas: tuple[str, ...]
    key: str
    name: str = ""
    replication: str = ""
    """libpq conninfo a province subscribes to the member with (``traceability province subscribe --all``)."""


@dataclass(frozen=True, slots=True)
class Federation:
    """The members, and which of them this ledger is (``own``: its origin; empty without a federation)."""

    members: tuple[Member, ...] = ()
    own: str = ""

    @property
    def urls(self) -> tuple[str, ...]:
        """The base URLs of the other members."""
        return tuple(m.url for m in self.members if m.origin != self.own)

    def member(self, origin: str) -> Member | None:
        """The member whose checkpoints carry ``origin``."""
        return next((m for m in self.members if m.origin == origin), None)

    def home_of_area(self, area: str) -> Member | None:
        """The member home for the 6-digit area code ``area`` (None when no member covers it)."""
        for m in self.members:
            if any(area.startswith(p) for p in m.areas):
                return m
        return None

    def home_of(self, code: str) -> Member | None:
        """The member home for a trace code or a node code (by its first six digits), or None."""
        area = code[:6]
        return self.home_of_area(area) if len(area) == 6 and area.isdigit() else None

    def elsewhere(self, code: str) -> Member | None:
        """The member home for ``code`` when that is another ledger than this one."""
        home = self.home_of(code)
        return home if home is not None and home.origin != self.own else None

    def with_own(self, origin: str, verifier_key: str) -> Federation:
        """This federation as the ledger of ``origin`` signing with ``verifier_key`` sees it; that ledger
        must be a member, under the same key."""
        if not self.members:
            return Federation((), origin)
        me = self.member(origin)
        if me is None:
            raise FederationError(
                f"this ledger's origin {origin!r} is not a member; members are: "
                + ", ".join(repr(m.origin) for m in self.members)
            )
        if me.key != verifier_key:
            raise FederationError(f"member {origin!r}: key is not this ledger's verifier key {verifier_key}")
        return Federation(self.members, origin)


def canonical_prefix(raw: str) -> str:
    """An area prefix without the trailing ``00`` pairs that stand for a whole city or province."""
    prefix = raw
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def _text(member: str, data: Mapping[str, Any], key: str, max_len: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FederationError(f"{member}: {key} must be a non-empty string")
    if len(value) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise FederationError(f"{member}: {key} must be one line of at most {max_len} characters")
    return value


def _url(member: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise FederationError(f"{member}: url {raw!r} must be an http(s) base URL without query or fragment")
    return raw.rstrip("/")


def _areas(member: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_AREAS:
        raise FederationError(f"{member}: areas must be a list of 1 to {MAX_AREAS} area-code prefixes")
    out = []
    for item in raw:
        if not isinstance(item, str) or not _PREFIX.fullmatch(item):
            raise FederationError(
                f"{member}: area {item!r} is not a 2-, 4- or 6-digit GB/T 2260 area-code prefix (first digit 1-8)"
            )
        out.append(canonical_prefix(item))
    return tuple(out)


KeyName = Callable[[str], str]
"""Checks a verifier key (an Ed25519 note verifier key) and returns its name; raises ValueError saying why not."""


def _member(n: int, data: Any, key_name: KeyName) -> Member:
    where = f"members[{n}]"
    if not isinstance(data, Mapping):
        raise FederationError(f"{where}: a member is a table of origin, url, areas and key")
    unknown = sorted(set(data) - _MEMBER_FIELDS)
    if unknown:
        raise FederationError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_MEMBER_FIELDS))})")
    origin = _text(where, data, "origin", 200)
    where = f"members[{n}] ({origin})"
    url = _url(where, _text(where, data, "url", 400))
    key = _text(where, data, "key", 400)
    try:
        named = key_name(key)
    except ValueError as exc:
        raise FederationError(f"{where}: key: {exc}") from None
    if named != origin:
        raise FederationError(f"{where}: key is named {named!r}; a log's key is named by its origin")
    name = _text(where, data, "name", 200) if "name" in data else ""
    replication = _conninfo(where, _text(where, data, "replication", 400)) if "replication" in data else ""
    return Member(origin, url, _areas(where, data.get("areas")), key, name, replication)


def _conninfo(member: str, raw: str) -> str:
    """``key=value`` pairs a province may connect with: no password (it belongs in ``~/.pgpass``)."""
    for part in raw.split():
        key, sep, value = part.partition("=")
        if not sep or not value or "'" in part:
            raise FederationError(f"{member}: replication must be libpq key=value pairs, got {part!r}")
        if key not in _CONNINFO_KEYS:
            raise FederationError(
                f"{member}: replication: {key!r} is not allowed (allowed: {', '.join(sorted(_CONNINFO_KEYS))}); "
                "a password belongs in the province's ~/.pgpass"
            )
    return raw


def parse_federation(data: Any, key_name: KeyName) -> Federation:
    """Check a federation file's content strictly; raise :class:`FederationError` naming the problem."""
    if not isinstance(data, Mapping):
        raise FederationError("a federation file is a table with a list of members")
    unknown = sorted(set(data) - {"members"})
    if unknown:
        raise FederationError(f"unknown top-level field {unknown[0]!r} (known: members)")
    raw = data.get("members")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MEMBERS:
        raise FederationError(f"members must be a list of 1 to {MAX_MEMBERS} member ledgers")
    members = [_member(n, m, key_name) for n, m in enumerate(raw)]
    for field in ("origin", "url"):
        seen: dict[str, int] = {}
        for n, m in enumerate(members):
            value = getattr(m, field)
            if value in seen:
                raise FederationError(f"members[{seen[value]}] and members[{n}] have the same {field} {value!r}")
            seen[value] = n
    owners = [(p, n, m) for n, m in enumerate(members) for p in m.areas]
    for i, (p, n, m) in enumerate(owners):
        for q, k, other in owners[i + 1 :]:
            if p.startswith(q) or q.startswith(p):
                raise FederationError(
                    f"area prefixes overlap: {p!r} of members[{n}] ({m.origin}) and {q!r} of members[{k}] "
                    f"({other.origin}); every area code must have one home"
                )
    return Federation(tuple(members))
