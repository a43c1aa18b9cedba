"""QR codes drawn for pages: an inline SVG the receipt page embeds (no image request, prints sharply)."""

from __future__ import annotations

import qrcode
import qrcode.image.svg


def qr_svg(url: str) -> str:
    """An inline SVG QR code for ``url``."""
    img = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg: bytes = img.to_string()
    text = svg.decode()
    return text[text.index("<svg") :] if "<svg" in text else text
