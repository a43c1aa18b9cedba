"""Farm to shopper and back, across real processes: the server (``traceability serve``), four stations
(``trace-scan``, each with its own home) at a farm, a slaughterhouse, a wholesale market and a stall, and a
phone (headless Chromium at 360×640).

The pigs are shipped and received hop by hop by the stations; the stall sells a cut of the carcass and
prints a receipt; its QR code, read back from the printed image, opens a page that names the farm, the
certificates and the stall, with a verified badge. A regulator recalls the farm's lot: the same receipt
page says so first, and the stall's station, online and then offline after a sync, refuses to sell from
the carcass and prints nothing.

The farm's opening (origin and quarantine certificate) and the slaughter (pigs into a carcass with its meat
inspection certificate) are recorded through the API with those nodes' own device credentials: a station
has no form for an origin, a certificate or a transformation.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.conftest import make_uscc
from tests.servers import Server
from tests.servers import run_station as station
from tests.web.conftest import new_page

pytestmark = pytest.mark.browser
CODE = re.compile(r"\b[1-8][0-9]{19}\b")


class Api:
    def __init__(self, server: Server, admin: str) -> None:
        self.url = server.url
        self.admin = admin

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        async with aiohttp.ClientSession() as s, s.request(method, self.url + path, json=body, headers=headers) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        status, data = await self.call("POST", path, body, token)
        assert status in (200, 201), (path, status, data)
        return data


async def place(api: Api, n: int, node_type: str, area: str, name: str, name_en: str) -> dict[str, Any]:
    """An enterprise and its node."""
    uscc = make_uscc(700 + n)
    await api.post("/api/v1/admin/enterprises", {"name": name, "name_en": name_en, "uscc": uscc})
    node: dict[str, Any] = await api.post(
        "/api/v1/admin/nodes",
        {"enterprise": uscc, "type": node_type, "area_code": area, "name": name, "name_en": name_en},
    )
    return node


async def enrolled(api: Api, home: Path, node: dict[str, Any], name: str, **extra: str) -> str:
    """A station enrolled at the node (its own key, its own home); returns the device's API credential."""
    device = await api.post("/api/v1/admin/devices", {"node": node["code"], "name": name, **extra})
    enrolment = await api.post(f"/api/v1/admin/devices/{device['id']}/enrolment", {})
    code, out, err = await station(home, "enrol", "--server", api.url, "--code", enrolment["code"])
    assert code == 0 and "✓" in out, out + err
    return str(device["credential"])


async def hop(homes: dict[str, Path], nodes: dict[str, dict[str, Any]], code: str, sender: str, receiver: str) -> None:
    """The sender's station ships the batch to the receiver's node; the receiver's station receives it."""
    out = await station(
        homes[sender],
        "run",
        "--mode",
        "ship",
        "--to",
        nodes[receiver]["code"],
        "--flush-timeout",
        "30",
        stdin=f"{code}\n",
    )
    assert out[0] == 0 and "✓" in out[1] and "✗" not in out[1], out
    out = await station(homes[receiver], "run", "--mode", "receive", "--flush-timeout", "30", stdin=f"{code}\n")
    assert out[0] == 0 and "✓" in out[1] and "✗" not in out[1], out


def receipts(home: Path) -> list[Path]:
    return sorted((home / "prints").glob("receipt-*.png"))


async def first_block(page: Page) -> str:
    return str(await page.evaluate("() => document.querySelector('main').firstElementChild.innerText"))


async def test_farm_to_receipt_to_recall_across_real_processes(db_url: str, browser: Browser, tmp_path: Path) -> None:
    server = Server(tmp_path / "server", {"TRACE_DATABASE_URL": db_url})
    server.data_dir.mkdir()
    server.env["TRACE_PUBLIC_URL"] = server.url
    server.start()
    try:
        await server.wait_healthy()
        api = Api(server, (server.data_dir / "admin-token").read_text().strip())
        await journey(api, server, browser, tmp_path)
    finally:
        server.stop()


