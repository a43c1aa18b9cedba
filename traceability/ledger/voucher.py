"""Handover vouchers: the proof a shipment to another ledger's node carries, built and checked as pure functions.

A voucher (``trace-handover/v1``, docs/federation.md) is a JSON object::

    format       "trace-handover/v1"
    origin       the home ledger's checkpoint origin
    trace_code   the batch's trace code
    event_id     the shipment's event id
    chain        the canonical bytes (UTF-8 text) of every event of the batch up to and including the
                 shipment, in chain order: the first links to genesis(trace_code), the last is the shipment
    event_hash   hex chain hash of the shipment
    sealed       hex of the shipment's seal opening (16-byte salt ‖ canonical private bytes): its
                 destination (and its prices; a trade voucher travels with the goods anyway)
    leaf_index, tree_size, audit_path   the RFC 9162 inclusion proof of the shipment's leaf
    checkpoint   the home ledger's signed checkpoint of tree_size
    previous     (only for a batch the issuing ledger itself received from another) the voucher it received
                 the batch with, as received: its chain here starts at that voucher's ``event_hash``

:func:`verify` checks, in this order, naming the first failure: the shape; the checkpoint's signature by
the pinned key; that the chain hashes to ``event_hash`` from the genesis value (or, passed on by a ledger
that received the batch itself, from the shipment hash of the ``previous`` voucher, verified first); that
the last event is the batch's shipment; that the seal opens; and that ``event_hash``'s leaf is in the
signed tree. What a voucher cannot say by itself (that the checkpoint is consistent with the ones seen before, that the
destination is a node here) the receiving ledger checks with what it knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from traceability.ledger import canonical, chain, merkle, proofs, sealed
from traceability.ledger import checkpoint as notes

FORMAT = "trace-handover/v1"
MAX_CHAIN = 256
"""Events of the batch up to its shipment, at most (a voucher must fit on a label or in one request)."""
MAX_EVENT_BYTES = 64 * 1024
MAX_HOPS = 4
"""Ledgers a batch may pass through with vouchers (the innermost voucher and three passed on)."""
OPTIONAL = frozenset({"previous"})
FIELDS = frozenset(
    {
        "format",
        "origin",
        "trace_code",
        "event_id",
        "chain",
        "event_hash",
        "sealed",
        "leaf_index",
        "tree_size",
        "audit_path",
        "checkpoint",
    }
)
_HEX32 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2}){16,8192}")
_CODE = re.compile(r"[1-8][0-9]{19}")


class VoucherError(ValueError):
    """A voucher that does not prove what it claims. ``reason`` is a stable word for the refusal."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified voucher proves: the home ledger logged this chain, ending in this shipment."""

    origin: str
    trace_code: str
    event_id: str
    event_hash: bytes
    events: tuple[dict[str, Any], ...]
    """Every event of the chain (decoded canonical content), the shipment last."""
    private: dict[str, Any]
    """The shipment's sealed details: its destination, its prices."""
    leaf_index: int
    checkpoint: notes.Checkpoint
    previous: Verified | None = None
    """The voucher the issuing ledger received the batch with, verified (None at the batch's home)."""

    @property
    def shipment(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def opening(self) -> dict[str, Any]:
        """The batch's first event, at its home ledger: its product, quantity and dates."""
        return self.previous.opening if self.previous is not None else self.events[0]

    @property
    def home(self) -> str:
        """The origin of the ledger the batch was opened at."""
        return self.previous.home if self.previous is not None else self.origin

    @property
    def hops(self) -> tuple[Verified, ...]:
        """This voucher and the ones before it, the home ledger's first."""
        return (*self.previous.hops, self) if self.previous is not None else (self,)

    @property
    def seq(self) -> int:
        """The shipment's place in its chain (the first event is 1)."""
        return len(self.events)

    @property
    def destination(self) -> str | None:
        """The node code the shipment names as its destination."""
        party = self.private.get("destination")
        node = party.get("node") if isinstance(party, dict) else None
        return node if isinstance(node, str) else None


def build(
    origin: str,
    trace_code: str,
    event_id: str,
    chain_bytes: list[bytes],
    event_hash: bytes,
    private: bytes,
    leaf_index: int,
    tree_size: int,
    audit_path: list[bytes],
    checkpoint: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The voucher for a shipment, from what the issuing ledger stores (``previous``: the voucher it received
    the batch with, when it is not the batch's home)."""
    return {
        **({"previous": previous} if previous is not None else {}),
        "format": FORMAT,
        "origin": origin,
        "trace_code": trace_code,
        "event_id": event_id,
        "chain": [c.decode("utf-8") for c in chain_bytes],
        "event_hash": event_hash.hex(),
        "sealed": private.hex(),
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "audit_path": [h.hex() for h in audit_path],
        "checkpoint": checkpoint,
    }


def _shape(v: Any) -> None:
    if not isinstance(v, dict):
        raise VoucherError("malformed", "a voucher is a JSON object")
    unknown = sorted(set(v) - FIELDS - OPTIONAL)
    if unknown:
        raise VoucherError("malformed", f"unknown field {unknown[0][:40]!r}")
    missing = sorted(FIELDS - set(v))
    if missing:
        raise VoucherError("malformed", f"missing field {missing[0]!r}")
    if v["format"] != FORMAT:
        raise VoucherError("malformed", f"format must be {FORMAT!r}")
    for key in ("origin", "event_id", "checkpoint"):
        if not isinstance(v[key], str) or not 0 < len(v[key]) <= 8192:
            raise VoucherError("malformed", f"{key} must be a string")
    if not isinstance(v["trace_code"], str) or not _CODE.fullmatch(v["trace_code"]):
        raise VoucherError("malformed", "trace_code must be a 20-digit trace code")
    for key in ("leaf_index", "tree_size"):
        if not isinstance(v[key], int) or isinstance(v[key], bool) or not 0 <= v[key] < 2**63:
            raise VoucherError("malformed", f"{key} must be a whole number")
    if not isinstance(v["event_hash"], str) or not _HEX32.fullmatch(v["event_hash"]):
        raise VoucherError("malformed", "event_hash must be 64 lowercase hex digits")
    if not isinstance(v["sealed"], str) or not _HEX.fullmatch(v["sealed"]):
        raise VoucherError("malformed", "sealed must be the hex of the shipment's seal opening")
    path = v["audit_path"]
    if (
        not isinstance(path, list)
        or len(path) > 64
        or not all(isinstance(h, str) and _HEX32.fullmatch(h) for h in path)
    ):
        raise VoucherError("malformed", "audit_path must be a list of at most 64 hashes in hex")
    events = v["chain"]
    if not isinstance(events, list) or not 0 < len(events) <= MAX_CHAIN:
        raise VoucherError("malformed", f"chain must list 1 to {MAX_CHAIN} events")
    if not all(isinstance(e, str) and 0 < len(e) <= MAX_EVENT_BYTES for e in events):
        raise VoucherError("malformed", "chain lists each event's canonical bytes as text")


KeyOf = Callable[[str], "notes.Verifier | None"]
"""The pinned key of a member ledger by its origin (None: not a member)."""


def verify(v: Any, log_key: notes.Verifier, key_of: KeyOf | None = None, *, _hops: int = 1) -> Verified:
    """Check a voucher against its issuing ledger's pinned key (and a ``previous`` one against its own ledger's,
    from ``key_of``); raise :class:`VoucherError` naming what fails."""
    _shape(v)
    previous = None
    if "previous" in v:
        inner = v["previous"]
        origin = inner.get("origin") if isinstance(inner, dict) else None
        inner_key = key_of(origin) if key_of is not None and isinstance(origin, str) else None
        if _hops >= MAX_HOPS:
            raise VoucherError("malformed", f"a batch passes through at most {MAX_HOPS} ledgers with vouchers")
        if inner_key is None:
            raise VoucherError("bad_signature", f"previous: {str(origin)[:200]} is not a member ledger")
        previous = verify(inner, inner_key, key_of, _hops=_hops + 1)
        if previous.trace_code != v["trace_code"]:
            raise VoucherError("altered", "previous: a voucher of another batch")
    try:
        cp = notes.verify_checkpoint(v["checkpoint"], log_key, origin=v["origin"])
    except notes.NoteError as exc:
        raise VoucherError("bad_signature", f"the checkpoint is not signed by {log_key.name}: {exc}") from None
    if cp.size != v["tree_size"]:
        raise VoucherError("bad_proof", f"tree_size {v['tree_size']} is not the checkpoint's size {cp.size}")
    code = v["trace_code"]
    prev = previous.event_hash if previous is not None else chain.genesis(code)
    events = []
    for n, text in enumerate(v["chain"]):
        data = text.encode("utf-8")
        try:
            content = canonical.decode(data)
        except (ValueError, canonical.CanonicalError):
            raise VoucherError("malformed", f"chain[{n}] is not a JSON object") from None
        if content.get("traceCode") != code:
            raise VoucherError("altered", f"chain[{n}] is not an event of batch {code}")
        events.append(content)
        prev = chain.link(prev, data)
    if prev.hex() != v["event_hash"]:
        raise VoucherError("altered", "the events' bytes do not hash to event_hash: an event was changed")
    shipment = events[-1]
    if shipment.get("eventID") != v["event_id"] or shipment.get("bizStep") != "shipping":
        raise VoucherError("not_shipment", f"the last event of the chain is not shipment {v['event_id']}")
    blob = bytes.fromhex(v["sealed"])
    seal = shipment.get("sealed")
    if not isinstance(seal, str) or not sealed.matches(seal, blob):
        raise VoucherError("altered", "the seal opening does not match the shipment's seal")
    try:
        private = canonical.decode(sealed.private_bytes(blob))
    except ValueError:
        raise VoucherError("altered", "the seal opening is not the shipment's details") from None
    try:
        proofs.verify_inclusion(
            merkle.leaf_hash(prev), v["leaf_index"], cp.size, [bytes.fromhex(h) for h in v["audit_path"]], cp.root
        )
    except merkle.InvalidProofError as exc:
        raise VoucherError("bad_proof", f"the shipment is not proved in the signed log: {exc}") from None
    return Verified(v["origin"], code, v["event_id"], prev, tuple(events), private, v["leaf_index"], cp, previous)


def consistent(older: notes.Checkpoint, newer: notes.Checkpoint, proof: list[bytes]) -> None:
    """Check that ``newer`` extends ``older`` (either may be the larger; equal sizes need equal roots).

    Raises :class:`VoucherError` ``inconsistent`` when the proof does not hold."""
    first, second = (older, newer) if older.size <= newer.size else (newer, older)
    try:
        proofs.verify_consistency(first.size, second.size, proof, first.root, second.root)
    except merkle.InvalidProofError as exc:
        raise VoucherError(
            "inconsistent", f"checkpoints of sizes {first.size} and {second.size} are not one history: {exc}"
        ) from None


COMPACT_PREFIX = "TRV1:"
MAX_EXPANDED = 2 * 1024 * 1024


def encode(v: dict[str, Any]) -> bytes:
    """A voucher's bytes as its digest covers them: sorted-key JSON, no insignificant whitespace."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(v: dict[str, Any]) -> str:
    """The hex SHA-256 of :func:`encode` (printed beside a voucher that travels as a link)."""
    return hashlib.sha256(encode(v)).hexdigest()


def compact(v: dict[str, Any]) -> str:
    """The voucher as one line of text for a QR code: ``TRV1:`` and base64url of its deflated bytes."""
    packed = zlib.compress(encode(v), 9)
    return COMPACT_PREFIX + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def expand(text: str) -> Any:
    """The voucher a :func:`compact` line holds (its JSON, not yet verified)."""
    if not text.startswith(COMPACT_PREFIX):
        raise VoucherError("malformed", f"a voucher read from a QR code starts with {COMPACT_PREFIX}")
    body = text[len(COMPACT_PREFIX) :]
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_EXPANDED)
        whole = not inflater.unconsumed_tail
        value = json.loads(raw) if whole else None
    except (ValueError, zlib.error):
        raise VoucherError("malformed", "the QR code's text is not a voucher") from None
    if not whole:
        raise VoucherError("malformed", f"the voucher is larger than {MAX_EXPANDED} bytes")
    return value
