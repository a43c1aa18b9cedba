"""Thermal printers at the counter: receipts on 58 and 80 mm ESC/POS printers, labels on label printers.

A print job is composed in full on python-escpos's ``Dummy`` printer (or as TSPL text for a label printer)
and only then sent, in one write, over the configured connection, so a printer that fails half-way never
gets half a receipt from us, and the exact bytes can be kept for a reprint.

=====================  ===========================================================================================
connection             how the station reaches the printer (python-escpos backends)
=====================  ===========================================================================================
``tcp://HOST[:PORT]``  a network printer (raw port 9100)
``serial:DEVICE``      RS-232 or a USB-serial adapter: ``serial:/dev/ttyUSB0?baudrate=9600`` (also ``bytesize``,
                       ``parity``, ``stopbits``)
``usb:VID:PID``        a USB printer by its vendor and product ids (``usb:0416:5011``; pyusb, and libusb on the
                       computer: ``apt-get install libusb-1.0-0``)
``file:PATH``          a device file: ``file:/dev/usb/lp0`` (Linux's usblp driver), or a file to capture the bytes
``lp:NAME``            a CUPS queue, sent raw with ``lp``
``dir:PATH``           no printer: 1-bit PNGs (receipts, labels) written to PATH, the default
=====================  ===========================================================================================

Receipts have two modes. ``gb18030``: the text is sent as text in the printer's Chinese mode (``FS &``,
GB18030/GBK bytes), which nearly every printer sold in China has; it prints fastest and sharpest. A line
holding a character outside GBK (a rare name) is sent as a picture instead. ``raster``: the whole receipt
is drawn here with a CJK font and sent as a raster image (``GS v 0``), for printers without a Chinese
font. The QR code is always sent as a raster image, so its module size is exact on every printer: 8 dots
(1 mm at 203 dpi), 41 mm wide with its quiet zone for a usual URL, which a phone reads from 40-50 cm,
an arm's length (see :func:`scanners.receipts.receipt_qr_module`).

Labels: ``tspl`` for the common label printers (TSC, Gprinter, Xprinter label models) as one ``BITMAP`` per
label at the label's size; ``escpos`` for an ESC/POS printer loaded with label stock.

Errors::

    PrintError(ValueError)          (scanners.printing) the job could not be made or sent
    └── PrinterUnavailable          the printer could not be reached; the job is kept for a reprint
"""

from __future__ import annotations

import io
import socket
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from scanners import printing, receipts
from scanners.printing import LabelData, PrintError
from scanners.receipts import ReceiptData, ReceiptLine

__all__ = [
    "PAPER_DOTS",
    "PrinterConfig",
    "PrinterUnavailable",
    "label_job",
    "open_printer",
    "receipt_job",
    "send",
    "trial_page_job",
]

PAPER_DOTS = {58: 384, 80: 576}
"""Printable dots across the paper at 203 dpi: 48 mm of 58 mm paper, 72 mm of 80 mm paper."""
FONT_A_DOTS = 12
"""Width of one ASCII character of ESC/POS font A; a Chinese character takes two (24 dots)."""
TSPL_GAP_MM = 2.0

FS_CHINESE_ON = b"\x1c\x26"
FS_CHINESE_OFF = b"\x1c\x2e"
ESC_INIT = b"\x1b\x40"

Role = Literal["receipt", "label"]


class PrinterUnavailable(PrintError):
    """The printer could not be reached (unplugged, off, out of paper, wrong address)."""


