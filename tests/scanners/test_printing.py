"""Every label, sheet and receipt we print scans back, with an independent decoder, to exactly its URL."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from stdnum import ean

from scanners.printing import (
    FontNotFoundError,
    LabelData,
    PrintError,
    batch_label_image,
    batch_label_png,
    consumer_url,
    find_cjk_font,
    label_sheet_pages,
    label_sheet_pdf,
    qr_image,
)
from scanners.receipts import ReceiptData, receipt_png
from traceability.domain import tracecode
from traceability.domain.scans import parse_scan

BASE = "https://trace.example.cn"
CODE = tracecode.make("320300", 1234567)
GTIN = "06901234567892"
SOME = settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

trace_codes = st.builds(
    tracecode.make, st.from_regex(r"[1-8][0-9]{5}", fullmatch=True), st.integers(1, tracecode.MAX_SERIAL)
)
gtins = st.from_regex(r"69[0-9]{10}", fullmatch=True).map(lambda body: "0" + body + ean.calc_check_digit(body))
chinese = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=30)
names = st.one_of(chinese, st.text(st.characters(codec="ascii", categories=["L", "N", "Zs"]), min_size=1))
base_urls = st.sampled_from(["https://trace.example.cn", "http://10.0.0.8:8080", "https://gov.example.cn/xz/trace"])
days = st.dates(dt.date(2020, 1, 1), dt.date(2040, 12, 31))
labels = st.builds(
    LabelData,
    trace_code=trace_codes,
    product_name=names,
    date=days,
    node_name=names,
    base_url=base_urls,
    gtin=st.one_of(st.none(), gtins),
    expiry=st.one_of(st.none(), days),
)


def decode(image: Image.Image) -> list[str]:
    """Decode at the pixel size given: no upscaling, and no downscaled retries either."""
    gray = image if image.mode == "L" else image.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormats(zxingcpp.QRCode), try_downscale=False)
    return [barcode.text for barcode in found]


def assert_pure_black_and_white(image: Image.Image) -> None:
    assert image.mode == "1"
    colors = image.convert("L").getcolors()
    assert colors is not None and {value for _, value in colors} <= {0, 255}


# --- URLs -------------------------------------------------------------------------------------------


def test_consumer_url_forms() -> None:
    assert consumer_url(BASE + "/", CODE) == f"{BASE}/t/{CODE}"
    assert consumer_url(BASE, tracecode.pretty(CODE)) == f"{BASE}/t/{CODE}"
    assert consumer_url(BASE, CODE, gtin="6901234567892") == f"{BASE}/01/{GTIN}/10/{CODE}"
    assert consumer_url(BASE, CODE, gtin=GTIN, expiry=dt.date(2026, 12, 31)) == f"{BASE}/01/{GTIN}/10/{CODE}?17=261231"


@pytest.mark.parametrize(
    ("base", "code", "gtin"),
    [
        (BASE, CODE[:-1] + "0", None),
        (BASE, CODE, "6901234567893"),
        ("trace.example.cn", CODE, None),
        (BASE + "?x=1", CODE, None),
    ],
)
def test_consumer_url_refuses_what_would_not_resolve(base: str, code: str, gtin: str | None) -> None:
    with pytest.raises(PrintError):
        consumer_url(base, code, gtin=gtin)


@SOME
@given(label=labels)
def test_printed_urls_parse_back_to_the_trace_code(label: LabelData) -> None:
    scan = parse_scan(label.url, base_urls=[label.base_url])
    assert scan.trace_code == label.trace_code
    assert scan.kind == ("digital_link" if label.gtin else "trace_url")


# --- QR and labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module_px", [2, 3, 5])
def test_qr_image_modules_are_whole_dots(module_px: int) -> None:
    image = qr_image(f"{BASE}/t/{CODE}", module_px=module_px)
    assert_pure_black_and_white(image)
    assert image.width == image.height and image.width % module_px == 0
    modules = image.width // module_px
    assert (modules - 8 - 17) % 4 == 0  # version v has 17 + 4v modules, plus the 4-module quiet zone twice
    assert decode(image) == [f"{BASE}/t/{CODE}"]


@SOME
@given(label=labels, size=st.sampled_from(["40x30mm", "a4-cell"]), dpi=st.sampled_from([203, 300]))
def test_every_label_decodes_to_its_url(label: LabelData, size: str, dpi: int) -> None:
    png = batch_label_png(label, size, dpi)  # type: ignore[arg-type]
    image = Image.open(io.BytesIO(png))
    width_mm, height_mm = (40, 30) if size == "40x30mm" else (63.5, 38.1)
    assert image.size == (round(width_mm * dpi / 25.4), round(height_mm * dpi / 25.4))
    assert round(image.info["dpi"][0]) == dpi
    assert_pure_black_and_white(image)
    assert decode(image) == [label.url]


def test_chinese_text_renders_as_distinct_glyphs() -> None:
    """A font without Chinese glyphs draws the same box for 猪 and 牛; ours must not."""
    pork = LabelData(CODE, "猪肉", dt.date(2025, 5, 1), "七里沟市场", BASE)
    beef = LabelData(CODE, "牛肉", dt.date(2025, 5, 1), "七里沟市场", BASE)
    assert batch_label_image(pork).tobytes() != batch_label_image(beef).tobytes()
    assert find_cjk_font().is_file()


def test_label_with_a_url_too_long_for_it_is_refused() -> None:
    label = LabelData(CODE, "猪肉", dt.date(2025, 5, 1), "市场", "https://" + "a" * 300 + ".example.cn")
    with pytest.raises(PrintError, match="does not fit"):
        batch_label_png(label)


def test_a_missing_font_file_is_named() -> None:
    label = LabelData(CODE, "猪肉", dt.date(2025, 5, 1), "市场", BASE)
    with pytest.raises(FontNotFoundError, match="does not exist"):
        batch_label_png(label, font_path="/nonexistent/font.ttc")


# --- sheets -----------------------------------------------------------------------------------------


def sheet_labels(count: int) -> list[LabelData]:
    return [
        LabelData(
            tracecode.make("320300", 1000 + n),
            f"有机菠菜{n}号",
            dt.date(2025, 5, 1),
            "徐州七里沟农贸市场",
            BASE,
            gtin=GTIN if n % 2 else None,
            expiry=dt.date(2026, 12, 31) if n % 4 == 1 else None,
        )
        for n in range(count)
    ]


def test_a4_sheet_pages_hold_21_labels_that_all_decode() -> None:
    labels = sheet_labels(24)
    pages = label_sheet_pages(labels, "A4", 300)
    assert [page.size for page in pages] == [(2480, 3508)] * 2
    found = [text for page in pages for text in decode(page)]
    assert sorted(found) == sorted(label.url for label in labels)
    assert len(decode(pages[1])) == 3


@pytest.mark.parametrize(("page", "dpi", "size_mm"), [("40x30mm", 203, (40, 30)), ("A4", 300, (210, 297))])
def test_sheet_pdf_pages_are_exactly_the_paper_size(page: str, dpi: int, size_mm: tuple[int, int]) -> None:
    pdf = label_sheet_pdf(sheet_labels(22), page, dpi)  # type: ignore[arg-type]
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox \[ 0 0 ([0-9.]+) ([0-9.]+) \]", pdf)
    assert len(boxes) == (22 if page == "40x30mm" else 2)
    for width_pt, height_pt in boxes:
        assert float(width_pt) * 25.4 / 72 == pytest.approx(size_mm[0], abs=0.01)
        assert float(height_pt) * 25.4 / 72 == pytest.approx(size_mm[1], abs=0.01)


def test_an_empty_sheet_is_refused() -> None:
    with pytest.raises(PrintError):
        label_sheet_pdf([])


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian poppler-utils) is not installed")
@pytest.mark.parametrize(("page", "dpi", "count"), [("A4", 300, 22), ("40x30mm", 203, 3), ("40x30mm", 300, 2)])
def test_rendered_pdf_decodes_to_every_url(page: str, dpi: int, count: int) -> None:
    labels = sheet_labels(count)
    pdf = label_sheet_pdf(labels, page, dpi)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "sheet.pdf"
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(source), f"{folder}/page"], check=True)
        rendered = sorted(Path(folder).glob("page-*.png"))
        pages = [Image.open(path) for path in rendered]
        found = [text for image in pages for text in decode(image)]
    assert len(pages) == (2 if page == "A4" else count)
    assert sorted(found) == sorted(label.url for label in labels)


# --- receipts ---------------------------------------------------------------------------------------

receipts = st.builds(
    ReceiptData,
    market_name=names,
    stall_number=st.from_regex(r"[A-Z]-[0-9]{1,3}", fullmatch=True),
    item=names,
    weight_kg=st.decimals(Decimal("0.001"), Decimal("99.999"), places=3),
    unit_price=st.decimals(Decimal("0.01"), Decimal("999.99"), places=2),
    sold_at=st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2040, 1, 1)),
    trace_code=trace_codes,
    base_url=base_urls,
    price_unit=st.sampled_from(["kg", "斤"]),
)


@SOME
@given(receipt=receipts)
def test_every_receipt_decodes_to_its_url(receipt: ReceiptData) -> None:
    image = Image.open(io.BytesIO(receipt_png(receipt)))
    assert image.width == 384
    assert round(image.info["dpi"][0]) == 203
    assert_pure_black_and_white(image)
    assert decode(image) == [f"{receipt.base_url.rstrip('/')}/t/{receipt.trace_code}"]


def test_receipt_total() -> None:
    sold_at = dt.datetime(2025, 5, 1, 9, 30)
    sale = ReceiptData("七里沟市场", "A-12", "猪五花肉", Decimal("1.254"), Decimal("13.80"), sold_at, CODE, BASE)
    assert sale.amount == Decimal("17.31")  # 1.254 x 13.80 = 17.3052
    by_jin = ReceiptData(**{**sale.__dict__, "price_unit": "斤"})
    assert by_jin.amount == Decimal("34.61")  # 2.508 jin x 13.80 = 34.6104
    given_total = ReceiptData(**{**sale.__dict__, "total": Decimal("17.00")})
    assert given_total.amount == Decimal("17.00")
