"""The station refuses before it prints: recalled, held or expired goods, online (it asks the server) and
offline (its stop list, refreshed on every sync); a sale the server refuses later is shown and flagged.
Real ``trace-scan`` processes against the real server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import asyncpg

from scanners.modes import Counter
from scanners.station import Station
from tests.scanners.conftest import Live
from tests.scanners.test_station import enrolled
from tests.servers import run_station as run
from traceability.domain.scans import Quantity

SELL = ("run", "--mode", "sell", "--product", "21113011", "--price", "30", "--flush-timeout", "1")


def commissioned(st: Station, kg: str = "5", **extra: str) -> str:
    """A batch of pork the stall opened itself (queued; uploaded at the next sync)."""
    amount = Decimal(kg)
    outcome = Counter(st.store, "commission", product="21113011").commission(Quantity(amount, "kg", amount), **extra)
    assert outcome.ok and outcome.trace_code is not None, outcome.message
    return outcome.trace_code


def receipts(home: Path) -> int:
    return len(list((home / "prints").glob("receipt-*.png")))


def queued(st: Station) -> int:
    return int(st.store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


async def recall(live: Live, code: str) -> None:
    status, regulator = await live.call("POST", "/api/v1/admin/tokens", {"role": "regulator", "name": "市监局"})
    assert status == 201, regulator
    status, body = await live.call(
        "POST", "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, token=regulator["credential"]
    )
    assert status == 201, body


async def test_online_the_station_asks_the_server_and_refuses_recalled_goods(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    source = commissioned(st)
    assert await st.sync(within=20)
    code, out, err = await run(home, "receipt", "--source", source, "--weight", "0.5kg", "--price", "30")
    assert code == 0 and receipts(home) == 1, out + err  # before the recall: sold and printed
    await recall(live, source)
    before = queued(st)
    code, out, err = await run(home, *SELL, stdin=f"{source}\n0.5kg\n")
    assert code == 0, err
    assert "\a✗ 请勿销售：" in out and "已召回，请勿食用（召回原因：瘦肉精" in out, out
    assert "Do not sell" in out and "Recalled: do not eat" in out and "✓" not in out
    code, out, err = await run(home, "receipt", "--source", source, "--weight", "0.5kg", "--price", "30")
    assert code == 1 and "\a✗ 请勿销售：" in out, out + err
    code, out, err = await run(home, "run", "--mode", "receive", "--flush-timeout", "1", stdin=f"{source}\n")
    assert "\a✗ 请勿进货：" in out and "Do not receive" in out, out + err
    assert receipts(home) == 1 and queued(st) == before  # nothing printed, nothing queued


async def test_offline_after_a_sync_the_stop_list_refuses_recalled_and_expired_goods(
    live: Live, tmp_path: Path
) -> None:
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    pork = commissioned(st)
    stale = commissioned(st, "3", produced_on="2026-01-01", expires_on="2026-01-04")
    fresh = commissioned(st, "2", expires_on=(dt.date.today() + dt.timedelta(days=3)).isoformat())
    assert await st.sync(within=20)
    await recall(live, pork)
    code, out, err = await run(home, "sync", "--timeout", "20")
    assert code == 0, out + err
    code, out, err = await run(home, "status")
    assert "停售清单" in out and "召回 1" in out and "截至" in out, out
    await live.stop()  # the market's network is down
    before = queued(st)
    code, out, err = await run(home, *SELL, stdin=f"{pork}\n0.5kg\n")
    assert "\a✗ 请勿销售：" in out and "已召回，请勿食用" in out and "✓ 已售" not in out, out + err
    code, out, err = await run(home, *SELL, stdin=f"{stale}\n0.5kg\n")
    assert "\a✗ 请勿销售：" in out and "已过保质期（保质期至 2026-01-04）" in out, out + err
    assert receipts(home) == 0 and queued(st) == before  # nothing printed, nothing queued
    # Goods that are fine still sell offline, and print.
    code, out, err = await run(home, *SELL, "--no-upload", stdin=f"{fresh}\n0.5kg\n")
    assert "✓ 已售" in out and receipts(home) == 1, out + err
    code, out, err = await run(home, "status")
    assert "停售清单" in out and "召回 1" in out, out


async def test_a_sale_the_server_refuses_later_is_shown_and_flagged(live: Live, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "stall"
    st, _ = await enrolled(live, home)
    pork = commissioned(st)
    assert await st.sync(within=20)  # the list says nothing against this pork
    await recall(live, pork)
    # Sold without asking (the network was down at the counter), then uploaded after the recall.
    code, out, err = await run(home, *SELL, "--no-upload", stdin=f"{pork}\n0.5kg\n")
    assert code == 0 and "✓ 已售" in out and receipts(home) == 1, out + err
    _, out, err = await run(home, "sync", "--timeout", "20")
    assert "\a✗ 服务器拒收 sale" in err and "该批次已召回" in err, out + err
    _, out, _ = await run(home, "status")
    assert "请勿销售：该批次已召回" in out, out
    conn = await asyncpg.connect(db_url)
    try:
        kinds = await conn.fetch(
            "SELECT a.kind, a.facts FROM anomalies a JOIN batches b ON b.id = a.batch_id WHERE b.trace_code = $1",
            pork,
        )
    finally:
        await conn.close()
    flagged = [k for k in kinds if k["kind"] == "sold_while_recalled"]
    assert len(flagged) == 1 and '"refused": true' in flagged[0]["facts"]
