"""A scanner station: enrolment, key rotation, code leases, and the upload loop.

Everything the station does goes through its :class:`~scanners.queue.Store` first; the network is
only ever asked to catch up. The upload loop sends the outbox in order (a batch opening on its own,
consecutive events together, up to ``batch_size``), marks rows sent only on a 2xx, and backs off
exponentially (with jitter, up to ``max_backoff`` seconds) while the server is unreachable, busy or
refusing the station's signature. Before the leased codes run low it leases more.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scanners import client as wire
from scanners.queue import Pending, Store
from traceability.domain import stations

_EVENT_INDEX = re.compile(r"events\[(\d+)\]")


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


class Station:
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
            raise NotEnrolled("this station is not enrolled: run `trace-scan enrol --server URL --code CODE`")
        return dict(station)

    def client(self, key: Ed25519PrivateKey | None = None) -> wire.SigningClient:
        server = self.store.get("server")
        if server is None:
            raise NotEnrolled("this station is not enrolled: run `trace-scan enrol --server URL --code CODE`")
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
        self.say(f"✗ the server refused {row.kind} {row.event_id} ({row.trace_code}): {message}")

    async def sync_once(self, c: wire.SigningClient) -> int:
        """Upload the next request's worth of the outbox; returns the number of rows settled (0: empty)."""
        rows = self.store.pending(self.batch_size)
        if not rows:
            return 0
        if rows[0].kind == "open":
            row = rows[0]
            ans = await self._timed(c, "/api/v1/stations/batches", row.body)
            if ans.ok:
                self._acknowledge([row], [ans.data["receipt"]])
            elif ans.status == 401 or _transient(ans.status):
                self._check(ans)
            else:
                self._refuse(row, ans.message)
            return 1
        batch = []
        for row in rows:
            if row.kind != "event":
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
        """Upload until the outbox is empty (or forever, with ``until_empty=False``). True when empty."""
        deadline = None if within is None else time.monotonic() + within
        failures = 0
        full_batch = self.batch_size
        async with self.client() as c:
            while stop is None or not stop.is_set():
                try:
                    await self.top_up(c)
                    settled = await self.sync_once(c)
                    if failures:
                        self.store.put(last_error=None)
                    failures = 0
                    if settled:
                        if self.batch_size < full_batch and settled > 1:
                            self.batch_size = min(full_batch, self.batch_size * 2)
                        continue
                    if until_empty:
                        return True
                    delay = idle_poll
                except (wire.Unreachable, AuthRefused) as exc:
                    if (
                        isinstance(exc, AuthRefused)
                        and "replaced by a newer key" in str(exc)
                        and await self._recover_rotation()
                    ):
                        return await self.sync(
                            until_empty=until_empty, within=within, wake=wake, stop=stop, idle_poll=idle_poll
                        )
                    failures += 1
                    self.stats.retries += 1
                    self.store.put(last_error={"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "message": str(exc)})
                    delay = self._backoff(failures)
                    self.say(f"… upload failed ({exc}); retrying in {delay:.1f} s")
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return not self.store.pending(1)
                    delay = min(delay, left)
                await _pause(delay, wake if failures == 0 else None, stop)
        return not self.store.pending(1)


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