@dataclass(frozen=True)
class PrinterConfig:
    """One printer of the station (``trace-scan printer set``)."""

    role: Role
    connection: str = "dir:"
    paper_mm: int = 58
    """Receipt paper width, 58 or 80."""
    text: Literal["gb18030", "raster"] = "gb18030"
    """Receipts: Chinese text mode, or everything as a picture."""
    language: Literal["escpos", "tspl"] = "tspl"
    """Labels: the label printer's command language."""
    label_size: str = "40x30mm"
    dpi: int = 203
    cut: bool = True
    profile: str | None = None
    """A python-escpos printer profile name (capabilities such as cutting), when known."""

    def __post_init__(self) -> None:
        if self.role not in ("receipt", "label"):
            raise ValueError("printer role must be receipt or label")
        if self.paper_mm not in PAPER_DOTS:
            raise ValueError("paper must be 58 or 80 (mm)")
        if self.text not in ("gb18030", "raster"):
            raise ValueError("text mode must be gb18030 or raster")
        if self.language not in ("escpos", "tspl"):
            raise ValueError("label language must be tspl or escpos")
        if self.label_size not in printing.LABEL_SIZES_MM:
            raise ValueError(f"label size must be one of {', '.join(sorted(printing.LABEL_SIZES_MM))}")
        if self.dpi not in (203, 300):
            raise ValueError("dpi must be 203 or 300")
        _parse_connection(self.connection)

    @property
    def width_dots(self) -> int:
        return PAPER_DOTS[self.paper_mm]

    @property
    def is_files(self) -> bool:
        return self.connection.startswith("dir:")

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "connection": self.connection,
            "paperMm": self.paper_mm,
            "text": self.text,
            "language": self.language,
            "labelSize": self.label_size,
            "dpi": self.dpi,
            "cut": self.cut,
            "profile": self.profile,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrinterConfig:
        return cls(
            role=data["role"],
            connection=data.get("connection", "dir:"),
            paper_mm=int(data.get("paperMm", 58)),
            text=data.get("text", "gb18030"),
            language=data.get("language", "tspl"),
            label_size=data.get("labelSize", "40x30mm"),
            dpi=int(data.get("dpi", 203)),
            cut=bool(data.get("cut", True)),
            profile=data.get("profile"),
        )


# -- connections ---------------------------------------------------------------------------------


def _parse_connection(connection: str) -> tuple[str, str, dict[str, str]]:
    """(scheme, target, options) of a connection string; ValueError naming what is wrong."""
    if connection.startswith("tcp://"):
        parts = urlsplit(connection)
        if not parts.hostname:
            raise ValueError("a network printer is tcp://HOST or tcp://HOST:PORT")
        try:
            port = parts.port or 9100
        except ValueError:
            raise ValueError("the port of tcp://HOST:PORT must be a number") from None
        return "tcp", f"{parts.hostname}:{port}", {}
    scheme, sep, rest = connection.partition(":")
    if not sep or scheme not in ("serial", "usb", "file", "lp", "dir"):
        raise ValueError(
            "printer connection must be tcp://HOST[:PORT], serial:DEVICE, usb:VID:PID, file:PATH, lp:QUEUE or dir:PATH"
        )
    target, _, query = rest.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    if scheme == "usb":
        vid, _, pid = target.partition(":")
        try:
            int(vid, 16), int(pid, 16)
        except ValueError:
            raise ValueError("a USB printer is usb:VID:PID in hexadecimal, e.g. usb:0416:5011") from None
    elif scheme != "dir" and not target:
        raise ValueError(f"{scheme}: needs a device, file or queue name")
    return scheme, target, options


def open_printer(config: PrinterConfig) -> Any:
    """The python-escpos printer object for ``config`` (opened); PrinterUnavailable when it cannot be reached."""
    from escpos import exceptions, printer

    scheme, target, options = _parse_connection(config.connection)
    profile = {"profile": config.profile} if config.profile else {}
    try:
        device: Any
        if scheme == "tcp":
            host, _, port = target.rpartition(":")
            device = printer.Network(host, int(port), timeout=10, **profile)
            # Connected here rather than by Network.open(), which leaves the socket open when it fails.
            device.device = socket.create_connection((host, int(port)), timeout=10)
            return device
        elif scheme == "serial":
            device = printer.Serial(
                target,
                baudrate=int(options.get("baudrate", 9600)),
                bytesize=int(options.get("bytesize", 8)),
                parity=options.get("parity", "N"),
                stopbits=float(options.get("stopbits", 1)),
                timeout=5,
                dsrdtr=options.get("dsrdtr", "0") == "1",
                **profile,
            )
        elif scheme == "usb":
            vid, _, pid = target.partition(":")
            device = printer.Usb(int(vid, 16), int(pid, 16), **profile)
        elif scheme == "file":
            device = printer.File(target, **profile)
            # Appended to, not truncated: the same for a device, and a capture file keeps every job.
            device.device = open(target, "ab")
            return device
        elif scheme == "lp":
            device = printer.LP(target, **profile)
        else:
            raise PrintError("a dir: printer writes files; it is not opened")
        device.open()
    except (exceptions.Error, OSError, RuntimeError, ValueError) as exc:
        # RuntimeError, ValueError: python-escpos and pyusb without a USB library (libusb) on this computer.
        raise PrinterUnavailable(f"the printer at {config.connection} cannot be reached: {exc}") from None
    return device


