"""``/metrics`` in the Prometheus text format (prometheus-client), for administrators or configured addresses.

Two kinds of figures:

- counted by each server process as it works: requests by route, method and status with latency
  histograms (refused credentials and limits show as 401 and 429), events captured (new and
  replayed), the database pool's connections in use, the access log's queue;
- read from the database when scraped, so any process answers for the whole service: the log's
  size and the sequencer's lag (events waiting, age of the oldest), the analyzer's lag, checkpoint
  age, and each station's reported upload queue (``services.operations``).

With ``TRACE_WORKERS`` above one every worker writes its counts to files in ``$TRACE_DATA_DIR/metrics``
(prometheus-client's multiprocess mode, set up by ``traceability serve`` before any worker starts),
and whichever worker is scraped adds them all up; a dead worker's counters stay counted and its
gauges are dropped (:func:`forget_worker`). With one process, the requests are counted in plain
Python (:class:`_Counted`) and read out when scraped (:class:`_Requests`): every request passes through
here, and prometheus-client's locked counter and histogram took about 7 of a trivial request's 60 µs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from traceability import errors
from traceability.http.auth import require
from traceability.http.keys import ACCESS, DATABASE, READS, SETTINGS
from traceability.http.openapi import Response, operation
from traceability.services import operations

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
"""Methods counted by name; any other a client sends is counted as ``OTHER`` (labels stay few)."""
_LE = tuple(floatToGoString(b) for b in (*LATENCY_BUCKETS, float("inf")))  # type: ignore[no-untyped-call]
"""The buckets' bounds as the text format writes them (``le``)."""
REQUESTS = ("trace_http_requests", "HTTP requests answered, by route, method and status.")
LATENCY = ("trace_http_request_duration_seconds", "Time to answer an HTTP request, by route and method.")


SAMPLE_EVERY = 2.0
"""Seconds between a process's samples of its gauges (so a scrape of another worker sees them fresh)."""


def forget_worker(pid: int, directory: Path) -> None:
    """The supervisor's note that a worker died: drop its live gauges (its counters stay counted)."""
    if directory.is_dir():
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


