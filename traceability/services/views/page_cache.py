"""The consumer page behind a QR code, built once per version of everything it shows.

A page shows a batch, the batches it came from and its verdict (recalled, on hold, expired). Each view
reads a stamp (:func:`~traceability.storage.verdict_repo.page_heads`, one indexed query shared by the
views that arrive together): the chain head and status of the batch and of every batch the page draws on
(found once per page with :func:`~traceability.storage.verdict_repo.page_sources`), and the count of
links into each, so a batch newly linked as a source is seen too. Histories only grow, and a recall or a
hold is an event on every chain it reaches, so an unchanged stamp means an unchanged page; the date in
Beijing is part of the version too (an expiry shows the morning after). A view's stamp is read after it
arrived, and before its page is built, so a page built while something changed is stored under the
older stamp and the next view rebuilds it: a kept page is never stale.

Two parts are not on any chain and are kept by time instead:

- the stall's credit rating (信用评价), an aggregate over twelve months of its enterprise's records that the
  anomaly analyzer feeds in the background, is kept :data:`CREDIT_SECONDS` per enterprise and is part of
  the version, so a changed grade shows (and changes the ETag) within that time;
- registry names (the stall, its market) are refreshed by rebuilding a page at most :data:`MAX_AGE` after
  it was built;
- the part of the journey recorded at another member ledger (a batch received with a handover voucher), read
  from that ledger and kept by :mod:`traceability.services.views.elsewhere`; which copy is shown is part of
  the version.

Memory is bounded: the least recently used pages are dropped past a budget of bytes (a page's size
depends on its batch and the batches it draws on, so a count would not bound it), ratings past their count.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from traceability import errors
from traceability.domain.budgeted import Budgeted
from traceability.domain.federation import Federation
from traceability.services.views import consumer, verdict
from traceability.services.views.elsewhere import Elsewhere
from traceability.storage import federation_repo, verdict_repo
from traceability.storage.database import Database, Record

CREDIT_SECONDS = 60.0
MAX_AGE = 300.0
PAGES = 16 << 20
"""Bytes of pages kept (``TRACE_PAGE_CACHE_MB``)."""
PAGE_COST = 6
"""Bytes a kept page's record holds per byte of its JSON (about 5 for a batch's view, which it resembles)."""
CREDITS = 1024


@dataclass(slots=True)
class _Page:
    sources: list[int]  # the batches the page draws on (itself first among them)
    stamp: bytes
    day: date
    built: float
    record: dict[str, Any]  # the vendor's credit left out
    uscc: str | None
    received: list[Record]  # the batches it draws on that came from other member ledgers
    shown: tuple[Any, dict[str, Any]] | None = None  # (credit and parts key, the record with them)
    cost: int = 0  # bytes, as the cache counts them


class _Heads:
    """The stamp reads of concurrent views, made together: one query for every view waiting, never one
    that began before a view asked (a view waits for the next read, so it sees what was committed before
    it came)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: tuple[set[int], asyncio.Future[dict[int, Record]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def read(self, ids: list[int]) -> dict[int, Record]:
        if self._waiting is None:
            self._waiting = (set(), asyncio.get_running_loop().create_future())
        wanted, found = self._waiting
        wanted.update(ids)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(self.db))
        return await asyncio.shield(found)

    async def _run(self, db: Database) -> None:
        while self._waiting is not None:
            wanted, found = self._waiting
            self._waiting = None
            try:
                async with db.connection() as conn:
                    rows = await verdict_repo.page_heads(conn, sorted(wanted))
            except Exception as exc:  # every view waiting on this read gets the error
                found.set_exception(exc)
                found.exception()  # retrieved here too: a view that went away leaves no warning
                continue
            found.set_result({r["batch_id"]: r for r in rows})


@dataclass(slots=True)
class PageCache:
    """Consumer records by trace code, each valid for one stamp and day; credit ratings by enterprise."""

    budget: int = PAGES
    credit_seconds: float = CREDIT_SECONDS
    max_age: float = MAX_AGE
    _pages: Budgeted[str, _Page] = field(init=False)
    _credits: OrderedDict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=OrderedDict)
    _heads: dict[int, _Heads] = field(default_factory=dict)
    elsewhere: Elsewhere = field(default_factory=Elsewhere)

    def __post_init__(self) -> None:
        self._pages = Budgeted(self.budget)

    @property
    def used(self) -> int:
        return self._pages.used

    def heads(self, db: Database) -> _Heads:
        """The shared stamp reads on ``db`` (a view read from a replica never shares one from the primary)."""
        found = self._heads.get(id(db))
        if found is None or found.db is not db:
            found = self._heads[id(db)] = _Heads(db)
        return found

    def find(self, code: str) -> _Page | None:
        return self._pages.get(code)

    def keep(self, code: str, page: _Page) -> None:
        page.cost = PAGE_COST * len(orjson.dumps(page.record, default=str)) + 64 * len(page.sources)
        self._pages.put(code, page, page.cost)

    async def credit(self, db: Database, uscc: str) -> dict[str, Any] | None:
        now = time.monotonic()
        found = self._credits.get(uscc)
        if found is not None and now - found[0] < self.credit_seconds:
            return found[1]
        rating = await consumer.credit_of(db, uscc)
        self._credits[uscc] = (now, rating)
        self._credits.move_to_end(uscc)
        while len(self._credits) > CREDITS:
            self._credits.popitem(last=False)
        return rating

    def clear(self) -> None:
        self._pages.clear()
        self._credits.clear()


