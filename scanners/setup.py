"""Setting up a station: its printers, its scale, the goods it sells, its language, the vendor's sign-in
card; and its status.

``trace-scan printer|scale|product|language|vendor-card|status``: what a market's installer or the vendor runs once,
or now and then. docs/scanners.md has the setup guide.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import queue
import sys
import time
from pathlib import Path
from typing import Any

from scanners import console, printers, printing, receipts
from scanners.catalogue import Catalogue
from scanners.client import Unreachable
from scanners.modes import Counter
from scanners.printout import Printout
from scanners.scales import ScaleError, parse_frame
from scanners.station import AuthRefused
from scanners.stoplist import StopList
from scanners.weighing import ScaleConfig, SerialScale
from scanners.words import Localised, both, say, server_refusal, word
from traceability.domain import stations as station_format


def cmd_status(args: argparse.Namespace) -> int:
    station = console.station(args)
    lang = console.lang(station)
    status = station.store.status()
    status["keyId"] = station.store.get("key_id")
    status["server"] = station.store.get("server")
    status["station"] = station.store.get("station")
    printout = Printout(station.store, station.home / "prints")
    status["printers"] = {role: printout.printer(role).as_json() for role in ("receipt", "label")}
    status["printFailures"] = printout.failed()
    status["scale"] = station.store.get("scale")
    status["stopList"] = StopList(station.store).summary()
    current = station.store.get("current_product")
    product = Catalogue(station.store).get(current) if current else None
    status["product"] = None if product is None else {"goodsCode": product.goods_code, "name": product.name}
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2, default=str))
        return 0

    def row(key: str, value: str) -> None:
        label = word(f"station_status_{key}", lang)
        width = sum(2 if ord(ch) > 0x2E80 else 1 for ch in label)
        print(f"{label}{' ' * max(1, 26 - width)}{value}")

    none = word("station_status_none", lang)
    info = status["station"] or {}
    operator = info.get("operator") or {}
    if info:
        stall = f"  {operator.get('stallNo')} {operator.get('name') or ''}" if operator else ""
        row("station", f"{info['node']['name']}（{info['node']['code']}）{stall}")
    row("server", f"{status['server'] or say('station_not_enrolled', lang)}  {status['keyId'] or ''}".rstrip())
    row(
        "queue",
        f"{status['pending']}  {word('station_status_oldest', lang)} {console.local_time(status['oldestPending'])}",
    )
    last = console.local_time(status["lastSync"]) if status["lastSync"] else word("station_status_never", lang)
    row("uploaded", f"{status['sent']}  {word('station_status_last_sync', lang)} {last}")
    row("codes", str(status["codesLeft"]))
    stops = status["stopList"]
    if stops["asOf"]:
        at = console.local_time(stops["asOf"])
        fields = {"entries": stops["entries"], "recalled": stops["recalled"], "held": stops["onHold"], "at": at}
        row("stoplist", say("station_stoplist_summary", lang, **fields))
    else:
        row("stoplist", say("station_stoplist_never", lang))
    row("product", product.label if product else none)
    printer_text = "; ".join(
        f"{word(f'station_role_{role}', lang)} {cfg['connection']}" for role, cfg in status["printers"].items()
    )
    row("printers", printer_text)
    scale = status["scale"]
    row("scale", f"{scale['port']} {scale['baudrate']} {scale['format']} {scale['unit']}" if scale else none)
    problems = False
    if status["lastError"]:
        problems = True
        row("error", f"{console.local_time(status['lastError']['at'])}  {status['lastError']['message']}")
    if status["refused"]:
        problems = True
        row("refused", f"{status['refused']} {word('station_status_kept', lang)}")
        for r in status["recentRefusals"]:
            print(f"  #{r['seq']} {r['kind']} {r['trace_code']}: {server_refusal(r['error'], lang)}")
    for failure in status["printFailures"]:
        problems = True
        row("print_failed", f"{failure['kind']} {failure['trace_code']}: {failure['error']}")
    if not problems:
        print(f"✓ {word('station_status_all_good', lang)}")
    return 0


def cmd_language(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.store.put(language=args.language)
    print(say("station_language_set", args.language))
    return 0


def cmd_printer(args: argparse.Namespace) -> int:
    station = console.station(args)
    lang = console.lang(station)
    printout = Printout(station.store, station.home / "prints")
    if args.action == "show":
        for role in ("receipt", "label"):
            print(json.dumps(printout.printer(role).as_json(), ensure_ascii=False))
        return 0
    if args.action == "set":
        try:
            config = printers.PrinterConfig(
                role=args.role,
                connection=args.connection,
                paper_mm=args.paper,
                text=args.text,
                language=args.language,
                label_size=args.label_size,
                dpi=args.dpi,
                cut=not args.no_cut,
                profile=args.profile,
            )
        except ValueError as exc:
            print(f"✗ {exc}", file=sys.stderr)
            return 2
        printout.set_printer(config)
        role_name = Localised(say(f"station_role_{args.role}", "zh"), args.role)
        print(say("station_printer_set", lang, role=role_name))
        if args.no_test:
            return 0
    config = printout.printer(args.role)
    info = station.store.get("station") or {}
    name = " ".join(p for p in (info.get("node", {}).get("name"), (info.get("operator") or {}).get("stallNo")) if p)
    base = str(station.store.get("public_url") or "https://trace.example.cn")
    try:
        if config.is_files:
            target = Path(config.connection.removeprefix("dir:") or station.home / "prints")
            target.mkdir(parents=True, exist_ok=True)
            path = target / f"test-{args.role}.bin"
            path.write_bytes(printers.trial_page_job(config, base, name))
            print(say("station_test_page_written", lang, path=path))
            return 0
        printers.send(config, printers.trial_page_job(config, base, name))
    except printing.PrintError as exc:
        print(f"\a✗ {say('station_test_page_failed', lang, reason=exc)}")
        return 1
    print(say("station_test_page_sent", lang))
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    station = console.station(args)
    lang = console.lang(station)
    if args.action == "off":
        station.store.put(scale=None)
        print(say("station_scale_off", lang))
        return 0
    if args.action == "set":
        try:
            config = ScaleConfig(
                port=args.port,
                baudrate=args.baud,
                bytesize=args.bytesize,
                parity=args.parity,
                stopbits=args.stopbits,
                format=args.format,
                unit=args.unit,
                output=args.output,
                min_kg=args.min_kg,
            )
        except (ValueError, ScaleError) as exc:
            print(f"✗ {exc}", file=sys.stderr)
            return 2
        station.store.put(scale=config.as_json())
        print(say("station_scale_set", lang, port=config.port))
        return 0
    saved = station.store.get("scale")
    if not saved:
        print(say("station_scale_none", lang))
        return 1
    config = ScaleConfig.from_json(saved)
    if args.action == "show":
        print(json.dumps(config.as_json(), ensure_ascii=False))
        return 0
    return _scale_test(config, args.seconds, lang)


def _scale_test(config: ScaleConfig, seconds: float, lang: str) -> int:
    """Show every frame read, the weight it means and whether it would be a sale, for ``seconds``."""
    try:
        scale = SerialScale(config)
    except ScaleError as exc:
        print(f"\a✗ {both(exc.message_zh, exc.message, lang)}")
        return 1
    weigher = config.weigher()
    frames = 0
    arrived: queue.Queue[str | ScaleError] = queue.Queue()
    scale.run(arrived.put, arrived.put)
    reading_now = say("station_scale_reading", lang, port=config.port, seconds=f"{seconds:g}")
    print(reading_now, file=sys.stderr, flush=True)
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = arrived.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(item, ScaleError):
                print(f"\a✗ {both(item.message_zh, item.message, lang)}", flush=True)
                break
            frames += 1
            try:
                reading = parse_frame(item, config.format, config.unit)
            except ScaleError as exc:
                print(f"{item!r:<28} ✗ {both(exc.message_zh, exc.message, lang)}", flush=True)
                continue
            stable = {True: word("station_scale_stable", lang), False: word("station_scale_moving", lang), None: ""}[
                reading.stable
            ]
            weighed = weigher.feed(reading)
            sold = weighed is not None and weighed.ok
            sale = f"  {say('station_scale_sale', lang, kg=weighed.kilograms)}" if sold and weighed else ""
            print(f"{item!r:<28} {reading.kilograms} kg {stable}{sale}", flush=True)
    finally:
        scale.close()
    if not frames:
        print(f"\a{say('station_scale_silent', lang)}")
        return 1
    return 0


def cmd_product(args: argparse.Namespace) -> int:
    station = console.station(args)
    lang = console.lang(station)
    catalogue = Catalogue(station.store)
    if args.action == "sync":
        station.info()

        async def refresh() -> int | None:
            async with station.client() as c:
                return await station.refresh_products(c)

        try:
            count = asyncio.run(refresh())
        except Exception as exc:  # network errors: say so, keep the copy we have
            print(f"\a✗ {say('station_goods_refresh_failed', lang, reason=exc)}")
            return 1
        if count is None:
            print(f"\a✗ {say('station_goods_not_offered', lang)}")
            return 1
        print(say("station_goods_refreshed", lang, count=count))
        return 0
    if args.action == "list":
        mine = catalogue.stall_list()
        for p in mine:
            print(p.label)
        if not mine:
            print(say("station_goods_none", lang))
        return 0
    if args.action == "find":
        found = catalogue.search(args.query)
        for i, p in enumerate(found, 1):
            print(f"#{i} {p.label}")
        return 0 if found else 1
    counter = Counter(station.store, "sell", language=lang)
    outcome = counter.choose(args.query)
    console.show(outcome)
    if not outcome.ok or outcome.lines:  # nothing found, or several to choose from
        return 1
    assert counter.product is not None
    if args.price is not None:
        console.show(counter.set_price(args.price, args.price_unit))
    elif args.price_unit:
        counter.catalogue.remember(counter.product, price_unit=args.price_unit)
    return 0


def _read_pin(lang: str) -> str | None:
    """The PIN, typed twice (hidden at a terminal; two lines on standard input otherwise)."""
    if sys.stdin.isatty():
        first = getpass.getpass(say("station_pin_choose", lang))
        second = getpass.getpass(say("station_pin_again", lang))
    else:
        first, second = sys.stdin.readline().strip(), sys.stdin.readline().strip()
    if first != second:
        print(f"\a✗ {say('station_pin_differ', lang)}")
        return None
    if station_format.pin_problem(first) is not None:
        print(f"\a✗ {say('station_pin_weak', lang)}")
        return None
    return first


def cmd_vendor_card(args: argparse.Namespace) -> int:
    """Print the stall's sign-in card for the vendor page, with a PIN the vendor chooses here."""
    station = console.station(args)
    info = station.info()
    lang = console.lang(station)
    pin = _read_pin(lang)
    if pin is None:
        return 1

    async def issue() -> Any:
        async with station.client() as c:
            return await c.call("POST", "/api/v1/stations/vendor-card", {"pin": pin})

    try:
        answer = asyncio.run(issue())
    except Unreachable as exc:
        print(f"\a✗ {say('station_card_offline', lang, reason=exc)}")
        return 1
    if not answer.ok:
        print(f"\a✗ {say('station_card_refused', lang, reason=answer.message)}")
        return 1
    operator = info.get("operator") or {}
    public = str(station.store.get("public_url") or station.store.get("server"))
    card = receipts.CardData(
        market_name=info.get("node", {}).get("name", ""),
        stall_number=operator.get("stallNo") or "",
        stall_name=operator.get("name") or "",
        card=answer.data["card"],
        vendor_url=f"{public}/vendor/login",
        issued_at=dt.datetime.now().astimezone(),
    )
    config = Printout(station.store, station.home / "prints").printer("receipt")
    try:
        if config.is_files:
            target = Path(config.connection.removeprefix("dir:") or station.home / "prints")
            target.mkdir(parents=True, exist_ok=True)
            path = target / "stall-card.png"
            image = receipts.lines_image(receipts.card_lines(card), card.card, width_px=config.width_dots)
            image.save(path, dpi=(203, 203))
            where = str(path)
        else:
            printers.send(config, printers.card_job(card, config))
            where = config.connection
    except printing.PrintError as exc:
        print(f"\a✗ {say('station_card_not_printed', lang, reason=exc)}")
        return 1
    print(say("station_card_printed", lang, where=where, url=card.vendor_url))
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    station = console.station(args)
    lang = console.lang(station)
    server, code = args.server, args.code
    text = args.qr
    if args.image:
        found = [t for t in console.photo_texts(Path(args.image)) if t.upper().startswith(station_format.ENROL_PREFIX)]
        if not found:
            print(say("station_enrol_no_qr", lang), file=sys.stderr)
            return 1
        text = found[0]
    if text is None and (server is None or code is None):
        print(say("station_enrol_scan", lang), file=sys.stderr, flush=True)
        text = sys.stdin.readline()
    if text is not None:
        try:
            server, code = station_format.parse_enrolment_payload(text)
        except station_format.EnrolmentPayloadError as exc:
            print(say("station_enrol_not_a_code", lang, reason=exc), file=sys.stderr)
            return 1
    try:
        info = asyncio.run(station.enrol(server, code, blocks=args.blocks))
    except AuthRefused as exc:
        print(say("station_enrol_refused", lang, reason=exc), file=sys.stderr)
        return 1
    node = info["node"]
    operator = info.get("operator") or {}
    who = f"{operator.get('stallNo')} {operator.get('name') or ''}".rstrip()
    stall = Localised(f" 摊位 {who}", f", stall {who}") if operator.get("stallNo") else ""
    print(
        say(
            "station_enrolled",
            lang,
            node=node["name"],
            code=node["code"],
            stall=stall,
            codes=station.store.codes_left(),
        )
    )
    return 0