class Metrics:
    """The figures one server process counts; ``shared``: the workers' directory in multiprocess mode."""

    def __init__(self, shared: Path | None = None) -> None:
        self.shared = shared
        # By the route's resource (None: no route matched), method and status; their records.
        self._requests: dict[tuple[Any, str, int], _Counted | _Shared] = {}
        self._captured: dict[tuple[str, str], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if shared is not None:  # each worker's counts in its files, for whichever worker is scraped to add up
            self.requests = Counter(*REQUESTS, ["route", "method", "status"], registry=r)
            self.latency = Histogram(*LATENCY, ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        else:
            r.register(_Requests(self._requests))
        self.events = Counter(
            "trace_events_captured", "Events recorded (replayed: a retry answered with its original receipt).",
            ["path", "outcome"], registry=r,
        )  # fmt: skip
        self.pool = Gauge(
            "trace_db_pool_connections", "Database connections of the server's pools, by state.",
            ["state"], multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.reads = Counter(
            "trace_db_reads", "Public reads by the database that answered them (primary, replica-N).",
            ["pool"], registry=r,
        )  # fmt: skip
        self.replica_lag = Gauge(
            "trace_db_replica_lag_seconds", "How far each read replica was behind the primary at its last check "
            "(an upper bound; -1: unknown).", ["replica"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.replica_lag_bytes = Gauge(
            "trace_db_replica_lag_bytes", "WAL bytes the primary had written that each replica had not replayed "
            "(-1: unknown).", ["replica"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.replica_chosen = Gauge(
            "trace_db_replica_chosen", "1 when a read replica is fresh enough to serve public reads.",
            ["replica"], multiprocess_mode="livemin", registry=r,
        )  # fmt: skip
        self.access_queue = Gauge(
            "trace_access_log_queued", "Access records waiting to be written.",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip

    def observe(self, resource: Any, method: str, status: int, seconds: float) -> None:
        """Count a request answered by ``resource``'s route (None: none matched) in ``seconds``."""
        if method not in METHODS:
            method = "OTHER"
        key = (resource, method, status)
        counted = self._requests.get(key)
        if counted is None:  # the label values are made once: routes, methods and statuses are few
            route = resource.canonical if resource is not None else "unmatched"
            if self.shared is None:
                counted = _Counted(route, method, str(status))
            else:
                counted = _Shared(self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._requests[key] = counted
        counted.add(seconds)

    def captured(self, path: str, new: int, replayed: int) -> None:
        if new:
            self._event_counter(path, "new").inc(new)
        if replayed:
            self._event_counter(path, "replayed").inc(replayed)

    def _event_counter(self, path: str, outcome: str) -> Any:
        key = (path, outcome)
        counter = self._captured.get(key)
        if counter is None:  # as in observe(): the paths and outcomes are few
            counter = self._captured[key] = self.events.labels(path, outcome)
        return counter

    def read(self, pool: str) -> None:
        self.reads.labels(pool).inc()

    def sample(self, app: web.Application) -> None:
        """Take this process's gauges (pool use, access log queue, read replicas) as they are now."""
        pool = app[DATABASE].pool
        size, idle = pool.get_size(), pool.get_idle_size()
        self.pool.labels("in_use").set(size - idle)
        self.pool.labels("idle").set(idle)
        self.pool.labels("max").set(pool.get_max_size())
        self.access_queue.set(len(app[ACCESS]))
        for r in app[READS].replicas if READS in app else ():
            self.replica_lag.labels(r.name).set(-1 if r.lag_seconds is None else r.lag_seconds)
            self.replica_lag_bytes.labels(r.name).set(-1 if r.lag_bytes is None else r.lag_bytes)
            self.replica_chosen.labels(r.name).set(float(r.fresh))

    def exposition(self, snapshot: dict[str, Any] | None) -> bytes:
        """The text format: every process's counts (added up across workers) and the database's figures."""
        if self.shared is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, str(self.shared))  # type: ignore[no-untyped-call]
            counted = generate_latest(registry)
        else:
            counted = generate_latest(self.registry)
        service = CollectorRegistry()
        service.register(_Snapshot(snapshot))
        return counted + generate_latest(service)


class _Counted:
    """The requests of one route, method and status in this process: how many, their seconds in all, and
    how many took at most each of :data:`LATENCY_BUCKETS` (the last: more)."""

    __slots__ = ("buckets", "count", "created", "labels", "seconds")

    def __init__(self, route: str, method: str, status: str) -> None:
        self.labels = (route, method, status)
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.created = time.time()

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bucket holds what is <= its bound


class _Shared:
    """The requests of one route, method and status, counted in the workers' files (multiprocess mode)."""

    __slots__ = ("latency", "requests")

    def __init__(self, requests: Any, latency: Any) -> None:
        self.requests, self.latency = requests, latency

    def add(self, seconds: float) -> None:
        self.requests.inc()
        self.latency.observe(seconds)


class _Requests(Collector):
    """This process's requests as prometheus-client's own counter and histogram would show them: a count
    for each route, method and status, a latency histogram for each route and method."""

    def __init__(self, counted: dict[tuple[Any, str, int], _Counted | _Shared]) -> None:
        self.counted = counted

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(*REQUESTS, labels=["route", "method", "status"])
        latency = HistogramMetricFamily(*LATENCY, labels=["route", "method"])
        by_route: dict[tuple[str, str], list[_Counted]] = {}
        for c in list(self.counted.values()):
            if isinstance(c, _Counted):
                requests.add_metric(list(c.labels), c.count, created=c.created)
                by_route.setdefault(c.labels[:2], []).append(c)
        for labels, group in by_route.items():
            buckets, total = [], 0
            for i, le in enumerate(_LE):
                total += sum(c.buckets[i] for c in group)
                buckets.append((le, total))
            latency.add_metric(list(labels), buckets, sum(c.seconds for c in group))
        yield requests
        yield latency


class _Snapshot(Collector):
    """The service's figures read from the database at scrape time."""

    def __init__(self, snapshot: dict[str, Any] | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        yield GaugeMetricFamily("trace_database_up", "1 when the database answered this scrape.", value=float(bool(s)))
        if s is None:
            return
        for name, doc, key in (
            ("trace_log_size", "Events in the transparency log's latest signed checkpoint.", "log_size"),
            ("trace_log_queue", "Events recorded but not yet in the transparency log (sequencer lag).", "queued"),
            ("trace_log_queue_age_seconds", "Age of the oldest event waiting for the log.", "queue_age"),
            ("trace_checkpoint_age_seconds", "Seconds since the log's head last moved.", "checkpoint_age"),
            ("trace_events", "Events in the ledger (in the log and waiting for it).", "events"),
            ("trace_analyzer_lag", "Log entries the anomaly analyzer has not read yet.", "analyzer_lag"),
            ("trace_analyzer_lag_seconds", "Age of the oldest log entry the analyzer has not read.", "analyzer_age"),
            (
                "trace_analyzer_failed_events",
                "Records the analyzer went past because a rule could not read them (logged as analyzer.event_failed).",
                "analyzer_failed",
            ),
            ("trace_anomalies", "Anomalies found so far.", "anomalies"),
        ):
            yield GaugeMetricFamily(name, doc, value=float(s[key]))
        stations = s["stations"]
        pending = GaugeMetricFamily(
            "trace_station_queue_pending", "Records a station reported waiting to upload.", labels=["device", "node"]
        )
        oldest = GaugeMetricFamily(
            "trace_station_queue_oldest_seconds",
            "Age of the oldest record a station reported waiting (0 when its queue was empty).",
            labels=["device", "node"],
        )
        silent = GaugeMetricFamily(
            "trace_station_report_age_seconds", "Seconds since a station last reported.", labels=["device", "node"]
        )
        for st in stations:
            labels = [str(st["device"]), st["node"]]
            pending.add_metric(labels, st["pending"])
            oldest.add_metric(labels, st["oldest_age"])
            silent.add_metric(labels, st["report_age"])
        yield from (pending, oldest, silent)
        yield from _witnessing(s)


def _witnessing(s: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """Witnessing the other members of a federation, and the split views proven (open until cleared)."""
    failures = GaugeMetricFamily(
        "trace_witness_failures", "Rounds in a row witnessing a member failed (0: its last round went well).",
        labels=["origin"],
    )  # fmt: skip
    size = GaugeMetricFamily("trace_witness_size", "The member's largest checkpoint checked here.", labels=["origin"])
    age = GaugeMetricFamily(
        "trace_witness_ok_age_seconds", "Seconds since witnessing a member last went well (-1: never).",
        labels=["origin"],
    )  # fmt: skip
    split = GaugeMetricFamily(
        "trace_federation_split_views",
        "Proven split views of a member not yet cleared (its vouchers are refused while above 0).",
        labels=["origin"],
    )
    for w in s["witness"]:
        failures.add_metric([w["origin"]], w["failures"])
        size.add_metric([w["origin"]], w["size"])
        age.add_metric([w["origin"]], w["ok_age"])
        split.add_metric([w["origin"]], s["split_views"].get(w["origin"], 0))
    for origin, n in s["split_views"].items():
        if all(w["origin"] != origin for w in s["witness"]):
            split.add_metric([origin], n)
    yield from (failures, size, age, split)


METRICS = web.AppKey("metrics", Metrics)


def count(request: web.Request, status: int, seconds: float) -> None:
    """Count and time a request by its route (the template, never the URL: bounded labels; run by
    :mod:`.pipeline`)."""
    request.app[METRICS].observe(request.match_info.route.resource, request.method, status, seconds)


def _allowed_address(request: web.Request) -> bool:
    allow = request.app[SETTINGS].metrics_allow
    if not allow or not request.remote:
        return False
    try:
        ip = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(ip in net for net in allow)


@operation(
    "Prometheus metrics (administrators, or addresses in TRACE_METRICS_ALLOW)",
    tags=("operations",),
    auth=("bearer",),
    responses={200: Response("the Prometheus text format", {"type": "string"}, media_type="text/plain")},
)
async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: for an administrator's credential, or a client in ``TRACE_METRICS_ALLOW``."""
    if not _allowed_address(request):
        try:
            await require(request, "admin")
        except errors.Unauthorized:
            raise errors.Unauthorized(
                "/metrics needs an administrator's credential or a client address in TRACE_METRICS_ALLOW"
            ) from None
    m = request.app[METRICS]
    m.sample(request.app)
    try:
        snapshot: dict[str, Any] | None = await operations.snapshot(request.app[DATABASE])
    except errors.StorageUnavailable:  # still show what this process counted, and that the database is down
        snapshot = None
    return web.Response(
        body=m.exposition(snapshot), headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
    )


async def _sampler(app: web.Application) -> AsyncIterator[None]:
    async def sample() -> None:
        while True:
            app[METRICS].sample(app)
            await asyncio.sleep(SAMPLE_EVERY)

    task = asyncio.create_task(sample())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """``/metrics``; in multiprocess mode (``traceability serve`` with several workers) the shared files."""
    settings = app[SETTINGS]
    shared = settings.metrics_dir if settings.workers > 1 and values.ValueClass is not values.MutexValue else None
    app[METRICS] = Metrics(shared)
    app.cleanup_ctx.append(_sampler)
    app.router.add_get("/metrics", metrics)
