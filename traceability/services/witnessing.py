"""Members of a federation witness each other, and catch a member that shows two histories.

While ``traceability serve`` runs with a federation file, one process (a PostgreSQL advisory lock, as for the
sequencer) does, every ``TRACE_WITNESS_INTERVAL_MS``:

* **witnessing**, for each other member that is due: fetch its latest checkpoint, verify it with the pinned
  key, check it is one history with the largest checkpoint of it kept here (an RFC 9162 consistency proof from
  its ``/api/v1/log/consistency``), keep it, cosign it (``cosignature/v1`` with this ledger's log key, under
  its origin) and post the cosigned note back to the member. A member that does not answer is asked again
  after a back-off that doubles up to :data:`MAX_BACKOFF`; how each member went is kept (``witness_status``).
* **gossip**: ask each other member for the checkpoints it holds of the others
  (``GET /api/v1/federation/witnessed``) and check each against the one kept here.

Two checkpoints of one member, both signed with its key, that are not one history (the same size with
different roots; a proof that fails; a member that refuses to prove it, or shows a smaller tree than one it
signed) are a **split view**: both notes are kept as evidence (``split_views``), the member is no longer
cosigned, and its handover vouchers are refused until an administrator clears it. A member that cannot be
reached proves nothing either way: that is only a failure to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from traceability.domain.federation import Federation, Member
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle, proofs
from traceability.ledger.signed_note import b64
from traceability.logging import get_logger
from traceability.services import federation, transparency
from traceability.services.exclusive import run_exclusive
from traceability.services.transparency import Log
from traceability.storage import federation_repo, witness_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

WITNESS_LOCK = 0x7472616365776974  # "tracewit"
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
MAX_NOTE_BYTES = 16 * 1024
MAX_LISTING_BYTES = 4 * 1024 * 1024
MAX_PROOF_BYTES = 64 * 1024
MAX_BACKOFF = 600.0
PARALLEL = 8
PROVING_REFUSALS = frozenset({400, 409, 410, 422})
"""What a member answers a consistency request with when it will not (cannot) prove it: evidence, unlike a
network error, a 5xx, a 404 (a route it may not have) or a 429."""


class Unreachable(Exception):
    """The member did not answer usefully (network, timeout, 5xx, a malformed answer): nothing is proved."""


class Proven(Exception):
    """Two signed checkpoints of one member that are not one history."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


