"""``trace-scan``: the station program. ``trace-scan --help`` lists the commands; docs/scanners.md explains them.

The station's home directory (``--home``, else ``~/.trace-scan``) holds its private key, its queue and its
settings (printers, scale, the goods it sells). Everything it says is in Chinese with English beside it
(``trace-scan language zh|en|both``). Exit status: 0 done, 1 refused or unfinished (the message says why),
2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from scanners import console, printing, setup
from scanners.batches import BatchBook
from scanners.catalogue import PRICE_UNITS, Catalogue
from scanners.modes import MODES, Counter
from scanners.scales import FORMATS, ScaleError, parse_frame
from scanners.station import AuthRefused, NotEnrolled, Station, start_background_upload
from scanners.weighing import ScaleConfig, SerialScale
from scanners.words import LANGUAGES, Localised, both, say
from traceability.domain.scans import ScanError, parse_scan

# -- the counter -----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.info()
    counter = console.counter(station, args, args.mode)
    return asyncio.run(_run(station, counter, args))


async def _run(station: Station, counter: Counter, args: argparse.Namespace) -> int:
    wake, stop = asyncio.Event(), asyncio.Event()
    uploader = None if args.no_upload else asyncio.create_task(station.sync(until_empty=False, wake=wake, stop=stop))
    loop = asyncio.get_running_loop()
    inputs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    scale = None
    scale_settings = station.store.get("scale")
    if scale_settings and not args.no_scale:
        config = ScaleConfig.from_json(scale_settings)
        try:
            scale = SerialScale(config)
        except ScaleError as exc:
            print(f"\a✗ {both(exc.message_zh, exc.message, counter.language)}", flush=True)
        else:
            scale.run(
                lambda frame: loop.call_soon_threadsafe(inputs.put_nowait, ("frame", frame)),
                lambda exc: loop.call_soon_threadsafe(inputs.put_nowait, ("scale_error", exc)),
            )

    async def read_lines() -> None:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            await inputs.put(("line", line))
            if not line:
                return

    reader = asyncio.create_task(read_lines())
    mode = Localised(say(f"station_mode_{counter.mode}", "zh"), counter.mode)
    print(say("station_ready", counter.language, mode=mode), file=sys.stderr, flush=True)
    if counter.product:
        print(say("station_product_chosen", counter.language, label=counter.goods), file=sys.stderr, flush=True)
    last_scale_error = 0.0
    while True:
        kind, value = await inputs.get()
        if kind == "line":
            if not value:
                break
            if not value.strip():
                continue
            await _learn(station, counter, value, args)
            console.show(counter.handle(value))
        elif kind == "frame":
            assert scale is not None
            try:
                reading = parse_frame(value, scale.config.format, scale.config.unit)
            except ScaleError as exc:
                # A noisy line says so now and then, not on every frame of a stream.
                if time.monotonic() - last_scale_error > 5:
                    last_scale_error = time.monotonic()
                    print(f"\a✗ {both(exc.message_zh, exc.message, counter.language)}", flush=True)
                continue
            outcome = counter.reading(reading)
            if outcome is None:
                continue
            console.show(outcome)
        else:
            failure: ScaleError = value
            print(f"\a✗ {both(failure.message_zh, failure.message, counter.language)}", flush=True)
        wake.set()
    reader.cancel()
    if scale is not None:
        scale.close()
    stop.set()
    if uploader is not None:
        await uploader
        done = await station.sync(until_empty=True, within=args.flush_timeout)
        if not done:
            start_background_upload(station.home, max_backoff=args.max_backoff)
            print(
                say("station_upload_pending", counter.language, count=station.store.status()["pending"]),
                file=sys.stderr,
            )
    return 0


async def _learn(station: Station, counter: Counter, line: str, args: argparse.Namespace) -> None:
    """Before a scanned batch is sold from or received, ask the server what it is and whether it may be (when
    online); before a typed weight is sold, ask again about the batch it is sold from."""
    if args.no_upload or counter.mode not in ("sell", "receive"):
        return
    try:
        scan = parse_scan(line, base_urls=[counter.base_url])
    except ScanError:
        return
    if scan.trace_code is not None:
        await station.learn_batch(scan.trace_code)
    elif scan.kind == "quantity" and counter.mode == "sell" and counter.source is not None:
        await station.check_batch(counter.source)


def cmd_image(args: argparse.Namespace) -> int:
    texts = console.photo_texts(Path(args.file))
    if not texts:
        print(f"\a{say('station_no_barcode')}", flush=True)
        return 1
    if args.mode is None:
        for text in texts:
            try:
                scan = parse_scan(text)
                print(json.dumps({"text": text, "kind": scan.kind, "traceCode": scan.trace_code}, ensure_ascii=False))
            except ScanError as exc:
                print(json.dumps({"text": text, "error": exc.code, "message": exc.message}, ensure_ascii=False))
        return 0
    station = console.station(args)
    station.info()
    counter = console.counter(station, args, args.mode)
    outcomes = []
    for text in texts:
        if not args.no_upload:
            asyncio.run(_learn(station, counter, text, args))
        outcomes.append(counter.handle(text))
    for o in outcomes:
        console.show(o)
    console.upload_soon(station, args)
    return 0 if all(o.ok for o in outcomes) else 1


# -- status and uploads ----------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.info()
    done = asyncio.run(station.sync(until_empty=True, within=args.timeout))
    s = station.stats
    print(
        say(
            "station_uploaded",
            console.lang(station),
            acknowledged=s.acknowledged,
            replayed=s.replayed,
            refused=s.refused,
            retries=s.retries,
            pending=station.store.status()["pending"],
        ),
        flush=True,
    )
    return 0 if done else 1


def cmd_rotate(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.info()
    try:
        new_id = asyncio.run(station.rotate_key())
    except AuthRefused as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    print(say("station_new_key", console.lang(station), key_id=new_id))
    return 0


# -- labels and receipts ---------------------------------------------------------------------------


def cmd_label(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.info()
    counter = console.counter(station, args, "commission")
    lang = counter.language
    labels: list[printing.LabelData] = []
    if args.code:
        book = BatchBook(station.store)
        catalogue = Catalogue(station.store)
        for raw in args.code:
            code = raw.replace(" ", "").replace("-", "")
            earlier = counter.printout.last(code)
            if earlier is not None and isinstance(earlier[1], printing.LabelData):
                labels.append(earlier[1])
                continue
            info = book.get(code) or asyncio.run(station.learn_batch(code))
            name = counter.product_name if args.product else None
            if name is None and info is not None:
                known = catalogue.get(info.goods_code) if info.goods_code else None
                name = info.product_name or (known.name if known else info.goods_code)
            label = counter.label_data(code)
            labels.append(printing.LabelData(**{**label.__dict__, "product_name": name or ""}))
    else:
        if counter.product is None:
            console.show(counter.fail("station_need_product"))
            return 1
        from traceability.domain.scans import Quantity

        q = Quantity(args.quantity, "件") if args.uom == "piece" else Quantity(args.quantity, "kg", args.quantity)
        counter.auto_print = False  # printed together below
        for _ in range(args.count):
            outcome = counter.commission(q)
            if not outcome.ok or outcome.trace_code is None:
                console.show(outcome)
                return 1
            labels.append(counter.label_data(outcome.trace_code))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".pdf":
            out.write_bytes(printing.label_sheet_pdf(labels, page=args.page))
        else:
            out.mkdir(exist_ok=True)
            for label in labels:
                (out / f"label-{label.trace_code}.png").write_bytes(printing.batch_label_png(label))
        for label in labels:
            counter.printout.record("label", label)
        print(say("station_labels_done", lang, count=len(labels), where=out))
    else:
        done = counter.printout.labels(labels)
        failed = [p for p in done if not p.ok]
        where = done[0].where if done else ""
        if failed:
            print(f"\a✗ {say('station_print_failed', lang, error=failed[0].error, code=labels[0].trace_code)}")
        else:
            print(say("station_labels_done", lang, count=len(labels), where=where))
    for label in labels:
        print(label.trace_code)
    console.upload_soon(station, args)
    return 0


def _weight(text: str, unit: str) -> Decimal:
    try:
        reading = parse_frame(text, "plain", unit)
    except ScaleError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return reading.kilograms


def cmd_receipt(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.info()
    counter = console.counter(station, args, "sell")
    try:
        weight = _weight(args.weight, counter.default_unit)
    except argparse.ArgumentTypeError as exc:
        print(f"✗ --weight: {exc}", file=sys.stderr)
        return 2
    if args.source:
        if not args.no_upload:
            asyncio.run(station.learn_batch(args.source))
        chosen = counter.sell_from(args.source)
        if not chosen.ok:
            console.show(chosen)
            return 1
    outcome = counter.sell(weight)
    console.show(outcome)
    if outcome.ok:
        console.upload_soon(station, args)
    return 0 if outcome.ok else 1


def cmd_reprint(args: argparse.Namespace) -> int:
    station = console.station(args)
    counter = console.counter(station, args, "sell" if station.store.get("current_product") else "receive")
    outcome = counter.reprint(args.code)
    console.show(outcome)
    return 0 if outcome.ok and not any("✗" in line for line in outcome.lines) else 1


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
    p = argparse.ArgumentParser(
        prog="trace-scan", description="溯源站点程序 · Scanner station for the traceability ledger."
    )
    p.add_argument("--home", help="station directory (default ~/.trace-scan)")
    p.add_argument("--max-backoff", type=float, default=300.0, help="longest wait between upload retries, s")
    p.add_argument("--batch-size", type=int, default=200, help="events per upload request")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enrol", help="绑定站点 · bind this station to its stall: scan the enrolment QR code")
    e.add_argument("--server", help="with --code: the server, when typing the code by hand")
    e.add_argument("--code", help="with --server: the one-time enrolment code")
    e.add_argument("--qr", help="the text of the enrolment QR code (default: read one scan from the barcode gun)")
    e.add_argument("--image", help="a photo of the enrolment QR code")
    e.add_argument("--blocks", type=int, default=None, help="blocks of 100 codes to lease now (default 3)")
    e.set_defaults(func=setup.cmd_enrol)

    def counter_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--product", help="goods: a goods code, a name or pinyin initials (猪肉, zr); remembered")
        c.add_argument("--product-name", help="name printed when the goods list does not have it yet")
        c.add_argument(
            "--price", type=console.decimal, help="unit price in yuan per --price-unit; remembered per goods"
        )
        c.add_argument("--price-unit", choices=PRICE_UNITS)
        c.add_argument("--source", help="trace code of the batch being sold from")
        c.add_argument("--to", help="ship mode: the node code of the destination (e.g. 320311000002)")
        c.add_argument("--print-dir", help="where receipts and labels go when no printer is set (default HOME/prints)")
        c.add_argument("--no-upload", action="store_true", help="queue only (the network is known to be down)")

    r = sub.add_parser("run", help="柜台 · read scans, weights and words from the gun, the scale and the keyboard")
    r.add_argument("--mode", choices=MODES, required=True)
    counter_options(r)
    r.add_argument("--no-scale", action="store_true", help="do not open the scale's serial port")
    r.add_argument("--flush-timeout", type=float, default=10.0, help="seconds to keep uploading after input ends")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("image", help="decode the barcodes or QR codes in a photo (and record them with --mode)")
    i.add_argument("file")
    i.add_argument("--mode", choices=MODES)
    counter_options(i)
    i.set_defaults(func=cmd_image)

    s = sub.add_parser("status", help="状态 · queue, last sync, codes left, printers, scale, problems")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=setup.cmd_status)

    y = sub.add_parser("sync", help="上传 · upload the queue now")
    y.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    y.set_defaults(func=cmd_sync)

    sub.add_parser("rotate-key", help="replace this station's key").set_defaults(func=cmd_rotate)

    lg = sub.add_parser("language", help="语言 · messages in Chinese, English or both")
    lg.add_argument("language", choices=LANGUAGES)
    lg.set_defaults(func=setup.cmd_language)

    lb = sub.add_parser("label", help="标签 · commission batches and print their labels, or reprint codes")
    counter_options(lb)
    lb.add_argument("--code", action="append", help="print this existing code again (repeatable)")
    lb.add_argument("--count", type=int, default=1, help="without --code: commission this many new batches")
    lb.add_argument("--quantity", type=console.decimal, default=Decimal(1))
    lb.add_argument("--uom", choices=("kg", "piece"), default="piece")
    lb.add_argument("--page", choices=("A4", "40x30mm"), default="A4")
    lb.add_argument("--out", help="a .pdf sheet or a directory of PNGs (default: the label printer)")
    lb.set_defaults(func=cmd_label)

    rc = sub.add_parser("receipt", help="小票 · record one sale and print its receipt")
    counter_options(rc)
    rc.add_argument("--weight", required=True, help="the weight: 1.25 (kg unless the scale's unit is set), 2.5斤, 500g")
    rc.set_defaults(func=cmd_receipt)

    rp = sub.add_parser("reprint", help="重打 · print a receipt or label again")
    rp.add_argument("code", nargs="?", help="its trace code (default: the last printed)")
    rp.set_defaults(func=cmd_reprint)

    pr = sub.add_parser("printer", help="打印机 · set up and test the receipt and label printers")
    pr.add_argument("action", choices=("set", "test", "show"))
    pr.add_argument("role", choices=("receipt", "label"), nargs="?", default="receipt")
    pr.add_argument(
        "--connection", default="dir:", help="tcp://HOST[:PORT], serial:DEV, usb:VID:PID, file:PATH, lp:QUEUE"
    )
    pr.add_argument("--paper", type=int, choices=(58, 80), default=58)
    pr.add_argument("--text", choices=("gb18030", "raster"), default="gb18030")
    pr.add_argument("--language", choices=("tspl", "escpos"), default="tspl")
    pr.add_argument("--label-size", choices=("40x30mm", "a4-cell"), default="40x30mm")
    pr.add_argument("--dpi", type=int, choices=(203, 300), default=203)
    pr.add_argument("--no-cut", action="store_true", help="the printer has no cutter (tear bar)")
    pr.add_argument("--profile", help="python-escpos printer profile, e.g. TM-T20II")
    pr.add_argument("--no-test", action="store_true", help="with set: do not print the test page")
    pr.set_defaults(func=setup.cmd_printer)

    sc = sub.add_parser("scale", help="电子秤 · set up and test the scale on a serial port")
    sc.add_argument("action", choices=("set", "test", "show", "off"))
    sc.add_argument("--port", help="/dev/ttyUSB0, COM3, or a pyserial URL")
    sc.add_argument("--baud", type=int, default=9600)
    sc.add_argument("--bytesize", type=int, default=8)
    sc.add_argument("--parity", default="N", choices=("N", "E", "O"))
    sc.add_argument("--stopbits", type=float, default=1)
    sc.add_argument("--format", choices=FORMATS, default="auto")
    sc.add_argument("--unit", default="kg", help="unit of weights sent without one: kg, 斤, g")
    sc.add_argument("--output", choices=("continuous", "demand"), default="continuous")
    sc.add_argument("--min-kg", type=console.decimal, default=Decimal("0.005"), help="smallest weight sold")
    sc.add_argument("--seconds", type=float, default=10.0, help="with test: how long to read")
    sc.set_defaults(func=setup.cmd_scale)

    pd = sub.add_parser("product", help="商品 · find goods by name or pinyin initials; choose them; set prices")
    pd.add_argument("action", choices=("find", "use", "list", "sync"))
    pd.add_argument("query", nargs="?", default="")
    pd.add_argument("--price", type=console.decimal)
    pd.add_argument("--price-unit", choices=PRICE_UNITS)
    pd.set_defaults(func=setup.cmd_product)

    sub.add_parser(
        "vendor-card", help="登录卡 · print the stall's sign-in card for the vendor page, with a PIN chosen here"
    ).set_defaults(func=setup.cmd_vendor_card)

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
    if args.command == "scale" and args.action == "set" and not args.port:
        print("✗ scale set needs --port", file=sys.stderr)
        return 2
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
