"""The application factory shared by the CLI, the tests and the benchmark."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from traceability.config import Settings
from traceability.http import api
from traceability.http.keys import DATABASE, SETTINGS
from traceability.http.middleware import request_context
from traceability.logging import get_logger
from traceability.storage.database import open_database

log = get_logger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[SETTINGS]) as db:
        app[DATABASE] = db
        log.info("database.opened", database=db.label, runtime_role=db.role or "none")
        yield


def create_app(settings: Settings) -> web.Application:
    """Assemble the service: settings, database pool, middleware and routes."""
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.add_routes(api.routes)
    return app
