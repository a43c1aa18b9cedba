"""Notes one member ledger signs for another: recall notices and member requests, as pure functions.

Both are C2SP signed notes signed with the sending ledger's checkpoint key (the key the federation file
pins for it), so a member needs no other key to check them. The first line names the kind of note, which
no checkpoint has (a checkpoint's first line is its origin, and a verifier expects the member's origin
there): a notice or a request cannot be passed off as a checkpoint, nor the other way round.

A **recall notice** (``trace-recall/v1``)::

    trace-recall/v1
    <sender's origin>
    <JSON, sorted keys, no whitespace: id, to, issued_at, level, reason, scope?, authority, source, codes>

``to`` is the receiving member's origin (a notice sent to one member is refused by every other), ``codes``
the trace codes the home ledger shipped there that the recall reached.

A **member request** (``trace-request/v1``), sent base64-encoded in the ``Trace-Member`` header of a
read one member asks another for (a trace across ledgers)::

    trace-request/v1
    <sender's origin>
    <receiver's origin>
    <METHOD> <path and query>
    <Unix time in seconds>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceability.ledger import signed_note as notes

RECALL = "trace-recall/v1"
REQUEST = "trace-request/v1"
MAX_CODES = 10_000
MAX_NOTE = 512 * 1024
REQUEST_SKEW = 300
"""Seconds a member request stays good (clocks differ; a read replayed within them only reads again)."""
_FIELDS = frozenset({"id", "to", "issued_at", "level", "reason", "scope", "authority", "source", "codes"})
_CODE = re.compile(r"[1-8][0-9]{19}")


class NoticeError(ValueError):
    """A note that is not what it claims; ``reason`` is a stable word for the refusal."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class RecallNotice:
    """A verified recall notice: who sent it, to whom, and what it recalls there."""

    origin: str
    notice_id: str
    to: str
    issued_at: datetime
    level: str
    reason: str
    scope: str | None
    authority: str
    source: str
    codes: tuple[str, ...]
    digest: bytes
    """SHA-256 of the signed note's text: the same notice sent twice has the same digest."""


def _encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_recall(signer: notes.Signer, body: dict[str, Any]) -> str:
    """The signed recall notice of ``body`` (the fields listed above) from the ledger ``signer`` signs for."""
    return notes.sign_note(f"{RECALL}\n{signer.name}\n{_encode(body)}\n", [signer])


def sender(note: str) -> str:
    """The origin a note says sent it (unverified: the key to check it with is that member's)."""
    lines = note.split("\n", 2)
    if len(note) > MAX_NOTE or len(lines) < 3 or lines[0] not in (RECALL, REQUEST):
        raise NoticeError("malformed", "not a trace-recall/v1 or trace-request/v1 signed note")
    return lines[1]


def _verified_text(note: str, key: notes.Verifier, kind: str) -> str:
    if len(note) > MAX_NOTE:
        raise NoticeError("malformed", f"a note is at most {MAX_NOTE} bytes")
    try:
        parsed, signed = notes.verify_note(note, [key])
    except notes.NoteError as exc:
        reason = "bad_signature" if isinstance(exc, notes.BadSignatureError | notes.UnknownKeyError) else "malformed"
        raise NoticeError(reason, str(exc)) from None
    if not signed:
        raise NoticeError("bad_signature", f"not signed by {key.name}")
    lines = parsed.text.split("\n")
    if lines[0] != kind or len(lines) < 3 or lines[1] != key.name:
        raise NoticeError("malformed", f"not a {kind} note from {key.name}")
    return parsed.text


def verify_recall(note: str, key: notes.Verifier) -> RecallNotice:
    """Check a recall notice's signature with the sender's pinned key and its fields; raise NoticeError."""
    text = _verified_text(note, key, RECALL)
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise NoticeError("malformed", "a recall notice is three lines")
    try:
        body = json.loads(lines[2])
    except ValueError:
        raise NoticeError("malformed", "the third line is not JSON") from None
    if not isinstance(body, dict) or set(body) - _FIELDS or _FIELDS - {"scope"} - set(body):
        raise NoticeError("malformed", f"the notice's fields are {', '.join(sorted(_FIELDS))}")
    text_fields = ("id", "to", "issued_at", "level", "reason", "authority", "source")
    if not all(isinstance(body[k], str) and 0 < len(body[k]) <= 500 for k in text_fields):
        raise NoticeError("malformed", "id, to, issued_at, level, reason, authority and source are short text")
    scope = body.get("scope")
    if scope is not None and (not isinstance(scope, str) or len(scope) > 500):
        raise NoticeError("malformed", "scope is short text")
    codes = body["codes"]
    if (
        not isinstance(codes, list)
        or not 0 < len(codes) <= MAX_CODES
        or not all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes)
    ):
        raise NoticeError("malformed", f"codes lists 1 to {MAX_CODES} trace codes")
    if body["level"] not in ("I", "II", "III") or not _CODE.fullmatch(body["source"]):
        raise NoticeError("malformed", "level is I, II or III and source a trace code")
    try:
        issued = datetime.fromisoformat(body["issued_at"])
    except ValueError:
        raise NoticeError("malformed", "issued_at is an RFC 3339 time") from None
    if issued.tzinfo is None:
        raise NoticeError("malformed", "issued_at names its offset")
    return RecallNotice(
        key.name,
        body["id"],
        body["to"],
        issued,
        body["level"],
        body["reason"],
        scope,
        body["authority"],
        body["source"],
        tuple(codes),
        hashlib.sha256(text.encode()).digest(),
    )


def sign_request(signer: notes.Signer, to: str, method: str, path: str, now: int) -> str:
    """The ``Trace-Member`` header value for a request to member ``to``: the signed note, base64."""
    note = notes.sign_note(f"{REQUEST}\n{signer.name}\n{to}\n{method} {path}\n{now}\n", [signer])
    return base64.b64encode(note.encode()).decode("ascii")


def request_sender(header: str) -> tuple[str, str]:
    """The note in a ``Trace-Member`` header and the origin it says sent it (unverified)."""
    try:
        note = base64.b64decode(header[: 2 * MAX_NOTE], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise NoticeError("malformed", "Trace-Member is the base64 of a signed note") from None
    return note, sender(note)


def verify_request(note: str, key: notes.Verifier, own: str, method: str, path: str, now: int) -> None:
    """Check a member request: signed by the member's pinned key, for this ledger, this request, and recent."""
    lines = _verified_text(note, key, REQUEST).split("\n")
    if len(lines) != 6 or lines[2] != own or lines[3] != f"{method} {path}":
        raise NoticeError("wrong_request", "the signed request is for another ledger or another request")
    if not lines[4].isdigit() or abs(int(lines[4]) - now) > REQUEST_SKEW:
        raise NoticeError("stale", f"the signed request is more than {REQUEST_SKEW} seconds from now")
