"""Receipts and labels as the bytes a thermal printer gets: printed by a model printer, then scanned back.

Every job is made by the station's own code on python-escpos's Dummy printer, printed to paper by
``escpos_render`` (which refuses any byte a market printer would not obey), and its QR code read back
with zxing-cpp. The connections are real: a TCP socket and a pseudo-terminal serial port.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image, ImageFilter

from scanners import printing
from scanners.printers import PrinterConfig, PrinterUnavailable, label_job, receipt_job, send, trial_page_job
from scanners.printing import LabelData
from scanners.receipts import ReceiptData
from tests.scanners.escpos_render import Paper, print_escpos, print_tspl
from traceability.domain import tracecode

BASE = "https://trace.example.cn"
CODE = tracecode.make("320302", 5000000000017)
URL = f"{BASE}/t/{CODE}"
SOLD_AT = dt.datetime(2026, 11, 30, 9, 41, tzinfo=dt.timezone(dt.timedelta(hours=8)))

SALE = ReceiptData(
    market_name="鼓楼菜市场",
    stall_number="A-012",
    stall_name="王记鲜肉",
    item="白条猪肉",
    origin="江苏省徐州市丰县",
    weight_kg=Decimal("1.250"),
    unit_price=Decimal("16.00"),
    price_unit="斤",
    sold_at=SOLD_AT,
    trace_code=CODE,
    base_url=BASE,
)


def decode(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L")) if r.valid]


def qr_width_dots(paper: Paper) -> int:
    """Width of the QR symbol on the paper, from the decoder's corners."""
    (found,) = zxingcpp.read_barcodes(paper.image.convert("L"))
    return found.position.top_right.x - found.position.top_left.x


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("text", ["gb18030", "raster"])
def test_a_receipt_prints_legibly_and_its_qr_scans_back(paper_mm: int, text: str) -> None:
    config = PrinterConfig("receipt", paper_mm=paper_mm, text=text)  # type: ignore[arg-type]
    job = receipt_job(SALE, config)
    paper = print_escpos(job, config.width_dots)
    assert paper.image.width == config.width_dots
    assert decode(paper.image) == [URL]
    assert paper.cuts == 1 and paper.auto_wrapped == 0
    # The QR's modules are 8 dots (1 mm at 203 dpi) on both papers.
    modules = len(printing.qr_matrix(URL)) - 2 * printing.QUIET_ZONE_MODULES
    assert abs(qr_width_dots(paper) - modules * 8) <= 8
    if text == "gb18030":
        assert job.count(b"\x1c\x26") == 1  # Chinese mode on
        assert "白条猪肉".encode("gbk") in job
        assert [line for line in paper.lines if line] == [
            "鼓楼菜市场",
            "摊位：A-012　王记鲜肉",
            "-" * (config.width_dots // 12),
            "品名：白条猪肉",
            "产地：江苏省徐州市丰县",
            "重量：1.250 kg（2.50 斤）",
            "单价：16.00 元/斤",
            "金额：40.00 元",
            "-" * (config.width_dots // 12),
            "时间：2026-11-30 09:41",
            "追溯码：",
            tracecode.pretty(CODE),
            "手机扫码查来源 Scan to trace",
        ]
    else:
        assert paper.lines == [""] * len(paper.lines)  # nothing sent as text: the printer needs no font
        assert b"\x1c\x26" not in job


def test_a_character_the_printer_font_lacks_is_sent_as_a_picture() -> None:
    config = PrinterConfig("receipt")
    rare = ReceiptData(**{**SALE.__dict__, "stall_name": "𠮷记鲜肉"})  # 𠮷 is outside GBK
    paper = print_escpos(receipt_job(rare, config))
    assert not any("记鲜肉" in line for line in paper.lines)  # that line went as a raster image
    assert "品名：白条猪肉" in paper.lines
    # The stall line (second on the receipt), then the QR code in two 255-line fragments.
    assert len(paper.rasters) == 3 and paper.rasters[0][0] < 100
    assert decode(paper.image) == [URL]


def test_the_qr_code_reads_at_arms_length() -> None:
    """A phone 45 cm away sees about 3 pixels per millimetre of paper (a 1080p camera, 70° across)."""
    paper = print_escpos(receipt_job(SALE, PrinterConfig("receipt")))
    dots_per_mm = 8
    camera_px_per_mm = 1080 / (2 * 450 * 0.7)  # 0.7 = tan(35°): the frame is ~630 mm wide at 450 mm
    scale = camera_px_per_mm / dots_per_mm
    seen = paper.image.convert("L").resize(
        (round(paper.image.width * scale), round(paper.image.height * scale)), Image.Resampling.BOX
    )
    seen = seen.filter(ImageFilter.GaussianBlur(0.5))
    assert decode(seen) == [URL]


def test_a_receipt_without_a_price_shows_no_price_and_no_amount() -> None:
    unpriced = ReceiptData(**{**SALE.__dict__, "unit_price": None, "price_unit": "kg"})
    paper = print_escpos(receipt_job(unpriced, PrinterConfig("receipt")))
    assert not any(line.startswith(("单价", "金额")) for line in paper.lines)
    assert "重量：1.250 kg" in paper.lines


def test_labels_on_a_tspl_label_printer_scan_back() -> None:
    codes = [tracecode.make("320302", 5000000000100 + i) for i in range(3)]
    labels = [LabelData(c, "大白菜", dt.date(2026, 11, 30), "鼓楼菜市场", BASE) for c in codes]
    printed = print_tspl(label_job(labels, PrinterConfig("label", language="tspl")))
    assert printed.size_mm == (40.0, 30.0) and len(printed.pages) == 3
    assert [decode(page) for page in printed.pages] == [[f"{BASE}/t/{c}"] for c in codes]


def test_labels_on_an_escpos_printer_scan_back() -> None:
    label = LabelData(CODE, "大白菜", dt.date(2026, 11, 30), "鼓楼菜市场", BASE)
    paper = print_escpos(label_job([label], PrinterConfig("label", language="escpos")))
    assert decode(paper.image) == [URL]


def test_the_test_page_shows_chinese_the_ruler_and_a_qr_code() -> None:
    config = PrinterConfig("receipt")
    paper = print_escpos(trial_page_job(config, BASE, "鼓楼菜市场 A-012"))
    ruler = "".join(str(i % 10) for i in range(1, 33))
    assert ruler in paper.lines and paper.auto_wrapped == 0
    assert any("中文字体" in line for line in paper.lines)
    assert len(decode(paper.image)) == 1
    label = print_tspl(trial_page_job(PrinterConfig("label"), BASE, "鼓楼菜市场"))
    assert len(label.pages) == 1 and len(decode(label.pages[0])) == 1


def test_a_network_printer_gets_exactly_the_job() -> None:
    job = receipt_job(SALE, PrinterConfig("receipt"))
    received = bytearray()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        thread = threading.Thread(target=accept)
        thread.start()
        send(PrinterConfig("receipt", connection=f"tcp://127.0.0.1:{port}"), job)
        thread.join(10)
    assert bytes(received) == job
    assert decode(print_escpos(bytes(received)).image) == [URL]


def test_a_serial_printer_gets_exactly_the_job() -> None:
    job = label_job([LabelData(CODE, "大白菜", dt.date(2026, 11, 30), "鼓楼菜市场", BASE)], PrinterConfig("label"))
    master, slave = os.openpty()
    received = bytearray()

    def read() -> None:
        while len(received) < len(job):
            received.extend(os.read(master, 65536))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        send(PrinterConfig("label", connection=f"serial:{os.ttyname(slave)}?baudrate=115200"), job)
        thread.join(10)
    finally:
        os.close(slave)
        os.close(master)
    assert bytes(received) == job
    assert decode(print_tspl(bytes(received)).pages[0]) == [URL]


def test_a_printer_that_cannot_be_reached_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    with pytest.raises(PrinterUnavailable, match="cannot be reached"):
        send(PrinterConfig("receipt", connection=f"tcp://127.0.0.1:{port}"), b"\x1b@")
    with pytest.raises(ValueError, match="tcp://HOST"):
        PrinterConfig("receipt", connection="lpt1")
    # A USB printer that is not plugged in (or no USB library on the computer) is the same plain refusal.
    with pytest.raises(PrinterUnavailable, match="usb:0416:5011"):
        send(PrinterConfig("receipt", connection="usb:0416:5011"), b"\x1b@")
