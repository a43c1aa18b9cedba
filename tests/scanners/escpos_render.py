"""A small printer, for tests: it reads the ESC/POS and TSPL bytes the station sends and prints them to an image.

It knows exactly the commands a thermal printer in a Chinese market obeys and that the station uses, and
refuses any other byte, so a test fails when the station starts sending something a printer would
misread. Text is drawn the way those printers do: 12 × 24-dot cells for ASCII (font A), 24 × 24 for
each two-byte GB18030 character in Chinese mode (``FS &``), scaled by ``GS !``/``ESC !``, aligned by
``ESC a``. Raster images (``GS v 0``) are placed dot for dot. The result is the paper: one 1-bit image
as wide as the print head, the text lines as printed, and the cuts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from scanners.printing import find_cjk_font


class UnknownCommand(ValueError):
    """A byte sequence this printer does not obey."""


@dataclass
class Paper:
    image: Image.Image
    lines: list[str]
    cuts: int
    auto_wrapped: int
    rasters: list[tuple[int, int, int]] = field(default_factory=list)
    """(top, width, height) of each raster image printed."""


@dataclass
class _Glyph:
    char: str
    wide: bool
    scale_w: int
    scale_h: int


class EscPosPrinter:
    def __init__(self, width_dots: int = 384) -> None:
        self.width = width_dots
        self.font_path = str(find_cjk_font())
        self._reset()
        self.rows: list[Image.Image] = []
        self.lines: list[str] = []
        self.cuts = 0
        self.auto_wrapped = 0
        self.rasters: list[tuple[int, int, int]] = []
        self._y = 0

    def _reset(self) -> None:
        self.align = 0
        self.mode_w = self.mode_h = 1  # ESC !
        self.size_w = self.size_h = 1  # GS !
        self.chinese = False
        self.line_spacing = 30
        self.buffer: list[_Glyph] = []

    # -- output ---------------------------------------------------------------------------------------

    def _scale(self) -> tuple[int, int]:
        return max(self.mode_w, self.size_w), max(self.mode_h, self.size_h)

    def _glyph_width(self, g: _Glyph) -> int:
        return (24 if g.wide else 12) * g.scale_w

    def _emit_row(self, image: Image.Image) -> None:
        self.rows.append(image)
        self._y += image.height

    def _flush_line(self, *, feed: bool = True) -> None:
        glyphs, self.buffer = self.buffer, []
        if not glyphs and not feed:
            return
        height = max([24 * g.scale_h for g in glyphs] + [24])
        row = Image.new("1", (self.width, max(height, self.line_spacing) + 6), 1)
        draw = ImageDraw.Draw(row)
        total = sum(self._glyph_width(g) for g in glyphs)
        x = {0: 0, 1: (self.width - total) // 2, 2: self.width - total}.get(self.align, 0)
        for g in glyphs:
            w, h = self._glyph_width(g), 24 * g.scale_h
            cell = Image.new("L", (24 if g.wide else 12, 24), 255)
            font = ImageFont.truetype(self.font_path, 22 if g.wide else 20)
            ImageDraw.Draw(cell).text((cell.width // 2, 12), g.char, font=font, fill=0, anchor="mm")
            cell = cell.resize((w, h), Image.Resampling.NEAREST).point(lambda v: 0 if v < 128 else 255).convert("1")
            row.paste(cell, (x, height - h))
            x += w
        del draw
        self.lines.append("".join(g.char for g in glyphs))
        self._emit_row(row)

    def _add_char(self, char: str, wide: bool) -> None:
        sw, sh = self._scale()
        g = _Glyph(char, wide, sw, sh)
        if sum(self._glyph_width(x) for x in self.buffer) + self._glyph_width(g) > self.width:
            self.auto_wrapped += 1
            self._flush_line()
        self.buffer.append(g)

    def _raster(self, width_bytes: int, height: int, data: bytes) -> None:
        if self.buffer:
            self._flush_line()
        if width_bytes * 8 > self.width:
            raise UnknownCommand(f"a raster image {width_bytes * 8} dots wide on a {self.width}-dot head")
        image = Image.frombytes("1", (width_bytes * 8, height), bytes(b ^ 0xFF for b in data))
        row = Image.new("1", (self.width, height), 1)
        x = {0: 0, 1: (self.width - image.width) // 2, 2: self.width - image.width}.get(self.align, 0)
        row.paste(image, (x, 0))
        self.rasters.append((self._y, image.width, height))
        self._emit_row(row)

    # -- input ----------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> Paper:
        i = 0
        n = len(data)

        def take(count: int) -> bytes:
            nonlocal i
            if i + count > n:
                raise UnknownCommand(f"command cut short at byte {i}")
            chunk = data[i : i + count]
            i += count
            return chunk

        while i < n:
            b = data[i]
            i += 1
            if b == 0x1B:  # ESC
                cmd = take(1)
                if cmd == b"@":
                    self._reset()
                elif cmd == b"a":
                    self.align = take(1)[0] % 48
                elif cmd == b"!":
                    mode = take(1)[0]
                    self.mode_w = 2 if mode & 0x20 else 1
                    self.mode_h = 2 if mode & 0x10 else 1
                elif cmd in (b"E", b"-", b"M", b"t", b"{", b"G", b"V", b"r"):
                    take(1)
                elif cmd == b"2":
                    self.line_spacing = 30
                elif cmd == b"3":
                    self.line_spacing = take(1)[0]
                elif cmd == b"d":
                    if self.buffer:
                        self._flush_line()
                    for _ in range(take(1)[0]):
                        self._flush_line()
                else:
                    raise UnknownCommand(f"ESC {cmd!r} at byte {i - 2}")
            elif b == 0x1D:  # GS
                cmd = take(1)
                if cmd == b"!":
                    size = take(1)[0]
                    self.size_w, self.size_h = (size >> 4 & 7) + 1, (size & 7) + 1
                elif cmd == b"v":
                    if take(1) != b"0":
                        raise UnknownCommand("GS v other than GS v 0")
                    take(1)  # density
                    xl, xh, yl, yh = take(4)
                    width_bytes, height = xl + 256 * xh, yl + 256 * yh
                    self._raster(width_bytes, height, take(width_bytes * height))
                elif cmd == b"V":
                    m = take(1)[0]
                    if m in (65, 66):
                        take(1)
                    elif m not in (0, 1, 48, 49):
                        raise UnknownCommand(f"GS V {m}")
                    if self.buffer:
                        self._flush_line()
                    self.cuts += 1
                elif cmd == b"B":
                    take(1)
                else:
                    raise UnknownCommand(f"GS {cmd!r} at byte {i - 2}")
            elif b == 0x1C:  # FS
                cmd = take(1)
                if cmd == b"&":
                    self.chinese = True
                elif cmd == b".":
                    self.chinese = False
                else:
                    raise UnknownCommand(f"FS {cmd!r}")
            elif b == 0x0A:
                self._flush_line()
            elif b == 0x0D:
                continue
            elif b < 0x20 or b == 0x7F:
                raise UnknownCommand(f"control byte {b:#04x} at {i - 1}")
            elif b < 0x80:
                self._add_char(chr(b), wide=False)
            else:
                if not self.chinese:
                    raise UnknownCommand(f"byte {b:#04x} outside Chinese mode (would print as a code page symbol)")
                second = take(1)
                try:
                    char = (bytes([b]) + second).decode("gbk")
                except UnicodeDecodeError:
                    raise UnknownCommand(f"{bytes([b]) + second!r} is not a GBK character") from None
                self._add_char(char, wide=True)
        if self.buffer:
            self._flush_line()
        height = max(1, self._y)
        paper = Image.new("1", (self.width, height), 1)
        y = 0
        for row in self.rows:
            paper.paste(row, (0, y))
            y += row.height
        return Paper(paper, self.lines, self.cuts, self.auto_wrapped, self.rasters)


def print_escpos(data: bytes, width_dots: int = 384) -> Paper:
    """The paper that ``data`` comes out as on a printer with a ``width_dots`` head."""
    return EscPosPrinter(width_dots).feed(data)


_TSPL_LINE = re.compile(rb"([A-Z]+)(?: ([^\r\n]*))?\r\n")


@dataclass
class Labels:
    size_mm: tuple[float, float]
    gap_mm: float
    pages: list[Image.Image]


def print_tspl(data: bytes, dpi: int = 203) -> Labels:
    """The labels a TSPL printer makes of ``data`` (SIZE, GAP, DIRECTION, CLS, BITMAP, PRINT)."""
    i = 0
    size = (0.0, 0.0)
    gap = 0.0
    canvas: Image.Image | None = None
    pages: list[Image.Image] = []
    while i < len(data):
        if data.startswith(b"BITMAP ", i):
            head_end = i + 7
            fields = []
            for _ in range(5):
                comma = data.index(b",", head_end)
                fields.append(int(data[head_end:comma]))
                head_end = comma + 1
            x, y, width_bytes, height, mode = fields
            if mode != 0 or canvas is None:
                raise UnknownCommand("BITMAP before CLS, or a mode other than overwrite")
            raw = data[head_end : head_end + width_bytes * height]
            if data[head_end + width_bytes * height : head_end + width_bytes * height + 2] != b"\r\n":
                raise UnknownCommand("BITMAP data is not width_bytes × height bytes")
            # TSPL: a 0 bit prints; PIL's 1-bit images store black as 0 too.
            canvas.paste(Image.frombytes("1", (width_bytes * 8, height), raw), (x, y))
            i = head_end + width_bytes * height + 2
            continue
        m = _TSPL_LINE.match(data, i)
        if m is None:
            raise UnknownCommand(f"TSPL: cannot read {data[i : i + 20]!r}")
        cmd, args = m[1].decode(), (m[2] or b"").decode()
        if cmd == "SIZE":
            w, h = (float(part.replace("mm", "").strip()) for part in args.split(","))
            size = (w, h)
        elif cmd == "GAP":
            gap = float(args.split(",")[0].replace("mm", "").strip())
        elif cmd == "DIRECTION":
            pass
        elif cmd == "CLS":
            canvas = Image.new("1", (round(size[0] * dpi / 25.4), round(size[1] * dpi / 25.4)), 1)
        elif cmd == "PRINT":
            if canvas is None:
                raise UnknownCommand("PRINT before CLS")
            copies = int(args.split(",")[0])
            pages.extend(canvas.copy() for _ in range(copies))
        else:
            raise UnknownCommand(f"TSPL command {cmd}")
        i = m.end()
    return Labels(size, gap, pages)
