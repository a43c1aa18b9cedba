"""The station a vendor runs alone, as processes against the real server: goods by name, prices remembered,
receipts on a printer with the stall and the origin, refusals before printing, a scale on a serial port,
Chinese status, uploads that happen by themselves, reprints.

Printers here are real connections: a ``file:`` device whose bytes a model printer prints, or a TCP port.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import zxingcpp

from scanners.catalogue import Catalogue
from scanners.modes import Counter
from scanners.station import Station
from tests.conftest import SETTLE_WITHIN, make_uscc, until
from tests.scanners.conftest import Live
from tests.scanners.escpos_render import Paper, print_escpos, print_tspl
from tests.scanners.test_scales import FakeScale
from tests.scanners.test_station import enrolled
from traceability.domain import stations as station_format
from traceability.domain.scans import Quantity

PY = sys.executable
BASE = "https://trace.example.cn"


def trace_scan(home: Path, *args: str, stdin: bytes | None = None, timeout: float = 60) -> tuple[int, str, str]:
    proc = subprocess.run(
        [PY, "-m", "scanners.cli", "--home", str(home), "--max-backoff", "0.2", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def run_cli(home: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    return await asyncio.to_thread(trace_scan, home, *args, stdin=stdin)


def selling_process(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "scanners.cli", "--home", str(home), "run", "--mode", "sell", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def decode(image: Any) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L")) if r.valid]


def receipts_printed(device: Path) -> list[Paper]:
    """Everything the station sent to the printer device file, printed, one paper per receipt."""
    data = device.read_bytes()
    return [print_escpos(b"\x1b@" + job) for job in data.split(b"\x1b@") if job.strip(b"\x00")]


async def add_products(live: Live) -> None:
    for goods_code, name, category in [
        ("21113021", "猪前腿肉", "meat"),
        ("22102001", "番茄", "vegetable"),
        ("22101001", "大白菜", "vegetable"),
    ]:
        status, _ = await live.call(
            "POST", "/api/v1/admin/products", {"category": category, "goods_code": goods_code, "name": name}
        )
        assert status == 201


async def registry_into(live: Live, st: Station) -> None:
    """The station's copy of the product registry, fetched the way the station does (`product sync`)."""
    code, out, err = await run_cli(st.home, "product", "sync")
    assert code == 0, out + err
    status, listed = await live.call("GET", "/api/v1/admin/products?limit=500")
    assert status == 200 and Catalogue(st.store).count() == len(listed["items"]) > 1


async def farm_batch(live: Live, product: str, *, n: int = 40, area: str = "320321", place: str = "王庄") -> str:
    """A batch opened upstream (at a farm, with its origin) and shipped to the markets, through the public write
    path."""
    uscc = make_uscc(n)
    status, _ = await live.call("POST", "/api/v1/admin/enterprises", {"name": f"农场{n}", "uscc": uscc})
    assert status == 201
    status, node = await live.call(
        "POST", "/api/v1/admin/nodes", {"enterprise": uscc, "type": "farm", "area_code": area, "name": f"农场{n}"}
    )
    assert status == 201, node
    status, device = await live.call("POST", "/api/v1/admin/devices", {"node": node["code"], "name": "farm"})
    assert status == 201
    body = {
        "eventID": str(uuid.uuid4()),
        "product": product,
        "quantity": {"value": 90, "uom": "KGM"},
        "origin": {"area_code": area, "place": place},
    }
    status, opened = await live.call("POST", "/api/v1/batches", body, token=device["credential"])
    assert status == 201, opened
    code = str(opened["traceCode"])
    # Custody: the farm ships it to every wet market registered so far, and each market receives it there,
    # so its stalls may sell from it.
    status, nodes = await live.call("GET", "/api/v1/admin/nodes?limit=500")
    assert status == 200
    for market in [m for m in nodes["items"] if m["node_type"] == "wet_market"]:
        ship = {
            "eventID": str(uuid.uuid4()),
            "traceCode": code,
            "bizStep": "shipping",
            "eventTime": datetime.now(UTC).isoformat(),
            "destination": {"node": market["code"]},
        }
        status, shipped = await live.call("POST", "/api/v1/events", ship, token=device["credential"])
        assert status == 201, shipped
        status, gate = await live.call("POST", "/api/v1/admin/devices", {"node": market["code"], "name": "gate"})
        assert status == 201, gate
        now = datetime.now(UTC).isoformat()
        receive = {"eventID": str(uuid.uuid4()), "traceCode": code, "bizStep": "receiving", "eventTime": now}
        status, received = await live.call("POST", "/api/v1/events", receive, token=gate["credential"])
        assert status == 201, received
    return code


