"""structlog, configured once: readable console lines in development, JSON lines otherwise.

structlog imports rich whenever it is installed (development tools bring it along) to render tracebacks,
about 5 MB in every process; it is kept from loading here, and the console renderer formats exceptions
with structlog's plain formatter, so a line and a traceback read the same with rich installed or not.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

_rich_absent = "rich" not in sys.modules
if _rich_absent:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes structlog's optional `import rich` fail
try:
    import structlog
finally:
    if _rich_absent:
        del sys.modules["rich"]  # whoever else wants rich may still import it


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The id of the request being answered (set and cleared by the HTTP middleware), on each line logged
meanwhile. One variable set twice a request: structlog's bind and unbind of its own took several times
as long, on every request."""


def add_request_id(_logger: Any, _method: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """A processor: the :data:`REQUEST_ID` of the request being answered, if any, on the line."""
    rid = REQUEST_ID.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def configure(*, fmt: str = "console", level: str = "info") -> None:
    """Set up structlog and route the standard library's logging through the same output."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(name)s: %(message)s")
    # aiohttp's access log is replaced by our one line per request.
    logging.getLogger("aiohttp.access").disabled = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
