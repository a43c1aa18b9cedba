"""Stations report their upload queues; /metrics shows each station's backlog and how long it has waited."""

from __future__ import annotations

from pathlib import Path

from tests.scanners.conftest import Live
from tests.scanners.test_station import enrolled, selling
from tests.test_metrics import samples, value


async def test_stations_report_their_queues(live: Live, tmp_path: Path) -> None:
    st, reg = await enrolled(live, tmp_path / "st")
    counter = selling(st)
    assert await st.sync(within=20)  # the queue emptied: the station says so
    labels = {"device": str(reg["device"]["id"]), "node": reg["node"]["code"]}
    scraped = await _scrape(live)
    assert value(scraped, "trace_station_queue_pending", **labels) == 0
    assert value(scraped, "trace_station_queue_oldest_seconds", **labels) == 0
    await live.stop()  # offline: scans queue up
    for i in range(5):
        assert counter.handle(f"{1 + i / 10:.1f}kg").ok
    await live.start()
    async with st.client() as c:
        await st.report(c, force=True)  # a heartbeat while the backlog waits
    scraped = await _scrape(live)
    assert value(scraped, "trace_station_queue_pending", **labels) == 5  # five sales, one queued record each
    assert value(scraped, "trace_station_report_age_seconds", **labels) < 3600
    # The report is checked like any other body.
    status, _ = await live.call("POST", "/api/v1/stations/heartbeat", {"pending": -1})
    assert status == 403  # a bearer admin credential is not a station
    async with st.client() as c:
        ans = await c.call("POST", "/api/v1/stations/heartbeat", {"pending": 3})
        assert ans.status == 422 and ans.error["field"] == "oldestPendingAge"
        ans = await c.call("POST", "/api/v1/stations/heartbeat", {"pending": 0, "extra": 1})
        assert ans.status == 422 and ans.error["field"] == "extra"
    assert await st.sync(within=20)
    assert value(await _scrape(live), "trace_station_queue_pending", **labels) == 0


async def _scrape(live: Live) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as s,
        s.get(live.url + "/metrics", headers={"Authorization": f"Bearer {live.admin}"}) as resp,
    ):
        assert resp.status == 200
        return samples(await resp.text())
