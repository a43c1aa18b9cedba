"""The verdict a consumer page opens with, its JSON twin and route, drug pages and drug box codes."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.test_receipts import sale
from tests.web.conftest import pork_chain
from traceability.domain import tracecode

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
AMOXICILLIN = "8690123"


async def verdict(world: World, code: str) -> dict[str, Any]:
    resp = await world.client.get(f"/api/v1/batches/{code}/verdict")
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def failed_cabbage(world: World) -> str:
    """Napa cabbage that failed its pesticide test at the market that holds it."""
    code = await world.open_batch("market", product="22101001", produced_on="2026-11-20", expires_on="2027-01-01")
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "inspecting",
            disposition="non_conformant",
            attributes={
                "test": "pesticide_residue",
                "analyte": "克百威 (carbofuran)",
                "value": "0.086",
                "limit": "0.02",
                "unit": "mg/kg",
                "result": "fail",
            },
        ),
        world.devices["market"],
        expect=201,
    )
    return code


def box(lot_no: int, n: int) -> str:
    """A 20-digit drug trace code: drug, lot, box, and a check our Damm digit need not match."""
    body = f"{AMOXICILLIN}{lot_no:06d}{n:06d}"
    return body + str(sum(int(c) for c in body) % 10)


async def drug_lot(world: World) -> str:
    """A lot of amoxicillin made, shipped to a pharmacy, received, and one box dispensed."""
    await world.add_node("maker", "drug_manufacturer", "320312")
    await world.add_node("pharmacy", "pharmacy", "320302")
    await world.post(
        "/api/v1/admin/products",
        {"category": "drug", "goods_code": "86901231", "name": "阿莫西林胶囊", "name_en": "Amoxicillin capsules"},
        expect=201,
    )
    code = await world.open_batch(
        "maker",
        product="86901231",
        quantity={"value": 400, "uom": "XBX"},
        produced_on="2026-10-01",
        expires_on="2028-09-30",
        identifiers=[{"scheme": "drug_code", "value": box(100, 0)}],
        attributes={
            "approval_number": "国药准字H32020458",
            "drug_identity_code": AMOXICILLIN,
            "package_spec": "0.25g×24粒/盒",
            "strength": "0.25g",
            "lot": "26100101",
            "boxes_from": box(100, 1),
            "boxes_to": box(100, 600),
        },
    )
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "shipping",
            disposition="in_transit",
            quantity={"value": 40, "uom": "XBX"},
            destination={"enterprise": world.enterprises["pharmacy"], "node": world.nodes["pharmacy"]},
        ),
        world.devices["maker"],
        expect=201,
    )
    pharmacy = world.devices["pharmacy"]
    await world.post(
        "/api/v1/events",
        world.event(code, "receiving", disposition="active", quantity={"value": 40, "uom": "XBX"}),
        pharmacy,
        expect=201,
    )
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "dispensing",
            disposition="dispensed",
            quantity={"value": 1, "uom": "XBX"},
            attributes={"serial": box(100, 7)},
        ),
        pharmacy,
        expect=201,
    )
    return code


async def test_verdict_route_and_page_say_safe_recalled_held_and_expired(world: World) -> None:
    pork = await pork_chain(world)
    ok = await verdict(world, pork)
    assert ok["state"] == "ok" and ok["headline"] == {"zh": "可放心食用", "en": "Safe to eat"}
    assert ok["recall"] is None and ok["failed_test"] is None
    page = await (await world.client.get(f"/t/{pork}")).text()
    assert page.index("可放心食用") < page.index("白条猪肉</h1>")  # the verdict comes first
    english = await (await world.client.get(f"/t/{pork}", headers={"Accept-Language": "en"})).text()
    assert "Safe to eat" in english and "slaughter node" in english and "slaughter 节点" not in english
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": pork, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    recalled = await verdict(world, pork)
    assert recalled["state"] == "recalled" and recalled["headline"]["zh"] == "已召回，请勿食用"
    assert recalled["headline"]["en"] == "Recalled: do not eat"
    assert recalled["recall"]["reason"] == "瘦肉精" and recalled["since"]
    assert "召回原因：瘦肉精" in recalled["detail"]["zh"]
    twin = await (await world.client.get(f"/t/{pork}?format=json")).json()
    assert twin["verdict"]["state"] == "recalled"

    cabbage = await failed_cabbage(world)
    held = await verdict(world, cabbage)
    assert held["state"] == "on_hold" and held["headline"]["zh"] == "检测不合格，已暂扣"
    assert held["detail"]["zh"] == "克百威 0.086 mg/kg，限量 0.02"
    assert held["detail"]["en"] == "carbofuran 0.086 mg/kg, limit 0.02"
    page = await (await world.client.get(f"/t/{cabbage}")).text()
    assert "克百威 0.086 mg/kg，限量 0.02" in page and "None" not in page
    english = await (await world.client.get(f"/t/{cabbage}", headers={"Accept-Language": "en"})).text()
    assert "Failed its test: on hold" in english and "carbofuran 0.086 mg/kg, limit 0.02" in english
    assert "克百威" not in english.split('id="verdict"')[1].split("</div>")[0]

    stale = await world.open_batch(produced_on="2026-01-01", expires_on="2026-01-04")
    expired = await verdict(world, stale)
    assert expired["state"] == "expired" and expired["headline"]["zh"] == "已过保质期"
    assert expired["detail"]["zh"] == "保质期至 2026-01-04"

    resp = await world.client.get(f"/api/v1/batches/{tracecode.make('320311', 999_999)}/verdict")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await world.client.get("/api/v1/batches/123/verdict")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_trace_code"


async def test_a_receipt_says_what_its_source_says(world: World) -> None:
    """A receipt cut from a batch takes that batch's verdict: its expiry, then its recall."""
    pork = await pork_chain(world)
    source = await world.open_batch("market", quantity={"value": 5, "uom": "KGM"}, expires_on="2099-12-31")
    sold = await world.post("/api/v1/sales", sale(source, 1.25, hours=0.1), world.devices["market"], expect=201)
    receipt = sold["traceCode"]
    found = await verdict(world, receipt)
    assert found["state"] == "ok" and found["expires_on"] == "2099-12-31"
    assert found["detail"]["zh"] == "保质期至 2099-12-31"
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": source, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    found = await verdict(world, receipt)
    assert found["state"] == "recalled" and found["recall"]["reason"] == "瘦肉精"
    assert found["recall"]["source"] == source and found["headline"]["zh"] == "已召回，请勿食用"
    assert (await verdict(world, pork))["state"] == "ok"  # the other batch is not touched


