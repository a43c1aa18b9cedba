"""The stall card: the station prints it with a PIN the vendor chose there; card and PIN sign in to /vendor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scanners.conftest import Live
from tests.scanners.escpos_render import print_escpos
from tests.scanners.test_counter import decode, run_cli
from tests.scanners.test_station import enrolled
from traceability import errors
from traceability.config import Settings
from traceability.domain import stations as station_format
from traceability.services import accounts
from traceability.storage.database import open_database


async def card_from_station(live: Live, home: Path, tmp_path: Path, pin: str = "250817") -> str:
    device = tmp_path / "card.bin"
    code, _, err = await run_cli(home, "printer", "set", "receipt", "--connection", f"file:{device}", "--no-test")
    assert code == 0, err
    code, out, err = await run_cli(home, "vendor-card", stdin=f"{pin}\n{pin}\n".encode())
    assert code == 0, out + err
    assert "摊位登录卡已打印" in out and "/vendor/login" in out
    paper = print_escpos(device.read_bytes())
    device.unlink()
    assert "摊位登录卡" in paper.lines and "摊位：A-012　王记鲜肉" in paper.lines
    (text,) = decode(paper.image)
    assert text.startswith("TRACE-STALL/1 tvc_") and pin not in text
    return text


async def test_a_stall_card_and_its_pin_open_a_vendor_session(live: Live, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "st"
    _, reg = await enrolled(live, home)
    card = await card_from_station(live, home, tmp_path)
    settings = Settings.from_env({}, database_url=db_url)
    async with open_database(settings) as db:
        opened = await accounts.sign_in_vendor_card(db, card, "250817", "127.0.0.1")
        assert opened.session.principal.role == "device"
        assert opened.session.principal.id == reg["device"]["id"]
        assert (await accounts.resolve(db, opened.token)) is not None
        # Wrong PINs: refused, and after five the card is locked for a while, even with the right PIN.
        for _ in range(5):
            with pytest.raises(errors.Unauthorized):
                await accounts.sign_in_vendor_card(db, card, "111112", "127.0.0.1")
        with pytest.raises(accounts.LockedOut):
            await accounts.sign_in_vendor_card(db, card, "250817", "127.0.0.1")
        # A new card for the stall: the old card and the sessions it opened stop working.
        new_card = await card_from_station(live, home, tmp_path, pin="907153")
        assert (await accounts.resolve(db, opened.token)) is None
        with pytest.raises(errors.Unauthorized, match="replaced"):
            await accounts.sign_in_vendor_card(db, card, "250817", None)
        assert (await accounts.sign_in_vendor_card(db, new_card, "907153", None)).token
        # The bare token (a barcode gun typing only part of it) is not a card; nor is anything else.
        with pytest.raises(errors.Unauthorized, match="not a stall card"):
            await accounts.sign_in_vendor_card(db, "https://trace.example.cn/t/1", "907153", None)


async def test_an_easy_pin_is_refused_at_the_station_and_by_the_server(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    code, out, _ = await run_cli(home, "vendor-card", stdin=b"123456\n123456\n")
    assert code == 1 and "不能是相同数字或顺序数字" in out
    code, out, _ = await run_cli(home, "vendor-card", stdin=b"250817\n250818\n")
    assert code == 1 and "两次输入的密码不一致" in out
    async with st.client() as c:
        answer = await c.call("POST", "/api/v1/stations/vendor-card", {"pin": "000000"})
    assert answer.status == 422 and answer.error["field"] == "pin"


def test_pins_and_card_texts() -> None:
    assert station_format.pin_problem("250817") is None
    for bad in ("12345", "1234567", "abcdef", "111111", "654321", "123456"):
        assert station_format.pin_problem(bad) is not None, bad
    token = "tvc_" + "A" * 32
    assert station_format.card_token(station_format.card_payload(token)) == token
    assert station_format.card_token(token) == token
    assert station_format.card_token("TRACE-STALL/1 tdv_secret") is None
