"""Pictures of printed receipts and labels for docs/images/, made from the exact bytes a printer gets.

``make receipt-images`` (or ``python -m tests.scanners.receipt_images``): each job is composed by the
station's own code, printed by the model printer of :mod:`tests.scanners.escpos_render`, and saved as the
paper would come out (1 dot = 1 pixel, 203 dpi).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from scanners.printers import PrinterConfig, label_job, receipt_job
from scanners.printing import LabelData
from scanners.receipts import ReceiptData
from tests.scanners.escpos_render import print_escpos, print_tspl
from traceability.config import ROOT
from traceability.domain import tracecode

OUT = ROOT / "docs" / "images"
BEIJING = dt.timezone(dt.timedelta(hours=8))


def main() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    sale = ReceiptData(
        market_name="鼓楼菜市场",
        stall_number="A-012",
        stall_name="王记鲜肉",
        item="白条猪肉",
        origin="江苏省徐州市丰县 王庄",
        weight_kg=Decimal("1.250"),
        unit_price=Decimal("16.00"),
        price_unit="斤",
        sold_at=dt.datetime(2026, 11, 30, 9, 41, tzinfo=BEIJING),
        trace_code=tracecode.make("320302", 5000000000017),
        base_url="https://trace.example.cn",
    )
    written = []
    for paper_mm, text in ((58, "gb18030"), (58, "raster"), (80, "gb18030")):
        config = PrinterConfig("receipt", paper_mm=paper_mm, text=text)  # type: ignore[arg-type]
        paper = print_escpos(receipt_job(sale, config), config.width_dots)
        path = OUT / f"receipt-{paper_mm}mm-{text}.png"
        paper.image.save(path, dpi=(203, 203), optimize=True)
        written.append(path)
    label = LabelData(sale.trace_code, "大白菜", dt.date(2026, 11, 30), "鼓楼菜市场 A-012", sale.base_url)
    page = print_tspl(label_job([label], PrinterConfig("label"))).pages[0]
    path = OUT / "label-40x30mm-tspl.png"
    page.save(path, dpi=(203, 203), optimize=True)
    written.append(path)
    return written


if __name__ == "__main__":
    for p in main():
        print(p.relative_to(ROOT))