def send(config: PrinterConfig, job: bytes) -> None:
    """Send a whole job to the printer in one write; PrinterUnavailable when it fails."""
    from escpos import exceptions

    device = open_printer(config)
    try:
        device._raw(job)
        flush = getattr(device, "flush", None)
        if callable(flush):
            flush()
    except (exceptions.Error, OSError) as exc:
        raise PrinterUnavailable(f"printing to {config.connection} failed: {exc}") from None
    finally:
        device.close()


# -- receipts ------------------------------------------------------------------------------------


def _composer(config: PrinterConfig) -> Any:
    from escpos.printer import Dummy

    return Dummy(profile=config.profile) if config.profile else Dummy()


def _columns(text: str) -> int:
    """Columns a string takes in font A: two for each character sent as two or more bytes."""
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def _gbk(text: str) -> bytes | None:
    """The text in GBK (the two-byte part of GB18030 every Chinese printer font covers), or None."""
    try:
        return text.encode("gbk")
    except UnicodeEncodeError:
        return None


def _wrap_columns(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for ch in unicodedata.normalize("NFC", text):
        if _columns(line + ch) > width and line:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines or [""]


_SIZES = {"title": (2, 2), "big": (1, 2), "body": (1, 1), "code": (1, 1), "small": (1, 1)}


def _text_line(p: Any, line: ReceiptLine, config: PrinterConfig, font_path: str | Path | None) -> None:
    width, height = _SIZES.get(line.style, (1, 1))
    columns = config.width_dots // (FONT_A_DOTS * width)
    for part in _wrap_columns(line.text, columns):
        encoded = _gbk(part)
        if encoded is None:
            # A character the printer's font does not have: this one line goes as a picture.
            _raster(p, receipts.text_line_image(part, line.style, config.width_dots, line.align, font_path=font_path))
            continue
        p.set(align="center" if line.align == "center" else "left", custom_size=True, width=width, height=height)
        p._raw(encoded + b"\n")
    p.set(custom_size=True, width=1, height=1)


def receipt_job(
    receipt: ReceiptData, config: PrinterConfig, *, copies: int = 1, font_path: str | Path | None = None
) -> bytes:
    """The ESC/POS bytes of one receipt for this printer (text in GB18030 mode, or all raster)."""
    return lines_job(receipts.receipt_lines(receipt), receipt.url, config, copies=copies, font_path=font_path)


def card_job(card: receipts.CardData, config: PrinterConfig, *, font_path: str | Path | None = None) -> bytes:
    """A stall's sign-in card on the receipt printer."""
    return lines_job(receipts.card_lines(card), card.card, config, font_path=font_path)


def lines_job(
    lines: list[ReceiptLine],
    qr_text: str,
    config: PrinterConfig,
    *,
    copies: int = 1,
    font_path: str | Path | None = None,
) -> bytes:
    """Receipt lines as ESC/POS: GB18030 text (pictures for what the font lacks), or one raster image."""
    p = _composer(config)
    for _ in range(copies):
        p._raw(ESC_INIT)
        if config.text == "raster":
            _raster(p, receipts.lines_image(lines, qr_text, width_px=config.width_dots, font_path=font_path))
        else:
            p._raw(FS_CHINESE_ON)
            for line in lines:
                if line.kind == "rule":
                    p.set(align="left", custom_size=True, width=1, height=1)
                    p._raw(b"-" * (config.width_dots // FONT_A_DOTS) + b"\n")
                elif line.kind == "qr":
                    _raster(p, receipts.receipt_qr(qr_text, config.width_dots))
                elif line.kind == "feed":
                    p._raw(b"\n")
                else:
                    _text_line(p, line, config, font_path)
            p._raw(FS_CHINESE_OFF)
        _finish(p, config)
    return bytes(p.output)


RASTER_FRAGMENT_LINES = 255
"""Lines per ``GS v 0`` command: cheap printers' receive buffers do not hold a whole receipt as one image."""


def _raster(p: Any, image: Image.Image) -> None:
    """``GS v 0``: the image dot for dot, left-aligned (images are made as wide as the paper)."""
    p.set(align="left")
    mono = image.convert("1")
    width_bytes = (mono.width + 7) // 8
    for top in range(0, mono.height, RASTER_FRAGMENT_LINES):
        part = mono.crop((0, top, width_bytes * 8, min(mono.height, top + RASTER_FRAGMENT_LINES)))
        # PIL packs white as 1; ESC/POS prints a 1. The padding column past the image is white too.
        data = bytes(b ^ 0xFF for b in part.tobytes())
        header = b"\x1dv0\x00" + struct.pack("<HH", width_bytes, part.height)
        p._raw(header + data)


def _finish(p: Any, config: PrinterConfig) -> None:
    if config.cut:
        p.cut()  # feeds past the tear bar first
    else:
        p.print_and_feed(4)


# -- labels --------------------------------------------------------------------------------------


def label_job(labels: Sequence[LabelData], config: PrinterConfig, *, font_path: str | Path | None = None) -> bytes:
    """The bytes for a run of labels: TSPL (one BITMAP page per label) or ESC/POS raster."""
    if not labels:
        raise PrintError("no labels to print")
    size: printing.LabelSize = "40x30mm" if config.label_size == "40x30mm" else "a4-cell"
    width_mm, height_mm = printing.LABEL_SIZES_MM[config.label_size]
    images = [printing.batch_label_image(label, size, config.dpi, font_path=font_path) for label in labels]
    if config.language == "tspl":
        out = io.BytesIO()
        out.write(f"SIZE {width_mm:g} mm,{height_mm:g} mm\r\nGAP {TSPL_GAP_MM:g} mm,0 mm\r\nDIRECTION 1\r\n".encode())
        for image in images:
            # TSPL bitmaps: a 0 bit prints, a 1 bit stays white, as PIL packs a 1-bit image.
            packed = image.convert("1").tobytes()
            width_bytes = (image.width + 7) // 8
            out.write(b"CLS\r\n")
            out.write(f"BITMAP 0,0,{width_bytes},{image.height},0,".encode() + packed + b"\r\n")
            out.write(b"PRINT 1,1\r\n")
        return out.getvalue()
    p = _composer(config)
    p._raw(ESC_INIT)
    for image in images:
        _raster(p, image)
        p.print_and_feed(2)
    if config.cut:
        p.cut()
    return bytes(p.output)


# -- the test page -------------------------------------------------------------------------------


def trial_page_job(
    config: PrinterConfig, base_url: str, station_name: str, *, font_path: str | Path | None = None
) -> bytes:
    """A page that shows at once whether Chinese text, the paper width and the QR code come out right."""
    from datetime import datetime
    from decimal import Decimal

    from traceability import i18n
    from traceability.domain import tracecode

    w = i18n.words("zh")
    sample = ReceiptData(
        market_name=f"{w('printer_test_title')} {station_name}".strip(),
        stall_number=w("printer_test_stall"),
        stall_name=w("printer_test_font"),
        item=w("printer_test_item"),
        weight_kg=Decimal("1.250"),
        unit_price=Decimal("16.00"),
        price_unit="斤",
        sold_at=datetime.now().astimezone(),
        trace_code=tracecode.make("320302", 1),
        base_url=base_url,
        origin=w("printer_test_ruler_below"),
    )
    if config.role == "label":
        label = LabelData(
            trace_code=sample.trace_code,
            product_name=f"{w('printer_test_title')} {i18n.words('en')('printer_test_title')}",
            date=sample.sold_at.date(),
            node_name=station_name,
            base_url=base_url,
        )
        return label_job([label], config, font_path=font_path)
    ruler = "".join(str(i % 10) for i in range(1, config.width_dots // FONT_A_DOTS + 1))
    footer = f"{ruler}\n{w('printer_test_ruler', mm=config.paper_mm)}"
    return receipt_job(replace(sample, footer=footer), config, font_path=font_path)