async def test_a_stall_sells_pork_by_name_with_its_price_remembered_and_a_full_receipt(
    live: Live, db_url: str, tmp_path: Path
) -> None:
    await add_products(live)
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    await registry_into(live, st)
    pork = await farm_batch(live, "21113011")
    device = tmp_path / "printer.bin"
    code, out, err = await run_cli(home, "printer", "set", "receipt", "--connection", f"file:{device}", "--no-test")
    assert code == 0, err

    # The vendor types the initials of the goods, its price per 斤, scans the carcass, weighs twice.
    lines = "\n".join(["zr", "#1", "单价 16/斤", pork, "0.5", "ST,GS,+  1.250kg", "US,GS,+  0.800kg", ""])
    code, out, err = await run_cli(home, "run", "--mode", "sell", stdin=lines.encode())
    assert code == 0, err
    assert "找到多个商品" in out and "#1 白条猪肉（21113011）" in out  # 白条猪肉 and 猪前腿肉 both match zr
    assert "商品：#1 白条猪肉" in out and "单价 16.00 元/斤" in out
    assert f"正在销售：白条猪肉，批次 {pork}，产地 江苏省徐州市丰县 王庄" in out
    assert out.count("✓ 已售 sold 白条猪肉") == 2 and "重量未稳定" in out
    papers = receipts_printed(device)
    assert len(papers) == 2
    first = [line for line in papers[0].lines if line]
    assert first[:8] == [
        "gulou菜市场",
        "摊位：A-012　王记鲜肉",
        "-" * 32,
        "品名：白条猪肉",
        "产地：江苏省徐州市丰县 王庄",
        "重量：0.500 kg（1.00 斤）",
        "单价：16.00 元/斤",
        "金额：16.00 元",
    ]
    assert "金额：40.00 元" in papers[1].lines
    sold = [r.text for p in papers for r in zxingcpp.read_barcodes(p.image.convert("L"))]
    assert all(u.startswith(f"{BASE}/t/") for u in sold) and len(set(sold)) == 2

    # Everything reached the ledger, the unit price per kilogram as the quantity is in kilograms.
    assert st.store.status()["pending"] == 0
    _, view = await live.call("GET", f"/api/v1/batches/{pork}")
    sales = [e for e in view["events"] if e["bizStep"] == "retail_selling"]
    assert [s["commercial"]["unit_price"] for s in sales] == ["32", "32"]
    assert [s["commercial"]["amount"] for s in sales] == ["16", "40"]

    # Next morning: the stall's goods and price are remembered; no --product, no price typed.
    code, out, err = await run_cli(home, "run", "--mode", "sell", stdin=f"{pork}\n1斤\n".encode())
    assert code == 0, err
    assert "✓ 已售 sold 白条猪肉 0.500 kg（1.00 斤），16.00 元" in out
    code, out, _ = await run_cli(home, "product", "list")
    assert out.strip() == "#1 白条猪肉（21113011）  16.00 元/斤"


