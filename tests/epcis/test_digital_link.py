"""GS1 Digital Link: every label and receipt a station prints resolves to its batch's consumer page."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import orjson
import zxingcpp
from PIL import Image

from scanners.printing import LabelData, batch_label_png
from scanners.receipts import ReceiptData, receipt_png
from tests.conftest import World
from traceability.epcis import document, identifiers

BASE = "http://trace.test"
GTIN = "06901234567892"


def decoded(png: bytes) -> str:
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    return str(found.text)


async def follow(world: World, url: str) -> tuple[int, str]:
    assert url.startswith(BASE)
    resp = await world.client.get(url[len(BASE) :], allow_redirects=False)
    return resp.status, resp.headers.get("Location", "")


async def test_printed_labels_and_receipts_resolve_to_their_consumer_page(world: World) -> None:
    code = await world.open_batch(product="22101001", identifiers=[{"scheme": "gs1", "gtin": GTIN, "lot": "PK2405"}])
    label = LabelData(
        code, "大白菜", dt.date(2026, 11, 20), "彭城肉联厂", BASE, gtin=GTIN, expiry=dt.date(2026, 12, 31)
    )
    url = decoded(batch_label_png(label))
    assert url == f"{BASE}/01/{GTIN}/10/{code}?17=261231"
    assert await follow(world, url) == (307, f"{BASE}/t/{code}")
    page = await world.client.get(f"/t/{code}")
    assert page.status == 200 and code in await page.text()

    receipt = ReceiptData(
        "七里沟市场", "A-012", "大白菜", Decimal("1.25"), Decimal("3.2"), dt.datetime(2026, 11, 21, 9), code, BASE
    )
    assert decoded(receipt_png(receipt)) == f"{BASE}/t/{code}"
    assert (await world.client.get(f"/t/{code}")).status == 200

    # The batch's own GTIN + lot, as any GS1 Digital Link, with its data attributes in the query.
    for link in (f"{BASE}/01/{GTIN}/10/PK2405", f"{BASE}/01/{GTIN}/10/PK2405?17=261231&3103=001250"):
        assert await follow(world, link) == (307, f"{BASE}/t/{code}")


async def test_link_types_and_the_resolver_description(world: World) -> None:
    code = await world.open_batch(product="22101001", identifiers=[{"scheme": "gs1", "gtin": GTIN, "lot": "PK2405"}])
    link = f"/01/{GTIN}/10/PK2405"
    resp = await world.client.get(link, params={"linkType": "gs1:jsonView"}, allow_redirects=False)
    assert resp.headers["Location"] == f"{BASE}/api/v1/batches/{code}"
    resp = await world.client.get(link, params={"linkType": "gs1:epcis"}, allow_redirects=False)
    assert resp.status == 307
    events = await world.client.get(resp.headers["Location"][len(BASE) :])
    doc = document.loads_exact(await events.text())
    (event,) = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert event["bizStep"] == "commissioning" and event["trace:traceCode"] == code
    resp = await world.client.get(link, params={"linkType": "all"})
    linkset = orjson.loads(await resp.read())
    assert linkset["linkset"][0]["https://gs1.org/voc/pip"][0]["href"] == f"{BASE}/t/{code}"
    described = await (await world.client.get("/.well-known/gs1resolver")).json()
    assert described["resolverRoot"] == BASE and "01" in described["supportedPrimaryKeys"]


async def test_an_identifier_no_batch_carries_gets_the_friendly_page(world: World) -> None:
    resp = await world.client.get(f"/01/{GTIN}/10/NOSUCHLOT")
    assert resp.status == 404 and "text/html" in resp.headers["Content-Type"]
    assert "No batch carries this identifier" in await resp.text()
    resp = await world.client.get("/01/06901234567893/10/X")  # a wrong check digit
    assert resp.status == 404


async def test_epc_urns_and_digital_links_name_the_same_thing() -> None:
    urn = "urn:epc:id:sgtin:0614141.107346.2017"
    link = identifiers.to_digital_link(urn)
    assert link == "https://id.gs1.org/01/10614141073464/21/2017"
    assert identifiers.to_epc_urn(link) == urn
    assert identifiers.parse(urn).key == identifiers.parse(link).key == ("sgtin", "10614141073464/2017")
    lot = "urn:epc:class:lgtin:4012345.012345.998877"
    assert identifiers.to_epc_urn(identifiers.to_digital_link(lot)) == lot


async def test_the_vendor_page_takes_any_gs1_identifier_a_batch_carries(world: World, db_url: str) -> None:
    from tests.web.conftest import STALL_PIN, stall_card
    from tests.web.test_pages import csrf_of

    await world.add_node("stall", "wet_market", "320302")
    code = await world.open_batch(
        key="stall", product="22101001", identifiers=[{"scheme": "gs1", "gtin": GTIN, "lot": "PK2405"}]
    )
    client = world.client
    token = await csrf_of(client, "/vendor/login")
    card = await stall_card(db_url, world.devices["stall"])
    await client.post("/vendor/login", data={"csrf": token, "card": card, "pin": STALL_PIN})
    form = await csrf_of(client, "/vendor")
    scans = (
        f"https://id.gs1.org/01/{GTIN}/10/PK2405",  # a Digital Link from any resolver
        "urn:epc:class:lgtin:6901234.056789.PK2405",  # an EPC URN
        f"(01){GTIN}(10)PK2405",  # a GS1-128 or DataMatrix label, read as text
        f"{BASE}/01/{GTIN}/10/{code}",  # our own label
    )
    for scan in scans:
        resp = await client.post(
            "/vendor/record", data={"csrf": form, "action": "receive", "code": scan}, allow_redirects=False
        )
        assert resp.status == 303, (scan, await resp.text())
        assert resp.headers["Location"].startswith(f"/vendor/receipt/{code}")
    resp = await client.post(
        "/vendor/record", data={"csrf": form, "action": "receive", "code": "urn:epc:class:lgtin:6901234.056789.NOPE"}
    )
    assert resp.status == 422 and "没有批次带有" in await resp.text()
