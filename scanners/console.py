"""What the station's commands share: its home directory, opening it, and showing an outcome.

A command's output is for the person at the counter: a ✓ or a ✗ with the terminal bell, in the station's
language (:mod:`scanners.words`), and times in the station's local time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from scanners.keypad import Outcome
from scanners.modes import Counter
from scanners.station import NotEnrolled, Station, start_background_upload
from scanners.weighing import ScaleConfig
from scanners.words import say

INLINE_UPLOAD_SECONDS = 3.0
"""How long ``label`` and ``receipt`` try to upload before leaving it to the background uploader."""


def home(args: argparse.Namespace) -> Path:
    return Path(args.home or Path.home() / ".trace-scan").expanduser()


def station(args: argparse.Namespace) -> Station:
    return Station(
        home(args),
        max_backoff=args.max_backoff,
        batch_size=args.batch_size,
        say=lambda m: print(m, file=sys.stderr, flush=True),
    )


def decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def show(outcome: Outcome) -> None:
    mark = "" if outcome.ok else "\a✗ "
    if outcome.message:
        print(f"{mark}{outcome.message}", flush=True)
    for line in outcome.lines:
        print(line, flush=True)


def lang(station: Station) -> str:
    return station.language


def counter(station: Station, args: argparse.Namespace, mode: str) -> Counter:
    print_dir = Path(args.print_dir) if getattr(args, "print_dir", None) else station.home / "prints"
    counter = Counter(
        station.store,
        mode,
        product=getattr(args, "product", None),
        product_name=getattr(args, "product_name", None),
        unit_price=getattr(args, "price", None),
        price_unit=getattr(args, "price_unit", None),
        print_dir=print_dir,
        source=getattr(args, "source", None),
        destination=getattr(args, "to", None),
    )
    scale = station.store.get("scale")
    if scale:
        config = ScaleConfig.from_json(scale)
        counter.weigher = config.weigher()
        counter.weigher.tare_kg = Decimal(str(station.store.get("tare_kg", "0")))
    return counter


def upload_soon(station: Station, args: argparse.Namespace) -> None:
    """Upload what was just queued; if the network does not allow it now, leave it to a background uploader."""
    if getattr(args, "no_upload", False) or not station.store.pending(1):
        return
    try:
        done = asyncio.run(station.sync(until_empty=True, within=INLINE_UPLOAD_SECONDS))
    except NotEnrolled:
        return
    if not done:
        pending = station.store.status()["pending"]
        start_background_upload(station.home, max_backoff=args.max_backoff)
        print(say("station_upload_pending", lang(station), count=pending), file=sys.stderr)


def local_time(stamp: Any) -> str:
    """A stored UTC time in the station's local time (Beijing time at a Chinese stall)."""
    if not stamp:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def photo_texts(path: Path) -> list[str]:
    """The text of every barcode and QR code in a photo."""
    from PIL import Image

    from traceability.domain.images import decode_image

    with Image.open(path) as image:
        return decode_image(image)
