"""A stall's day across real processes: the station enrols by scanning, prints a receipt and a stall card; the
shopper's phone opens the receipt; after a recall the vendor, signed in on a phone with the card's photo and a
PIN, is told in Chinese not to sell."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from playwright.async_api import Page, expect

from tests.conftest import World
from tests.scanners.escpos_render import print_escpos
from tests.servers import run_station as run
from tests.web.conftest import pork_chain
from traceability.domain import stations as station_format

pytestmark = pytest.mark.browser


def printed(device: Path) -> list[str]:
    """Print what the station sent to its printer, and read back the QR code of each job."""
    data = device.read_bytes()
    device.write_bytes(b"")
    paper = print_escpos(data)
    return [r.text for r in zxingcpp.read_barcodes(paper.image.convert("L")) if r.valid]


async def test_a_stall_from_enrolment_to_a_refused_sale_on_the_phone(
    world: World, phone: Page, base_url: str, tmp_path: Path
) -> None:
    pork = await pork_chain(world)  # 丰县 farm → slaughterhouse → this market
    device = await world.post(
        "/api/v1/admin/devices", {"node": world.nodes["market"], "name": "A-012 秤", "operator": "A-012"}, expect=201
    )
    enrolment = await world.post(f"/api/v1/admin/devices/{device['id']}/enrolment", {}, expect=201)
    _, one_time_code = station_format.parse_enrolment_payload(enrolment["qr"])
    home = tmp_path / "station"
    # The station reaches this test server at its own address; the QR's text carries the public URL.
    code, out, err = await run(home, "enrol", "--server", base_url, "--code", one_time_code)
    assert code == 0, err
    assert "✓ 已绑定" in out and "摊位 A-012 王记鲜肉" in out
    printer = tmp_path / "printer.bin"
    code, _, err = await run(home, "printer", "set", "receipt", "--connection", f"file:{printer}", "--no-test")
    assert code == 0, err

    # A sale: the receipt's QR opens the consumer page on the shopper's phone.
    code, out, err = await run(
        home, "receipt", "--source", pork, "--weight", "1斤", "--price", "16", "--price-unit", "斤"
    )
    assert code == 0, out + err
    assert "✓ 已售 sold 白条猪肉 0.500 kg（1.00 斤），16.00 元" in out
    (receipt_url,) = printed(printer)
    await phone.goto(base_url + urlsplit(receipt_url).path)
    await expect(phone.locator("h1")).to_have_text("白条猪肉")
    await expect(phone.locator("body")).to_contain_text("王记鲜肉")

    # The vendor's stall card: printed at the station with a PIN chosen there.
    code, out, err = await run(home, "vendor-card", stdin="250817\n250817\n")
    assert code == 0, out + err
    (card,) = printed_photo(printer, tmp_path / "card.png")
    assert card.startswith("TRACE-STALL/1 ")

    # The pork is recalled.
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "市监局"}, expect=201)
    await world.post(
        "/api/v1/recalls",
        {"traceCode": pork, "level": "I", "reason": "瘦肉精"},
        regulator["credential"],
        expect=201,
    )

    # On the phone: a photo of the card and the PIN sign in; selling the recalled pork is refused in Chinese.
    await phone.goto(f"{base_url}/vendor/login")
    await expect(phone.locator("h1")).to_contain_text("登录")
    await phone.set_input_files("#photo", str(tmp_path / "card.png"))
    await phone.fill("#pin", "250817")
    await phone.get_by_role("button", name="登录", exact=True).click()
    await expect(phone).to_have_url(f"{base_url}/vendor")
    await phone.fill("#code", pork)
    await phone.locator("form[action='/vendor/record'] button[type=submit]").click()
    await expect(phone.locator("p.error")).to_contain_text("请勿销售或进货：该批次已召回")
    await expect(phone.locator("p.error")).to_contain_text("请将此批商品下架封存")


def printed_photo(device: Path, photo: Path) -> list[str]:
    """The stall card as printed, saved as the photo a phone would take of it; its QR code's text."""
    paper = print_escpos(device.read_bytes())
    device.write_bytes(b"")
    paper.image.convert("L").save(photo)
    return [r.text for r in zxingcpp.read_barcodes(paper.image.convert("L")) if r.valid]
