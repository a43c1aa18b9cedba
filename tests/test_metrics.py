"""/metrics: the Prometheus text format, for administrators or configured addresses only, with what an
operator watches: requests by route and status, latency, events captured, the log and its lag."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import World
from traceability.config import Settings
from traceability.http import metrics
from traceability.http.app import create_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: Any, token: str | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return samples(await resp.text())


async def test_metrics_count_what_the_server_does(world: World) -> None:
    code = await world.open_batch()
    for _ in range(3):
        await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
    again = world.event(code)
    await world.post("/api/v1/events", again, world.devices["slaughter"], expect=201)
    await world.post("/api/v1/events", again, world.devices["slaughter"], expect=200)  # a replay
    await world.client.get("/api/v1/batches/12345")
    # Eventually the sequencer has put every event in the log and the analyzer has read them.
    for _ in range(500):
        found = await scrape(world.client, world.admin)
        if value(found, "trace_log_size") == 5 and value(found, "trace_analyzer_lag") == 0:
            break
        await asyncio.sleep(0.02)
    assert value(found, "trace_database_up") == 1
    assert value(found, "trace_log_size") == 5 and value(found, "trace_log_queue") == 0
    assert value(found, "trace_events") == 5 and value(found, "trace_log_queue_age_seconds") == 0
    assert value(found, "trace_analyzer_failed_events") == 0  # records it went past unread (analyzer.event_failed)
    assert value(found, "trace_events_captured_total", path="api", outcome="new") == 5
    assert value(found, "trace_events_captured_total", path="api", outcome="replayed") == 1
    route = "/api/v1/events"
    assert value(found, "trace_http_requests_total", route=route, method="POST", status="201") == 4
    assert value(found, "trace_http_requests_total", route=route, method="POST", status="200") == 1
    assert value(found, "trace_http_requests_total", route="/api/v1/batches/{trace_code}", method="GET",
                 status="400") == 1  # fmt: skip
    assert value(found, "trace_http_request_duration_seconds_count", route=route, method="POST") == 5
    assert value(found, "trace_http_request_duration_seconds_bucket", route=route, method="POST", le="+Inf") == 5
    assert value(found, "trace_db_pool_connections", state="max") == 16
    assert value(found, "trace_db_pool_connections", state="in_use") >= 1  # the scrape itself holds one


async def test_metrics_are_for_administrators_or_a_configured_address(aiohttp_client: Any, world: World, db_url: str,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    resp = await world.client.get("/metrics")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "x"}, expect=201)
    resp = await world.client.get("/metrics", headers=world.auth(regulator["credential"]))
    assert resp.status == 403
    settings = Settings.from_env(
        {"TRACE_METRICS_ALLOW": "127.0.0.1/32, ::1"}, database_url=db_url, data_dir=tmp_path, public_url="http://x"
    )
    scraper = await aiohttp_client(create_app(settings))
    try:
        assert value(await scrape(scraper, None), "trace_log_queue") >= 0
    finally:
        await scraper.close()


def test_requests_read_out_as_prometheus_clients_own_counter_and_histogram_would_show_them() -> None:
    """One process counts its requests in plain Python; a scrape shows the same samples prometheus-client's
    Counter and Histogram would have for the same requests (their ``_created`` times aside)."""
    app = web.Application()
    proofs = app.router.add_resource("/api/v1/events/{event_id}/proof")
    log = app.router.add_resource("/api/v1/log")
    seen = [
        (proofs, "GET", 200, 0.003), (proofs, "GET", 200, 0.005), (proofs, "GET", 404, 0.0051),
        (proofs, "GET", 200, 12.0), (log, "GET", 200, 0.3), (log, "HEAD", 200, 0.01), (None, "GET", 404, 0.0),
        (log, "BREW", 405, 0.02), (log, "SPILL", 405, 0.03),  # methods nobody uses: counted as OTHER
    ]  # fmt: skip
    m = metrics.Metrics()
    oracle = CollectorRegistry()
    requests = Counter(*metrics.REQUESTS, ["route", "method", "status"], registry=oracle)
    latency = Histogram(*metrics.LATENCY, ["route", "method"], buckets=metrics.LATENCY_BUCKETS, registry=oracle)
    for resource, method, status, seconds in seen:
        m.observe(resource, method, status, seconds)
        route = resource.canonical if resource is not None else "unmatched"
        method = method if method in metrics.METHODS else "OTHER"
        requests.labels(route, method, str(status)).inc()
        latency.labels(route, method).observe(seconds)

    def shown(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        found = samples(text.decode()).items()
        return {k: v for k, v in found if k[0].startswith("trace_http_") and not k[0].endswith("_created")}

    ours = shown(generate_latest(m.registry))
    assert ours == shown(generate_latest(oracle))
    assert value(ours, "trace_http_requests_total", route="/api/v1/log", method="OTHER", status="405") == 2
    assert value(ours, "trace_http_request_duration_seconds_bucket", route="/api/v1/events/{event_id}/proof",
                 method="GET", le="0.005") == 2  # fmt: skip
