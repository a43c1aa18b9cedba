"""A provincial view over the member ledgers, from the copies PostgreSQL logical replication keeps.

Each member's records arrive in a database of its own (:mod:`traceability.storage.province_repo`). The
province reads them only: search, trace and anomalies query every member's copy and merge. Two watches
run beside the server:

- **lag**, every :data:`LAG_EVERY` seconds: the member's WAL position now (read from the member as the
  province's role) against what the subscription has received (``pg_stat_subscription``). As with read
  replicas, a copy that has received the position the member had at time *t* holds everything the member
  committed by *t*, so it is at most ``now - t`` behind; the bytes are the WAL distance.
- **verification**, every :data:`VERIFY_EVERY` seconds: the largest replicated checkpoint whose leaves
  have all arrived is checked against the member's key pinned in the federation file; the Merkle root of
  the replicated leaves is recomputed up to its size (incrementally, :class:`~traceability.ledger.frontier.Frontier`);
  every leaf must be the hash of its event's chain hash, and that hash the chain hash of the event's
  canonical bytes after its predecessor's. A copy that fails is reported by member, with the first fault.

A recall is not issued here: the answer names the home member, where it is issued (its console or
``POST /api/v1/recalls``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from traceability import errors
from traceability.domain.federation import Federation, Member
from traceability.ledger import chain, merkle
from traceability.ledger import checkpoint as notes
from traceability.ledger.frontier import Frontier
from traceability.logging import get_logger
from traceability.services.federation import verifier
from traceability.storage import province_repo as repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

LAG_EVERY = 0.5
VERIFY_EVERY = 2.0
TIMEOUT = 2.0
HISTORY = 2400
LEAVES_AT_ONCE = 20_000
MAX_TRACE = 200
"""Batches one trace shows at most (each looked up in every member)."""
MAX_EVENTS = 256

T = TypeVar("T")


@dataclass(slots=True)
class MemberCopy:
    """One member's copy at the province, as the watches last saw it."""

    member: Member
    database: str
    db: Database | None = None
    conninfo: str = ""
    positions: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    received: int | None = None
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    lag_problem: str | None = None
    copying: int | None = None
    """Tables still in their initial copy (a new subscription): until 0, their rows may trail the others'."""
    frontier: Frontier = field(default_factory=Frontier)
    verified_size: int = 0
    verified_at: float | None = None
    fault: str | None = None
    log: int | None = None

    def behind(self, received: int, now: float) -> float | None:
        for at, position in reversed(self.positions):
            if position <= received:
                return now - at
        return None

    def state(self) -> dict[str, Any]:
        m = self.member
        return {
            "origin": m.origin,
            "name": m.name,
            "url": m.url,
            "subscribed": self.db is not None,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "lag_bytes": self.lag_bytes,
            "lag_problem": self.lag_problem,
            "tables_copying": self.copying,
            "verified_size": self.verified_size,
            "verified": self.fault is None,
            "fault": self.fault,
        }


