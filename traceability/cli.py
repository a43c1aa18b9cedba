"""``traceability serve | migrate | verify | demo | witness | federation | province | token | user | node | ...``.

Registry commands talk to the database directly (whoever can run them can already reach it);
they share the services, and so the validation, with the admin API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from traceability import errors
from traceability.cli_federation import add_commands as add_federation_commands
from traceability.cli_registry import REGISTRY
from traceability.config import Settings
from traceability.logging import configure, get_logger
from traceability.storage.database import Database, database_url, open_database

log = get_logger("traceability.cli")


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    path.chmod(0o600)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.config import use_multiprocess_metrics

    if settings.workers > 1:  # before prometheus-client is imported, so that every worker's counts add up
        use_multiprocess_metrics(settings.metrics_dir)

    from traceability.demo.loader import empty_ledger_hint
    from traceability.http import metrics
    from traceability.http.app import create_app
    from traceability.http.serve import serve
    from traceability.services import principals, transparency

    async def prepare() -> None:
        """Everything that must happen once, before any worker serves: schema, log key, first admin."""
        async with open_database(settings, migrate=args.migrate) as db:
            await transparency.open_log(db, settings)
            token = await principals.ensure_admin_token(db)
            if token is not None:
                _write_secret(settings.admin_token_path, token)
                log.info("admin.credential_written", path=str(settings.admin_token_path))
            if (hint := await empty_ledger_hint(db)) is not None:
                log.info("demo.available", hint=hint)

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other platforms working
        pass
    asyncio.run(prepare())
    serve(
        settings,
        lambda: create_app(settings, background_work=not settings.background_process),
        lambda pid: metrics.forget_worker(pid, settings.metrics_dir),
    )
    log.info("server.stopped")
    return 0


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[int]]) -> int:
    async with open_database(settings) as db:
        return await fn(db)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.storage import migrator
    from traceability.storage.database import connect

    async def run() -> int:
        conn = await connect(await database_url(settings))
        try:
            applied = await migrator.migrate(conn, settings.schema_dir)
        finally:
            await conn.close()
        print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
        return 0

    return asyncio.run(run())


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.ledger import checkpoint as notes
    from traceability.services.verify import verify_ledger

    def progress(what: str) -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            if sys.stderr.isatty() or args.progress:
                print(f"\r{what}: {done:,} of {total:,}", end="", file=sys.stderr, flush=True)

        return show

    trusted = None
    if settings.signing_key_path.exists():
        trusted = notes.verifier_key(notes.load_signer_key(settings.signing_key_path.read_bytes()))

    async def run(db: Database) -> int:
        # Both audits, in parts over disjoint ranges, in worker processes on one snapshot.
        chains, logs = await verify_ledger(db, trusted_key=trusted, progress=progress("chains"), workers=args.workers)
        print(file=sys.stderr)
        faults = chains.faults + logs.faults
        for fault in faults:
            print(f"FAIL {fault}")
        print(
            f"{chains.events:,} events in {chains.batches:,} batches, {logs.events:,} log leaves: "
            f"{'all verified' if not faults else f'{len(faults)} fault(s)'}"
        )
        return 0 if not faults else 1

    return asyncio.run(_with_db(settings, run))


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.demo.loader import load_demo

    if args.federation:
        from traceability.demo import federation

        root = Path(args.dir).resolve() if args.dir else settings.data_dir / "federation"
        return federation.run(root, lambda line: print(line, file=sys.stderr))

    if settings.log_level == "info":
        # The progress lines stand in for one log line per request.
        configure(fmt=settings.log_format, level="warning")

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    async def run(db: Database) -> int:
        result = await load_demo(
            db,
            seed=args.seed,
            public_url=settings.public_url,
            days=args.days,
            events=args.events,
            report=None if args.quiet else report,
            workers=args.workers,
        )
        c = result.counts
        print(
            f"Demo city loaded (seed {result.seed}): Xuzhou 320300 with {c['farm']} farms and origin bases, "
            f"{c['slaughterhouse']} slaughterhouses, {c['wholesale_market']} wholesale markets, "
            f"{c['wet_market']} wet markets with {c['stalls']} stalls, {c['supermarket']} supermarkets, "
            f"{c['canteen']} canteens, {c['drug_manufacturer']} drug manufacturer, {c['drug_distributor']} "
            f"distributors and {c['pharmacy']} pharmacies, a pasture, a raw-milk station and a dairy plant; "
            f"{c['scanners']} scanners, {c['products']} products."
        )
        print(
            f"{result.story_events:,} events over the {result.days} days before "
            f"{result.anchor:%Y-%m-%d} (China Standard Time), with a failed pesticide test, a recall and "
            "anomalies."
        )
        if result.bulk_events:
            print(
                f"Scale path: {result.bulk_events:,} events in {result.bulk_batches:,} batches in "
                f"{result.bulk_seconds:,.1f} s ({result.bulk_rate:,.0f} events/s)."
            )
        print(
            f"{result.total_events:,} events in the ledger. `make run` (or `traceability serve`) enters them in "
            "the transparency log and lists the anomalies at /console."
        )
        print("Trace codes worth opening:")
        for _, label, code in result.highlights:
            print(f"  {code}  {label}")
            print(f"      {settings.public_url}/t/{code}")
            print(f"      {settings.public_url}/api/v1/batches/{code}")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_witness(settings: Settings, args: argparse.Namespace) -> int:
    from traceability import witness

    if args.new_key:
        print(witness.new_key(args.new_key, Path(args.key)))
        print(
            f"witness key written to {args.key}; register the verifier key above with the log's administrator",
            file=sys.stderr,
        )
        return 0
    if not args.url:
        print("error: give the log's URL (or --new-key NAME to create a key)", file=sys.stderr)
        return 2
    try:
        cp = asyncio.run(
            witness.witness_once(args.url, Path(args.key), Path(args.state), [Path(p) for p in args.peer or []])
        )
    except witness.Alarm as exc:
        print(f"ALARM: {exc}")
        return 1
    print(f"cosigned {cp.origin} size {cp.size}")
    return 0


def _read_password(prompt: str = "password: ") -> str | None:
    """A password from the terminal (asked twice) or the first line of stdin; never from argv."""
    import getpass

    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if getpass.getpass("again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return None
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _print_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    """Console users: add, list, disable, enable, set a password or an authority."""
    from traceability.services import accounts

    password = None
    if args.action in ("add", "password"):
        password = _read_password()
        if password is None:
            return 2

    async def run(db: Database) -> int:
        if args.action == "add":
            assert password is not None
            user = await accounts.create_user(db, args.name, args.role, password, args.authority)
            print(f"console user {user['id']} ({user['role']}, {user['name']}) added", file=sys.stderr)
            return 0
        if args.action == "list":
            _print_json(await accounts.list_users(db, limit=1000))
            return 0
        user_id = await accounts.user_id_by_name(db, args.name)
        if args.action == "disable":
            changed = await accounts.disable_user(db, user_id)
        elif args.action == "enable":
            changed = await accounts.enable_user(db, user_id)
        elif args.action == "authority":
            changed = await accounts.set_authority(db, user_id, args.authority)
        else:
            assert password is not None
            changed = await accounts.set_password(db, user_id, password)
        print(f"console user {changed['id']} ({changed['name']}): {args.action} done", file=sys.stderr)
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    """API credentials: issue, list, revoke, rotate, and rotate the administrator credential in its file."""
    from datetime import UTC, datetime, timedelta

    from traceability.services import principals

    async def run(db: Database) -> int:
        if args.action == "issue":
            expires = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
            token, token_id = await principals.create_token(
                db, args.role, args.name, args.enterprise, authority=args.authority, expires_at=expires
            )
            print(f"credential {token_id} ({args.role}, {args.name}); shown once, keep it safe:", file=sys.stderr)
            print(token)
        elif args.action == "list":
            _print_json(await principals.list_tokens(db, state=args.state, role=args.role, limit=1000))
        elif args.action == "revoke":
            revoked = await principals.revoke_token(db, args.id)
            print(f"credential {revoked['id']} ({revoked['role']}, {revoked['name']}) revoked", file=sys.stderr)
        elif args.action == "rotate":
            token, new = await principals.rotate_token(db, args.id)
            print(f"credential {args.id} revoked; its replacement {new['id']} is shown once:", file=sys.stderr)
            print(token)
        else:  # rotate-admin: the credential in the admin token file, replaced in place
            path = settings.admin_token_path
            if not path.exists():
                print(f"error: no administrator credential at {path}", file=sys.stderr)
                return 2
            token, new = await principals.rotate_by_secret(db, path.read_text())
            _write_secret(path, token)
            print(f"administrator credential rotated: {new['id']} written to {path}; the old one is revoked")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_registry(settings: Settings, args: argparse.Namespace) -> int:
    from traceability.services import farm, registry

    kind, _ = REGISTRY[args.command]

    async def run(db: Database) -> int:
        if args.action == "list" and args.command == "input":
            rows = [dict(r) for r in await farm.list_input_products(db, limit=1000)]
            sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        if args.action == "list":
            items = await registry.list_registered(db, kind, limit=1000)
            sys.stdout.write(orjson.dumps(items, option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        if args.action == "revoke":
            await registry.revoke_device(db, args.id)
            print(f"device {args.id} revoked")
            return 0
        if args.action == "enrol":
            return await _enrolment_qr(db, settings, args.id)
        body = {
            k: v
            for k, v in vars(args).items()
            if k not in ("command", "action", "func", "licence", "id") and v is not None
        }
        if getattr(args, "licence", None):
            body["licences"] = dict(item.split("=", 1) for item in args.licence)
        if args.command == "input":
            created = await farm.register_input_product(db, body)
        else:
            created = await getattr(registry, f"register_{args.command}")(db, body)
        if args.command == "device":
            print("the device credential is shown once; enter it on the scanner now:", file=sys.stderr)
        sys.stdout.write(orjson.dumps(created, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0

    return asyncio.run(_with_db(settings, run))


async def _enrolment_qr(db: Database, settings: Settings, device_id: int) -> int:
    """Issue a device's enrolment code and show it as a QR code in the terminal, for the station's barcode gun."""
    import io

    import qrcode

    from traceability.domain import stations as station_format
    from traceability.services import stations

    created = await stations.create_enrolment(db, device_id)
    text = station_format.enrolment_payload(settings.public_url, created["code"])
    qr = qrcode.QRCode(border=2)
    qr.add_data(text)
    drawn = io.StringIO()
    qr.print_ascii(out=drawn, invert=True)
    print(drawn.getvalue())
    print(f"{text}\nscan it with the station's barcode gun (trace-scan enrol) before {created['expiresAt']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="traceability", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the API and pages")
    s.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_migrate)
    v = sub.add_parser("verify", help="recompute and check every hash chain")
    v.add_argument("--progress", action="store_true", help="show progress even when not on a terminal")
    v.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: one per core, at most 8)"
    )
    v.set_defaults(func=cmd_verify)
    d = sub.add_parser("demo", help="load the demo city (Xuzhou): registry, three weeks of flows, trace codes to open")
    d.add_argument("--seed", type=int, default=1, help="the same seed on the same day gives the same ledger")
    d.add_argument(
        "--events",
        type=int,
        default=0,
        metavar="N",
        help="fill the ledger to about N events through the scale path (up to 10,000,000)",
    )
    d.add_argument("--days", type=int, default=21, help="days of story before today (at least 6)")
    d.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    d.add_argument(
        "--federation",
        action="store_true",
        help="instead: two city ledgers (Xuzhou, Nanjing) and a province, each with its own embedded PostgreSQL, "
        "a journey across them; serves them until Ctrl-C",
    )
    d.add_argument("--dir", help="with --federation: where the three servers keep their data (default: var/federation)")
    d.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes building the scale path's records (default: one per core, at most 4, for 80,000+ events)",
    )
    d.set_defaults(func=cmd_demo)
    w = sub.add_parser("witness", help="audit a log and cosign its checkpoint (an independent witness)")
    w.add_argument("url", nargs="?", help="the log server, e.g. https://trace.example.org")
    w.add_argument("--key", required=True, help="the witness's signing key file")
    w.add_argument("--state", default="witness-state.json", help="where the witness keeps what it cosigned")
    w.add_argument("--peer", action="append", help="another witness's cosigned checkpoint note to compare with")
    w.add_argument("--new-key", metavar="NAME", help="create the key file for a witness called NAME")
    w.set_defaults(func=cmd_witness)
    t = sub.add_parser("token", help="API credentials: issue, list, revoke, rotate")
    t_actions = t.add_subparsers(dest="action", required=True)
    t_issue = t_actions.add_parser("issue", help="issue a credential (admin, regulator or enterprise), shown once")
    t_issue.add_argument("--role", required=True, choices=["admin", "regulator", "enterprise"])
    t_issue.add_argument("--name", required=True)
    t_issue.add_argument("--enterprise", help="USCC, for an enterprise credential")
    t_issue.add_argument("--authority", help="the authority a regulator acts for (default: the name)")
    t_issue.add_argument("--expires-in-days", type=int, metavar="DAYS", help="refused after this many days")
    t_list = t_actions.add_parser("list", help="list credentials (never their secrets)")
    t_list.add_argument("--state", choices=["active", "revoked", "expired"])
    t_list.add_argument("--role", choices=["admin", "regulator", "enterprise"])
    for name, text in (("revoke", "revoke a credential now"), ("rotate", "replace a credential; the old is revoked")):
        t_id = t_actions.add_parser(name, help=text)
        t_id.add_argument("id", type=int)
    t_actions.add_parser("rotate-admin", help="rotate the administrator credential in TRACE_ADMIN_TOKEN_FILE")
    t.set_defaults(func=cmd_token)
    u = sub.add_parser("user", help="console users: add, list, disable, enable, password, authority")
    u_actions = u.add_subparsers(dest="action", required=True)
    u_add = u_actions.add_parser("add", help="add a regulator (or admin) who signs in to /console")
    u_add.add_argument("--role", required=True, choices=["regulator", "admin"])
    u_add.add_argument("--name", required=True)
    u_add.add_argument("--authority", help="the authority a regulator acts for, e.g. 徐州市市场监督管理局")
    u_actions.add_parser("list", help="list console users")
    for name, text in (
        ("disable", "disable a user; their sessions end now"),
        ("enable", "enable a disabled user"),
        ("password", "set a user's password (from the terminal or stdin); their sessions end"),
        ("authority", "set the authority a regulator acts for"),
    ):
        u_one = u_actions.add_parser(name, help=text)
        u_one.add_argument("--name", required=True)
        if name == "authority":
            u_one.add_argument("--authority", required=True)
    u.set_defaults(func=cmd_user)
    add_federation_commands(sub)
    for command, (kind, flags) in REGISTRY.items():
        c = sub.add_parser(command, help=f"register or list {kind}")
        actions = c.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help=f"register one of the {kind}")
        for flag, options in flags:
            add.add_argument(flag, **options)
        add.set_defaults(func=cmd_registry)
        actions.add_parser("list", help=f"list {kind}").set_defaults(func=cmd_registry)
        if command == "device":
            r = actions.add_parser("revoke", help="revoke a device's credential")
            r.add_argument("id", type=int)
            r.set_defaults(func=cmd_registry)
            e = actions.add_parser("enrol", help="a one-time enrolment QR code for a device's station (24 h)")
            e.add_argument("id", type=int)
            e.set_defaults(func=cmd_registry)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
        settings = Settings.from_env(**overrides)
        configure(fmt=settings.log_format, level=settings.log_level)
        result: int = args.func(settings, args)
        return result
    except errors.TraceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
