"""The demo city: Xuzhou (320300) with three weeks of meat, vegetable and drug flows, and optionally millions more.

``load_demo`` registers the city (:mod:`~traceability.demo.city`), records the story through the same
services the API uses (:mod:`~traceability.demo.story`: transformations, a failed pesticide test, a
recall, anomalies), then, when more events are asked for, fills the ledger through the scale path
(:mod:`~traceability.demo.bulk`). Everything it writes is
a ledger event or derived from one; a server's sequencer puts the events in the transparency log and
its analyzer finds the anomalies.

Determinism: one seed drives every random choice, and event times are laid out on the days before
midnight (China Standard Time) of the day it runs. The same seed on the same day into a fresh database
gives the same ledger content, apart from what the server itself records: ``recordedAt``, the random
salts of sealed commercial details, and the ids and times of the hold and recall events it appends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from traceability import errors
from traceability.demo.city import first_uscc, register_city
from traceability.demo.farms import register_farms
from traceability.demo.recorder import MIN_DAYS
from traceability.demo.scale import default_workers, load_bulk
from traceability.demo.story import Story
from traceability.domain.fields import BEIJING
from traceability.logging import get_logger
from traceability.services import registry
from traceability.storage import events_repo
from traceability.storage.database import Database

log = get_logger(__name__)

DAYS = 21
HIGHLIGHT_ORDER = ("receipt", "pork", "recall", "failed", "drug", "expired", "paper", "farm", "withdrawal", "dairy")


class Progress:
    """Counts events written and reports a line (events, rate) every ``every`` seconds."""

    def __init__(self, report: Callable[[str], None] | None, every: float = 3.0) -> None:
        self.report, self.every = report, every
        self.done = 0
        self.started = self.last = time.monotonic()
        self.phase = ""

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.report is not None and now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            self.report(f"{self.phase}: {self.done:,} events written ({rate:,.0f} events/s)")

    def start(self, phase: str) -> None:
        self.phase, self.done = phase, 0
        self.started = self.last = time.monotonic()


@dataclass(slots=True)
class DemoResult:
    seed: int
    anchor: datetime
    days: int
    counts: dict[str, int]
    story_events: int = 0
    bulk_events: int = 0
    bulk_batches: int = 0
    bulk_seconds: float = 0.0
    total_events: int = 0
    highlights: list[tuple[str, str, str]] = field(default_factory=list)  # (key, label, trace code)

    @property
    def bulk_rate(self) -> float:
        return self.bulk_events / self.bulk_seconds if self.bulk_seconds else 0.0


def anchor_for(today: date) -> datetime:
    """Midnight at the start of ``today`` in China Standard Time: every demo event lies before it."""
    return datetime(today.year, today.month, today.day, tzinfo=BEIJING)


async def is_loaded(db: Database) -> bool:
    """Whether the demo city is registered in this database."""
    return bool(await registry.list_registered(db, "enterprises", key=first_uscc(), limit=1))


async def empty_ledger_hint(db: Database) -> str | None:
    """What to tell someone starting a server on an empty ledger (None once it holds events)."""
    async with db.connection() as conn:
        if await events_repo.count_events(conn):
            return None
    return "the ledger is empty: `make demo` (or `traceability demo`) loads the demo city of Xuzhou"


async def load_demo(
    db: Database,
    *,
    seed: int = 1,
    public_url: str = "",
    days: int = DAYS,
    events: int = 0,
    today: date | None = None,
    report: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> DemoResult:
    """Register the city, record the story, then fill up to ``events`` events through the scale path.

    ``workers`` processes build and write the scale path's records (by default one per core for a large load,
    none for a small one)."""
    if days < MIN_DAYS:
        raise errors.InvalidField(f"days: the demo story needs at least {MIN_DAYS} days", field="days")
    if await is_loaded(db):
        raise errors.Conflict("the demo data is already loaded in this database")
    anchor = anchor_for(today or datetime.now(BEIJING).date())
    progress = Progress(report)
    try:
        city = await register_city(db)
        await register_farms(db, city)
    except errors.AlreadyExists as exc:
        raise errors.Conflict(
            f"this database already holds registrations that clash with the demo city ({exc.message}); load "
            "the demo into an empty ledger, e.g. TRACE_DATA_DIR=var/demo make demo"
        ) from None
    result = DemoResult(seed, anchor, days, city.counts())
    log.info("demo.city_registered", nodes=len(city.nodes), stalls=result.counts["stalls"])

    progress.start("story")
    story = Story(db, city, random.Random(seed), anchor, days, public_url, progress)  # noqa: S311 - not secrets
    await story.run()
    result.story_events = story.done
    by_key = {key: (key, label, code) for key, label, code in story.highlights.codes}
    result.highlights = [by_key[k] for k in HIGHLIGHT_ORDER if k in by_key]
    log.info("demo.story_recorded", events=story.done)

    if events > story.done:
        progress.start("scale path")
        began = time.monotonic()
        result.bulk_events, result.bulk_batches = await load_bulk(
            db,
            city,
            f"{seed}/bulk",
            anchor,
            days,
            events - story.done,
            progress,
            default_workers(events - story.done) if workers is None else workers,
        )
        result.bulk_seconds = time.monotonic() - began
        log.info(
            "demo.bulk_loaded",
            events=result.bulk_events,
            batches=result.bulk_batches,
            events_per_second=round(result.bulk_rate),
        )
    async with db.connection() as conn:
        result.total_events = await events_repo.count_events(conn)
    return result
