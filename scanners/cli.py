"""``trace-scan``: the station program. ``trace-scan --help`` lists the commands; docs/scanners.md explains them.

The station's home directory (``--home``, else ``~/.trace-scan``) holds its private key, its queue and its
settings (printers, scale, the goods it sells). Everything it says is in Chinese with English beside it
(``trace-scan language zh|en|both``). Exit status: 0 done, 1 refused or unfinished (the message says why),
2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from scanners import printers, printing
from scanners.batches import BatchBook
from scanners.catalogue import PRICE_UNITS, Catalogue
from scanners.modes import MODES, Counter, Outcome
from traceability.domain.scans import ScanError, parse_scan
from scanners.printout import Printout
from scanners.scales import FORMATS, ScaleConfig, ScaleError, SerialScale, parse_frame
from scanners.station import AuthRefused, NotEnrolled, Station, start_background_upload
from scanners.words import LANGUAGES, both, say
from traceability.domain import stations as station_format

INLINE_UPLOAD_SECONDS = 3.0
"""How long ``label`` and ``receipt`` try to upload before leaving it to the background uploader."""


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
    if outcome.message:
        print(f"{mark}{outcome.message}", flush=True)
    for line in outcome.lines:
        print(line, flush=True)


def _lang(station: Station) -> str:
    return station.language


def _counter(station: Station, args: argparse.Namespace, mode: str) -> Counter:
    print_dir = Path(args.print_dir) if getattr(args, "print_dir", None) else station.home / "prints"
    counter = Counter(
        station.store,
        mode,
        product=getattr(args, "product", None),
        product_name=getattr(args, "product_name", None),
        unit_price=getattr(args, "price", None),
        price_unit=getattr(args, "price_unit", None),
        print_dir=print_dir,
        source=getattr(args, "source", None),
    )
    scale = station.store.get("scale")
    if scale:
        config = ScaleConfig.from_json(scale)
        counter.weigher = config.weigher()
        counter.weigher.tare_kg = Decimal(str(station.store.get("tare_kg", "0")))
    return counter


def _upload_soon(station: Station, args: argparse.Namespace) -> None:
    """Upload what was just queued; if the network does not allow it now, leave it to a background uploader."""
    if getattr(args, "no_upload", False) or not station.store.pending(1):
        return
    try:
        done = asyncio.run(station.sync(until_empty=True, within=INLINE_UPLOAD_SECONDS))
    except NotEnrolled:
        return
    if not done:
        pending = station.store.status()["pending"]
        start_background_upload(station.home, max_backoff=args.max_backoff)
        print(say("upload_pending", _lang(station), count=pending), file=sys.stderr)


def photo_texts(path: Path) -> list[str]:
    """The text of every barcode and QR code in a photo."""
    from PIL import Image

    from traceability.domain.images import decode_image

    with Image.open(path) as image:
        return decode_image(image)


# -- enrolment -------------------------------------------------------------------------------------


def cmd_enrol(args: argparse.Namespace) -> int:
    station = _station(args)
    lang = _lang(station)
    server, code = args.server, args.code
    text = args.qr
    if args.image:
        found = [t for t in photo_texts(Path(args.image)) if t.upper().startswith(station_format.ENROL_PREFIX)]
        if not found:
            print(both("✗ 图片中没有绑定二维码", "✗ no enrolment QR code in the picture", lang), file=sys.stderr)
            return 1
        text = found[0]
    if text is None and (server is None or code is None):
        print(both("请用扫码枪扫描绑定二维码：", "scan the enrolment QR code:", lang), file=sys.stderr, flush=True)
        text = sys.stdin.readline()
    if text is not None:
        try:
            server, code = station_format.parse_enrolment_payload(text)
        except station_format.EnrolmentPayloadError as exc:
            print(both(f"✗ 这不是绑定二维码：{exc}", f"✗ not an enrolment code: {exc}", lang), file=sys.stderr)
            return 1
    try:
        info = asyncio.run(station.enrol(server, code, blocks=args.blocks))
    except AuthRefused as exc:
        print(both(f"✗ 绑定被拒绝：{exc}", f"✗ enrolment refused: {exc}", lang), file=sys.stderr)
        return 1
    node = info["node"]
    operator = info.get("operator") or {}
    stall = f" 摊位 {operator['stallNo']} {operator.get('name') or ''}".rstrip() if operator.get("stallNo") else ""
    print(say("enrolled", lang, node=node["name"], code=node["code"], stall=stall, codes=station.store.codes_left()))
    return 0


# -- the counter -----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, args.mode)
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
    mode_zh = say(f"mode.{counter.mode}", "zh")
    print(say("ready", counter.language, mode_zh=mode_zh, mode=counter.mode), file=sys.stderr, flush=True)
    if counter.product:
        print(say("product_chosen", counter.language, label=counter.goods), file=sys.stderr, flush=True)
    last_scale_error = 0.0
    while True:
        kind, value = await inputs.get()
        if kind == "line":
            if not value:
                break
            if not value.strip():
                continue
            await _learn(station, counter, value, args)
            _show(counter.handle(value))
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
            _show(outcome)
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
            print(say("upload_pending", counter.language, count=station.store.status()["pending"]), file=sys.stderr)
    return 0


async def _learn(station: Station, counter: Counter, line: str, args: argparse.Namespace) -> None:
    """Before a scanned batch is sold from or received, ask the server what it is (when online)."""
    if args.no_upload or counter.mode not in ("sell", "receive"):
        return
    try:
        scan = parse_scan(line, base_urls=[counter.base_url])
    except ScanError:
        return
    if scan.trace_code is not None:
        await station.learn_batch(scan.trace_code)


def cmd_image(args: argparse.Namespace) -> int:
    texts = photo_texts(Path(args.file))
    if not texts:
        print("\a✗ 图片中未找到条码 · no barcode found in the picture", flush=True)
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
    outcomes = []
    for text in texts:
        if not args.no_upload:
            asyncio.run(_learn(station, counter, text, args))
        outcomes.append(counter.handle(text))
    for o in outcomes:
        _show(o)
    _upload_soon(station, args)
    return 0 if all(o.ok for o in outcomes) else 1


# -- status and uploads ----------------------------------------------------------------------------


def _local(stamp: Any) -> str:
    """A stored UTC time in the station's local time (Beijing time at a Chinese stall)."""
    if not stamp:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cmd_status(args: argparse.Namespace) -> int:
    station = _station(args)
    lang = _lang(station)
    status = station.store.status()
    status["keyId"] = station.store.get("key_id")
    status["server"] = station.store.get("server")
    status["station"] = station.store.get("station")
    printout = Printout(station.store, station.home / "prints")
    status["printers"] = {role: printout.printer(role).as_json() for role in ("receipt", "label")}
    status["printFailures"] = printout.failed()
    status["scale"] = station.store.get("scale")
    current = station.store.get("current_product")
    product = Catalogue(station.store).get(current) if current else None
    status["product"] = None if product is None else {"goodsCode": product.goods_code, "name": product.name}
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2, default=str))
        return 0

    def word(key: str) -> str:
        """A status word: 中文 English side by side in ``both``, not joined by a dot as sentences are."""
        return say(key, lang) if lang != "both" else f"{say(key, 'zh')} {say(key, 'en')}"

    def row(key: str, value: str) -> None:
        label = word(f"status.{key}")
        width = sum(2 if ord(ch) > 0x2E80 else 1 for ch in label)
        print(f"{label}{' ' * max(1, 26 - width)}{value}")

    none = word("status.none")
    info = status["station"] or {}
    operator = info.get("operator") or {}
    if info:
        stall = f"  摊位 {operator.get('stallNo')} {operator.get('name') or ''}" if operator else ""
        row("station", f"{info['node']['name']}（{info['node']['code']}）{stall}")
    row("server", f"{status['server'] or say('not_enrolled', lang)}  {status['keyId'] or ''}".rstrip())
    row("queue", f"{status['pending']}  {word('status.oldest')} {_local(status['oldestPending'])}")
    last = _local(status["lastSync"]) if status["lastSync"] else word("status.never")
    row("uploaded", f"{status['sent']}  {word('status.last_sync')} {last}")
    row("codes", str(status["codesLeft"]))
    row("product", product.label if product else none)
    printer_text = "；".join(
        f"{'小票' if role == 'receipt' else '标签'} {cfg['connection']}" for role, cfg in status["printers"].items()
    )
    row("printers", printer_text)
    scale = status["scale"]
    row("scale", f"{scale['port']} {scale['baudrate']} {scale['format']} {scale['unit']}" if scale else none)
    problems = False
    if status["lastError"]:
        problems = True
        row("error", f"{_local(status['lastError']['at'])}  {status['lastError']['message']}")
    if status["refused"]:
        problems = True
        row("refused", f"{status['refused']} {word('status.kept')}")
        for r in status["recentRefusals"]:
            print(f"  #{r['seq']} {r['kind']} {r['trace_code']}: {r['error']}")
    for failure in status["printFailures"]:
        problems = True
        row("print_failed", f"{failure['kind']} {failure['trace_code']}: {failure['error']}")
    if not problems:
        print(f"✓ {word('status.all_good')}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    done = asyncio.run(station.sync(until_empty=True, within=args.timeout))
    s = station.stats
    print(
        say(
            "uploaded",
            _lang(station),
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
    station = _station(args)
    station.info()
    try:
        new_id = asyncio.run(station.rotate_key())
    except AuthRefused as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    print(f"✓ 新密钥 new key {new_id}")
    return 0


def cmd_language(args: argparse.Namespace) -> int:
    station = _station(args)
    station.store.put(language=args.language)
    print({"zh": "✓ 中文", "en": "✓ English", "both": "✓ 中文 · English"}[args.language])
    return 0


# -- labels and receipts ---------------------------------------------------------------------------


def cmd_label(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, "commission")
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
            _show(counter.fail("need_product"))
            return 1
        from traceability.domain.scans import Quantity

        q = Quantity(args.quantity, "件") if args.uom == "piece" else Quantity(args.quantity, "kg", args.quantity)
        counter.auto_print = False  # printed together below
        for _ in range(args.count):
            outcome = counter.commission(q)
            if not outcome.ok or outcome.trace_code is None:
                _show(outcome)
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
        print(both(f"✓ {len(labels)} 张标签 → {out}", f"✓ {len(labels)} labels → {out}", lang))
    else:
        done = counter.printout.labels(labels)
        failed = [p for p in done if not p.ok]
        where = done[0].where if done else ""
        if failed:
            print(f"\a✗ {say('print_failed', lang, error=failed[0].error, code=labels[0].trace_code)}")
        else:
            print(both(f"✓ {len(labels)} 张标签 → {where}", f"✓ {len(labels)} labels → {where}", lang))
    for label in labels:
        print(label.trace_code)
    _upload_soon(station, args)
    return 0


def _weight(text: str, unit: str) -> Decimal:
    try:
        reading = parse_frame(text, "plain", unit)
    except ScaleError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return reading.kilograms


def cmd_receipt(args: argparse.Namespace) -> int:
    station = _station(args)
    station.info()
    counter = _counter(station, args, "sell")
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
            _show(chosen)
            return 1
    outcome = counter.sell(weight)
    _show(outcome)
    if outcome.ok:
        _upload_soon(station, args)
    return 0 if outcome.ok else 1


def cmd_reprint(args: argparse.Namespace) -> int:
    station = _station(args)
    counter = _counter(station, args, "sell" if station.store.get("current_product") else "receive")
    outcome = counter.reprint(args.code)
    _show(outcome)
    return 0 if outcome.ok and not any("✗" in line for line in outcome.lines) else 1


# -- printers, scale, goods ------------------------------------------------------------------------


def cmd_printer(args: argparse.Namespace) -> int:
    station = _station(args)
    lang = _lang(station)
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
        print(both(f"✓ 已设置{'小票' if args.role == 'receipt' else '标签'}打印机", f"✓ {args.role} printer set", lang))
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
            print(both(f"✓ 测试页已写入 {path}", f"✓ test page written to {path}", lang))
            return 0
        printers.send(config, printers.trial_page_job(config, base, name))
    except printing.PrintError as exc:
        print(f"\a✗ {both(f'测试页打印失败：{exc}', f'test page failed: {exc}', lang)}")
        return 1
    print(
        both(
            "✓ 测试页已发送：检查中文是否清晰、数字标尺是否恰好一行、手机能否扫出二维码",
            "✓ test page sent: check the Chinese text, that the ruler fills one line, that a phone reads the QR code",
            lang,
        )
    )
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    station = _station(args)
    lang = _lang(station)
    if args.action == "off":
        station.store.put(scale=None)
        print(both("✓ 已停用电子秤", "✓ scale turned off", lang))
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
        print(both(f"✓ 已设置电子秤 {config.port}", f"✓ scale set on {config.port}", lang))
        return 0
    saved = station.store.get("scale")
    if not saved:
        print(both("✗ 尚未设置电子秤：trace-scan scale set --port …", "✗ no scale set: trace-scan scale set --port …"))
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
    deadline = time.monotonic() + seconds
    try:
        for frame in scale.frames():
            frames += 1
            try:
                reading = parse_frame(frame, config.format, config.unit)
            except ScaleError as exc:
                print(f"{frame!r:<28} ✗ {both(exc.message_zh, exc.message, lang)}", flush=True)
            else:
                stable = {True: "稳定 stable", False: "未稳定 moving", None: ""}[reading.stable]
                weighed = weigher.feed(reading)
                sale = f"  → 销售 sale {weighed.kilograms} kg" if weighed is not None and weighed.ok else ""
                print(f"{frame!r:<28} {reading.kilograms} kg {stable}{sale}", flush=True)
            if time.monotonic() > deadline:
                break
    finally:
        scale.close()
    if not frames:
        print(both("\a✗ 没有收到秤的数据：检查连线、波特率和秤的输出设置", "\a✗ nothing from the scale", lang))
        return 1
    return 0


def cmd_product(args: argparse.Namespace) -> int:
    station = _station(args)
    lang = _lang(station)
    catalogue = Catalogue(station.store)
    if args.action == "sync":
        station.info()

        async def refresh() -> int | None:
            async with station.client() as c:
                return await station.refresh_products(c)

        try:
            count = asyncio.run(refresh())
        except Exception as exc:  # network errors: say so, keep the copy we have
            print(f"\a✗ {both('无法更新商品表', 'cannot refresh the goods list', lang)}: {exc}")
            return 1
        if count is None:
            print(f"\a✗ {both('服务器不提供商品表', 'the server offers no goods list to stations', lang)}")
            return 1
        print(both(f"✓ 商品表已更新：{count} 种", f"✓ goods list refreshed: {count}", lang))
        return 0
    if args.action == "list":
        mine = catalogue.stall_list()
        for p in mine:
            print(p.label)
        if not mine:
            print(
                both(
                    "本摊位还没有商品：trace-scan product use 名称或拼音首字母", "no goods yet: product use NAME", lang
                )
            )
        return 0
    if args.action == "find":
        found = catalogue.search(args.query)
        for i, p in enumerate(found, 1):
            print(f"#{i} {p.label}")
        return 0 if found else 1
    counter = Counter(station.store, "sell", language=lang)
    outcome = counter.choose(args.query)
    _show(outcome)
    if not outcome.ok or outcome.lines:  # nothing found, or several to choose from
        return 1
    assert counter.product is not None
    if args.price is not None:
        _show(counter.set_price(args.price, args.price_unit))
    elif args.price_unit:
        counter.catalogue.remember(counter.product, price_unit=args.price_unit)
    return 0


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
    e.set_defaults(func=cmd_enrol)

    def counter_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--product", help="goods: a goods code, a name or pinyin initials (猪肉, zr); remembered")
        c.add_argument("--product-name", help="name printed when the goods list does not have it yet")
        c.add_argument("--price", type=_decimal, help="unit price in yuan per --price-unit; remembered per goods")
        c.add_argument("--price-unit", choices=PRICE_UNITS)
        c.add_argument("--source", help="trace code of the batch being sold from")
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
    s.set_defaults(func=cmd_status)

    y = sub.add_parser("sync", help="上传 · upload the queue now")
    y.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    y.set_defaults(func=cmd_sync)

    sub.add_parser("rotate-key", help="replace this station's key").set_defaults(func=cmd_rotate)

    lg = sub.add_parser("language", help="语言 · messages in Chinese, English or both")
    lg.add_argument("language", choices=LANGUAGES)
    lg.set_defaults(func=cmd_language)

    lb = sub.add_parser("label", help="标签 · commission batches and print their labels, or reprint codes")
    counter_options(lb)
    lb.add_argument("--code", action="append", help="print this existing code again (repeatable)")
    lb.add_argument("--count", type=int, default=1, help="without --code: commission this many new batches")
    lb.add_argument("--quantity", type=_decimal, default=Decimal(1))
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
    pr.set_defaults(func=cmd_printer)

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
    sc.add_argument("--min-kg", type=_decimal, default=Decimal("0.005"), help="smallest weight sold")
    sc.add_argument("--seconds", type=float, default=10.0, help="with test: how long to read")
    sc.set_defaults(func=cmd_scale)

    pd = sub.add_parser("product", help="商品 · find goods by name or pinyin initials; choose them; set prices")
    pd.add_argument("action", choices=("find", "use", "list", "sync"))
    pd.add_argument("query", nargs="?", default="")
    pd.add_argument("--price", type=_decimal)
    pd.add_argument("--price-unit", choices=PRICE_UNITS)
    pd.set_defaults(func=cmd_product)

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
