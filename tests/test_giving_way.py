"""Background work that can wait (the anomaly analyzer) gives way while its process takes writes; the
sequencer, which puts each record in the log within a second, never does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import World, settled
from traceability.config import Settings
from traceability.http.keys import FOREGROUND
from traceability.services import exclusive
from traceability.storage.database import open_database


async def pauses_of(db_url: str, monkeypatch: pytest.MonkeyPatch, busy: bool) -> list[float]:
    """The pauses run_exclusive takes around three steps of 20 ms each, the process ``busy`` or not."""
    pauses: list[float] = []
    steps = 0
    stop = asyncio.Event()

    async def sleep_until(_: asyncio.Event, seconds: float) -> None:
        pauses.append(seconds)

    async def step(_: Any) -> bool:
        nonlocal steps
        await asyncio.sleep(0.02)
        steps += 1
        if steps == 3:
            stop.set()
        return True  # more work waiting: no interval between steps, only the pauses that give way

    monkeypatch.setattr(exclusive, "sleep_until", sleep_until)
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await exclusive.run_exclusive(db, "giving-way-test", 0x7465737467697665, step, 0.2, stop, lambda: busy)
    return pauses


async def test_work_that_gives_way_pauses_for_the_rest_of_its_share_while_busy(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = await pauses_of(db_url, monkeypatch, busy=True)
    share = exclusive.SHARE_WHILE_BUSY
    assert len(pauses) == 3
    assert all(p >= 0.02 * (1 / share - 1) * 0.99 for p in pauses)  # at least four times the 20 ms it worked


async def test_work_that_gives_way_does_not_pause_when_the_process_is_idle(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await pauses_of(db_url, monkeypatch, busy=False) == []


async def test_a_write_marks_the_process_busy_and_a_read_does_not(world: World, client: Any) -> None:
    foreground = client.server.app[FOREGROUND]
    foreground.wrote = -foreground.RECENT
    await client.get("/api/v1/log/checkpoint")
    assert not foreground.busy()
    code = await world.open_batch()
    assert foreground.busy()
    # The analyzer gives way but still gets through: the anomalies of a write are there once it settles.
    await world.post("/api/v1/events", world.event(code, "storing"), world.devices["slaughter"], expect=201)
    await settled(client)
