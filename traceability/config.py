"""Settings, built once from the environment. The only module that reads ``os.environ``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from traceability.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _background(env: Mapping[str, str]) -> str:
    raw = (env.get("TRACE_BACKGROUND") or "auto").strip().lower()
    if raw not in ("auto", "process", "inline"):
        raise ConfigError(f"TRACE_BACKGROUND must be auto, process or inline, got {raw!r}")
    return raw


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses or CIDR blocks (``127.0.0.1, 10.0.0.0/8, ::1``)."""
    out = []
    for item in (env.get(name) or "").split(","):
        if item.strip():
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"{name}: {item.strip()!r} is not an IP address or CIDR block") from None
    return tuple(out)


MAX_READ_URLS = 16


def _urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of PostgreSQL URLs; a wrong one is named by its position, never echoed (passwords)."""
    urls = tuple(u.strip() for u in (env.get(name) or "").split(",") if u.strip())
    for n, url in enumerate(urls, 1):
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"{name}: URL {n} must start with postgresql://")
    if len(urls) > MAX_READ_URLS:
        raise ConfigError(f"{name}: at most {MAX_READ_URLS} URLs, got {len(urls)}")
    return urls


def _tls(env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    cert, key = env.get("TRACE_TLS_CERT") or None, env.get("TRACE_TLS_KEY") or None
    if (cert is None) != (key is None):
        raise ConfigError("set both TRACE_TLS_CERT and TRACE_TLS_KEY to serve HTTPS, or neither")
    for name, value in (("TRACE_TLS_CERT", cert), ("TRACE_TLS_KEY", key)):
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"{name}: no such file {value}")
    return (Path(cert) if cert else None), (Path(key) if key else None)


def _file(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name) or None
    if value is not None and not Path(value).is_file():
        raise ConfigError(f"{name}: no such file {value}")
    return Path(value) if value else None


MIN_SECRET = 16


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A shared secret: unset or empty is None; a short one is refused (never echoed back)."""
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET or not value.isascii() or not value.isprintable():
        raise ConfigError(f"{name} must be at least {MIN_SECRET} printable ASCII characters")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service can be told from outside. See the settings table in README.md."""

    database_url: str | None = None
    database_read_urls: tuple[str, ...] = field(default=(), repr=False)
    """Streaming replicas of the primary for public reads (``TRACE_DATABASE_READ_URLS``, comma-separated)."""
    read_max_lag_ms: int = 2000
    """How far behind the primary a replica may be and still serve public reads (``TRACE_READ_MAX_LAG_MS``)."""
    data_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    log_format: str = "console"
    log_level: str = "info"
    max_body_bytes: int = 4 * 1024 * 1024
    max_events_per_request: int = 1000
    pool_size: int = 16
    view_cache_mb: int = 16
    """Memory for batch views kept by chain head (``TRACE_VIEW_CACHE_MB``), least recently used out first."""
    page_cache_mb: int = 16
    """Memory for consumer pages' records (``TRACE_PAGE_CACHE_MB``), least recently used out first."""
    rendered_cache_mb: int = 16
    """Memory for answers kept rendered, plain and gzip (``TRACE_RENDERED_CACHE_MB``), likewise."""
    runtime_role: str = "traceability_runtime"
    schema_dir: Path = ROOT / "schema"
    admin_token_file: Path | None = None
    signing_key_file: Path | None = None
    log_origin: str | None = None
    sequencer_interval_ms: int = 200
    workers: int = 1
    background: str = "auto"
    """Where ``traceability serve`` runs the log's sequencer and the analyzer (``TRACE_BACKGROUND``):
    ``process``, in a process of their own at a lower CPU priority; ``inline``, in the server processes;
    ``auto``, a process of their own when there are several workers."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[Network, ...] = ()
    metrics_allow: tuple[Network, ...] = ()
    capture_rate: float = 50.0
    capture_burst: int = 500
    federation_file: Path | None = None
    witness_interval_ms: int = 30_000
    """How often this ledger fetches, checks and cosigns each member's checkpoint (``TRACE_WITNESS_INTERVAL_MS``)."""
    sms_secret: str | None = field(default=None, repr=False)
    """The SMS gateway's shared secret (``TRACE_SMS_SECRET``); None turns the SMS webhook off (404)."""
    sms_reserve: int = 0
    """Characters the SMS gateway adds to each reply (``TRACE_SMS_RESERVE``: a carrier signature 【…】), kept free."""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def background_process(self) -> bool:
        """Whether ``traceability serve`` runs the sequencer and the analyzer in a process of their own."""
        if self.background == "auto":
            # One worker keeps them in: a process of their own adds about 50 MB RSS beside the server's at its
            # peak (catching up with a million events), which leaves no margin under the 200 MB the server's
            # processes together are held to.
            return self.workers > 1
        return self.background == "process"

    @property
    def pg_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data when no database URL is given."""
        return self.data_dir / "pg"

    @property
    def metrics_dir(self) -> Path:
        """Where the worker processes keep their metrics for ``/metrics`` to add up (``TRACE_WORKERS`` > 1)."""
        return self.data_dir / "metrics"

    @property
    def admin_token_path(self) -> Path:
        return self.admin_token_file or self.data_dir / "admin-token"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "log-signing-key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``TRACE_*`` variables; ``overrides`` win (the CLI's flags and the tests use them)."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("TRACE_DATA_DIR") or ROOT / "var").resolve()
        host = env.get("TRACE_HOST") or "127.0.0.1"
        port = _int(env, "TRACE_PORT", 8080, 0, 65535)
        log_format = env.get("TRACE_LOG_FORMAT") or "console"
        if log_format not in ("console", "json"):
            raise ConfigError(f"TRACE_LOG_FORMAT must be console or json, got {log_format!r}")
        values: dict[str, object] = {
            "database_url": env.get("TRACE_DATABASE_URL") or None,
            "database_read_urls": _urls(env, "TRACE_DATABASE_READ_URLS"),
            "read_max_lag_ms": _int(env, "TRACE_READ_MAX_LAG_MS", 2000, 0, 3_600_000),
            "data_dir": data_dir,
            "host": host,
            "port": port,
            "public_url": (env.get("TRACE_PUBLIC_URL") or f"http://{host}:{port}").rstrip("/"),
            "log_format": log_format,
            "log_level": (env.get("TRACE_LOG_LEVEL") or "info").lower(),
            "max_body_bytes": _int(env, "TRACE_MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 1 << 30),
            "max_events_per_request": _int(env, "TRACE_MAX_EVENTS_PER_REQUEST", 1000, 1, 100_000),
            "pool_size": _int(env, "TRACE_DB_POOL_SIZE", 16, 2, 500),
            "view_cache_mb": _int(env, "TRACE_VIEW_CACHE_MB", 16, 0, 4096),
            "page_cache_mb": _int(env, "TRACE_PAGE_CACHE_MB", 16, 0, 4096),
            "rendered_cache_mb": _int(env, "TRACE_RENDERED_CACHE_MB", 16, 0, 4096),
            "runtime_role": env.get("TRACE_DB_RUNTIME_ROLE", "traceability_runtime"),
            "admin_token_file": Path(p) if (p := env.get("TRACE_ADMIN_TOKEN_FILE")) else None,
            "signing_key_file": Path(p) if (p := env.get("TRACE_SIGNING_KEY_FILE")) else None,
            "log_origin": env.get("TRACE_LOG_ORIGIN") or None,
            "sequencer_interval_ms": _int(env, "TRACE_SEQUENCER_INTERVAL_MS", 200, 10, 60_000),
            "workers": _int(env, "TRACE_WORKERS", 1, 1, 64),
            "background": _background(env),
            "trusted_proxies": _networks(env, "TRACE_TRUSTED_PROXIES"),
            "metrics_allow": _networks(env, "TRACE_METRICS_ALLOW"),
            "capture_rate": _float(env, "TRACE_CAPTURE_RATE", 50.0, 0, 1_000_000),
            "capture_burst": _int(env, "TRACE_CAPTURE_BURST", 500, 1, 1_000_000),
            "federation_file": _file(env, "TRACE_FEDERATION"),
            "witness_interval_ms": _int(env, "TRACE_WITNESS_INTERVAL_MS", 30_000, 100, 86_400_000),
            "sms_secret": _secret(env, "TRACE_SMS_SECRET"),
            "sms_reserve": _int(env, "TRACE_SMS_RESERVE", 0, 0, 12),
        }
        values["tls_cert"], values["tls_key"] = _tls(env)
        scheme = "https" if values["tls_cert"] else "http"
        if not env.get("TRACE_PUBLIC_URL"):
            values["public_url"] = f"{scheme}://{host}:{port}"
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def use_multiprocess_metrics(directory: Path) -> None:
    """Tell prometheus-client (which reads its environment) to keep metrics in files that every worker shares.

    Must run before prometheus-client is imported; the workers inherit the variable.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def test_database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The PostgreSQL server the test suite should use instead of starting its own."""
    env = os.environ if environ is None else environ
    return env.get("TRACE_TEST_DATABASE_URL") or None


def child_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The environment for a process of ours started from this one (the demo's servers): ours, with ``values``."""
    return {**os.environ, **values}


def background_environment(database_url: str) -> dict[str, str]:
    """The environment of the background process a server starts: the server's own, on the database it opened
    (the embedded one's socket when no URL was given, so the background process never starts a second)."""
    return {**os.environ, "TRACE_DATABASE_URL": database_url}
