"""Print-ready batch labels, label sheets and scale receipts, each with a QR code to the consumer page.

Everything is drawn 1-bit (pure black on white, no anti-aliasing) at the printer's own resolution, because
thermal printers render grey as faint or missing dots and a QR code scaled after drawing loses its module
grid. The QR module size is a whole number of printer dots, as large as fits.

=================  ==================================================================================
``qr_image``       a QR code image, ``module_px`` dots per module, 4-module quiet zone
``batch_label_*``  40 × 30 mm roll label (or a 63.5 × 38.1 mm A4 sheet cell): QR, product name, date,
                   node name, and the trace code in groups of four
``label_sheet_*``  a PDF: A4 sheets of 3 × 7 cells (the common 21-up layout), or one 40 × 30 mm label a page
``font``, ``wrap``  the drawing helpers :mod:`scanners.receipts` draws receipts with
=================  ==================================================================================

The QR holds :func:`consumer_url`: ``{base_url}/t/{trace_code}``, or for a product with a GTIN the GS1
Digital Link form ``{base_url}/01/{gtin14}/10/{trace_code}[?17=YYMMDD]`` (the trace code as batch/lot).

Chinese text needs a CJK font. :func:`find_cjk_font` looks in the usual places; on Debian or Ubuntu
``apt-get install fonts-wqy-microhei`` provides ``/usr/share/fonts/truetype/wqy/wqy-microhei.ttc``.
Every function that draws text also takes ``font_path``, for a station configured with another font.

Errors::

    PrintError(ValueError)          data that cannot be printed (bad trace code, URL too long for the label)
    └── FontNotFoundError           no CJK font installed
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import qrcode
import qrcode.constants
from biip import ParseError
from biip.gtin import Gtin
from PIL import Image, ImageDraw, ImageFont

from traceability import i18n
from traceability.domain import tracecode

__all__ = [
    "FontNotFoundError",
    "LabelData",
    "PrintError",
    "batch_label_image",
    "batch_label_png",
    "consumer_url",
    "find_cjk_font",
    "font_file",
    "label_sheet_pages",
    "label_sheet_pdf",
    "largest_font",
    "line_height",
    "load_font",
    "png",
    "qr_image",
    "qr_matrix",
    "wrap",
]

LabelSize = Literal["40x30mm", "a4-cell"]
SheetPage = Literal["A4", "40x30mm"]

MM_PER_INCH = 25.4
QUIET_ZONE_MODULES = 4
MIN_MODULE_MM = 0.33
"""Smallest QR module printed. Phone cameras read 0.33 mm modules at a hand's distance; below that a
worn thermal head or a wet label loses them."""

LABEL_SIZES_MM: dict[str, tuple[float, float]] = {"40x30mm": (40.0, 30.0), "a4-cell": (63.5, 38.1)}
A4_MM = (210.0, 297.0)
A4_GRID = (3, 7)
A4_MARGIN_MM = (7.25, 15.15)
"""Left and top margin of the common 21-up A4 sheet of 63.5 × 38.1 mm labels."""
A4_PITCH_MM = (66.0, 38.1)
"""Distance between the left (top) edges of neighbouring cells: 2.5 mm gap between columns, none between rows."""


FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian/Ubuntu fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch, Alpine
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",  # Windows: Microsoft YaHei
    "C:/Windows/Fonts/simhei.ttf",
)
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
_FONT_PATTERNS = ("wqy-microhei*", "wqy-zenhei*", "NotoSansCJK*", "NotoSansSC*", "SourceHanSans*")
_CJK_PROBE = "溯源码"

BLACK = 0
WHITE = 1


class PrintError(ValueError):
    """Data that cannot be printed; the message says why."""


class FontNotFoundError(PrintError):
    """No font with Chinese glyphs was found."""


# --- data -------------------------------------------------------------------------------------------


def consumer_url(
    base_url: str,
    trace_code: str,
    *,
    gtin: str | None = None,
    expiry: dt.date | None = None,
) -> str:
    """The URL a label's QR code holds: ``/t/{code}``, or the GS1 Digital Link form when there is a GTIN.

    ``expiry`` goes into the Digital Link query as AI 17; the ``/t/`` form carries only the code, and the
    server knows the rest.
    """
    try:
        code = tracecode.validate(trace_code)
    except tracecode.TraceCodeError as exc:
        raise PrintError(f"cannot print trace code {trace_code!r}: {exc}") from None
    base = base_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PrintError(f"base URL {base_url!r} must be an http(s) address without query or fragment")
    if gtin is None:
        return f"{base}/t/{code}"
    try:
        gtin14 = Gtin.parse(gtin.strip()).as_gtin_14()
    except ParseError as exc:
        raise PrintError(f"cannot print GTIN {gtin!r}: {exc}") from None
    url = f"{base}/01/{gtin14}/10/{code}"
    return f"{url}?17={expiry:%y%m%d}" if expiry is not None else url


@dataclass(frozen=True)
class LabelData:
    """What a batch label shows. ``date`` is the packing (or harvest, slaughter) date printed."""

    trace_code: str
    product_name: str
    date: dt.date
    node_name: str
    base_url: str
    gtin: str | None = None
    expiry: dt.date | None = None

    @property
    def url(self) -> str:
        return consumer_url(self.base_url, self.trace_code, gtin=self.gtin, expiry=self.expiry)


# --- fonts ------------------------------------------------------------------------------------------


def find_cjk_font(extra: Iterable[str | Path] = ()) -> Path:
    """The first font file with Chinese glyphs among ``extra``, the usual paths, then the font folders."""
    candidates = [Path(p).expanduser() for p in extra]
    candidates += [Path(p) for p in FONT_CANDIDATES]
    for folder in _FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            for pattern in _FONT_PATTERNS:
                candidates += sorted(root.rglob(pattern))
    for path in candidates:
        if path.is_file() and _has_cjk(path):
            return path
    raise FontNotFoundError(
        "no font with Chinese glyphs found; install one (Debian/Ubuntu: apt-get install fonts-wqy-microhei) "
        "or pass font_path"
    )


def _has_cjk(path: Path) -> bool:
    try:
        font = ImageFont.truetype(str(path), 24)
    except OSError:
        return False
    # A font without the glyphs draws the same .notdef box for every character.
    masks = {bytes(font.getmask(char)) for char in _CJK_PROBE}
    return len(masks) == len(_CJK_PROBE) and all(masks)


@functools.lru_cache(maxsize=64)
def load_font(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size_px)


def font_file(font_path: str | Path | None) -> str:
    if font_path is not None:
        path = Path(font_path)
        if not path.is_file():
            raise FontNotFoundError(f"font file {str(path)!r} does not exist")
        return str(path)
    return str(_default_font())


@functools.lru_cache(maxsize=1)
def _default_font() -> Path:
    return find_cjk_font()


# --- QR ---------------------------------------------------------------------------------------------


def qr_matrix(url: str) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE_MODULES)
    qr.add_data(url)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


def qr_image(url: str, *, module_px: int) -> Image.Image:
    """A 1-bit QR code of ``url`` with ``module_px`` × ``module_px`` dots per module and a 4-module quiet zone."""
    if module_px < 1:
        raise PrintError("module_px must be at least 1")
    return _render_matrix(qr_matrix(url), module_px)


def _render_matrix(matrix: list[list[bool]], module_px: int) -> Image.Image:
    size = len(matrix)
    image = Image.new("1", (size, size), WHITE)
    image.putdata([BLACK if dark else WHITE for row in matrix for dark in row])
    # Nearest-neighbour by a whole factor keeps every module exactly module_px dots square.
    return image.resize((size * module_px, size * module_px), Image.Resampling.NEAREST)


def _fitted_qr(url: str, max_px: int, dpi: int) -> Image.Image:
    matrix = qr_matrix(url)
    module_px = max_px // len(matrix)
    min_px = math.ceil(MIN_MODULE_MM * dpi / MM_PER_INCH)
    if module_px < min_px:
        raise PrintError(
            f"the URL needs a {len(matrix)}-module QR code, which does not fit {max_px} dots at {dpi} dpi "
            f"with modules of at least {MIN_MODULE_MM} mm: use a shorter base URL or a larger label"
        )
    return _render_matrix(matrix, module_px)


# --- text layout ------------------------------------------------------------------------------------


def _px(mm: float, dpi: int) -> int:
    return round(mm * dpi / MM_PER_INCH)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, max_lines: int) -> list[str]:
    """Greedy wrap by character (Chinese has no spaces); the last line ends in … when text is cut."""
    text = " ".join(text.split())
    lines: list[str] = []
    line = ""
    for char in text:
        if font.getlength(line + char) <= width or not line:
            line += char
            continue
        lines.append(line.rstrip())
        line = char.lstrip()
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def largest_font(path: str, text: str, width: int, start_px: int, min_px: int) -> ImageFont.FreeTypeFont:
    size = start_px
    while size > min_px and load_font(path, size).getlength(text) > width:
        size -= 1
    return load_font(path, size)


def line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


# --- labels -----------------------------------------------------------------------------------------


def batch_label_image(
    label: LabelData,
    size: LabelSize = "40x30mm",
    dpi: int = 203,
    *,
    font_path: str | Path | None = None,
) -> Image.Image:
    """The label as a 1-bit image at the printer's resolution."""
    if size not in LABEL_SIZES_MM:
        raise PrintError(f"label size must be one of {sorted(LABEL_SIZES_MM)}, not {size!r}")
    if dpi < 150:
        raise PrintError("labels are printed at 150 dpi or more (203 or 300 for thermal printers)")
    url = label.url
    face_path = font_file(font_path)
    width_mm, height_mm = LABEL_SIZES_MM[size]
    width, height = _px(width_mm, dpi), _px(height_mm, dpi)
    margin = _px(1.5, dpi)
    image = Image.new("1", (width, height), WHITE)
    draw = ImageDraw.Draw(image)

    # Bottom: the trace code, as large as fits the width, in groups of four for reading aloud.
    code_text = tracecode.pretty(tracecode.normalize(label.trace_code))
    start_mm = 4.0 if size == "a4-cell" else 3.2
    code_font = largest_font(face_path, code_text, width - 2 * margin, _px(start_mm, dpi), _px(1.6, dpi))
    code_top = height - margin - line_height(code_font)
    draw.text((width // 2, code_top), code_text, font=code_font, fill=BLACK, anchor="ma")

    # Left: the QR code, its quiet zone serving as the label's margin.
    qr = _fitted_qr(url, min(code_top, int(width * 0.62)), dpi)
    image.paste(qr, (0, max(0, (code_top - qr.height) // 2)))

    # Right: product, date, node.
    left = qr.width
    text_width = width - margin - left
    name_font = load_font(face_path, _px(3.2 if size == "a4-cell" else 2.8, dpi))
    small_font = load_font(face_path, _px(2.6 if size == "a4-cell" else 2.3, dpi))
    y = margin
    rows: list[tuple[str, ImageFont.FreeTypeFont, int]] = [(label.product_name, name_font, 2)]
    rows.append((f"{label.date:%Y-%m-%d}", small_font, 1))
    if label.expiry is not None:
        rows.append((i18n.words("zh")("label_expiry", date=f"{label.expiry:%Y-%m-%d}"), small_font, 1))
    rows.append((label.node_name, small_font, 2))
    for text, font, max_lines in rows:
        for line in wrap(text, font, text_width, max_lines):
            if y + line_height(font) > code_top:
                break
            draw.text((left, y), line, font=font, fill=BLACK)
            y += line_height(font)
        y += _px(0.5, dpi)
    return image


def batch_label_png(
    label: LabelData,
    size: LabelSize = "40x30mm",
    dpi: int = 203,
    *,
    font_path: str | Path | None = None,
) -> bytes:
    """The label as a 1-bit PNG carrying its resolution, ready for a label printer driver."""
    return png(batch_label_image(label, size, dpi, font_path=font_path), dpi)


def label_sheet_pages(
    labels: Sequence[LabelData],
    page: SheetPage = "A4",
    dpi: int = 300,
    *,
    font_path: str | Path | None = None,
) -> list[Image.Image]:
    """The pages of :func:`label_sheet_pdf` as 1-bit images."""
    if not labels:
        raise PrintError("no labels to print")
    if page == "40x30mm":
        return [batch_label_image(label, "40x30mm", dpi, font_path=font_path) for label in labels]
    if page != "A4":
        raise PrintError(f"page must be 'A4' or '40x30mm', not {page!r}")
    columns, rows = A4_GRID
    per_page = columns * rows
    pages: list[Image.Image] = []
    for start in range(0, len(labels), per_page):
        sheet = Image.new("1", (_px(A4_MM[0], dpi), _px(A4_MM[1], dpi)), WHITE)
        for index, label in enumerate(labels[start : start + per_page]):
            row, column = divmod(index, columns)
            x = _px(A4_MARGIN_MM[0] + column * A4_PITCH_MM[0], dpi)
            y = _px(A4_MARGIN_MM[1] + row * A4_PITCH_MM[1], dpi)
            sheet.paste(batch_label_image(label, "a4-cell", dpi, font_path=font_path), (x, y))
        pages.append(sheet)
    return pages


def label_sheet_pdf(
    labels: Sequence[LabelData],
    page: SheetPage = "A4",
    dpi: int = 300,
    *,
    font_path: str | Path | None = None,
) -> bytes:
    """A print-ready PDF: A4 sheets of 21 labels, or one 40 × 30 mm label a page for a roll printer.

    Print at 100 % ("actual size"): the page size is exact, so a scaled print misses the die-cut cells.
    """
    pages = label_sheet_pages(labels, page, dpi, font_path=font_path)
    width_mm, height_mm = A4_MM if page == "A4" else LABEL_SIZES_MM["40x30mm"]
    # The page images are whole dots; stating the resolution per axis makes the PDF page exactly the
    # paper size (a "203 dpi" printer really has 8 dots/mm, 203.2 dpi).
    exact_dpi = (pages[0].width * MM_PER_INCH / width_mm, pages[0].height * MM_PER_INCH / height_mm)
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:], dpi=exact_dpi)
    return buffer.getvalue()


def png(image: Image.Image, dpi: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", dpi=(dpi, dpi), optimize=True)
    return buffer.getvalue()
