"""A scanner station: enrolment, key rotation, code leases, and the upload loop.

Everything the station does goes through its :class:`~scanners.queue.Store` first; the network is
only ever asked to catch up. The upload loop sends the outbox in order (a batch opening or a sale on
its own, consecutive events together, up to ``batch_size``), marks rows sent only on a 2xx, and backs off
exponentially (with jitter, up to ``max_backoff`` seconds) while the server is unreachable, busy or
refusing the station's signature. Before the leased codes run low it leases more, and while online it
keeps the station's copy of the product registry fresh.

One uploader at a time: the loop holds an exclusive lock on ``HOME/uploader.lock`` while it uploads, so
the counter program, ``trace-scan sync`` and the background uploader that ``label`` and ``receipt``
start (:func:`start_background_upload`) never send the same rows at once. A connection problem is kept
in ``status`` until the next request that succeeds, which clears it.

The station reports its queue to the server (``POST /api/v1/stations/heartbeat``: records waiting,
the oldest one's age, codes left) whenever an upload pass empties the queue and at least every
:data:`REPORT_EVERY` seconds while it stays online, so operators see a station falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scanners import client as wire
from scanners.keeping import Keeping
from scanners.queue import Pending, Store
from scanners.words import say, server_refusal
from traceability.domain import stations

PRODUCTS_EVERY = 3600.0
"""Seconds between refreshes of the product registry's copy while the station is online."""
STOPLIST_EVERY = 120.0
"""Seconds between refreshes of the stop list while the counter stays online (each ``sync`` refreshes it too)."""

_EVENT_INDEX = re.compile(r"events\[(\d+)\]")
REPORT_EVERY = 60.0
"""Seconds between a station's queue reports while it is online."""


class NotEnrolled(RuntimeError):
    """This station has no key bound to a server yet: run ``trace-scan enrol`` first."""


class AuthRefused(Exception):
    """The server refused the station's signature (revoked, replaced, unknown key, clock); scans are kept."""


@dataclass
class Stats:
    requests: int = 0
    acknowledged: int = 0
    replayed: int = 0
    refused: int = 0
    retries: int = 0
    leases: int = 0
    latencies: list[float] = field(default_factory=list)


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


