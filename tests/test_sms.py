"""The SMS webhook as a gateway calls it: a code in, one message out, the secret checked, a flood refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from tests.conftest import World
from tests.test_federation import NANJING, OWN, member, signer_file, write
from tests.web.conftest import leased_code, pork_chain
from tests.web.test_verdict import FULL_WIDTH, box, drug_lot, failed_cabbage
from traceability import i18n
from traceability.config import Settings
from traceability.domain import sms, tracecode
from traceability.http.app import create_app

SECRET = "s3cret-of-the-gateway-42"
URL = "/api/v1/sms/inbound"
SHOPPER = "13812345678"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The suite's settings with the gateway's secret set (the webhook is off without one)."""
    return Settings.from_env(
        {"TRACE_SMS_SECRET": SECRET}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )


async def text(world: World, content: str, sender: str = SHOPPER, **more: str) -> str:
    """Post a text the way most gateways do (form-encoded), and return the reply."""
    resp = await world.client.post(
        URL, data={"from": sender, "content": content, **more}, headers={"X-SMS-Secret": SECRET}
    )
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.content_type == "text/plain"
    assert sms.length(body) <= sms.limit(body)
    return body


def test_reading_a_text_and_fitting_one_message() -> None:
    zh = i18n.words("zh")
    fixed = (
        zh("sms_help"),
        zh("sms_unknown", code="0" * 20),
        zh("sms_check_bad", code="0" * 20),
        zh("sms_digits", n=19),
    )
    assert all(len(m) <= sms.UCS2_LIMIT - sms.MAX_RESERVE for m in fixed)  # room left for a carrier signature
    q = sms.read_query("查询 ３２０３ 1100-0000 0000 0010")
    assert (q.code, q.lang) == ("32031100000000000010", "zh")
    assert sms.read_query("32031100000000000010 EN").lang == "en"
    assert sms.read_query("token 1234").digits == "1234" and sms.read_query("你好").digits is None
    assert sms.mask("13812345678") == "138****5678" and "12345678" not in sms.mask("+8613812345678")
    assert sms.gsm_text("王记鲜肉 A-012，泉山") == "Wang Ji Xian Rou A-012, Quan Shan"
    assert sms.length("a€") == 3 and sms.limit("a€") == 160 and sms.limit("猪") == 70
    fitted = sms.fit(
        lambda p: f"已召回，请勿食用（{p['why']}）{p['product']}", {"why": "瘦" * 90, "product": "白条猪肉"}, ["why"]
    )
    assert fitted.startswith("已召回，请勿食用（瘦") and fitted.endswith("…）白条猪肉") and len(fitted) == 70


async def test_a_normal_code_a_recalled_one_and_a_drug_box(
    world: World, aiohttp_client: Any, settings: Settings
) -> None:
    code = await pork_chain(world)
    reply = await text(world, f"查询 {tracecode.pretty(code).translate(FULL_WIDTH)}")
    assert reply.startswith("可放心食用。白条猪肉，产地") and "丰县" in reply
    assert "王记鲜肉 A-012号摊" in reply and reply.endswith(f"尾号{code[-4:]}")
    assert "24.6" not in reply and "CNY" not in reply  # the wholesale price is sealed, never told
    english = await text(world, f"{code} EN")
    assert english.startswith("Safe to eat. Pork carcass, from") and "Wang Ji Xian Rou stall A-012" in english
    assert sms.is_gsm(english) and len(english) <= 160 and english.endswith(f"Code ...{code[-4:]}")

    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "局"}, expect=201)
    await world.post(
        "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, regulator["credential"], expect=201
    )
    recalled = await text(world, code)
    assert recalled.startswith("已召回，请勿食用（召回原因：瘦肉精）。白条猪肉") and len(recalled) <= 70
    # A gateway that signs every reply (【徐州市追溯平台】, 10 characters and brackets) leaves 58 for the answer.
    signed = await aiohttp_client(create_app(dataclasses.replace(settings, sms_reserve=sms.MAX_RESERVE)))
    resp = await signed.post(URL, data={"from": SHOPPER, "content": code}, headers={"X-SMS-Secret": SECRET})
    shorter = await resp.text()
    assert len(recalled) > 58 >= len(shorter) and shorter.startswith("已召回，请勿食用（召回原因：瘦肉精）。白条猪肉")
    assert shorter.endswith(f"尾号{code[-4:]}")
    await signed.close()
    resp = await world.client.post(
        URL + "?format=json",
        json={"mobile": 8613812345678, "content": code, "timestamp": 1764547200},
        headers={"X-SMS-Secret": SECRET},
    )
    found = await resp.json()
    assert resp.status == 200 and found["state"] == "recalled" and found["outcome"] == "verdict"
    assert found["traceCode"] == code and found["limit"] == 70 and found["length"] == len(found["reply"])

    cabbage = await failed_cabbage(world)
    assert (await text(world, cabbage)).startswith("检测不合格，已暂扣（克百威）。大白菜")
    assert (await text(world, f"EN {cabbage}")).startswith("Failed its test: on hold (carbofuran). Da Bai Cai")
    stale = await world.open_batch(produced_on="2026-01-01", expires_on="2026-01-04")
    assert (await text(world, stale)).startswith("已过保质期（保质期至2026-01-04）。白条猪肉")

    await drug_lot(world)
    dispensed = await text(world, box(100, 7))
    assert dispensed.startswith("可放心使用（此盒已售出过，谨防回流药）。阿莫西林胶囊")
    assert (await text(world, box(100, 8))).startswith("可放心使用。阿莫西林胶囊")