async def test_drug_page_shows_the_box_facts_and_finds_a_box_by_its_code(world: World) -> None:
    lot = await drug_lot(world)
    found = await verdict(world, lot)
    assert found["headline"] == {"zh": "可放心使用", "en": "Safe to use"}
    assert found["detail"]["zh"] == "有效期至 2028-09-30"
    page = await (await world.client.get(f"/t/{lot}")).text()
    for text in (
        "批准文号",
        "国药准字H32020458",
        "规格",
        "0.25g×24粒/盒",
        "批号",
        "26100101",
        "有效期至",
        "2028-09-30",
    ):
        assert text in page, text
    english = await (await world.client.get(f"/t/{lot}", headers={"Accept-Language": "en"})).text()
    assert "Amoxicillin capsules" in english and "Approval number" in english and "Safe to use" in english
    # A box never dispensed, typed with full-width digits from a Chinese input method.
    fresh = box(100, 8)
    resp = await world.client.get("/t", params={"code": fresh.translate(FULL_WIDTH)})
    assert resp.status == 200 and resp.url.path == f"/t/{lot}" and resp.url.query["unit"] == fresh
    page = await resp.text()
    assert f"这一盒（{fresh}）属于本批次，尚无售出记录" in page
    # The box the pharmacy dispensed, opened as if scanned into the address.
    sold = box(100, 7)
    resp = await world.client.get(f"/t/{sold}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/t/{lot}?unit={sold}"
    page = await (await world.client.get(resp.headers["Location"])).text()
    assert f"这一盒（{sold}）已于" in page and "pharmacy 节点售出" in page and "回流药" in page
    twin = await (await world.client.get(f"/t/{lot}?unit={sold}&format=json")).json()
    assert twin["unit"]["dispensed"]["node"] == "pharmacy 节点" and twin["drug"]["lot"] == "26100101"
    # A code of no lot at all is still "not found", not an error.
    resp = await world.client.get("/t", params={"code": box(999, 1)})
    assert resp.status in (400, 404) and "Traceback" not in await resp.text()


async def test_full_width_digits_open_the_page(world: World) -> None:
    pork = await pork_chain(world)
    resp = await world.client.get("/t", params={"code": pork.translate(FULL_WIDTH)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/t/{pork}"
    resp = await world.client.get(f"/t/{pork.translate(FULL_WIDTH)}", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"].endswith(f"/t/{pork}")
