"""``traceability federation publish`` (a member ledger) and ``traceability province subscribe | serve``.

A member publishes its records for provinces once; a province subscribes to each member and serves the
provincial view (docs/federation.md, "A provincial view").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from traceability import errors
from traceability.config import Settings
from traceability.logging import get_logger

log = get_logger("traceability.cli")


def member_conninfo(url: str, role: str) -> str:
    """How a province reaches this ledger's PostgreSQL, as libpq conninfo for the province's role."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", [""])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    dbname = parts.path.lstrip("/") or "postgres"
    return f"host={host} port={port} dbname={dbname} user={role}"


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.storage import publication
    from traceability.storage.database import database_url, embedded_server, open_database

    async def run() -> int:
        async with open_database(settings, migrate=args.migrate):
            pass  # the schema (and so the publication) is the code's
        url = await database_url(settings)
        embedded = None if settings.database_url else embedded_server(settings.pg_dir)
        done = await publication.enable(url, embedded, args.role)
        print(f"publication {publication.PUBLICATION}: {len(done.tables)} tables ({', '.join(done.tables)})")
        print(f"wal_level = {done.wal_level}" + (" (PostgreSQL was restarted to take it)" if done.restarted else ""))
        if done.needs_restart:
            print("restart this ledger's PostgreSQL now: wal_level=logical is read when it starts", file=sys.stderr)
        print(f"role {done.role}: LOGIN REPLICATION, SELECT on those tables only")
        print("a province subscribes with:")
        print(f"  traceability province subscribe <this ledger's origin> '{member_conninfo(url, done.role)}'")
        return 0

    return asyncio.run(run())


def cmd_subscribe(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.services import federation, province
    from traceability.storage.database import database_url

    fed = federation.load(settings.federation_file)
    if not fed.members:
        raise errors.ConfigError("TRACE_FEDERATION: a province needs the federation file naming its members")

    if args.all:
        pairs = [(m.origin, m.replication) for m in fed.members if m.replication]
        if not pairs:
            raise errors.ConfigError("TRACE_FEDERATION: no member has a replication conninfo")
    elif args.origin and args.conninfo:
        pairs = [(args.origin, args.conninfo)]
    else:
        raise errors.ConfigError("give a member's origin and conninfo, or --all (the federation file's replication)")

    async def run() -> int:
        url = await database_url(settings)
        for origin, conninfo in pairs:
            name = await province.subscribe(url, settings.schema_dir, fed, origin, conninfo)
            print(f"subscribed to {origin}: its records arrive in database {name}")
        if (short := await province.capacity_shortfall(url)) is not None:
            print(short, file=sys.stderr)
        return 0

    return asyncio.run(run())


def province_token(path: Path) -> str:
    """The province's credential, made on first start (shown once in the log, kept in its file)."""
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.info("province.credential_written", path=str(path))
    return token


def cmd_province_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from traceability.http.province_app import create_province_app
    from traceability.services import federation

    fed = federation.load(settings.federation_file)
    if not fed.members:
        raise errors.ConfigError("TRACE_FEDERATION: a province needs the federation file naming its members")
    token = province_token(settings.data_dir / "province-token")
    app = create_province_app(settings, fed, token)
    log.info("province.serving", url=f"http://{settings.host}:{settings.port}/province", members=len(fed.members))
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser("federation", help="this ledger in a federation: publish its records for provinces")
    f_actions = f.add_subparsers(dest="action", required=True)
    pub = f_actions.add_parser(
        "publish", help="make the records replicable to provinces: wal_level=logical, a read-only role for them"
    )
    pub.add_argument("--role", default="trace_province", help="the role provinces connect as (default trace_province)")
    pub.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    pub.set_defaults(func=cmd_publish)
    p = sub.add_parser("province", help="a provincial view over the member ledgers of TRACE_FEDERATION")
    p_actions = p.add_subparsers(dest="action", required=True)
    s = p_actions.add_parser("subscribe", help="receive a member's records by logical replication")
    s.add_argument("origin", nargs="?", help="the member's checkpoint origin, as in the federation file")
    s.add_argument(
        "conninfo", nargs="?", help="libpq conninfo of the member's PostgreSQL (what `federation publish` printed)"
    )
    s.add_argument("--all", action="store_true", help="every member whose federation entry has `replication`")
    s.set_defaults(func=cmd_subscribe)
    serve = p_actions.add_parser("serve", help="serve the provincial console, its API and /metrics")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_province_serve)
