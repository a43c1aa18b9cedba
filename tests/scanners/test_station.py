"""The station against the real server: enrolment, signed uploads, leases, offline work, crashes, revocation."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import zxingcpp
from PIL import Image

from scanners import client as wire
from scanners.modes import Counter
from scanners.station import Station
from tests.scanners.conftest import Live, free_port
from traceability.domain import stations, tracecode
from traceability.domain.scans import Quantity

KG = Quantity(Decimal("1.25"), "kg", Decimal("1.25"))
PY = sys.executable


async def enrolled(live: Live, home: Path, key: str = "gulou", n: int = 1, **kw: Any) -> tuple[Station, dict[str, Any]]:
    reg = await live.market(key, n, stall="A-012")
    st = Station(home, max_backoff=0.2, **kw)
    await st.enrol(live.url, await live.enrolment_code(reg["device"]["id"]), blocks=2)
    return st, reg


def selling(st: Station, print_dir: Path | None = None) -> Counter:
    """A stall selling pork from a batch it commissioned (its source): enough for every test's sales, which
    may not take more than the batch holds."""
    kg = Decimal(500)
    source = Counter(st.store, "commission", product="21113011").commission(Quantity(kg, "kg", kg))
    return Counter(
        st.store,
        "sell",
        product="21113011",
        product_name="白条猪肉",
        unit_price=Decimal("32.00"),
        source=source.trace_code,
        print_dir=print_dir,
    )


def decode(path: Path) -> list[str]:
    with Image.open(path) as im:
        return [r.text for r in zxingcpp.read_barcodes(im.convert("L"))]


async def counts(db_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM events) AS events, (SELECT count(DISTINCT event_id) FROM events) AS ids, "
            "(SELECT count(*) FROM batches) AS batches, (SELECT count(*) FROM signed_uploads) AS uploads, "
            "(SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT FROM signed_upload_events u "
            "WHERE u.event_id = e.event_id)) AS unsigned"
        )
        return dict(row)
    finally:
        await conn.close()


async def until_events(db_url: str, at_least: int, within: float) -> None:
    """Poll the ledger until it holds ``at_least`` events (or ``within`` seconds pass)."""
    for _ in range(int(within / 0.02)):
        if (await counts(db_url))["events"] >= at_least:
            return
        await asyncio.sleep(0.02)


def queued(st: Station) -> int:
    s = st.store.status()
    return int(s["pending"] + s["sent"] + s["refused"])


def records(st: Station) -> int:
    """The ledger events the station's queue holds: a sale is one row, and two events (the sale on its
    source, the receipt's opening)."""
    return int(
        st.store.conn.execute("SELECT count(*) + count(*) FILTER (WHERE kind = 'sale') FROM outbox").fetchone()[0]
    )


