"""Reading the barcodes and QR codes in a photo, with zxing-cpp: bytes or an image in, their texts out.

One implementation for the station's ``trace-scan image FILE`` and the vendor page's photo upload. A phone
stores a photo as the sensor saw it with an EXIF orientation tag, so the image is turned upright first; only
symbols zxing-cpp reports as valid count (a damaged code that decodes to wrong text is dropped). GS1 symbols
(GS1-128, GS1 DataMatrix, GS1 QR) come back in zxing-cpp's human-readable ``(01)…(10)…`` form, which
:func:`traceability.domain.scans.parse_scan` reads as a GS1 element string.
"""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = 2000
"""A photo is scaled down to fit this many pixels a side before decoding: a phone's 12-megapixel photo
decodes as well at this size, in a fraction of the time and memory."""


def decode_image(image: Image.Image) -> list[str]:
    """The text of every readable barcode in ``image``, top to bottom, then left to right."""
    gray = ImageOps.exif_transpose(image).convert("L")
    found = [r for r in zxingcpp.read_barcodes(gray) if r.valid]
    found.sort(key=lambda r: (r.position.top_left.y, r.position.top_left.x))
    return [r.text for r in found]


def decode_photo(data: bytes, *, max_side: int = MAX_SIDE) -> list[str]:
    """The barcodes in an uploaded photo (JPEG, PNG, …); an empty list when there are none or it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            # In place and before decoding: JPEG decodes straight to the reduced size. The EXIF tag survives.
            image.thumbnail((max_side, max_side))
            return decode_image(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return []