async def journey(api: Api, server: Server, browser: Browser, tmp_path: Path) -> None:
    for body in (
        {"category": "meat", "goods_code": "21111001", "name": "生猪", "name_en": "Live pigs"},
        {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
    ):
        await api.post("/api/v1/admin/products", body)
    nodes = {
        "farm": await place(api, 1, "farm", "320321", "丰润生猪养殖合作社", "Fengrun Pig Co-operative"),
        "slaughter": await place(api, 2, "slaughterhouse", "320311", "徐州肉联厂", "Xuzhou Meat Packing Plant"),
        "wholesale": await place(
            api, 3, "wholesale_market", "320303", "雨润农副产品批发市场", "Yurun Wholesale Market"
        ),
        "stall": await place(api, 4, "wet_market", "320302", "鼓楼菜市场", "Gulou Wet Market"),
    }
    await api.post(
        "/api/v1/admin/operators",
        {"node": nodes["stall"]["code"], "code": "A-012", "name": "王记鲜肉", "stall_no": "A-012"},
    )
    homes = {k: tmp_path / f"station-{k}" for k in nodes}
    creds = {k: await enrolled(api, homes[k], nodes[k], f"{k} station") for k in ("farm", "slaughter", "wholesale")}
    creds["stall"] = await enrolled(api, homes["stall"], nodes["stall"], "A-012 秤", operator="A-012")

    # The farm's lot, with its origin and the quarantine certificate that travels with the pigs.
    opened = await api.post(
        "/api/v1/batches",
        {
            "eventID": str(uuid.uuid4()),
            "product": "21111001",
            "quantity": {"value": 460, "uom": "KGM"},
            "origin": {"area_code": "320321", "place": "丰县", "producer": "丰润生猪养殖合作社"},
            "documents": [{"type": "quarantine_certificate", "number": "Q3203210001"}],
        },
        creds["farm"],
    )
    pigs = opened["traceCode"]
    await hop(homes, nodes, pigs, "farm", "slaughter")
    made = await api.post(
        "/api/v1/transformations",
        {
            "eventID": str(uuid.uuid4()),
            "bizStep": "commissioning",
            "inputs": [{"traceCode": pigs, "quantity": {"value": 460, "uom": "KGM"}}],
            "outputs": [
                {
                    "product": "21113011",
                    "quantity": {"value": 160, "uom": "KGM"},
                    "documents": [{"type": "meat_inspection_certificate", "number": "M3203110001"}],
                }
            ],
        },
        creds["slaughter"],
    )
    carcass = made["outputs"][0]["traceCode"]
    await hop(homes, nodes, carcass, "slaughter", "wholesale")
    await hop(homes, nodes, carcass, "wholesale", "stall")

    # The sale at the stall prints a receipt; its QR code is read back from the printed image.
    stall = homes["stall"]
    code, out, err = await station(
        stall, "receipt", "--source", carcass, "--weight", "1斤", "--price", "16", "--price-unit", "斤"
    )
    assert code == 0 and "✓ 已售" in out, out + err
    (printed,) = receipts(stall)
    with Image.open(printed) as image:
        (url,) = [r.text for r in zxingcpp.read_barcodes(image.convert("L")) if r.valid]
    assert url.startswith(f"{server.url}/t/")
    receipt = CODE.findall(url)[0]
    await station(stall, "sync", "--timeout", "30")

    context, phone = await new_page(browser)
    try:
        await phone.goto(url)
        assert (await first_block(phone)).startswith("可放心食用")
        main = phone.locator("main")
        await expect(main).to_contain_text("丰润生猪养殖合作社")  # the farm
        await expect(main).to_contain_text("Q3203210001")  # the quarantine certificate from the farm
        await expect(main).to_contain_text("M3203110001")  # the meat inspection certificate
        await expect(phone.locator("section.vendor")).to_contain_text("王记鲜肉")  # the stall
        await expect(main).to_contain_text("徐州肉联厂")
        await expect(main).to_contain_text("雨润农副产品批发市场")
        badge = phone.locator("#badge")
        await expect(badge).to_have_attribute("data-state", "ok", timeout=30_000)
        await expect(badge).to_contain_text("已核验")

        # A regulator recalls the farm's lot: the receipt the shopper holds says so first.
        regulator = await api.post("/api/v1/admin/tokens", {"role": "regulator", "name": "徐州市市场监督管理局"})
        await api.post(
            "/api/v1/recalls", {"traceCode": pigs, "level": "I", "reason": "瘦肉精"}, regulator["credential"]
        )
        await phone.goto(url)
        assert (await first_block(phone)).startswith("已召回，请勿食用")
        await expect(phone.locator("#verdict")).to_contain_text("召回原因：瘦肉精")
        await expect(phone.locator("#badge")).not_to_contain_text("已核验")
        await expect(phone.locator("body")).not_to_contain_text("可放心食用")
        assert urlsplit(phone.url).path == f"/t/{receipt}"
    finally:
        await context.close()

    # The stall's station refuses to sell from the carcass: online (it asks the server) ...
    sell = ("run", "--mode", "sell", "--product", "21113011", "--price", "30", "--flush-timeout", "2")
    code, out, err = await station(stall, *sell, stdin=f"{carcass}\n0.5kg\n")
    assert "\a✗ 请勿销售：" in out and "已召回，请勿食用" in out and "✓ 已售" not in out, out + err
    code, out, err = await station(stall, "sync", "--timeout", "30")
    assert code == 0, out + err
    code, out, err = await station(stall, "status")
    assert "停售清单" in out and "召回" in out, out
    # ... and offline, after that sync.
    server.stop()
    code, out, err = await station(stall, *sell, stdin=f"{carcass}\n0.5kg\n")
    assert "\a✗ 请勿销售：" in out and "已召回，请勿食用" in out and "✓ 已售" not in out, out + err
    code, out, err = await station(stall, "receipt", "--source", carcass, "--weight", "0.5kg", "--no-upload")
    assert code == 1 and "\a✗ 请勿销售：" in out, out + err
    assert receipts(stall) == [printed]  # nothing more was printed
