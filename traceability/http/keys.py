"""Typed application keys: the resources a request handler may reach."""

from __future__ import annotations

from aiohttp import web

from traceability.config import Settings
from traceability.domain.federation import Federation
from traceability.http.compression import Rendered
from traceability.services.access_log import AccessLog
from traceability.services.appends import SingleAppends
from traceability.services.background import Foreground
from traceability.services.history import ViewCache
from traceability.services.principals import PrincipalCache
from traceability.services.throttle import Limits
from traceability.services.transparency import Log
from traceability.services.views.page_cache import PageCache
from traceability.storage.database import Database
from traceability.storage.replicas import Reads

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
READS = web.AppKey("reads", Reads)
LOG = web.AppKey("log", Log)
PRINCIPALS = web.AppKey("principals", PrincipalCache)
VIEWS = web.AppKey("views", ViewCache)
PAGES = web.AppKey("pages", PageCache)
RENDERED = web.AppKey("rendered", Rendered)
ACCESS = web.AppKey("access", AccessLog)
LIMITS = web.AppKey("limits", Limits)
FEDERATION = web.AppKey("federation", Federation)
APPENDS = web.AppKey("appends", SingleAppends)
FOREGROUND = web.AppKey("foreground", Foreground)