async def _read(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refused beyond ``limit`` bytes without reading further."""
    chunks, total = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise Unreachable(f"the answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def get_bytes(http: aiohttp.ClientSession, url: str, limit: int, **params: int) -> bytes:
    """The body of a GET answered 200, at most ``limit`` bytes; :class:`Unreachable` otherwise."""
    try:
        async with http.get(url, params=params or None, allow_redirects=False) as resp:
            if resp.status != 200:
                raise Unreachable(f"HTTP {resp.status} from {url}")
            return await _read(resp, limit)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise Unreachable(f"{url}: {type(exc).__name__}") from None


async def fetch_proof(http: aiohttp.ClientSession, member: Member, first: int, second: int) -> list[bytes]:
    """An RFC 9162 consistency proof from the member itself that its tree of ``second`` extends ``first``.

    :class:`Proven` (``no_proof``) when the member refuses with a 4xx that means it will not prove it."""
    url = f"{member.url}/api/v1/log/consistency"
    try:
        async with http.get(url, params={"first": first, "second": second}, allow_redirects=False) as resp:
            raw = await _read(resp, MAX_PROOF_BYTES)
            if resp.status in PROVING_REFUSALS:
                said = raw[:200].decode("utf-8", "replace")
                raise Proven("no_proof", f"{member.origin} will not prove size {second} extends {first}: {said}")
            if resp.status != 200:
                raise Unreachable(f"HTTP {resp.status} from {url}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise Unreachable(f"{url}: {type(exc).__name__}") from None
    try:
        body = orjson.loads(raw)
        return [bytes.fromhex(h) for h in body["proof"][:64]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise Unreachable(f"{url}: not a consistency proof") from None


async def one_history(
    http: aiohttp.ClientSession, member: Member, held_size: int, held_root: bytes, cp: notes.Checkpoint
) -> None:
    """Check that a checkpoint of ``member`` and the one held of it are one history, or raise :class:`Proven`
    (the member's own proof fetched when the sizes differ; :class:`Unreachable` when it cannot be had)."""
    if held_size == cp.size:
        if held_root != cp.root:
            raise Proven("same_size", f"two different trees of size {cp.size}")
        return
    (small, small_root), (large, large_root) = sorted(((held_size, held_root), (cp.size, cp.root)))
    if small == 0:
        return
    try:
        proof = await fetch_proof(http, member, small, large)
    except Proven as exc:
        if cp.size < held_size:  # it now shows a smaller tree than one it signed, and cannot prove it grew
            raise Proven("shrank", f"size {cp.size} after size {held_size}: {exc.detail}") from None
        raise
    try:
        proofs.verify_consistency(small, large, proof, small_root, large_root)
    except merkle.InvalidProofError as exc:
        raise Proven("not_consistent", f"sizes {small} and {large} are not one history: {exc}") from None


async def record_split_view(
    db: Database, origin: str, held_note: str, note: str, proven: Proven, via: str
) -> int | None:
    """Keep the evidence (both signed notes) of a split view of ``origin``, unless one is open already."""

    async def work(conn: Connection) -> int | None:
        return await witness_repo.insert_split_view(conn, origin, held_note, note, proven.reason, proven.detail, via)

    found = await db.transaction(work)
    if found is not None:
        log.error("federation.split_view", origin=origin, reason=proven.reason, via=via, split_view=found)
    return found


@dataclass
class Witness:
    """The witnessing and gossip rounds of one process (only the process holding :data:`WITNESS_LOCK`)."""

    db: Database
    lg: Log
    fed: Federation
    interval: float
    http: aiohttp.ClientSession
    failures: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)
    posted: dict[str, int] = field(default_factory=dict)

    @property
    def others(self) -> tuple[Member, ...]:
        return tuple(m for m in self.fed.members if m.origin != self.fed.own)

    async def step(self, _conn: Connection) -> bool:
        """One round over the members that are due, then the gossip; never more work waiting."""
        gate = asyncio.Semaphore(PARALLEL)
        now = time.monotonic()

        async def bounded(member: Member) -> None:
            async with gate:
                await self.witness(member)
                await self.gossip(member)

        due = [m for m in self.others if self.due.get(m.origin, 0.0) <= now]
        await asyncio.gather(*(bounded(m) for m in due))
        return False

    async def _status(self, member: Member, size: int | None, problem: str | None, backoff: bool = True) -> None:
        failures = 0 if problem is None else self.failures.get(member.origin, 0) + 1
        self.failures[member.origin] = failures
        delay = self.interval if not backoff or failures == 0 else min(self.interval * 2 ** (failures - 1), MAX_BACKOFF)
        self.due[member.origin] = time.monotonic() + delay
        now = datetime.now(UTC)
        async with self.db.connection() as conn:
            await witness_repo.record_status(
                conn, member.origin, now, size, failures, problem, now + timedelta(seconds=delay)
            )

    async def witness(self, member: Member) -> None:
        """Fetch, verify, check, keep, cosign and post one member's latest checkpoint; report how it went."""
        try:
            size = await self._witness(member)
        except Unreachable as exc:
            log.warning("federation.witness_failed", origin=member.origin, problem=str(exc)[:200])
            await self._status(member, None, f"unreachable: {exc}")
        except notes.NoteError as exc:
            log.warning("federation.witness_refused", origin=member.origin, problem=str(exc)[:200])
            await self._status(member, None, f"bad_checkpoint: {exc}")
        except Proven as exc:  # asked at the usual pace: an administrator's clearance takes effect next round
            await self._status(member, None, f"split_view: {exc.reason}", backoff=False)
        else:
            await self._status(member, size, None)

    async def _witness(self, member: Member) -> int:
        raw = await get_bytes(self.http, f"{member.url}/api/v1/log/checkpoint", MAX_NOTE_BYTES)
        text = raw.decode("utf-8", "replace")
        cp = notes.verify_checkpoint(text, federation.verifier(member), origin=member.origin)
        async with self.db.connection() as conn:
            if await witness_repo.open_split_view(conn, member.origin) is not None:
                raise Proven("open", "a split view of this member is open; not cosigned until it is cleared")
            held = await witness_repo.latest_checkpoint(conn, member.origin)
        if held is not None:
            try:
                await one_history(self.http, member, held["size"], held["root"], cp)
            except Proven as exc:
                await record_split_view(self.db, member.origin, held["note"], text, exc, "witness")
                raise
            if cp.size < held["size"]:
                return int(held["size"])  # an older checkpoint (a lagging replica there): nothing new to cosign
        line = notes.cosign(cp.body, self.lg.signer, int(time.time()))
        cosigned = notes.add_signatures(text, [line])

        async def keep(conn: Connection) -> None:
            await federation_repo.lock_member(conn, member.origin)  # vouchers of the member check against it
            await witness_repo.insert_checkpoint(conn, member.origin, cp.size, cp.root, text, "witness")
            await witness_repo.insert_cosignature(conn, member.origin, cp.size, cosigned)

        await self.db.transaction(keep)
        if self.posted.get(member.origin) != cp.size:
            await self._post(member, cosigned)
            self.posted[member.origin] = cp.size
            log.info("federation.cosigned", origin=member.origin, size=cp.size)
        return cp.size

    async def _post(self, member: Member, cosigned: str) -> None:
        url = f"{member.url}/api/v1/log/cosignatures"
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        try:
            async with self.http.post(url, data=cosigned.encode(), headers=headers, allow_redirects=False) as resp:
                said = (await _read(resp, MAX_NOTE_BYTES))[:200].decode("utf-8", "replace")
                if resp.status not in (200, 201):
                    raise Unreachable(f"the member did not take the cosignature: HTTP {resp.status} {said}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{url}: {type(exc).__name__}") from None

    async def gossip(self, peer: Member) -> None:
        """Check the checkpoints ``peer`` holds of the other members against those held here."""
        try:
            raw = await get_bytes(self.http, f"{peer.url}/api/v1/federation/witnessed", MAX_LISTING_BYTES)
            listing = orjson.loads(raw)
            items = listing["checkpoints"] if isinstance(listing, dict) else None
            if not isinstance(items, list):
                raise Unreachable("not a list of checkpoints")
        except (Unreachable, orjson.JSONDecodeError, KeyError) as exc:
            log.info("federation.gossip_failed", peer=peer.origin, problem=str(exc)[:200])
            return
        for item in items[: len(self.fed.members)]:
            await self._compare(peer, item)

    async def _compare(self, peer: Member, item: Any) -> None:
        origin = item.get("origin") if isinstance(item, Mapping) else None
        member = self.fed.member(origin) if isinstance(origin, str) else None
        note = item.get("checkpoint") if isinstance(item, Mapping) else None
        if member is not None and member.origin == self.fed.own and isinstance(note, str):
            await self._own(peer, note[:MAX_NOTE_BYTES])
            return
        if member is None or member.origin in (self.fed.own, peer.origin) or not isinstance(note, str):
            return
        try:
            cp = notes.verify_checkpoint(note[:MAX_NOTE_BYTES], federation.verifier(member), origin=member.origin)
        except notes.NoteError as exc:
            log.warning("federation.gossip_refused", peer=peer.origin, origin=member.origin, problem=str(exc)[:200])
            return
        async with self.db.connection() as conn:
            if await witness_repo.open_split_view(conn, member.origin) is not None:
                return
            held = await witness_repo.latest_checkpoint(conn, member.origin)
        if held is None:
            return
        try:
            await one_history(self.http, member, held["size"], held["root"], cp)
        except Proven as exc:
            await record_split_view(self.db, member.origin, held["note"], note, exc, f"gossip:{peer.origin}")
            return
        except Unreachable:
            return  # asked again next round
        if cp.size > held["size"]:

            async def keep(conn: Connection) -> None:
                await federation_repo.lock_member(conn, member.origin)
                await witness_repo.insert_checkpoint(conn, member.origin, cp.size, cp.root, note, "gossip")

            await self.db.transaction(keep)

    async def _own(self, peer: Member, note: str) -> None:
        """What ``peer`` holds of this ledger's own log must be one history with it: otherwise this log was
        rewritten (a database restored, a key used elsewhere), recorded for this ledger's operators to see."""
        try:
            cp = notes.verify_checkpoint(note, self.lg.verifier, origin=self.lg.origin)
        except notes.NoteError as exc:
            log.warning("federation.gossip_refused", peer=peer.origin, origin=self.lg.origin, problem=str(exc)[:200])
            return
        async with self.db.connection() as conn:
            if await witness_repo.open_split_view(conn, self.lg.origin) is not None:
                return
        latest = await transparency.latest_checkpoint(self.db, self.lg)
        signed = notes.parse_checkpoint(latest)
        size, root = signed.size, signed.root
        try:
            if cp.size > size:
                raise Proven("shrank", f"{peer.origin} holds size {cp.size} of this log, which signed {size} last")
            if cp.size == size and cp.root != root:
                raise Proven("same_size", f"{peer.origin} holds another tree of size {size} of this log")
            if 0 < cp.size < size:
                proof = await transparency.prove_consistency(self.db, self.lg, cp.size, size)
                try:
                    hashes = [bytes.fromhex(h) for h in proof["proof"]]
                    proofs.verify_consistency(cp.size, size, hashes, cp.root, root)
                except merkle.InvalidProofError as exc:
                    raise Proven("not_consistent", f"{peer.origin} holds size {cp.size} of this log: {exc}") from None
        except Proven as exc:
            await record_split_view(self.db, self.lg.origin, latest, note, exc, f"gossip:{peer.origin}")


async def run_witness(db: Database, lg: Log, fed: Federation, interval: float, stop: asyncio.Event) -> None:
    """Witness the other members of ``fed`` until ``stop`` (nothing to do without other members)."""
    if not any(m.origin != fed.own for m in fed.members):
        return
    agent = {"User-Agent": f"trace-witness {lg.origin}"}
    async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT, headers=agent) as http:
        witness = Witness(db, lg, fed, interval, http)
        # A round may wait on a member for seconds: stopping cancels it rather than waiting for it.
        task = asyncio.create_task(run_exclusive(db, "witness", WITNESS_LOCK, witness.step, interval, stop))
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def register_members(db: Database, fed: Federation) -> None:
    """Take the other members' cosignatures of this log: each is a witness under its origin, with the
    cosignature form of its pinned key; ledgers no longer members lose their status rows."""
    others = [m for m in fed.members if m.origin != fed.own]

    async def work(conn: Connection) -> None:
        for m in others:
            key = cosigning_key(m)
            # Named by origin and key ID: a member given a new key in the file is registered again under it.
            await witness_repo.register_member_witness(conn, f"{m.origin} {key.split('+')[1]}", key)
        await witness_repo.forget_statuses(conn, [m.origin for m in others])

    await db.transaction(work)


def cosigning_key(member: Member) -> str:
    """The verifier key of a member's cosignatures: its pinned log key as type 0x04, under its origin."""
    key = federation.verifier(member)
    cosigner = notes.Verifier(key.name, notes.COSIGNATURE_V1, key.public_key)
    return f"{key.name}+{cosigner.key_id.hex()}+{b64(bytes([notes.COSIGNATURE_V1]) + key.public_key)}"


def describe_status(row: Record) -> dict[str, Any]:
    """One member's witnessing status as JSON."""
    return {
        "origin": row["origin"],
        "checked_at": row["checked_at"].isoformat(),
        "ok_at": row["ok_at"].isoformat() if row["ok_at"] else None,
        "size": row["size"],
        "failures": row["failures"],
        "problem": row["problem"],
        # unreachable, bad_checkpoint or split_view: the words for it are in the catalogue (witness_problem_…)
        "problem_code": row["problem"].split(":", 1)[0] if row["problem"] else None,
        "next_at": row["next_at"].isoformat(),
        "split_view": row["split"],
    }
