"""Scale receipts: what a sale's receipt says, drawn as a 1-bit image or laid out for a printer's own text.

:func:`receipt_lines` is the one layout: the PNG (:func:`receipt_image`), the raster job and the
GB18030 text job of :mod:`scanners.printers` all print exactly these lines. 384 dots wide at 203 dpi for
58 mm paper, 576 for 80 mm. The QR holds the consumer page, ``{base_url}/t/{trace_code}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from scanners.printing import (
    BLACK,
    WHITE,
    PrintError,
    consumer_url,
    font_file,
    largest_font,
    line_height,
    load_font,
    png,
    qr_image,
    qr_matrix,
    wrap,
)
from traceability import i18n
from traceability.domain import tracecode

RECEIPT_DPI = 203
RECEIPT_WIDTH_PX = 384
"""58 mm paper, 48 mm printable: 384 dots at 203 dpi."""


@dataclass(frozen=True)
class ReceiptData:
    """One sale at a traceability scale.

    ``unit_price`` is in yuan per ``price_unit`` (kg, or 斤 = 0.5 kg as most wet markets price), None when
    the stall has not set a price (the receipt then shows no price or amount); ``total`` defaults to
    weight × price rounded half up to the fen. ``origin`` is where the source batch came from.
    """

    market_name: str
    stall_number: str
    item: str
    weight_kg: Decimal
    unit_price: Decimal | None
    sold_at: dt.datetime
    trace_code: str
    base_url: str
    price_unit: Literal["kg", "斤"] = "kg"
    total: Decimal | None = None
    stall_name: str = ""
    origin: str | None = None
    footer: str | None = None

    @property
    def amount(self) -> Decimal | None:
        if self.total is not None:
            return self.total
        if self.unit_price is None:
            return None
        return sale_amount(self.weight_kg, self.unit_price, self.price_unit)

    @property
    def url(self) -> str:
        return consumer_url(self.base_url, self.trace_code)


def sale_amount(weight_kg: Decimal, unit_price: Decimal, price_unit: str) -> Decimal:
    """Weight × price per kg or per 斤 (0.5 kg), rounded half up to the fen."""
    per_unit = weight_kg * 2 if price_unit == "斤" else weight_kg
    return (per_unit * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def weight_text(weight_kg: Decimal, price_unit: str = "kg") -> str:
    """``1.250 kg``, with the 斤 beside it when the stall prices by the 斤 (``1.250 kg（2.50 斤）``)."""
    shown = weight_kg.quantize(Decimal("0.001")) if weight_kg == weight_kg.quantize(Decimal("0.001")) else weight_kg
    text = f"{shown} kg"
    if price_unit == "斤":
        jin = weight_kg * 2
        jin_shown = jin.quantize(Decimal("0.01")) if jin == jin.quantize(Decimal("0.01")) else jin.normalize()
        text += f"（{jin_shown} 斤）"
    return text


ReceiptStyle = Literal["title", "body", "big", "code", "small"]


@dataclass(frozen=True)
class ReceiptLine:
    """One line of a receipt, the same whether drawn here or sent as text to the printer."""

    kind: Literal["text", "rule", "qr", "feed"]
    text: str = ""
    style: ReceiptStyle = "body"
    align: Literal["left", "center"] = "left"


def receipt_lines(receipt: ReceiptData) -> list[ReceiptLine]:
    """What a receipt says, in order: the one layout every way of printing it follows."""
    w = i18n.words("zh")  # receipts are printed in Chinese, for the shopper and the market
    lines = [ReceiptLine("text", receipt.market_name, "title", "center")]
    stall = "　".join(part for part in (receipt.stall_number, receipt.stall_name) if part)
    if stall:
        lines.append(ReceiptLine("text", w("receipt_stall", stall=stall)))
    lines.append(ReceiptLine("rule"))
    lines.append(ReceiptLine("text", w("receipt_item", item=receipt.item)))
    if receipt.origin:
        lines.append(ReceiptLine("text", w("receipt_origin", origin=receipt.origin)))
    lines.append(ReceiptLine("text", w("receipt_weight", weight=weight_text(receipt.weight_kg, receipt.price_unit))))
    amount = receipt.amount
    if receipt.unit_price is not None:
        price = f"{receipt.unit_price:.2f}"
        lines.append(ReceiptLine("text", w("receipt_unit_price", price=price, unit=receipt.price_unit)))
    if amount is not None:
        lines.append(ReceiptLine("text", w("receipt_amount", amount=f"{amount:.2f}"), "big"))
    lines.append(ReceiptLine("rule"))
    lines.append(ReceiptLine("text", w("receipt_time", time=f"{receipt.sold_at:%Y-%m-%d %H:%M}")))
    lines.append(ReceiptLine("text", w("receipt_code")))
    lines.append(ReceiptLine("text", tracecode.pretty(tracecode.normalize(receipt.trace_code)), "code", "center"))
    lines.append(ReceiptLine("qr"))
    footer = f"{w('receipt_footer')} {i18n.words('en')('receipt_footer')}"
    lines.append(ReceiptLine("text", footer, "small", "center"))
    for extra in (receipt.footer or "").splitlines():
        lines.append(ReceiptLine("text", extra, "small", "center"))
    lines.append(ReceiptLine("feed"))
    return lines


RECEIPT_QR_MODULE_DOTS = 8
"""QR module on receipts: 8 dots, 1.0 mm at 203 dpi. A phone camera 40-50 cm away (an arm's length) sees
about 3 pixels per millimetre of paper, 3 pixels per module, which decoders read reliably; smaller modules
need the phone closer, and a worn print head fattens small modules first."""
MIN_RECEIPT_QR_MODULE_DOTS = 6
"""0.75 mm: the smallest module a receipt is printed with when the URL is long."""


def receipt_qr_module(url: str, width_px: int) -> int:
    """The module size (dots) of a receipt's QR code for ``url`` on paper ``width_px`` dots wide."""
    modules = len(qr_matrix(url))
    module = min(RECEIPT_QR_MODULE_DOTS, width_px // modules)
    if module < MIN_RECEIPT_QR_MODULE_DOTS:
        raise PrintError(
            f"the URL needs a {modules}-module QR code, too large for {width_px} dots with modules of "
            f"{MIN_RECEIPT_QR_MODULE_DOTS} dots: use a shorter public URL"
        )
    return module


def receipt_qr(url: str, width_px: int) -> Image.Image:
    """The receipt's QR code, centred on a strip as wide as the paper."""
    qr = qr_image(url, module_px=receipt_qr_module(url, width_px))
    strip = Image.new("1", (width_px, qr.height), WHITE)
    strip.paste(qr, ((width_px - qr.width) // 2, 0))
    return strip


_RASTER_FONT_PX: dict[str, int] = {"title": 32, "body": 24, "big": 30, "code": 30, "small": 20}


def text_line_image(
    text: str,
    style: str,
    width_px: int,
    align: str = "left",
    *,
    font_path: str | Path | None = None,
) -> Image.Image:
    """One line of text as a 1-bit strip as wide as the paper (for text the printer's font lacks)."""
    font = load_font(font_file(font_path), _RASTER_FONT_PX.get(style, 24))
    image = Image.new("1", (width_px, line_height(font) + 6), WHITE)
    draw = ImageDraw.Draw(image)
    if align == "center":
        draw.text((width_px // 2, 0), text, font=font, fill=BLACK, anchor="ma")
    else:
        draw.text((0, 0), text, font=font, fill=BLACK)
    return image


def receipt_image(
    receipt: ReceiptData, *, width_px: int = RECEIPT_WIDTH_PX, font_path: str | Path | None = None
) -> Image.Image:
    """The receipt as a 1-bit image ``width_px`` dots wide (384 for 58 mm paper, 576 for 80 mm)."""
    return lines_image(receipt_lines(receipt), receipt.url, width_px=width_px, font_path=font_path)


def lines_image(
    lines: list[ReceiptLine], qr_text: str, *, width_px: int = RECEIPT_WIDTH_PX, font_path: str | Path | None = None
) -> Image.Image:
    """Receipt lines drawn as a 1-bit image ``width_px`` dots wide, the ``qr`` line holding ``qr_text``."""
    face_path = font_file(font_path)
    margin = 8
    inner = width_px - 2 * margin
    gap = 6
    rows: list[tuple[ReceiptLine, str, ImageFont.FreeTypeFont]] = []
    qr = receipt_qr(qr_text, width_px)
    for line in lines:
        if line.kind != "text":
            rows.append((line, "", load_font(face_path, 24)))
            continue
        if line.style == "code":
            rows.append((line, line.text, largest_font(face_path, line.text, inner, 30, 20)))
            continue
        font = load_font(face_path, _RASTER_FONT_PX[line.style])
        wrapped = wrap(line.text, font, inner, 2 if line.style in ("title", "body") else 1)
        rows.extend((line, part, font) for part in wrapped)

    def row_height(line: ReceiptLine, font: ImageFont.FreeTypeFont) -> int:
        if line.kind == "qr":
            return qr.height
        if line.kind == "feed":
            return 24
        return line_height(font) + gap

    height = margin + sum(row_height(line, font) for line, _, font in rows) + margin
    image = Image.new("1", (width_px, height), WHITE)
    draw = ImageDraw.Draw(image)
    y = margin
    for line, text, font in rows:
        if line.kind == "rule":
            mid = y + line_height(font) // 2
            draw.line((margin, mid, width_px - margin, mid), fill=BLACK, width=2)
        elif line.kind == "qr":
            image.paste(qr, (0, y))
        elif line.kind == "text" and line.align == "center":
            draw.text((width_px // 2, y), text, font=font, fill=BLACK, anchor="ma")
        elif line.kind == "text":
            draw.text((margin, y), text, font=font, fill=BLACK)
        y += row_height(line, font)
    return image


@dataclass(frozen=True)
class CardData:
    """A stall's sign-in card for the vendor page: its QR code holds the card, the PIN is the vendor's."""

    market_name: str
    stall_number: str
    stall_name: str
    card: str
    """The QR code's text, ``TRACE-STALL/1 tvc_…``."""
    vendor_url: str
    issued_at: dt.datetime


def card_lines(card: CardData) -> list[ReceiptLine]:
    zh, en = i18n.words("zh"), i18n.words("en")
    stall = "　".join(part for part in (card.stall_number, card.stall_name) if part)
    issued = f"{card.issued_at:%Y-%m-%d %H:%M}"
    return [
        ReceiptLine("text", zh("card_title"), "title", "center"),
        ReceiptLine("text", en("card_title"), "small", "center"),
        ReceiptLine("text", card.market_name, "body", "center"),
        ReceiptLine("text", zh("receipt_stall", stall=stall) if stall else "", "body", "center"),
        ReceiptLine("rule"),
        ReceiptLine("qr"),
        ReceiptLine("text", zh("card_open", url=card.vendor_url)),
        ReceiptLine("text", zh("card_how")),
        ReceiptLine("text", en("card_how"), "small"),
        ReceiptLine("text", zh("card_issued", time=issued), "small"),
        ReceiptLine("feed"),
    ]


def receipt_png(
    receipt: ReceiptData, *, width_px: int = RECEIPT_WIDTH_PX, font_path: str | Path | None = None
) -> bytes:
    """The receipt as a 1-bit PNG at 203 dpi, 384 dots wide for a 58 mm thermal printer (576 for 80 mm)."""
    return png(receipt_image(receipt, width_px=width_px, font_path=font_path), RECEIPT_DPI)
