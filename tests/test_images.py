"""Barcodes in photos: turned upright by their EXIF tag, read top to bottom, nothing from what is not a photo."""

from __future__ import annotations

import io
import struct
import zlib

import qrcode
from PIL import Image

from traceability.domain.images import decode_image, decode_photo

TOP = "https://trace.example.cn/t/32030200000000000019"
BOTTOM = "https://trace.example.cn/t/32030200000000000027"


def _qr(text: str) -> Image.Image:
    return qrcode.make(text, box_size=12, border=4).get_image().convert("L")


def _upright() -> Image.Image:
    """A phone photo as the person held it: one code at the top right, another at the bottom left."""
    photo = Image.new("L", (3000, 2400), 255)
    top, bottom = _qr(TOP), _qr(BOTTOM)
    photo.paste(top, (3000 - top.width - 100, 100))
    photo.paste(bottom, (100, 2400 - bottom.height - 100))
    return photo


def _jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def test_codes_are_read_top_to_bottom() -> None:
    assert decode_photo(_jpeg(_upright())) == [TOP, BOTTOM]
    assert decode_image(_upright()) == [TOP, BOTTOM]


def test_a_photo_stored_sideways_is_turned_upright_by_its_exif_tag() -> None:
    # The sensor's rows run along the phone's long side: the camera stores the picture turned a quarter
    # clockwise and tags it "rotate 90° counter-clockwise to show" (orientation 8).
    stored = _upright().transpose(Image.Transpose.ROTATE_270)
    assert decode_image(stored) == [BOTTOM, TOP]  # as stored: the bottom code is now at the top left
    assert decode_photo(_jpeg(stored, orientation=8)) == [TOP, BOTTOM]


def test_what_is_not_a_photo_gives_nothing() -> None:
    assert decode_photo(b"") == []
    assert decode_photo(b"GIF89a not really") == []
    assert decode_photo(_jpeg(Image.new("L", (200, 200), 255))) == []
    # A tiny file claiming 400 million pixels is refused before anything is decoded.
    ihdr = struct.pack(">IIBBBBB", 20_000, 20_000, 1, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")
    assert decode_photo(bomb) == []


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