async def test_a_source_of_other_goods_is_refused_before_anything_is_recorded_or_printed(
    live: Live, tmp_path: Path
) -> None:
    await add_products(live)
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    await registry_into(live, st)
    tomatoes = await farm_batch(live, "22102001", n=41)
    device = tmp_path / "printer.bin"
    await run_cli(home, "printer", "set", "receipt", "--connection", f"file:{device}", "--no-test")
    before = st.store.status()

    code, out, _ = await run_cli(home, "receipt", "--product", "白条猪肉", "--source", tomatoes, "--weight", "1")
    assert code == 1
    assert f"请勿销售：批次 {tomatoes} 是“番茄”，不是“白条猪肉”" in out and "\a✗" in out
    assert st.store.status()["pending"] == before["pending"] and st.store.status()["sent"] == before["sent"]
    assert not device.exists() or device.read_bytes() == b""

    # Without a source there is nothing to trace: refused, and it says what to do.
    code, out, _ = await run_cli(home, "receipt", "--product", "btzr", "--weight", "1")
    assert code == 1 and "请先扫描要销售的批次" in out

    # The right batch sells; the goods come from the batch when none is named, the receipt from the queue.
    pork = await farm_batch(live, "21113011", n=42, area="320322", place="")
    code, out, err = await run_cli(home, "receipt", "--source", pork, "--weight", "2.5斤", "--price", "30")
    assert code == 0, err
    assert "✓ 已售 sold 白条猪肉 1.250 kg" in out and "37.50 元" in out
    (paper,) = receipts_printed(device)
    assert "产地：江苏省徐州市沛县" in paper.lines and "单价：30.00 元/kg" in paper.lines
    assert decode(paper.image)[0].startswith(f"{BASE}/t/")


