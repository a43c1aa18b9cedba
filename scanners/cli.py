"""``trace-scan``: the station program. ``trace-scan --help`` lists the commands; docs/scanners.md explains them.

The station's home directory (``--home``, else ``~/.trace-scan``) holds its
private key and its queue. Exit status: 0 done, 1 refused or unfinished (the message says why), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from scanners import printing
from scanners.modes import MODES, Counter, Outcome
from scanners.station import AuthRefused, NotEnrolled, Station
from traceability import i18n
from traceability.domain.scans import Quantity, ScanError, parse_scan


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home or Path.home() / ".trace-scan").expanduser()


def _station(args: argparse.Namespace) -> Station:
    return Station(
        _home(args),
        max_backoff=args.max_backoff,
        batch_size=args.batch_size,
        say=lambda m: print(m, file=sys.stderr, flush=True),
    )


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _show(outcome: Outcome) -> None:
    mark = "" if outcome.ok else "\a✗ "
    print(f"{mark}{outcome.message}", flush=True)
    for path in outcome.printed:
        print(f"  → {path}", flush=True)


def _counter(station: Station, args: argparse.Namespace, mode: str) -> Counter:
    print_dir = Path(args.print_dir) if args.print_dir else station.home / "prints"
    return Counter(
        station.store,
        mode,
        product=args.product,
        product_name=args.product_name,
        unit_price=args.price,
        price_unit=args.price_unit,
        print_dir=print_dir,
        source=args.source,
    )


# -- commands --------------------------------------------------------------------------------------


def cmd_enrol(args: argparse.Namespace) -> int:
    station = _station(args)
    try:
        info = asyncio.run(station.enrol(args.server, args.code, blocks=args.blocks))
    except AuthRefused as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    node = info["node"]
    print(
        f"✓ enrolled as {info['keyId']} at {node['name']} ({node['code']}); "
        f"{station.store.codes_left()} trace codes leased for offline use"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, args.mode)
    return asyncio.run(_run(station, counter, args))


async def _run(station: Station, counter: Counter, args: argparse.Namespace) -> int:
    wake, stop = asyncio.Event(), asyncio.Event()
    uploader = None if args.no_upload else asyncio.create_task(station.sync(until_empty=False, wake=wake, stop=stop))
    loop = asyncio.get_running_loop()
    print(f"ready: {counter.mode} mode — scan, or type a weight; Ctrl-D to stop", file=sys.stderr, flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        _show(counter.handle(line))
        wake.set()
    stop.set()
    if uploader is not None:
        await uploader
        done = await station.sync(until_empty=True, within=args.flush_timeout)
        if not done:
            print("some scans are still queued; they upload on the next run or `trace-scan sync`", file=sys.stderr)
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from PIL import Image

    from traceability.domain.images import decode_image

    with Image.open(Path(args.file)) as image:
        texts = decode_image(image)
    if not texts:
        print(f"\a✗ {i18n.say('station_no_barcode')}", flush=True)
        return 1
    if args.mode is None:
        for text in texts:
            try:
                scan = parse_scan(text)
                print(json.dumps({"text": text, "kind": scan.kind, "traceCode": scan.trace_code}, ensure_ascii=False))
            except ScanError as exc:
                print(json.dumps({"text": text, "error": exc.code, "message": exc.message}, ensure_ascii=False))
        return 0
    station = _station(args)
    station.info()
    counter = _counter(station, args, args.mode)
    outcomes = [counter.handle(text) for text in texts]
    for o in outcomes:
        _show(o)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_status(args: argparse.Namespace) -> int:
    station = _station(args)
    status = station.store.status()
    status["keyId"] = station.store.get("key_id")
    status["server"] = station.store.get("server")
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return 0
    print(f"server        {status['server'] or '(not enrolled)'}  key {status['keyId'] or '-'}")
    print(f"queue         {status['pending']} waiting, oldest {status['oldestPending'] or '-'}")
    print(f"uploaded      {status['sent']}, last successful sync {status['lastSync'] or 'never'}")
    print(f"codes left    {status['codesLeft']}")
    if status["lastError"]:
        print(f"last error    {status['lastError']['at']}: {status['lastError']['message']}")
    if status["refused"]:
        print(f"refused       {status['refused']} (kept locally):")
        for r in status["recentRefusals"]:
            print(f"  #{r['seq']} {r['kind']} {r['trace_code']}: {r['error']}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    done = asyncio.run(station.sync(until_empty=True, within=args.timeout))
    s = station.stats
    print(
        f"uploaded {s.acknowledged} ({s.replayed} already recorded), refused {s.refused}, retries {s.retries}; "
        f"{station.store.status()['pending']} waiting",
        flush=True,
    )
    return 0 if done else 1


def cmd_rotate(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    try:
        new_id = asyncio.run(station.rotate_key())
    except AuthRefused as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    print(f"✓ new key {new_id}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, "commission")
    counter.print_dir = None  # the sheet is written below
    codes = list(args.code or [])
    if not codes:
        q = Quantity(args.quantity, "件") if args.uom == "piece" else Quantity(args.quantity, "kg", args.quantity)
        for _ in range(args.count):
            outcome = counter.commission(q)
            if not outcome.ok or outcome.trace_code is None:
                _show(outcome)
                return 1
            codes.append(outcome.trace_code)
    node = counter.station.get("node", {}).get("name", "")
    labels = [
        printing.LabelData(
            trace_code=c,
            product_name=args.product_name or args.product or "",
            date=dt.date.today(),
            node_name=node,
            base_url=counter.base_url,
        )
        for c in codes
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        out.write_bytes(printing.label_sheet_pdf(labels, page=args.page))
    else:
        out.mkdir(exist_ok=True)
        for label in labels:
            (out / f"label-{label.trace_code}.png").write_bytes(printing.batch_label_png(label))
    print(f"✓ {len(labels)} labels → {out}")
    for c in codes:
        print(c)
    return 0


def cmd_receipt(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, "sell")
    outcome = counter.sell(Quantity(args.weight, "kg", args.weight))
    _show(outcome)
    return 0 if outcome.ok else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from scanners.simulate import simulate

    token = args.admin_token or (Path(args.admin_token_file).read_text().strip() if args.admin_token_file else None)
    if not token:
        print("simulate needs --admin-token or --admin-token-file (it registers its own stations)", file=sys.stderr)
        return 2
    report: dict[str, Any] = asyncio.run(
        simulate(
            args.server,
            token,
            stations=args.stations,
            rate=args.rate,
            duration=args.duration,
            workdir=Path(args.workdir) if args.workdir else None,
            flush_timeout=args.flush_timeout,
        )
    )
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["lost"] == 0 and report["pending"] == 0 else 1


# -- parser ----------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trace-scan", description="Scanner station for the traceability ledger.")
    p.add_argument("--home", help="station directory (default ~/.trace-scan)")
    p.add_argument("--max-backoff", type=float, default=300.0, help="longest wait between upload retries, s")
    p.add_argument("--batch-size", type=int, default=200, help="events per upload request")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enrol", help="bind this station to its node with a one-time code")
    e.add_argument("--server", required=True)
    e.add_argument("--code", required=True, help="the one-time enrolment code from the administrator")
    e.add_argument("--blocks", type=int, default=None, help="blocks of 100 codes to lease now (default 3)")
    e.set_defaults(func=cmd_enrol)

    def counter_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--product", help="goods code sold or commissioned, e.g. 21113011")
        c.add_argument("--product-name", help="name printed on labels and receipts, e.g. 白条猪肉")
        c.add_argument("--price", type=_decimal, help="unit price in yuan per --price-unit")
        c.add_argument("--price-unit", choices=("kg", "斤"), default="kg")
        c.add_argument("--source", help="trace code of the batch being sold from")
        c.add_argument("--print-dir", help="where labels and receipts are written (default HOME/prints)")

    r = sub.add_parser("run", help="read scans (one per line) from the barcode gun, scale or keyboard")
    r.add_argument("--mode", choices=MODES, required=True)
    counter_options(r)
    r.add_argument("--no-upload", action="store_true", help="queue only (the network is known to be down)")
    r.add_argument("--flush-timeout", type=float, default=10.0, help="seconds to keep uploading after input ends")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("image", help="decode the barcodes or QR codes in a photo (and record them with --mode)")
    i.add_argument("file")
    i.add_argument("--mode", choices=MODES)
    counter_options(i)
    i.set_defaults(func=cmd_image)

    s = sub.add_parser("status", help="queue depth, oldest unsent scan, last successful sync")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    y = sub.add_parser("sync", help="upload the queue now")
    y.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    y.set_defaults(func=cmd_sync)

    sub.add_parser("rotate-key", help="replace this station's key").set_defaults(func=cmd_rotate)

    lb = sub.add_parser("label", help="batch labels: PNGs in a directory, or a print-ready PDF sheet")
    counter_options(lb)
    lb.add_argument("--code", action="append", help="print this existing code (repeatable)")
    lb.add_argument("--count", type=int, default=1, help="without --code: commission this many new batches")
    lb.add_argument("--quantity", type=_decimal, default=Decimal(1))
    lb.add_argument("--uom", choices=("kg", "piece"), default="piece")
    lb.add_argument("--page", choices=("A4", "40x30mm"), default="A4")
    lb.add_argument("--out", required=True, help="a .pdf file, or a directory for PNGs")
    lb.set_defaults(func=cmd_label)

    rc = sub.add_parser("receipt", help="record one sale and write its 58 mm receipt")
    counter_options(rc)
    rc.add_argument("--weight", type=_decimal, required=True, help="kilograms")
    rc.set_defaults(func=cmd_receipt)

    sm = sub.add_parser("simulate", help="drive many virtual stations against a server")
    sm.add_argument("--server", required=True)
    sm.add_argument("--admin-token")
    sm.add_argument("--admin-token-file")
    sm.add_argument("--stations", type=int, default=50)
    sm.add_argument("--rate", type=float, default=20.0, help="sales per second, all stations together")
    sm.add_argument("--duration", type=float, default=30.0, help="seconds of scanning")
    sm.add_argument("--flush-timeout", type=float, default=60.0)
    sm.add_argument("--workdir", help="where the virtual stations keep their queues (default a temp dir)")
    sm.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except NotEnrolled as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