def _stamp(sources: list[int], heads: dict[int, Record]) -> bytes:
    digest = hashlib.sha256()
    for i in sources:
        r = heads.get(i)
        if r is None:
            digest.update(b"-;")
            continue
        digest.update(f"{r['trace_code']}:{r['status']}:{r['links']}:".encode())
        digest.update(bytes(r["head_hash"]))
    return digest.digest()


async def consumer_page(
    db: Database, code: str, cache: PageCache, fed: Federation | None = None
) -> tuple[dict[str, Any], str]:
    """The consumer record of batch ``code`` and its version (a short hex string naming everything it shows);
    with ``fed``, the parts of its journey recorded at other member ledgers too (``elsewhere``).

    NotFound when no batch has the code.
    """
    day = verdict.today()
    page = cache.find(code)
    if page is not None:
        stamp = _stamp(page.sources, await cache.heads(db).read(page.sources))
        if stamp != page.stamp or page.day != day or time.monotonic() - page.built > cache.max_age:
            page = None
    if page is None:
        async with db.connection() as conn:
            sources = await verdict_repo.page_sources(conn, code)
        if not sources:
            raise errors.NotFound(f"no batch has trace code {code}")
        # The stamp is read before the page is built: whatever changes meanwhile changes the next stamp.
        stamp = _stamp(sources, await cache.heads(db).read(sources))
    if page is None:
        record, uscc = await consumer.consumer_record_base(db, code)
        async with db.connection() as conn:
            drawn_on = [code, *(b["trace_code"] for b in record["lineage"])]
            received = await federation_repo.received_among(conn, drawn_on) if fed and fed.members else []
        page = _Page(sources, stamp, day, time.monotonic(), record, uscc, received)
        cache.keep(code, page)
    credit = await cache.credit(db, page.uscc) if page.uscc is not None else None
    parts = []
    if fed is not None:
        for row in page.received:
            parts.extend(await cache.elsewhere.parts(fed, dict(row)))
    key = (None if credit is None else (credit["grade"], credit["score"]), tuple(p.pop("version") for p in parts))
    if page.shown is None or page.shown[0] != key:
        record = page.record
        if record["vendor"] is not None and page.uscc is not None:
            record = {**record, "vendor": {**record["vendor"], "credit": credit}}
        if parts:
            record = {**record, "elsewhere": parts}
        page.shown = (key, record)
    version = hashlib.sha256(page.stamp + f"{day.isoformat()}:{key}".encode()).hexdigest()[:20]
    return page.shown[1], version