class Station(Keeping):
    """One station's home directory: ``station.key`` (private, 0600) and ``station.db`` (the queue)."""

    def __init__(
        self,
        home: Path,
        *,
        batch_size: int = 200,
        max_backoff: float = 300.0,
        low_water: int = 150,
        lease_blocks: int = 3,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.store = Store(home / "station.db")
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.low_water = low_water
        self.lease_blocks = lease_blocks
        self.stats = Stats()
        self.say = say or (lambda _msg: None)
        self._reported = -math.inf
        self._acked = 0

    @property
    def language(self) -> str:
        return str(self.store.get("language", "both"))

    @property
    def key_path(self) -> Path:
        return self.home / "station.key"

    @property
    def next_key_path(self) -> Path:
        return self.home / "station.key.next"

    def close(self) -> None:
        self.store.close()

    def info(self) -> dict[str, Any]:
        station = self.store.get("station")
        if station is None or not self.key_path.exists():
            raise NotEnrolled(say("station_not_enrolled", self.language))
        return dict(station)

    def client(self, key: Ed25519PrivateKey | None = None) -> wire.SigningClient:
        server = self.store.get("server")
        if server is None:
            raise NotEnrolled(say("station_not_enrolled", self.language))
        return wire.SigningClient(server, key or wire.load_key(self.key_path), self.store.get("clock_offset", 0.0))

    # -- enrolment and keys ------------------------------------------------------------------------

    async def enrol(self, server: str, code: str, *, blocks: int | None = None) -> dict[str, Any]:
        """Generate a key pair here, bind its public half to the device the code was issued for, lease codes."""
        key = wire.generate_key()
        async with wire.SigningClient(server, key) as c:
            ans = await c.call(
                "POST", "/api/v1/stations/enrol", {"code": code, "publicKey": stations.b64(wire.public_bytes(key))}
            )
            if not ans.ok:
                raise AuthRefused(f"enrolment refused: {ans.message}")
            # The key is saved only once the server has it: a refused enrolment leaves the station as it was.
            wire.save_key(key, self.key_path)
            self.store.put(
                server=server.rstrip("/"),
                station=ans.data,
                key_id=c.key_id,
                public_url=ans.data.get("publicUrl") or server.rstrip("/"),
            )
            await self.lease(c, blocks or self.lease_blocks)
            with contextlib.suppress(wire.Unreachable):
                await self.refresh_products(c)
            with contextlib.suppress(wire.Unreachable, AuthRefused):
                await self.refresh_stoplist(c)
        return dict(ans.data)

    async def rotate_key(self) -> str:
        """Replace this station's key: the old key signs the request, the new key signs a proof."""
        old = wire.load_key(self.key_path)
        new = wire.generate_key()
        wire.save_key(new, self.next_key_path)  # kept until the server answers, so a crash cannot lose it
        new_id = stations.key_id(wire.public_bytes(new))
        async with self.client(old) as c:
            proof = new.sign(stations.rotation_message(c.key_id, new_id))
            ans = await c.call(
                "POST",
                "/api/v1/stations/keys",
                {"publicKey": stations.b64(wire.public_bytes(new)), "proof": stations.b64(proof)},
            )
        if not ans.ok:
            self.next_key_path.unlink(missing_ok=True)
            raise AuthRefused(f"key rotation refused: {ans.message}")
        self._promote_next_key()
        return new_id

    def _promote_next_key(self) -> None:
        key = wire.load_key(self.next_key_path)
        self.next_key_path.replace(self.key_path)
        self.store.put(key_id=stations.key_id(wire.public_bytes(key)))

    async def _recover_rotation(self) -> bool:
        """After a crash mid-rotation the server may already hold the new key; adopt it if so."""
        if not self.next_key_path.exists():
            return False
        async with self.client(wire.load_key(self.next_key_path)) as c:
            ans = await c.call("GET", "/api/v1/stations/me")
        if ans.ok:
            self._promote_next_key()
            return True
        return False

    # -- leases ------------------------------------------------------------------------------------

    async def lease(self, c: wire.SigningClient, blocks: int) -> int:
        ans = await c.call("POST", "/api/v1/stations/leases", {"blocks": blocks})
        self._check(ans)
        self.store.add_blocks(ans.data["blocks"])
        self.stats.leases += 1
        return sum(b["size"] for b in ans.data["blocks"])

    async def top_up(self, c: wire.SigningClient) -> None:
        left = self.store.codes_left()
        if left >= self.low_water:
            return
        want = math.ceil((2 * self.low_water - left) / stations.BLOCK_SIZE)
        await self.lease(c, max(1, min(want, 20)))

    # -- uploads -----------------------------------------------------------------------------------

    def _check(self, ans: wire.Answer) -> None:
        if ans.status == 401:
            raise AuthRefused(ans.message)
        if _transient(ans.status):
            raise wire.Unreachable(ans.message)
        if not ans.ok:
            raise AuthRefused(ans.message)  # 403 and the like: nothing a retry now would change

    async def _timed(self, c: wire.SigningClient, path: str, payload: Any) -> wire.Answer:
        start = time.perf_counter()
        self.stats.requests += 1
        ans = await c.call("POST", path, payload)
        self.stats.latencies.append(time.perf_counter() - start)
        if c.clock_offset != self.store.get("clock_offset", 0.0):
            self.store.put(clock_offset=c.clock_offset)
        return ans

    def _acknowledge(self, rows: list[Pending], receipts: list[dict[str, Any]]) -> None:
        self.store.mark_sent({r.seq: rec for r, rec in zip(rows, receipts, strict=True)})
        self.stats.acknowledged += len(rows)
        self.stats.replayed += sum(1 for rec in receipts if rec.get("replayed"))

    def _refuse(self, row: Pending, message: str) -> None:
        self.store.mark_refused(row.seq, message)
        self.stats.refused += 1
        explained = server_refusal(message, self.language)
        # The bell: a refused record (a sale of goods recalled before it was uploaded) needs someone to act.
        self.say(
            "\a" + say("station_upload_refused", self.language, kind=row.kind, code=row.trace_code, error=explained)
        )

    async def sync_once(self, c: wire.SigningClient) -> int:
        """Upload the next request's worth of the outbox; returns the number of rows settled (0: empty)."""
        rows = self.store.pending(self.batch_size)
        if not rows:
            return 0
        if rows[0].kind in ("open", "sale"):
            row = rows[0]
            path = "/api/v1/stations/batches" if row.kind == "open" else "/api/v1/stations/sales"
            ans = await self._timed(c, path, row.body)
            if ans.ok:
                self._acknowledge([row], [ans.data["receipt"]])
            elif ans.status == 401 or _transient(ans.status):
                self._check(ans)
            else:
                self._refuse(row, ans.message)
            return 1
        if "voucher" in rows[0].body:  # received from another city's ledger: one upload with its voucher
            row = rows[0]
            event = {k: v for k, v in row.body.items() if k != "voucher"}
            ans = await self._timed(c, "/api/v1/stations/handovers", {"voucher": row.body["voucher"], "event": event})
            if ans.ok:
                self._acknowledge([row], [ans.data])
            elif ans.status == 401 or _transient(ans.status):
                self._check(ans)
            else:
                self._refuse(row, ans.message)
            return 1
        batch = []
        for row in rows:
            if row.kind != "event" or "voucher" in row.body:
                break
            batch.append(row)
        ans = await self._timed(c, "/api/v1/stations/events", {"events": [r.body for r in batch]})
        if ans.ok:
            self._acknowledge(batch, ans.data["receipts"])
            return len(batch)
        if ans.status == 401 or _transient(ans.status):
            self._check(ans)
        if ans.status == 413 and len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            return 1
        m = _EVENT_INDEX.match(str(ans.error.get("field") or ""))
        if m and int(m.group(1)) < len(batch):
            self._refuse(batch[int(m.group(1))], ans.message)
        elif len(batch) == 1:
            self._refuse(batch[0], ans.message)
        else:
            # Refused as a whole without naming an event: find the culprit by sending smaller requests.
            self.batch_size = max(1, len(batch) // 2)
        return 1

    def queue_report(self) -> dict[str, Any]:
        """What the heartbeat tells the server: records waiting, the oldest one's age in seconds, codes left."""
        status = self.store.status()
        report: dict[str, Any] = {"pending": status["pending"], "codesLeft": status["codesLeft"]}
        if status["pending"] and status["oldestPending"]:
            oldest = datetime.fromisoformat(status["oldestPending"].replace("Z", "+00:00"))
            report["oldestPendingAge"] = max(0, int((datetime.now(UTC) - oldest).total_seconds()))
        return report

    async def report(self, c: wire.SigningClient, *, force: bool = False) -> None:
        """Send the queue report if it is due (or ``force``); a failure is only retried at the next one."""
        if not force and time.monotonic() - self._reported < REPORT_EVERY:
            return
        ans = await c.call("POST", "/api/v1/stations/heartbeat", self.queue_report())
        if ans.ok:
            self._reported = time.monotonic()

    def _backoff(self, failures: int) -> float:
        jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret
        return min(self.max_backoff, 0.5 * 2.0 ** min(failures, 20)) * jitter

    async def sync(
        self,
        *,
        until_empty: bool = True,
        within: float | None = None,
        wake: asyncio.Event | None = None,
        stop: asyncio.Event | None = None,
        idle_poll: float = 30.0,
    ) -> bool:
        """Upload until the outbox is empty (or forever, with ``until_empty=False``). True when empty.

        Another process uploading for this station (it holds the lock) is waited for, not joined.
        """
        deadline = None if within is None else time.monotonic() + within
        lock = UploadLock(self.home)
        while not lock.acquire():
            if (until_empty and not self.store.pending(1)) or (stop is not None and stop.is_set()):
                return not self.store.pending(1)
            if deadline is not None and time.monotonic() >= deadline:
                return not self.store.pending(1)
            await _pause(min(1.0, idle_poll), None, stop)
        try:
            return await self._sync_locked(until_empty, deadline, wake, stop, idle_poll)
        finally:
            lock.release()

    async def _sync_locked(
        self,
        until_empty: bool,
        deadline: float | None,
        wake: asyncio.Event | None,
        stop: asyncio.Event | None,
        idle_poll: float,
    ) -> bool:
        failures = 0
        full_batch = self.batch_size
        listed = -math.inf
        async with self.client() as c:
            while stop is None or not stop.is_set():
                try:
                    await self.top_up(c)
                    if time.time() - float(self.store.get("products_checked_at", 0)) > PRODUCTS_EVERY:
                        await self.refresh_products(c)
                    settled = await self.sync_once(c)
                    # Something the server answered: whatever went wrong before is over.
                    if self.store.get("last_error") is not None:
                        self.store.put(last_error=None)
                    failures = 0
                    if settled:
                        if self.batch_size < full_batch and settled > 1:
                            self.batch_size = min(full_batch, self.batch_size * 2)
                        await self.report(c)
                        continue
                    await self.report(c, force=self._reported < 0 or self.stats.acknowledged > self._acked)
                    self._acked = self.stats.acknowledged
                    if time.monotonic() - listed > STOPLIST_EVERY:
                        await self.refresh_stoplist(c)  # every sync, once what was queued is up
                        listed = time.monotonic()
                    if until_empty:
                        return True
                    delay = idle_poll
                except (wire.Unreachable, AuthRefused) as exc:
                    if (
                        isinstance(exc, AuthRefused)
                        and "replaced by a newer key" in str(exc)
                        and await self._recover_rotation()
                    ):
                        return await self._sync_locked(until_empty, deadline, wake, stop, idle_poll)
                    failures += 1
                    self.stats.retries += 1
                    self.store.put(last_error={"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "message": str(exc)})
                    delay = self._backoff(failures)
                    self.say(say("station_upload_failed", self.language, error=exc, delay=f"{delay:.1f}"))
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return not self.store.pending(1)
                    delay = min(delay, left)
                await _pause(delay, wake if failures == 0 else None, stop)
        return not self.store.pending(1)


class UploadLock:
    """An exclusive, non-blocking lock on ``HOME/uploader.lock``; the kernel drops it when the process dies."""

    def __init__(self, home: Path) -> None:
        self.path = home / "uploader.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def free(self) -> bool:
        """Whether nobody holds the lock now (taken and given back at once)."""
        if not self.acquire():
            return False
        self.release()
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


BACKGROUND_UPLOAD_SECONDS = 7 * 24 * 3600.0
"""A background uploader gives up after a week offline; the next command or counter run starts another."""


def start_background_upload(home: Path, *, max_backoff: float = 300.0) -> int | None:
    """Start a detached ``trace-scan sync`` that keeps retrying until the queue is empty, then exits.

    It outlives the command that started it (a label run, a receipt), so what was queued offline goes up
    as soon as the network allows. Returns its process id (None when an uploader already runs); its
    messages go to ``HOME/uploader.log``.
    """
    if not UploadLock(home).free():
        return None  # an uploader is at work for this station already (the counter, or an earlier one)
    log = open(home / "uploader.log", "ab")  # handed to the child; closed here once it has its own copy
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own program, arguments we built
            [
                sys.executable,
                "-m",
                "scanners.cli",
                "--home",
                str(home),
                "--max-backoff",
                str(max_backoff),
                "sync",
                "--timeout",
                str(BACKGROUND_UPLOAD_SECONDS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    return proc.pid


async def _pause(seconds: float, wake: asyncio.Event | None, stop: asyncio.Event | None) -> None:
    """Sleep, but wake early when new scans arrive (``wake``) or the station stops."""
    waiters = [e for e in (wake, stop) if e is not None]
    if not waiters:
        await asyncio.sleep(seconds)
        return
    tasks = [asyncio.create_task(e.wait()) for e in waiters]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
    if wake is not None:
        wake.clear()