class Province:
    """The members' copies, their pools, and the watches over them."""

    def __init__(
        self, federation: Federation, admin: Database, copies: list[MemberCopy], stack: contextlib.AsyncExitStack,
        pool_size: int,
    ) -> None:  # fmt: skip
        self.federation = federation
        self.admin = admin
        self.copies = copies
        self._stack = stack
        self._pool_size = pool_size

    async def discover(self) -> None:
        """Open the copies of members subscribed to since the last look (``province subscribe`` while serving)."""
        async with self.admin.connection() as conn:
            databases = await repo.member_databases(conn)
        for c in self.copies:
            if c.db is None and c.member.origin in databases:
                c.database = databases[c.member.origin]
                url = repo.with_database(self.admin.url, c.database)
                c.db = await self._stack.enter_async_context(repo.pool(url, self._pool_size, read_only=True))
                log.info("province.member_opened", member=c.member.origin, database=c.database)

    def subscribed(self) -> list[MemberCopy]:
        return [c for c in self.copies if c.db is not None]

    async def _each(self, work: Callable[[MemberCopy, Connection], Awaitable[T]]) -> list[tuple[MemberCopy, T]]:
        async def one(c: MemberCopy) -> tuple[MemberCopy, T]:
            assert c.db is not None
            async with c.db.connection() as conn:
                return c, await work(c, conn)

        return list(await asyncio.gather(*(one(c) for c in self.subscribed())))

    # -- the watches ---------------------------------------------------------------------------------

    async def measure(self) -> None:
        """Every member's replication lag now: each member's WAL position first, then what has arrived (read
        after it, so a copy that has caught up shows no lag)."""
        async with self.admin.connection() as conn:
            before = await repo.subscriptions(conn)
        copies = self.subscribed()
        positions = await asyncio.gather(*(self._position(c, before.get(c.database)) for c in copies))
        async with self.admin.connection() as conn:
            after = await repo.subscriptions(conn)
        now = time.monotonic()
        for c, position in zip(copies, positions, strict=True):
            self._lag(c, after.get(c.database), position, now)

    async def _position(self, c: MemberCopy, sub: Record | None) -> int | None:
        if sub is None:
            c.lag_problem = "no_subscription"
            return None
        c.conninfo = sub["subconninfo"]
        try:
            position = await repo.member_position(c.conninfo, TIMEOUT)
        except Exception as exc:  # the member refused, went away or did not answer in time: say which
            c.lag_problem = f"member_unreachable:{type(exc).__name__}"
            return None
        c.positions.append((time.monotonic(), position))
        return position

    def _lag(self, c: MemberCopy, sub: Record | None, position: int | None, now: float) -> None:
        if position is None or sub is None:
            c.lag_seconds, c.lag_bytes = None, None
            return
        if sub["received"] is None:
            c.lag_seconds, c.lag_bytes = None, None
            c.lag_problem = "subscription_disabled" if not sub["subenabled"] else "not_receiving"
            return
        c.copying = int(sub["copying"])
        c.received = int(sub["received"])
        c.lag_bytes = max(0, position - c.received)
        c.lag_seconds = c.behind(c.received, now)
        c.lag_problem = None

    async def verify(self) -> None:
        """Check every member's copy against its newest provable signed checkpoint."""
        await asyncio.gather(*(self._verify(c) for c in self.subscribed()))

    async def _verify(self, c: MemberCopy) -> None:
        assert c.db is not None
        if c.fault is not None:
            return  # a copy found altered stays reported until the province restarts and checks again
        async with c.db.connection() as conn:
            if c.log is None:
                c.log = await repo.log_of(conn, c.member.origin)
                if c.log is None:
                    return  # nothing of the member's log has arrived yet
            latest = await repo.latest_provable(conn, c.log)
            if latest is None or latest["size"] <= c.verified_size:
                return
            try:
                cp = notes.verify_checkpoint(latest["note"], verifier(c.member), origin=c.member.origin)
            except Exception as exc:  # any refusal of the note: wrong key, bad signature, not a checkpoint
                c.fault = f"checkpoint {latest['size']}: {type(exc).__name__}: {exc}"
                return
            while c.frontier.size < cp.size:
                end = min(cp.size, c.frontier.size + LEAVES_AT_ONCE)
                rows = await repo.leaves(conn, c.log, c.frontier.size, end)
                for row in rows:
                    if row["leaf_index"] != c.frontier.size:
                        c.fault = f"leaf {c.frontier.size} is missing"
                        return
                    if row["hash"] is None or merkle.leaf_hash(row["hash"]) != row["leaf_hash"]:
                        c.fault = f"leaf {row['leaf_index']} is not the hash of its event"
                        return
                    if chain.link(row["prev_hash"], row["canonical"]) != row["hash"]:
                        c.fault = f"leaf {row['leaf_index']}: the event's bytes do not hash to its chain hash"
                        return
                    c.frontier.append(row["leaf_hash"])
                if not rows:
                    c.fault = f"leaf {c.frontier.size} is missing"
                    return
        if c.frontier.root() != cp.root:
            c.fault = f"the replicated leaves do not hash to the root of checkpoint {cp.size}"
            return
        c.verified_size, c.verified_at = cp.size, time.monotonic()

    async def watch(self, stop: asyncio.Event) -> None:
        """Measure lag every :data:`LAG_EVERY` s and verify every :data:`VERIFY_EVERY` s until ``stop``."""
        last_verify = 0.0
        while not stop.is_set():
            try:
                await self.discover()
                await self.measure()
                if time.monotonic() - last_verify >= VERIFY_EVERY:
                    last_verify = time.monotonic()
                    await self.verify()
            except Exception as exc:  # never let the watch die: the console would show stale figures
                log.warning("province.watch_failed", error=type(exc).__name__, detail=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_EVERY)

    # -- what the province answers ------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        return [c.state() for c in self.copies]

    async def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Batches in every member whose code starts with ``text`` or whose product or node name has it."""
        found = await self._each(lambda c, conn: repo.search(conn, text, limit))
        rows = [self._batch(c, r) for c, rs in found for r in rs]
        rows.sort(key=lambda r: r["created_at"], reverse=True)
        return rows[:limit]

    def _batch(self, c: MemberCopy, r: Record) -> dict[str, Any]:
        out = {k: r[k] for k in r.keys() if k != "id"}
        out["created_at"] = r["created_at"].isoformat()
        out.update(origin=c.member.origin, member=c.member.name, page=f"{c.member.url}/t/{r['trace_code']}")
        return out

    async def _legs(self, code: str) -> list[dict[str, Any]]:
        async def leg(c: MemberCopy, conn: Connection) -> dict[str, Any] | None:
            b = await repo.find_batch(conn, code)
            if b is None:
                return None
            events = await repo.batch_events(conn, b["id"], MAX_EVENTS)
            links = await repo.linked(conn, b["id"])
            recalls = await repo.batch_recalls(conn, b["id"])
            out = self._batch(c, b)
            out["events"] = [dict(e, event_time=e["event_time"].isoformat()) for e in events]
            out["parents"] = [r["trace_code"] for r in links if r["relation"] == "parent"]
            out["children"] = [r["trace_code"] for r in links if r["relation"] == "child"]
            out["recalls"] = [dict(r, issued_at=r["issued_at"].isoformat()) for r in recalls]
            return out

        legs = [found for _, found in await self._each(leg) if found is not None]
        legs.sort(key=lambda g: g["received_from"] is not None)  # the home ledger's part first
        return legs

    async def trace(self, code: str) -> dict[str, Any]:
        """The batch in every member that holds it, and backward (what it was made from) and forward (what
        was made from it) across members: the same trace code received elsewhere is the same goods."""
        start = await self._legs(code)
        if not start:
            raise errors.NotFound(f"no member ledger holds {code}")
        seen = {code}
        directions: dict[str, list[dict[str, Any]]] = {"backward": [], "forward": []}
        for direction, key in (("backward", "parents"), ("forward", "children")):
            queue = [c for leg in start for c in leg[key]]
            while queue and len(seen) < MAX_TRACE:
                next_code = queue.pop(0)
                if next_code in seen:
                    continue
                seen.add(next_code)
                legs = await self._legs(next_code)
                directions[direction].extend(legs)
                queue.extend(c for leg in legs for c in leg[key])
        home = self.federation.home_of(code)
        recall = None
        if home is not None:
            recall = {"origin": home.origin, "name": home.name, "api": f"{home.url}/api/v1/recalls",
                      "console": f"{home.url}/console/batches/{code}"}  # fmt: skip
        truncated = len(seen) >= MAX_TRACE
        return {"trace_code": code, "legs": start, **directions, "recall_at": recall, "truncated": truncated}

    async def anomalies(self, limit: int) -> list[dict[str, Any]]:
        found = await self._each(lambda c, conn: repo.anomalies(conn, limit))
        rows = []
        for c, rs in found:
            for r in rs:
                row = dict(r, origin=c.member.origin, member=c.member.name)
                row["detected_at"] = r["detected_at"].isoformat()
                row["event_time"] = r["event_time"].isoformat() if r["event_time"] else None
                rows.append(row)
        rows.sort(key=lambda r: r["detected_at"], reverse=True)
        return rows[:limit]

    async def counts(self) -> dict[str, dict[str, int]]:
        found = await self._each(lambda c, conn: repo.counts(conn))
        return {c.member.origin: dict(r) for c, r in found}


async def subscribe(admin_url: str, schema_dir: Any, federation: Federation, origin: str, conninfo: str) -> str:
    """Subscribe the province to a member of the federation; the database its copy is kept in."""
    if federation.member(origin) is None:
        raise errors.ConfigError(
            f"{origin!r} is not a member of the federation; members are: "
            + ", ".join(repr(m.origin) for m in federation.members)
        )
    return await repo.subscribe(admin_url, schema_dir, origin, conninfo)


async def capacity_shortfall(admin_url: str) -> str | None:
    """What to raise in the province's PostgreSQL for every subscription to run (with two table-copy workers
    to spare), or None. These settings are read at start: set them, then restart it."""
    c = await repo.capacity(admin_url)
    need = c["subscriptions"] + 2
    short = []
    if c["workers"] < need:
        short.append(f"max_logical_replication_workers = {need}")
    if c["origins"] < c["subscriptions"]:
        short.append(f"max_replication_slots = {c['subscriptions']}")
    if c["processes"] < need + 4:
        short.append(f"max_worker_processes = {need + 4}")
    if not short:
        return None
    return (
        f"the province's PostgreSQL runs at most {c['workers']} logical replication workers for "
        f"{c['subscriptions']} subscriptions: set {', '.join(short)} (ALTER SYSTEM) and restart it"
    )


@contextlib.asynccontextmanager
async def open_province(admin_url: str, federation: Federation, pool_size: int = 4) -> AsyncIterator[Province]:
    """The province over every member it subscribes to; members subscribed to later are opened as they come."""
    copies = [MemberCopy(m, repo.database_name(m.origin)) for m in federation.members]
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(repo.pool(admin_url, 2, read_only=False))
        province = Province(federation, admin, copies, stack, pool_size)
        await province.discover()
        yield province
