"""The handover voucher on paper (卡单同行): one A5 PDF page with its QR code and what it says, in both languages.

The QR code holds the whole voucher in its compact form (``TRV1:…``) when that fits one code, so a
receiving station reads it offline; otherwise it holds the voucher's URL with its SHA-256 digest, and the
whole voucher travels as JSON beside the goods (the digest printed here lets the receiver check it is
this one). Drawn with Pillow (which writes PDF); Chinese needs a CJK font on the server (fonts-wqy-microhei
or Noto Sans CJK), else the sheet is printed in English only.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

from traceability import i18n
from traceability.domain import tracecode
from traceability.ledger import voucher as vouchers

QR_CAPACITY = 2953
"""Bytes a version-40 QR code holds at error correction L: a longer compact voucher travels as a link."""
SIZE = (1748, 2480)  # A5 at 300 dpi
FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)


@functools.cache
def _font_path() -> str | None:
    return next((p for p in FONTS if Path(p).is_file()), None)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def qr_payload(v: dict[str, Any], url: str) -> tuple[str, bool]:
    """What the QR code holds, and whether that is the whole voucher (else its URL and digest)."""
    line = vouchers.compact(v)
    if len(line) <= QR_CAPACITY:
        return line, True
    return f"{url}#sha256={vouchers.digest(v)}", False


def voucher_pdf(v: dict[str, Any], url: str, destination: str | None) -> bytes:
    """The voucher's printable sheet as PDF bytes."""
    payload, whole = qr_payload(v, url)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, box_size=8, border=4)
    qr.add_data(payload.encode("ascii"))
    qr.make(fit=True)
    code_img = qr.make_image(fill_color="black", back_color="white").get_image().convert("L")
    side = min(SIZE[0] - 160, 1500)
    code_img = code_img.resize((side, side), Image.Resampling.NEAREST)
    page = Image.new("L", SIZE, 255)
    draw = ImageDraw.Draw(page)
    zh, en = i18n.words("zh"), i18n.words("en")
    langs = (zh, en) if _font_path() else (en,)
    y = 80
    title = _font(64)
    for t in langs:
        draw.text((80, y), t("voucher_sheet_title"), font=title, fill=0)
        y += 84
    body = _font(40)
    lines = [
        ("voucher_sheet_code", tracecode.pretty(v["trace_code"])),
        ("voucher_sheet_from", v["origin"]),
        ("voucher_sheet_to", destination or "-"),
        ("voucher_sheet_event", v["event_id"]),
        ("voucher_sheet_log", str(v["tree_size"])),
        ("voucher_sheet_digest", vouchers.digest(v)[:32]),
    ]
    y += 20
    for key, value in lines:
        label = " · ".join(t(key) for t in langs)
        draw.text((80, y), f"{label}: {value}", font=body, fill=0)
        y += 56
    page.paste(code_img, ((SIZE[0] - side) // 2, y + 30))
    y += side + 60
    note = "voucher_sheet_whole" if whole else "voucher_sheet_link"
    for t in langs:
        draw.text((80, y), t(note), font=_font(34), fill=0)
        y += 48
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=300.0)
    return out.getvalue()
