"""The application factory shared by the CLI, the tests and the benchmark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from traceability.config import Settings
from traceability.http import api, log_api, stations
from traceability.http.keys import DATABASE, LOG, SETTINGS
from traceability.http.middleware import request_context
from traceability.logging import get_logger
from traceability.services import transparency
from traceability.storage.database import open_database

log = get_logger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[SETTINGS]) as db:
        app[DATABASE] = db
        log.info("database.opened", database=db.label, runtime_role=db.role or "none")
        yield


async def _log(app: web.Application) -> AsyncIterator[None]:
    """The transparency log this process signs for, and its sequencer (one active across processes)."""
    settings = app[SETTINGS]
    lg = app[LOG] = await transparency.open_log(app[DATABASE], settings)
    stop = asyncio.Event()
    task = asyncio.create_task(transparency.run_sequencer(app[DATABASE], lg, settings.sequencer_interval_ms / 1000,
                                                          stop))
    yield
    stop.set()
    await asyncio.wait_for(task, timeout=10)


def create_app(settings: Settings) -> web.Application:
    """Assemble the service: settings, database pool, middleware and routes."""
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_log)
    app.add_routes(api.routes)
    app.add_routes(log_api.routes)
    app.add_routes(stations.routes)
    return app