async def test_enrol_sell_sign_and_find_the_lease(live: Live, db_url: str, tmp_path: Path) -> None:
    st, reg = await enrolled(live, tmp_path / "st")
    assert st.store.codes_left() == 2 * stations.BLOCK_SIZE
    counter = selling(st, tmp_path / "prints")
    outcome = counter.handle("1.25kg")
    assert outcome.ok and outcome.recorded == 2
    receipt = outcome.printed[0]
    # The receipt's QR opens the consumer page of the code the station issued offline.
    assert decode(receipt) == [f"https://trace.example.cn/t/{outcome.trace_code}"]
    assert await st.sync(within=20)
    c = await counts(db_url)
    assert c["events"] == 3 and c["batches"] == 2 and c["unsigned"] == 0

    # The signatures stored with the events verify again from storage alone.
    event_id = st.store.conn.execute("SELECT event_id FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()[0]
    status, sigs = await live.call("GET", f"/api/v1/admin/events/{event_id}/signatures")
    assert status == 200 and sigs["items"] and all(s["verified"] for s in sigs["items"])
    assert sigs["items"][0]["keyId"] == st.store.get("key_id")

    # Who holds a code: recorded for the sold one, "syncing" for one leased but not yet used.
    status, lease = await live.call("GET", f"/api/v1/codes/{outcome.trace_code}/lease", token="")
    assert status == 200 and lease["status"] == "recorded"
    unused = tracecode.make("320302", tracecode.serial_of(str(outcome.trace_code)) + 1)
    status, lease = await live.call("GET", f"/api/v1/codes/{unused}/lease", token="")
    assert status == 200, lease
    assert lease["status"] == "syncing" and lease["operator"]["stallNo"] == "A-012"
    assert lease["node"]["code"] == reg["node"]["code"] and lease["lastSync"] is not None
    assert "commercial" not in str(lease)
    status, body = await live.call("GET", f"/api/v1/codes/{tracecode.make('320302', 17)}/lease", token="")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await live.call("GET", "/api/v1/codes/32030212345678901234/lease", token="")
    assert status == 400 and body["error"]["code"] == "invalid_trace_code"


async def test_a_bad_scan_is_refused_at_once_and_nothing_is_recorded(live: Live, tmp_path: Path) -> None:
    st, _ = await enrolled(live, tmp_path / "st")
    counter = Counter(st.store, "receive")
    good = tracecode.make("320302", 12345)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    outcome = counter.handle(bad)
    assert not outcome.ok and "校验位" in outcome.message
    assert not counter.handle("(01)06901234567892(10)LOT1").ok  # no trace code of ours on it
    assert queued(st) == 0
    assert counter.handle("12.5kg").ok and counter.handle(good).ok
    body = st.store.pending(1)[0].body
    assert body["bizStep"] == "receiving" and body["quantity"] == {"value": "12.5", "uom": "KGM"}


async def test_offline_for_a_while_then_back_loses_and_doubles_nothing(live: Live, db_url: str, tmp_path: Path) -> None:
    st, _ = await enrolled(live, tmp_path / "st")
    counter = selling(st, tmp_path / "prints")
    assert await st.sync(within=20)
    await live.stop()  # the network goes away
    printed = []
    for i in range(40):
        o = counter.handle(f"{1 + i / 10:.1f}kg")
        assert o.ok, o.message
        printed.append(o.trace_code)
    assert not await st.sync(within=1.0)
    status = st.store.status()
    assert status["pending"] == 40 and status["oldestPending"] and status["lastError"]
    await live.start()  # back
    # Before the station syncs, a consumer scanning a receipt learns which stall holds the code.
    _, lease = await live.call("GET", f"/api/v1/codes/{printed[-1]}/lease", token="")
    assert lease["status"] == "syncing"
    assert await st.sync(within=30)
    c = await counts(db_url)
    assert c["events"] == records(st) == 81 and c["ids"] == c["events"] and c["unsigned"] == 0
    # Every acknowledgement lost (say, the station crashed after the server committed): resending is harmless.
    st.store.conn.execute("UPDATE outbox SET state = 'pending'")
    assert await st.sync(within=30)
    assert st.stats.replayed == queued(st) == 41
    assert (await counts(db_url))["events"] == 81


def _trace_scan(home: Path, *args: str, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "scanners.cli", "--home", str(home), "--max-backoff", "0.2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


async def test_station_killed_mid_upload_loses_and_doubles_nothing(live: Live, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "st"
    st, _ = await enrolled(live, home)
    counter = selling(st)
    for i in range(150):
        assert counter.handle(f"{1 + i / 100:.2f}kg").ok
    total = records(st)
    kills = 0
    for _ in range(3):
        before = (await counts(db_url))["events"]
        proc = _trace_scan(home, "--batch-size", "3", "sync")
        # Kill it while it is uploading: once the server has taken some of this run's events.
        await until_events(db_url, before + 10, within=20)
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.communicate)
        kills += proc.returncode == -signal.SIGKILL
    assert kills == 3
    assert 0 < (await counts(db_url))["events"] < total
    proc = _trace_scan(home, "sync")
    _out, err = await asyncio.to_thread(proc.communicate)
    assert proc.returncode == 0, err.decode()
    c = await counts(db_url)
    assert c["events"] == total and c["ids"] == total and c["unsigned"] == 0
    assert st.store.status()["pending"] == 0 and st.store.status()["refused"] == 0


async def test_server_restarted_while_stations_upload(live: Live, db_url: str, tmp_path: Path) -> None:
    fleet = []
    for i in range(3):
        st, _ = await enrolled(live, tmp_path / f"st{i}", key=f"m{i}", n=10 + i, batch_size=5)
        counter = selling(st)
        for j in range(60):
            assert counter.handle(f"{1 + j / 100:.2f}kg").ok
        fleet.append(st)
    await live.stop()
    # A separate server process this time, so it can be killed outright.
    port = free_port()
    env = dict(
        os.environ,
        TRACE_DATABASE_URL=db_url,
        TRACE_PORT=str(port),
        TRACE_DATA_DIR=str(live.settings.data_dir),
        TRACE_PUBLIC_URL=live.settings.public_url,
        TRACE_LOG_LEVEL="warning",
    )

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [PY, "-m", "traceability", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    for st in fleet:
        st.store.put(server=f"http://127.0.0.1:{port}")
    server = serve()
    try:
        # Bounds for a stall only: a restarted server on a loaded machine (the suite runs in several processes)
        # may take half a minute before it answers.
        uploads = asyncio.gather(*(st.sync(within=240) for st in fleet))
        await until_events(db_url, 3 * 2 + 30, within=120)
        server.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.wait)
        mid = (await counts(db_url))["events"]
        await asyncio.sleep(0.5)
        server = serve()
        assert all(await uploads)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait)
    c = await counts(db_url)
    total = sum(records(st) for st in fleet)
    assert mid < total
    assert c["events"] == total and c["ids"] == total and c["unsigned"] == 0
    assert sum(st.stats.retries for st in fleet) > 0


async def test_a_revoked_station_is_refused_and_keeps_its_scans(live: Live, db_url: str, tmp_path: Path) -> None:
    st, reg = await enrolled(live, tmp_path / "st")
    counter = selling(st)
    assert await st.sync(within=20)
    before = await counts(db_url)
    key_id = st.store.get("key_id")
    status, body = await live.call("POST", f"/api/v1/admin/station-keys/{key_id}/revoke")
    assert status == 200 and body["revoked"] == [key_id]
    assert counter.handle("2kg").ok  # the stall keeps selling and printing
    assert not await st.sync(within=1.0)
    status = st.store.status()
    assert status["pending"] == 1 and "revoked" in status["lastError"]["message"]
    assert await counts(db_url) == before
    # A new enrolment code gives the station a new key; the kept scans then upload.
    st2 = Station(tmp_path / "st-new")
    await st2.enrol(live.url, await live.enrolment_code(reg["device"]["id"]))
    async with st2.client() as c:
        ans = await c.call("GET", "/api/v1/stations/me")
    assert ans.ok and ans.data["node"]["code"] == reg["node"]["code"]


async def test_signatures_are_checked_and_the_reason_named(live: Live, tmp_path: Path) -> None:
    st, _ = await enrolled(live, tmp_path / "st")
    key = wire.load_key(st.key_path)
    key_id = st.store.get("key_id")
    body = b'{"blocks":1}'
    path = "/api/v1/stations/leases"

    def header(created: int, signed_body: bytes = body, signer: Any = key) -> dict[str, str]:
        msg = stations.signing_string("POST", path, created, hashlib.sha256(signed_body).digest())
        return {
            "Authorization": stations.authorization(key_id, created, signer.sign(msg)),
            "Content-Type": "application/json",
        }

    now = int(time.time())
    status, ok = await live.call("POST", path, headers=header(now), data=body)
    assert status == 201 and ok["blocks"][0]["size"] == stations.BLOCK_SIZE
    cases = [
        (header(now, b'{"blocks":9}'), "does not verify"),
        (header(now, signer=wire.generate_key()), "does not verify"),
        (header(now - 3600), "behind the server's clock"),
        ({"Authorization": 'Signature keyId="st_00",created=1,signature="x"'}, "keyId"),
    ]
    for headers, reason in cases:
        status, err = await live.call("POST", path, headers=headers, data=body)
        assert status == 401 and reason in err["error"]["message"], err
    # Signed requests write only where the signature is kept.
    ev = b'{"eventID":"%s","traceCode":"32030250000000000000","bizStep":"receiving"}' % str(uuid.uuid4()).encode()
    msg = stations.signing_string("POST", "/api/v1/events", now, hashlib.sha256(ev).digest())
    status, err = await live.call(
        "POST",
        "/api/v1/events",
        data=ev,
        headers={
            "Authorization": stations.authorization(key_id, now, key.sign(msg)),
            "Content-Type": "application/json",
        },
    )
    assert status == 403 and "/api/v1/stations/" in err["error"]["message"]


async def test_key_rotation_and_one_time_codes(live: Live, tmp_path: Path) -> None:
    st, reg = await enrolled(live, tmp_path / "st")
    old = wire.load_key(st.key_path)
    new_id = await st.rotate_key()
    assert st.store.get("key_id") == new_id != stations.key_id(wire.public_bytes(old))
    async with wire.SigningClient(live.url, old) as c:
        ans = await c.call("GET", "/api/v1/stations/me")
    assert ans.status == 401 and "replaced by a newer key" in ans.message
    counter = selling(st)
    assert counter.handle("1kg").ok and await st.sync(within=20)
    # An enrolment code works once.
    code = await live.enrolment_code(reg["device"]["id"])
    await Station(tmp_path / "a").enrol(live.url, code)
    with pytest.raises(Exception, match="already used"):
        await Station(tmp_path / "b").enrol(live.url, code)
    status, keys = await live.call("GET", f"/api/v1/admin/devices/{reg['device']['id']}/keys")
    assert status == 200 and len(keys["items"]) == 3
    assert [k["retiredAt"] is None for k in keys["items"]] == [False, False, True]


async def test_leased_codes_belong_to_their_station(live: Live, tmp_path: Path) -> None:
    a, _ = await enrolled(live, tmp_path / "a", key="a", n=1)
    b, _ = await enrolled(live, tmp_path / "b", key="b", n=2)
    block = a.store.conn.execute("SELECT area_code, first_serial FROM blocks ORDER BY block_no").fetchone()
    a_code = tracecode.make(block[0], block[1] + 99)
    opening = {"product": "21113011", "quantity": {"value": 1, "uom": "KGM"}}

    async def open_as(st: Station, code: str, event_id: str | None = None) -> Any:
        async with st.client() as c:
            return await c.call(
                "POST",
                "/api/v1/stations/batches",
                {"eventID": event_id or str(uuid.uuid4()), "traceCode": code, **opening},
            )

    ans = await open_as(b, a_code)
    assert ans.status == 403 and ans.error["field"] == "traceCode"
    ans = await open_as(a, tracecode.make("320302", 42))
    assert ans.status == 422 and ans.error["field"] == "traceCode"
    eid = str(uuid.uuid4())
    assert (await open_as(a, a_code, eid)).status == 201
    assert (await open_as(a, a_code, eid)).status == 200  # the same opening again: a replay
    ans = await open_as(a, a_code)
    assert ans.status == 409 and ans.error["field"] == "traceCode"


async def test_run_label_image_and_status_commands(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "st"
    await enrolled(live, home)
    source = tracecode.make("320302", 555)
    proc = _trace_scan(
        home,
        "run",
        "--mode",
        "sell",
        "--product",
        "21113011",
        "--product-name",
        "白条猪肉",
        "--price",
        "30",
        "--source",
        source,
        "--no-upload",
        stdin=subprocess.PIPE,
    )
    out, err = await asyncio.to_thread(proc.communicate, b"0.85kg\nnot a code\n1.5kg\n")
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert sum(line.startswith("✓") for line in lines) == 2 and "\a✗" in out.decode()
    receipts = sorted((home / "prints").glob("receipt-*.png"))
    assert len(receipts) == 2
    for r in receipts:
        assert decode(r) == [f"https://trace.example.cn/t/{r.stem.removeprefix('receipt-')}"]

    pdf, pngs = tmp_path / "sheet.pdf", tmp_path / "labels"
    for out_path in (pdf, pngs):
        proc = _trace_scan(
            home,
            "label",
            "--product",
            "21113011",
            "--product-name",
            "大白菜",
            "--count",
            "3",
            "--out",
            str(out_path),
            "--no-upload",
        )
        out, err = await asyncio.to_thread(proc.communicate)
        assert proc.returncode == 0, err.decode()
    assert pdf.read_bytes().startswith(b"%PDF")
    labels = sorted(pngs.glob("label-*.png"))
    assert len(labels) == 3
    proc = _trace_scan(home, "image", str(labels[0]))
    out, _ = await asyncio.to_thread(proc.communicate)
    assert '"kind": "trace_url"' in out.decode() and labels[0].stem.removeprefix("label-") in out.decode()

    proc = _trace_scan(home, "status", "--json")
    out, _ = await asyncio.to_thread(proc.communicate)
    assert '"pending": 8' in out.decode()  # 2 sales, 6 label openings


async def test_simulate_many_stations(live: Live, tmp_path: Path) -> None:
    from scanners.simulate import simulate

    report = await simulate(live.url, live.admin, stations=6, rate=30, duration=2, workdir=tmp_path / "sim")
    assert report["lost"] == 0 and report["pending"] == 0 and report["refused_by_server"] == 0
    assert report["acknowledged"] == report["queued"] > report["sales"] > 20
