"""Decoding a photo of a barcode or QR code (``trace-scan image FILE``) with zxing-cpp.

The decoded text goes through the same :func:`scanners.parse.parse_scan` as a line from a barcode gun.
GS1 symbols (GS1-128, GS1 DataMatrix, GS1 QR) come back in zxing-cpp's human-readable ``(01)…(10)…``
form, which the parser reads as a GS1 element string.
"""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image, ImageOps


def decode_image(image: Image.Image) -> list[str]:
    """The text of every readable barcode in ``image``, top to bottom."""
    gray = ImageOps.exif_transpose(image).convert("L")
    found = [r for r in zxingcpp.read_barcodes(gray) if r.valid]
    found.sort(key=lambda r: (r.position.top_left.y, r.position.top_left.x))
    return [r.text for r in found]


def decode_file(path: Path) -> list[str]:
    """Decode the barcodes in an image file (PNG, JPEG, …)."""
    with Image.open(path) as image:
        return decode_image(image)
