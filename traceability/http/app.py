"""The application factory shared by the CLI, the tests and the benchmark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from traceability.config import Settings
from traceability.http import (
    api,
    compression,
    credentials_api,
    epcis_api,
    epcis_query_api,
    farm_api,
    federation_api,
    log_api,
    metrics,
    openapi,
    pages,
    reads,
    resolver,
    sms_api,
    stations,
    supply_api,
    verdict_api,
)
from traceability.http.keys import (
    ACCESS,
    APPENDS,
    DATABASE,
    FEDERATION,
    FOREGROUND,
    LIMITS,
    LOG,
    PAGES,
    PRINCIPALS,
    READS,
    RENDERED,
    SETTINGS,
    VIEWS,
)
from traceability.http.pipeline import pipeline
from traceability.http.security import security_headers
from traceability.logging import get_logger
from traceability.services import background, federated_recall, federation, principals, transparency, witnessing
from traceability.services.access_log import AccessLog
from traceability.services.appends import SingleAppends
from traceability.services.history import ViewCache
from traceability.services.principals import PrincipalCache
from traceability.services.throttle import Limits
from traceability.services.views.page_cache import PageCache
from traceability.storage import replicas
from traceability.storage.database import open_database

log = get_logger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The pool and the read replicas' chooser; the watch that restarts an embedded PostgreSQL that died;
    the revocation listener."""
    async with open_database(app[SETTINGS]) as db, replicas.open_reads(app[SETTINGS], db) as chooser:
        app[DATABASE], app[READS] = db, chooser
        app[APPENDS] = SingleAppends(db)
        log.info("database.opened", database=db.label, runtime_role=db.role or "none")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(principals.watch_revocations(db, app[PRINCIPALS], stop))]
        if chooser.replicas:
            tasks.append(asyncio.create_task(chooser.watch(stop)))
        if db.embedded is not None:
            tasks.append(asyncio.create_task(db.embedded.watch(stop)))
        tasks.append(asyncio.create_task(app[ACCESS].run(db, stop)))
        yield
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)


async def _log(app: web.Application) -> AsyncIterator[None]:
    """The transparency log this process signs for and, in a federation, the witness of the other members
    (one active across processes). Its sequencer and the analyzer: :func:`_background`."""
    settings = app[SETTINGS]
    lg = app[LOG] = await transparency.open_log(app[DATABASE], settings)
    app[FEDERATION] = federation.join(app[FEDERATION], lg.origin, lg.verifier_key, settings.federation_file)
    await federation.publish(app[DATABASE], app[FEDERATION])
    await witnessing.register_members(app[DATABASE], app[FEDERATION])
    stop = asyncio.Event()
    witness_every = settings.witness_interval_ms / 1000
    tasks = [
        asyncio.create_task(witnessing.run_witness(app[DATABASE], lg, app[FEDERATION], witness_every, stop)),
    ]
    if app[FEDERATION].members:  # recall notices to other members, until each is delivered
        tasks.append(asyncio.create_task(federated_recall.run_deliveries(app[DATABASE], app[FEDERATION], stop)))
    yield
    stop.set()
    # Collected, not raised: a task the shutdown already cancelled has nothing left to say.
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The log's sequencer and the anomaly analyzer in this process (one of each active across processes),
    when no background process of their own runs them (:mod:`traceability.services.background`)."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        background.run(app[DATABASE], app[LOG], app[SETTINGS].sequencer_interval_ms / 1000, stop, app[FOREGROUND].busy)
    )
    yield
    stop.set()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=10)


def create_app(settings: Settings, *, background_work: bool = True) -> web.Application:
    """Assemble the service: settings, database pool, middleware and routes; ``background_work``: also the
    log's sequencer and the analyzer (``traceability serve`` runs them in a process of their own instead)."""
    app = web.Application(
        middlewares=[pipeline],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[FEDERATION] = federation.load(settings.federation_file)
    app[PRINCIPALS] = PrincipalCache()
    app[VIEWS] = ViewCache(settings.view_cache_mb << 20)
    app[PAGES] = PageCache(settings.page_cache_mb << 20)
    app[RENDERED] = compression.Rendered(settings.rendered_cache_mb << 20)
    app[LIMITS] = Limits.of(settings.capture_rate, settings.capture_burst)
    app[ACCESS] = AccessLog()
    app[FOREGROUND] = background.Foreground()
    app.on_response_prepare.append(security_headers)
    if settings.database_read_urls:  # only then may a public read name another pool
        app.on_response_prepare.append(reads.read_from)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_log)
    if background_work:
        app.cleanup_ctx.append(_background)
    metrics.setup(app)
    app.add_routes(api.routes)
    app.add_routes(credentials_api.routes)
    app.add_routes(log_api.routes)
    app.add_routes(supply_api.routes)
    app.add_routes(farm_api.routes)
    app.add_routes(federation_api.routes)
    app.add_routes(stations.routes)
    app.add_routes(verdict_api.routes)
    app.add_routes(epcis_api.routes)
    app.add_routes(epcis_query_api.routes)
    app.add_routes(resolver.routes)
    sms_api.setup(app)
    pages.setup(app)
    app[api.OPENAPI] = orjson.dumps(openapi.document(app))
    return app
