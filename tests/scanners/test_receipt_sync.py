"""A stall's receipt printed offline: "registered to this stall, syncing" until its record arrives, then the
whole journey of the batch it was cut from; and a queue from before sales were one record still uploads."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from scanners.modes import Counter
from scanners.queue import Store
from scanners.station import Station
from tests.conftest import make_uscc
from tests.scanners.conftest import Live
from tests.scanners.test_station import decode, enrolled
from traceability.domain.scans import Quantity


async def page(live: Live, code: str) -> tuple[int, dict[str, Any], str]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{live.url}/t/{code}?format=json") as resp:
            data = await resp.json()
            status = resp.status
        async with s.get(f"{live.url}/t/{code}") as resp:
            html = await resp.text()
    return status, data, html


async def slaughtered_and_shipped(live: Live, market_node: str) -> str:
    """A carcass opened at a slaughterhouse (origin, quarantine and meat inspection certificates) and shipped
    to the market, as the slaughterhouse's own scanner records it."""
    uscc = make_uscc(77)
    status, _ = await live.call("POST", "/api/v1/admin/enterprises", {"name": "彭城肉联厂", "uscc": uscc})
    assert status == 201
    status, node = await live.call(
        "POST",
        "/api/v1/admin/nodes",
        {"enterprise": uscc, "type": "slaughterhouse", "area_code": "320311", "name": "彭城肉联厂"},
    )
    assert status == 201, node
    status, device = await live.call("POST", "/api/v1/admin/devices", {"node": node["code"], "name": "kill line"})
    assert status == 201
    token = device["credential"]
    when = datetime.now(UTC) - timedelta(hours=6)
    status, opened = await live.call(
        "POST",
        "/api/v1/batches",
        {
            "eventID": str(uuid.uuid4()),
            "product": "21113011",
            "quantity": {"value": 88.5, "uom": "KGM"},
            "eventTime": when.isoformat(),
            "origin": {"area_code": "320321", "place": "丰县", "producer": "丰县生猪养殖场"},
            "documents": [
                {"type": "quarantine_certificate", "number": "Q3203210042"},
                {"type": "meat_inspection_certificate", "number": "M3203110042"},
            ],
        },
        token=token,
    )
    assert status == 201, opened
    code = str(opened["traceCode"])
    status, _ = await live.call(
        "POST",
        "/api/v1/events",
        {
            "eventID": str(uuid.uuid4()),
            "traceCode": code,
            "bizStep": "shipping",
            "disposition": "in_transit",
            "eventTime": (when + timedelta(hours=1)).isoformat(),
            "destination": {"node": market_node},
        },
        token=token,
    )
    assert status == 201
    return code


async def test_a_receipt_printed_offline_says_syncing_then_shows_the_whole_journey(live: Live, tmp_path: Path) -> None:
    st, reg = await enrolled(live, tmp_path / "st")
    carcass = await slaughtered_and_shipped(live, reg["node"]["code"])
    assert Counter(st.store, "receive").handle(carcass).ok  # the stall receives it at its scale
    assert await st.sync(within=20)
    await live.stop()  # the network goes away
    counter = Counter(
        st.store, "sell", product="21113011", unit_price=Decimal("32"), source=carcass, print_dir=tmp_path / "p"
    )
    sold = counter.handle("0.85kg")
    assert sold.ok and sold.printed, sold.message
    receipt = str(sold.trace_code)
    assert decode(Path(sold.printed[0])) == [f"https://trace.example.cn/t/{receipt}"]
    await live.start()  # back, but the station has not synced yet
    status, data, html = await page(live, receipt)
    assert status == 200 and data["syncing"] is True and data["lease"]["operator"]["stallNo"] == "A-012"
    assert "王记鲜肉" in html and "丰县生猪养殖场" not in html
    assert await st.sync(within=20)
    status, data, html = await page(live, receipt)
    assert status == 200 and "syncing" not in data
    stops = data["journey"]
    assert stops[0]["kind"] == "origin" and stops[0]["name"] == "丰县生猪养殖场"
    assert [s["type"] for s in stops[1:]] == ["slaughterhouse", "wet_market"]
    assert {"Q3203210042", "M3203110042"} <= {c["number"] for c in data["certificates"]}
    assert data["sale"]["quantity"] == {"value": "0.85", "uom": "KGM"} and data["sale"]["source"] == carcass
    assert data["vendor"]["stall_no"] == "A-012"
    for shown in ("丰县生猪养殖场", "Q3203210042", "王记鲜肉", "0.85"):
        assert shown in html, shown


async def test_a_queue_from_before_sales_were_one_record_still_uploads(live: Live, tmp_path: Path) -> None:
    """A station upgraded with sales queued the old way (an opening naming its source, then the sale event):
    its queue is rebuilt to admit the new kind, the old rows upload, and the receipt is linked to its source."""
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    twenty = Quantity(Decimal(20), "kg", Decimal(20))
    source = Counter(st.store, "commission", product="21113011").commission(twenty)
    code = st.store.record(
        [
            ("open", _old_opening(str(source.trace_code))),
            ("event", _old_sale(str(source.trace_code))),
        ],
        issue_code=True,
    )
    st.store.close()
    # Put the queue back as a station before this change made it: the outbox admitted openings and events only.
    db = sqlite3.connect(home / "station.db")
    rows = db.execute("SELECT * FROM outbox").fetchall()
    db.executescript(
        "DROP TABLE outbox; CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL "
        "CHECK (kind IN ('open', 'event')), event_id TEXT NOT NULL UNIQUE, trace_code TEXT NOT NULL, body TEXT NOT "
        "NULL, created_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', "
        "'refused')), attempts INTEGER NOT NULL DEFAULT 0, sent_at TEXT, receipt TEXT, error TEXT);"
    )
    db.executemany(f"INSERT INTO outbox VALUES ({', '.join('?' * len(rows[0]))})", rows)
    db.commit()
    db.close()
    store = Store(home / "station.db")
    assert [r.kind for r in store.pending(10)] == ["open", "open", "event"]
    store.close()
    again = Station(home, max_backoff=0.2)
    sale = Counter(again.store, "sell", product="21113011", source=str(source.trace_code)).handle("1kg")
    assert sale.ok, sale.message
    assert [r.kind for r in again.store.pending(10)] == ["open", "open", "event", "sale"]
    assert await again.sync(within=20)
    assert again.store.status()["refused"] == 0
    for receipt in (code, sale.trace_code):
        status, data, _ = await page(live, str(receipt))
        assert status == 200 and [b["trace_code"] for b in data["lineage"]] == [source.trace_code], data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _old_opening(source: str) -> dict[str, Any]:
    return {
        "eventID": str(uuid.uuid4()),
        "traceCode": "{code}",
        "product": "21113011",
        "quantity": {"value": "0.6", "uom": "KGM"},
        "eventTime": _now(),
        "attributes": {"soldFrom": source},
    }


def _old_sale(source: str) -> dict[str, Any]:
    return {
        "eventID": str(uuid.uuid4()),
        "traceCode": source,
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        "eventTime": _now(),
        "quantity": {"value": "0.6", "uom": "KGM"},
        "attributes": {"receiptCode": "{code}"},
    }