async def test_a_scale_on_a_serial_port_makes_one_receipt_per_item(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    source = Counter(st.store, "commission", product="21113011", product_name="白条猪肉").commission(
        Quantity(Decimal(80), "kg", Decimal(80))
    )
    scale = FakeScale()
    try:
        code, _, err = await run_cli(home, "scale", "set", "--port", scale.port, "--baud", "9600")
        assert code == 0, err
        await run_cli(home, "printer", "set", "receipt", "--connection", f"file:{tmp_path / 'p.bin'}", "--no-test")
        proc = selling_process(home, "--price", "16", "--price-unit", "斤", "--source", str(source.trace_code))
        assert proc.stderr is not None
        ready = (await asyncio.to_thread(proc.stderr.readline)).decode()
        assert "请扫码或称重" in ready  # said once the scale's port is open
        stream = (
            [b"ST,GS,+  0.000kg\r\n"] * 3
            + [b"US,GS,+  0.400kg\r\n", b"US,GS,+  0.498kg\r\n"]
            + [b"ST,GS,+  0.500kg\r\n"] * 8
            + [b"ST,GS,+  0.000kg\r\n"] * 3
            + [b"US,GS,+  1.100kg\r\n"]
            + [b"ST,GS,+  1.250kg\r\n"] * 8
        )
        for frame in stream:
            scale.send(frame, pause=0.02)
        device = tmp_path / "p.bin"

        async def sold_both() -> bool:  # the station read every frame and printed both receipts
            jobs = device.read_bytes().count(b"\x1b@") if device.exists() else 0
            return scale.unread() == 0 and jobs >= 2

        await until(sold_both, "both items sold")
        out, err = await asyncio.to_thread(proc.communicate, b"", 60)
    finally:
        scale.close()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.count("✓ 已售") == 2, text
    assert "0.500 kg（1.00 斤），16.00 元" in text and "1.250 kg（2.50 斤），40.00 元" in text
    papers = receipts_printed(tmp_path / "p.bin")
    assert [p.lines[p.lines.index("单价：16.00 元/斤") + 1] for p in papers] == ["金额：16.00 元", "金额：40.00 元"]


async def test_typed_scale_lines_and_bare_weights_sell(live: Live, tmp_path: Path) -> None:
    st, _ = await enrolled(live, tmp_path / "st")
    source = Counter(st.store, "commission", product="21113011").commission(Quantity(Decimal(50), "kg", Decimal(50)))
    counter = Counter(st.store, "sell", product="21113011", source=source.trace_code)
    outcomes = [counter.handle(line) for line in ["0.5", "ST,GS,+  0.500kg", "=0005.00", "US,GS,+ 0.5kg", "0.5000"]]
    assert [o.ok for o in outcomes] == [True, True, True, False, True]
    bodies = [r.body for r in st.store.pending(100) if r.kind == "sale"]
    assert all(b["source"] == source.trace_code for b in bodies)
    assert [b["quantity"]["value"] for b in bodies] == ["0.5", "0.500", "0.5000", "0.5000"]
    # A scale that sends 斤 without a unit: the station's unit setting says so.
    st.store.put(scale={"port": "/dev/null", "unit": "斤"})
    assert Counter(st.store, "sell", product="21113011", source=source.trace_code).handle("1.0").ok
    assert st.store.pending(100)[-1].body["quantity"]["value"] == "0.50"


async def test_status_is_chinese_and_a_connection_problem_clears_after_a_good_sync(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    code, out, _ = await run_cli(home, "status")
    assert code == 0
    for label in (
        "站点 station",
        "待上传 queued",
        "上次同步成功 last good sync",
        "剩余追溯码 codes left",
        "✓ 一切正常",
    ):
        assert label in out, out
    await live.stop()
    code, out, _ = await run_cli(
        home, "label", "--product", "21113011", "--count", "2", "--out", str(tmp_path / "a.pdf")
    )
    assert code == 0 and "2 条记录未上传" in _ + out  # queued, uploading left to the background
    code, out, _ = await run_cli(home, "sync", "--timeout", "1")
    assert code == 1
    code, out, _ = await run_cli(home, "status")
    assert "连接问题 connection problem" in out and "✓ 一切正常" not in out
    await live.start()
    # The background uploader started by `label` sends the labels' batches once the server is back.
    for _ in range(300):
        if st.store.status()["pending"] == 0:
            break
        await asyncio.sleep(0.1)
    assert st.store.status()["pending"] == 0
    code, out, _ = await run_cli(home, "sync", "--timeout", "10")
    assert code == 0
    code, out, _ = await run_cli(home, "status")
    assert "连接问题" not in out and "✓ 一切正常" in out
    code, _, _ = await run_cli(home, "language", "en")
    code, out, _ = await run_cli(home, "status")
    assert "queued" in out and "待上传" not in out


class NetworkPrinter:
    """A printer on the network: the bytes it was sent, and a wait for each job to arrive whole."""

    def __init__(self) -> None:
        self.received = bytearray()
        self._jobs: asyncio.Queue[None] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.received.extend(await reader.read())
        writer.close()
        self._jobs.put_nowait(None)

    async def printed(self) -> None:
        """Return once the next job (one connection: the station sends a job and closes) has been read to its end.

        The station's command has returned by then, but this test's loop still has to accept and read the
        connection; a loaded machine can take longer over that than any fixed pause.
        """
        await asyncio.wait_for(self._jobs.get(), SETTLE_WITHIN)


async def test_labels_without_product_use_the_stall_goods_and_reprints_need_none(live: Live, tmp_path: Path) -> None:
    await add_products(live)
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    await registry_into(live, st)
    code, out, _ = await run_cli(home, "label", "--count", "2", "--out", str(tmp_path / "none.pdf"), "--no-upload")
    assert code == 1 and "请先选择商品" in out  # a fresh stall has chosen no goods yet
    code, out, err = await run_cli(home, "product", "use", "dbc", "--price", "2", "--price-unit", "斤")
    assert code == 0, out + err
    assert "商品：#1 大白菜（22101001）" in out

    # Labels go to a TSPL label printer on the network.
    printer = NetworkPrinter()
    received = printer.received
    server = await asyncio.start_server(printer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code, out, err = await run_cli(
        home, "printer", "set", "label", "--connection", f"tcp://127.0.0.1:{port}", "--language", "tspl", "--no-test"
    )
    assert code == 0, err
    code, out, err = await run_cli(home, "label", "--count", "3")
    assert code == 0, err
    await printer.printed()
    labels = print_tspl(bytes(received))
    codes = out.split()[-3:]
    assert [decode(p) for p in labels.pages] == [[f"{BASE}/t/{c}"] for c in codes]
    # They uploaded by themselves: the batches are on the server already.
    assert st.store.status()["pending"] == 0
    status, view = await live.call("GET", f"/api/v1/batches/{codes[0]}")
    assert status == 200 and view["product"]["name"] == "大白菜"

    # A reprint needs no product: the label as printed comes out again.
    received.clear()
    code, out, err = await run_cli(home, "reprint", codes[1])
    assert code == 0, out + err
    await printer.printed()
    assert decode(print_tspl(bytes(received)).pages[0]) == [f"{BASE}/t/{codes[1]}"]
    # A batch never printed here (received from a farm) is labelled with what the server says it is.
    tomatoes = await farm_batch(live, "22102001", n=43)
    received.clear()
    code, out, err = await run_cli(home, "label", "--code", tomatoes)
    assert code == 0, out + err
    await printer.printed()
    assert decode(print_tspl(bytes(received)).pages[0]) == [f"{BASE}/t/{tomatoes}"]
    server.close()


async def test_a_printer_that_is_off_keeps_the_sale_and_says_how_to_reprint(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    source = Counter(st.store, "commission", product="21113011").commission(Quantity(Decimal(50), "kg", Decimal(50)))
    device = tmp_path / "no-such-dir" / "lp0"
    await run_cli(home, "printer", "set", "receipt", "--connection", f"file:{device}", "--no-test")
    code, out, _ = await run_cli(home, "receipt", "--source", str(source.trace_code), "--weight", "1")
    assert code == 0 and "✓ 已售" in out and "打印失败" in out and "重打" in out
    code, out, _ = await run_cli(home, "status")
    assert "打印失败 print failed" in out
    device.parent.mkdir()
    code, out, err = await run_cli(home, "reprint")
    assert code == 0, out + err
    (paper,) = receipts_printed(device)
    assert decode(paper.image)[0].startswith(f"{BASE}/t/")
    code, out, _ = await run_cli(home, "status")
    assert "打印失败" not in out


async def test_enrolment_by_scanning_its_qr_code(live: Live, tmp_path: Path) -> None:
    reg = await live.market("qr", 50, stall="B-007")
    code = await live.enrolment_code(reg["device"]["id"])
    payload = station_format.enrolment_payload(live.url, code)
    # The barcode gun types the QR code's text into the waiting station.
    status, out, err = await run_cli(tmp_path / "a", "enrol", stdin=(payload + "\n").encode())
    assert status == 0, err
    assert "✓ 已绑定：qr菜市场" in out and "摊位 B-007" in out and "300 个追溯码" in out
    # A photo of the QR code works too; a code is used once.
    import qrcode

    qrcode.make(payload).save(tmp_path / "enrol.png")
    status, out, err = await run_cli(tmp_path / "b", "enrol", "--image", str(tmp_path / "enrol.png"))
    assert status == 1 and "already used" in err
    code2 = await live.enrolment_code(reg["device"]["id"])
    qrcode.make(station_format.enrolment_payload(live.url, code2)).save(tmp_path / "enrol2.png")
    status, out, err = await run_cli(tmp_path / "b", "enrol", "--image", str(tmp_path / "enrol2.png"))
    assert status == 0, err
    # Anything else scanned is refused with the reason.
    status, out, err = await run_cli(tmp_path / "c", "enrol", stdin=b"https://trace.example.cn/t/123\n")
    assert status == 1 and "这不是绑定二维码" in err


async def test_the_admin_api_gives_the_enrolment_qr_text(live: Live, tmp_path: Path) -> None:
    reg = await live.market("qr2", 51, stall="C-001")
    status, created = await live.call("POST", f"/api/v1/admin/devices/{reg['device']['id']}/enrolment")
    assert status == 201
    assert created["qr"] == f"TRACE-ENROL/1 https://trace.example.cn {created['code']}"  # the public URL
    assert created["qrSvg"].startswith("<svg")
    # A station reaching the server at another address types the same code with --server.
    _, code = station_format.parse_enrolment_payload(created["qr"])
    status, _, err = await run_cli(tmp_path / "a", "enrol", "--server", live.url, "--code", code)
    assert status == 0, err


async def test_stations_look_goods_up_by_name_or_initials(live: Live, tmp_path: Path) -> None:
    await add_products(live)
    st, _ = await enrolled(live, tmp_path / "st")
    async with st.client() as c:
        found = await c.call("GET", "/api/v1/stations/products?q=zr")
        everything = await c.call("GET", "/api/v1/stations/products?limit=2&offset=1")
    assert found.ok and [p["name"] for p in found.data["items"]] == ["白条猪肉", "猪前腿肉"]
    assert found.data["items"][0]["initials"] == ["btzr"]
    assert [p["goodsCode"] for p in everything.data["items"]] == ["21113021", "22102001"]
    status, _ = await live.call("GET", "/api/v1/stations/products?q=zr", token="")
    assert status == 401


def test_enrolment_payload_round_trip() -> None:
    text = station_format.enrolment_payload("https://trace.example.cn/", "7kq2-m9xd-4trb-h0zc")
    assert text == "TRACE-ENROL/1 https://trace.example.cn 7kq2-m9xd-4trb-h0zc"
    assert station_format.parse_enrolment_payload(text) == ("https://trace.example.cn", "7KQ2-M9XD-4TRB-H0ZC")
    for bad in ("https://trace.example.cn", "TRACE-ENROL/1 ftp://x 7KQ2M9XD4TRBH0ZC", "TRACE-ENROL/1 https://x 12"):
        try:
            station_format.parse_enrolment_payload(bad)
        except station_format.EnrolmentPayloadError:
            continue
        raise AssertionError(bad)


async def test_goods_are_found_by_name_or_initials_offline(live: Live, tmp_path: Path) -> None:
    await add_products(live)
    st, _ = await enrolled(live, tmp_path / "st")
    await registry_into(live, st)
    await live.stop()  # all of this works with the network down
    catalogue = Catalogue(st.store)
    assert [p.name for p in catalogue.search("zr")] == ["白条猪肉", "猪前腿肉"]
    assert [p.name for p in catalogue.search("猪肉")][:2] == ["白条猪肉", "猪前腿肉"]
    assert [p.name for p in catalogue.search("fq")] == ["番茄"]
    assert [p.name for p in catalogue.search("dabaicai")] == ["大白菜"]
    assert sorted(p.name for p in catalogue.search("2210")) == ["大白菜", "番茄"]
    catalogue.remember("21113021", unit_price=Decimal("18"), price_unit="斤", used=True)
    # What the stall sells comes first among equals ("rou" is in both names' pinyin).
    assert [p.name for p in catalogue.search("rou")][:2] == ["猪前腿肉", "白条猪肉"]
    counter = Counter(st.store, "sell", product="zqtr")
    assert counter.product == "21113021" and counter.unit_price == Decimal("18") and counter.price_unit == "斤"


async def test_setting_a_printer_prints_a_test_page(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    await enrolled(live, home)
    printer = NetworkPrinter()
    received = printer.received
    server = await asyncio.start_server(printer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code, out, err = await run_cli(home, "printer", "set", "receipt", "--connection", f"tcp://127.0.0.1:{port}")
    assert code == 0, err
    assert "测试页已发送" in out
    await printer.printed()
    server.close()
    paper = print_escpos(bytes(received))
    assert "12345678901234567890123456789012" in paper.lines  # the ruler fills one 58 mm line
    assert decode(paper.image)[0].startswith(f"{BASE}/t/")
    # A printer that is not there: said at once, in Chinese.
    server = await asyncio.start_server(printer.handle, "127.0.0.1", 0)
    dead = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    code, out, _ = await run_cli(home, "printer", "set", "receipt", "--connection", f"tcp://127.0.0.1:{dead}")
    assert code == 1 and "测试页打印失败" in out


async def test_tare_typed_at_the_counter(live: Live, tmp_path: Path) -> None:
    st, _ = await enrolled(live, tmp_path / "st")
    source = Counter(st.store, "commission", product="21113011").commission(Quantity(Decimal(50), "kg", Decimal(50)))
    counter = Counter(st.store, "sell", product="21113011", source=source.trace_code)
    assert not counter.handle("去皮").ok  # nothing weighed yet
    assert not counter.handle("US,GS,+  0.050kg").ok  # the empty bag on the pan: moving, no sale, but read
    assert counter.handle("去皮").message.startswith("已去皮 0.050 kg")
    sold = counter.handle("ST,GS,+  0.550kg")
    assert sold.ok and "0.500 kg" in sold.message
    assert Counter(st.store, "sell", product="21113011").weigher.tare_kg == Decimal("0.050")  # remembered
    assert counter.handle("去皮 0").message.startswith("已清除皮重")


async def test_scale_test_shows_what_the_scale_sends_and_what_would_sell(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    await enrolled(live, home)
    scale = FakeScale()
    try:
        code, _, err = await run_cli(home, "scale", "set", "--port", scale.port, "--format", "yaohua-reversed")
        assert code == 0, err
        proc = scale_test_process(home)
        assert proc.stderr is not None
        assert "正在读取" in (await asyncio.to_thread(proc.stderr.readline)).decode()  # the port is open
        for _ in range(6):
            scale.send(b"=0005.000", pause=0.05)
        scale.send(b"=0000.000" * 3)
        out, err = await asyncio.to_thread(proc.communicate, None, 30)
    finally:
        scale.close()
    text = out.decode()
    assert "'=0005.000'" in text and "0.5000 kg" in text
    assert text.count("→ 销售 sale 0.5000 kg") == 1, text  # one item on the pan, one sale


def scale_test_process(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "scanners.cli", "--home", str(home), "scale", "test", "--seconds", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_a_sale_the_server_refuses_is_explained_in_chinese(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    source = Counter(st.store, "commission", product="21113011").commission(Quantity(Decimal(50), "kg", Decimal(50)))
    assert await st.sync(within=20)
    status, _ = await live.call(
        "POST", "/api/v1/recalls", {"traceCode": source.trace_code, "level": "I", "reason": "瘦肉精"}
    )
    assert status == 201
    # Sold (the station does not know yet), then uploaded: the server refuses the sale event.
    assert Counter(st.store, "sell", product="21113011", source=source.trace_code).handle("1kg").ok
    _, _, err = await run_cli(home, "sync", "--timeout", "20")
    assert "请勿销售：该批次已召回" in err
    _, out, _ = await run_cli(home, "status")
    assert "服务器拒收 refused" in out and "请勿销售：该批次已召回" in out and "recalled" in out


async def test_the_server_command_line_shows_an_enrolment_qr_code(live: Live, db_url: str, tmp_path: Path) -> None:
    reg = await live.market("qr3", 52, stall="C-002")
    env = {**os.environ, "TRACE_DATABASE_URL": db_url, "TRACE_PUBLIC_URL": live.url, "TRACE_LOG_LEVEL": "warning"}
    done = await asyncio.to_thread(
        subprocess.run,
        [PY, "-m", "traceability", "device", "enrol", str(reg["device"]["id"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "█" in done.stdout or "▀" in done.stdout  # the QR code, drawn in the terminal
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("TRACE-ENROL/1 ")]
    # What the barcode gun reads from it enrols the station.
    code, out, err = await run_cli(tmp_path / "st", "enrol", stdin=(line + "\n").encode())
    assert code == 0, err
    assert "qr3菜市场" in out
