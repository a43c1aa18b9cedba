"""The access log: every full (commercial) view, forward trace, export and recall, with who, what, when and where.

Recording must not slow the pages it watches, so a request only appends to this process's queue
(a few microseconds, no I/O); a background task writes the queue to the database in one statement
every :data:`FLUSH_EVERY` seconds or as soon as :data:`BATCH` records wait, and once more when the
server stops. The queue is bounded: when :data:`CAPACITY` records wait (the database has been
unreachable for a while), a request that would be recorded is refused with 503 rather than served
unrecorded. A process killed outright loses at most the records of its last flush interval.

Readers of public pages are not recorded: only a caller with a credential or a console session
who receives what the public does not (prices and buyers, forward traces, exports) or acts (recalls).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from traceability import errors
from traceability.domain.access import Principal
from traceability.logging import get_logger
from traceability.storage import access_repo
from traceability.storage.database import Database

log = get_logger(__name__)

ACTIONS = ("view", "trace", "export", "recall")
CAPACITY = 50_000
BATCH = 2_000
FLUSH_EVERY = 0.2


@dataclass(frozen=True, slots=True)
class Access:
    """One thing someone did or saw."""

    at: datetime
    principal: Principal
    action: str
    target: str
    detail: dict[str, Any]
    source: str | None
    request_id: str

    def row(self) -> tuple[Any, ...]:
        p = self.principal
        return (
            self.at,
            p.kind,
            p.id,
            p.role,
            p.name,
            p.authority,
            self.action,
            self.target,
            orjson.dumps(self.detail).decode(),
            self.source,
            self.request_id,
        )


class AccessLog:
    """This process's queue of access records and the task that writes them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._queue: deque[Access] = deque()
        self._wake = asyncio.Event()
        self.written = 0

    def __len__(self) -> int:
        return len(self._queue)

    def record(
        self,
        principal: Principal,
        action: str,
        target: str,
        *,
        source: str | None,
        request_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Queue one record; refuse (503) when the queue is full rather than let an access go unrecorded.

        A recall is recorded after it was issued (it is in the ledger either way), so it is always queued.
        """
        assert action in ACTIONS, action
        if len(self._queue) >= self.capacity and action != "recall":
            log.error("access_log.full", queued=len(self._queue))
            raise errors.StorageUnavailable("the access log cannot be written now; retry shortly")
        self._queue.append(Access(datetime.now(UTC), principal, action, target, detail or {}, source, request_id))
        if len(self._queue) >= BATCH:
            self._wake.set()

    async def flush(self, db: Database) -> int:
        """Write what is queued (in batches); records stay queued if the database refuses them."""
        written = 0
        while self._queue:
            batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            async with db.connection() as conn:
                await access_repo.insert_access(conn, [a.row() for a in batch])
            for _ in batch:
                self._queue.popleft()
            written += len(batch)
        self.written += written
        return written

    async def run(self, db: Database, stop: asyncio.Event, every: float = FLUSH_EVERY) -> None:
        """Flush every ``every`` seconds (sooner when a batch is full) until ``stop``, then flush once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every)
            self._wake.clear()
            try:
                await self.flush(db)
            except errors.TraceError as exc:
                log.warning("access_log.flush_failed", error=exc.code, queued=len(self._queue))
                await asyncio.sleep(every * 5)
        with contextlib.suppress(errors.TraceError):
            await self.flush(db)
        if self._queue:
            log.error("access_log.unwritten", records=len(self._queue))


def _time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidField(f"{field}: must be an RFC 3339 time with an offset", field=field) from None
    if moment.tzinfo is None:
        raise errors.InvalidField(f"{field}: needs a time zone offset", field=field)
    return moment


def _whole(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise errors.InvalidField(f"{field}: must be a whole number", field=field)
    return int(value)


async def list_access(db: Database, query: dict[str, str], limit: int = 100) -> dict[str, Any]:
    """Access records, newest first: filters ``action``, ``target``, ``actor_kind``, ``actor_id``,
    ``since``, ``until``; ``before`` (an id) pages back. ``next`` is the next page's ``before``."""
    action = query.get("action") or None
    if action is not None and action not in ACTIONS:
        raise errors.InvalidField(f"action: must be one of {', '.join(ACTIONS)}", field="action")
    kind = query.get("actor_kind") or None
    if kind is not None and kind not in ("token", "user", "device", "station", "member"):
        raise errors.InvalidField("actor_kind: must be token, user, device, station or member", field="actor_kind")
    target = query.get("target") or None
    if target is not None and len(target) > 100:
        raise errors.InvalidField("target: at most 100 characters", field="target")
    async with db.connection() as conn:
        rows = await access_repo.list_access(
            conn,
            before=_whole(query.get("before"), "before"),
            action=action,
            target=target,
            actor_kind=kind,
            actor_id=_whole(query.get("actor_id"), "actor_id"),
            since=_time(query.get("since"), "since"),
            until=_time(query.get("until"), "until"),
            limit=limit,
        )
    items = [
        {
            "id": r["id"],
            "at": r["at"].isoformat(),
            "actor": {
                "kind": r["actor_kind"],
                "id": r["actor_id"],
                "role": r["actor_role"],
                "name": r["actor_name"],
                "authority": r["authority"],
            },
            "action": r["action"],
            "target": r["target"],
            "detail": r["detail"],
            "source": r["source"],
            "request_id": r["request_id"],
        }
        for r in rows
    ]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}