async def test_syncing_unknown_mistyped_and_no_code(world: World, superuser: asyncpg.Connection) -> None:
    await pork_chain(world)
    leased = await leased_code(superuser, 7)
    syncing = await text(world, leased)
    assert syncing.startswith("记录正在同步，请稍后再查") and "market 节点，王记鲜肉 A-012号摊" in syncing
    assert (await text(world, leased, lang="en")).endswith("belongs to market node, Wang Ji Xian Rou stall A-012")

    unknown = tracecode.make("320311", 999_999)
    assert (await text(world, unknown)) == f"未找到追溯码{unknown}，请核对小票后重发；刚售出的商品可能稍后才能查到"
    mistyped = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    assert "有一位数字不对" in await text(world, mistyped)
    assert (await text(world, "3203 1100 0000")) == "追溯码为20位数字，您发来的是12位，请核对后重发"
    assert (await text(world, "你好")).startswith("请发送小票上的20位追溯码")
    assert (await text(world, "hello en")).startswith("Send the 20-digit trace code")


async def test_the_secret_the_fields_and_a_flood_from_one_sender(
    world: World, aiohttp_client: Any, settings: Settings
) -> None:
    code = await pork_chain(world)
    client = world.client
    for headers in ({}, {"X-SMS-Secret": SECRET[:-1] + "x"}, {"X-SMS-Secret": SECRET + "x"}):
        resp = await client.post(URL, data={"from": SHOPPER, "content": code}, headers=headers)
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
    off = await aiohttp_client(create_app(dataclasses.replace(settings, sms_secret=None)))
    resp = await off.post(URL, data={"from": SHOPPER, "content": code}, headers={"X-SMS-Secret": SECRET})
    assert resp.status == 404  # no secret configured: never open
    await off.close()

    ok = {"X-SMS-Secret": SECRET}
    for body, field in (
        ({"from": SHOPPER, "content": code, "price": "1"}, "price"),
        ({"from": "call me", "content": code}, "from"),
        ({"from": SHOPPER, "mobile": "13900000000", "content": code}, "from"),
        ({"from": SHOPPER}, "content"),
    ):
        resp = await client.post(URL, data=body, headers=ok)
        assert resp.status == 422 and (await resp.json())["error"]["field"] == field, body

    with capture_logs() as logs:
        statuses = []
        for _ in range(sms.SENDER_BURST + 3):
            resp = await client.post(URL, data={"from": "13900001111", "content": code}, headers=ok)
            statuses.append(resp.status)
        assert resp.headers["Retry-After"] and (await resp.json())["error"]["code"] == "too_many_requests"
    assert statuses == [200] * sms.SENDER_BURST + [429] * 3
    assert await text(world, code, sender="13900002222")  # another sender is not held up
    seen = repr(logs)
    assert "139****1111" in seen and "13900001111" not in seen and SECRET not in seen
    assert sum(1 for e in logs if e["event"] == "sms.limited") == 3


async def test_another_citys_code_is_sent_to_its_own_ledger(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    """In a federation, a code a member ledger of another city issued: the SMS and the kiosk say where to ask."""
    own = signer_file(tmp_path, OWN)
    path = write(
        tmp_path / "federation.json",
        {"members": [member(OWN, "http://trace.test", ["3203"], own), member(NANJING, "http://nj.test", ["3201"])]},
    )
    env = {"TRACE_FEDERATION": str(path), "TRACE_SMS_SECRET": SECRET}
    settings = Settings.from_env(env, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test")
    client = await aiohttp_client(create_app(settings))
    code = tracecode.make("320102", 42)
    resp = await client.post(URL, data={"from": SHOPPER, "content": code}, headers={"X-SMS-Secret": SECRET})
    reply = await resp.text()
    assert (
        resp.status == 200 and reply == f"此码（尾号{code[-4:]}）由nj.test登记，请到该平台查询：http://nj.test/t/{code}"
    )
    assert len(reply) <= sms.UCS2_LIMIT
    twin = await (await client.get("/kiosk", params={"code": code, "format": "json"})).json()
    assert twin["outcome"] == "elsewhere" and twin["home"]["url"] == f"http://nj.test/t/{code}"
    page = await (await client.get("/kiosk", params={"code": code})).text()
    assert "此码由其他城市登记" in page and "<svg" in page
    await client.close()
