"""structlog, configured once: readable console lines in development, JSON lines otherwise.

structlog imports rich whenever it is installed (development tools bring it along) to render tracebacks,
about 5 MB in every process; it is kept from loading here, and the console renderer formats exceptions
with structlog's plain formatter, so a line and a traceback read the same with rich installed or not.
"""

from __future__ import annotations

import logging
import sys

_rich_absent = "rich" not in sys.modules
if _rich_absent:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes structlog's optional `import rich` fail
try:
    import structlog
finally:
    if _rich_absent:
        del sys.modules["rich"]  # whoever else wants rich may still import it


def configure(*, fmt: str = "console", level: str = "info") -> None:
    """Set up structlog and route the standard library's logging through the same output."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
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
