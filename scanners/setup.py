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
from scanners.weighing import ScaleConfig, SerialScale
from scanners.words import both, say, server_refusal
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
    row("queue", f"{status['pending']}  {word('status.oldest')} {console.local_time(status['oldestPending'])}")
    last = console.local_time(status["lastSync"]) if status["lastSync"] else word("status.never")
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
        row("error", f"{console.local_time(status['lastError']['at'])}  {status['lastError']['message']}")
    if status["refused"]:
        problems = True
        row("refused", f"{status['refused']} {word('status.kept')}")
        for r in status["recentRefusals"]:
            print(f"  #{r['seq']} {r['kind']} {r['trace_code']}: {server_refusal(r['error'], lang)}")
    for failure in status["printFailures"]:
        problems = True
        row("print_failed", f"{failure['kind']} {failure['trace_code']}: {failure['error']}")
    if not problems:
        print(f"✓ {word('status.all_good')}")
    return 0


def cmd_language(args: argparse.Namespace) -> int:
    station = console.station(args)
    station.store.put(language=args.language)
    print({"zh": "✓ 中文", "en": "✓ English", "both": "✓ 中文 · English"}[args.language])
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
    station = console.station(args)
    lang = console.lang(station)
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
    arrived: queue.Queue[str | ScaleError] = queue.Queue()
    scale.run(arrived.put, arrived.put)
    reading_now = both(f"正在读取 {config.port}（{seconds:g} 秒）…", f"reading {config.port} for {seconds:g} s…", lang)
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
            stable = {True: "稳定 stable", False: "未稳定 moving", None: ""}[reading.stable]
            weighed = weigher.feed(reading)
            sale = f"  → 销售 sale {weighed.kilograms} kg" if weighed is not None and weighed.ok else ""
            print(f"{item!r:<28} {reading.kilograms} kg {stable}{sale}", flush=True)
    finally:
        scale.close()
    if not frames:
        print(both("\a✗ 没有收到秤的数据：检查连线、波特率和秤的输出设置", "\a✗ nothing from the scale", lang))
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
        first = getpass.getpass(both("设置6位登录密码：", "choose a 6-digit PIN: ", lang))
        second = getpass.getpass(both("再输入一次：", "again: ", lang))
    else:
        first, second = sys.stdin.readline().strip(), sys.stdin.readline().strip()
    if first != second:
        print(f"\a✗ {both('两次输入的密码不一致', 'the two PINs differ', lang)}")
        return None
    if (problem := station_format.pin_problem(first)) is not None:
        zh = "密码应为6位数字，且不能是相同数字或顺序数字（如 123456）"
        print(f"\a✗ {both(zh, problem, lang)}")
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
        print(f"\a✗ {both('需要联网才能制卡', 'making a card needs the network', lang)}: {exc}")
        return 1
    if not answer.ok:
        print(f"\a✗ {both('制卡被拒绝', 'the card was refused', lang)}: {answer.message}")
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
        print(f"\a✗ {both('登录卡打印失败', 'the card did not print', lang)}: {exc}")
        return 1
    print(
        both(
            f"✓ 摊位登录卡已打印（{where}）：在 {card.vendor_url} 扫描此卡并输入密码登录；旧卡已作废",
            f"✓ stall card printed ({where}): scan it at {card.vendor_url} with your PIN; the old card no longer works",
            lang,
        )
    )
    return 0
