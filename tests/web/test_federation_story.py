"""The federation's story, end to end across real processes: two city ledgers and a province, each on its own
embedded PostgreSQL, and a streaming replica of the receiving city.

Pigs from a Xuzhou farm are slaughtered in Xuzhou and shipped with a voucher to Nanjing's wholesale market, which
sells them on to a stall. What each person sees: the shopper's phone page of the stall's receipt, served from
Nanjing's replica while its primary takes capture, shows and verifies the whole journey across both ledgers, then
已召回 after Xuzhou's recall; Nanjing's regulator sees the recall; the province (by logical replication) traces the
receipt back to the Xuzhou farm and forward again, and cannot write either city's ledger; Nanjing refuses a forged
voucher and a voucher whose checkpoint is not one history with what it saw of Xuzhou before.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import CHINA, new_id
from tests.servers import Server, blank_cluster, seed_cluster
from tests.test_replicas import Standby
from tests.web.conftest import new_page
from tests.web.test_federation_journey import Ledger, console, fetch_voucher, forged_tree, minutes_ago
from traceability.config import ROOT
from traceability.ledger import checkpoint as notes
from traceability.ledger import federated_notes as fn
from traceability.ledger import voucher as vouchers
from traceability.storage.province_repo import conninfo_args, database_name

pytestmark = pytest.mark.browser
XUZHOU, NANJING = "xuzhou.trace.test/log", "nanjing.trace.test/log"
AREAS, NAMES = {XUZHOU: "320300", NANJING: "320100"}, {XUZHOU: "徐州", NANJING: "南京"}
CARCASS = {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"}
PIGS = {"category": "meat", "goods_code": "21111001", "name": "生猪", "name_en": "Live pigs"}


async def cli(env: dict[str, str], *args: str) -> str:
    """``traceability …`` as an operator runs it; its standard output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "traceability", *args, env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


def standby_of(home: Path, directory: Path) -> Standby:
    """A hot standby of the embedded PostgreSQL running in ``home``/pg (its postmaster.pid names port and socket)."""
    lines = (home / "pg" / "postmaster.pid").read_text().splitlines()
    user = (blank_cluster() / "user").read_text() or None
    info = SimpleNamespace(port=int(lines[3]), socket_dir=lines[4])
    return Standby(SimpleNamespace(system_user=user, get_postmaster_info=lambda: info), directory)


@dataclass
class Federation:
    xz: Ledger
    nj: Ledger
    reader: Server  # Nanjing's page server: writes to Nanjing's primary, public reads from its replica
    province: Server
    conninfo: dict[str, str]


@pytest.fixture
async def federation() -> AsyncIterator[Federation]:
    """Set up as ``traceability demo --federation`` does, with the operators' commands: each city publishes for
    provinces and serves; the province subscribes to both; Nanjing gets a replica and a server reading from it."""
    root = ROOT / "var" / "test-servers" / uuid.uuid4().hex[:12]
    homes = {XUZHOU: root / "xuzhou", NANJING: root / "nanjing"}
    keys = {}
    for origin, home in homes.items():
        home.mkdir(parents=True)
        signer = notes.generate_signer(origin)
        (home / "log-signing-key").write_text(notes.dump_signer_key(signer) + "\n")
        os.chmod(home / "log-signing-key", 0o600)
        keys[origin] = notes.verifier_key(signer)
    (root / "province").mkdir()
    await asyncio.gather(*(asyncio.to_thread(seed_cluster, h) for h in (*homes.values(), root / "province")))
    servers = {o: Server(h, {"TRACE_LOG_ORIGIN": o}) for o, h in homes.items()}
    province = Server(root / "province", {"TRACE_METRICS_ALLOW": "127.0.0.1"}, command=("province", "serve"))
    (root / "reader").mkdir()
    shutil.copy(homes[NANJING] / "log-signing-key", root / "reader" / "log-signing-key")
    reader = Server(root / "reader", {"TRACE_LOG_ORIGIN": NANJING, "TRACE_READ_MAX_LAG_MS": "5000"})
    (root / "federation.toml").write_text(
        "\n".join(
            f'[[members]]\norigin = "{o}"\nname = "{NAMES[o]}"\nurl = "{s.url}"\nareas = ["{AREAS[o]}"]\n'
            f'key = "{keys[o]}"\n'
            for o, s in servers.items()
        )
    )
    for server in (*servers.values(), province, reader):
        server.env.update(TRACE_FEDERATION=str(root / "federation.toml"), TRACE_PUBLIC_URL=server.url)
    standby: Standby | None = None
    try:
        province.start()  # members appear as it subscribes to them
        printed = await asyncio.gather(*(cli(s.env, "federation", "publish", "--migrate") for s in servers.values()))
        conninfo = {
            o: out.split("subscribe <this ledger's origin> '")[1].split("'")[0]
            for o, out in zip(servers, printed, strict=True)
        }
        for server in servers.values():
            server.start()
        await asyncio.gather(*(s.wait_healthy() for s in servers.values()))
        standby = await asyncio.to_thread(standby_of, homes[NANJING], root / "standby")
        await asyncio.to_thread(standby.start)
        primary = conninfo_args(conninfo[NANJING])
        reader.env.update(
            TRACE_DATABASE_URL=f"postgresql://postgres:@/{primary['database']}?host={primary['host']}"
            f"&port={primary['port']}",
            TRACE_DATABASE_READ_URLS=standby.url,
        )
        reader.start()
        await asyncio.gather(*(cli(province.env, "province", "subscribe", o, conninfo[o]) for o in servers))
        await asyncio.gather(province.wait_healthy(), reader.wait_healthy())
        xz, nj = Ledger(servers[XUZHOU], XUZHOU), Ledger(servers[NANJING], NANJING)
        for ledger in (xz, nj):
            ledger.admin = (ledger.server.data_dir / "admin-token").read_text().strip()
            await ledger.post("/api/v1/admin/products", CARCASS)
        await xz.post("/api/v1/admin/products", PIGS)
        yield Federation(xz, nj, reader, province, conninfo)
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in (reader, province, *servers.values())))
        if standby is not None:
            await asyncio.to_thread(standby.stop)
        # Four clusters take a dozen seconds to remove on a busy disk: not the test's time.
        subprocess.run(["sh", "-c", 'rm -rf "$0" &', str(root)], check=True)  # noqa: ASYNC221 - returns at once


async def until(read: Any, ok: Any, what: str, tries: int = 600) -> Any:
    for _ in range(tries):
        found = await read()
        if ok(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last seen {found}")


async def from_reader(reader: Server, code: str) -> tuple[str, str]:
    """Who answered the consumer page of ``code`` at Nanjing's page server (``X-Read-From``), and its JSON."""
    async with aiohttp.ClientSession() as s, s.get(f"{reader.url}/t/{code}?format=json") as r:
        return r.headers.get("X-Read-From", ""), await r.text() if r.status == 200 else ""


async def test_pigs_from_a_xuzhou_farm_sold_at_a_nanjing_stall(federation: Federation, browser: Browser) -> None:
    xz, nj, reader = federation.xz, federation.nj, federation.reader
    _, farm = await xz.place(31, "farm", "320321", "丰润生猪养殖合作社")
    slaughter_node, slaughter = await xz.place(32, "slaughterhouse", "320311", "彭城肉联厂")
    market_node, market = await nj.place(41, "wholesale_market", "320102", "南京众彩农副产品批发市场")
    stall_node, stall = await nj.place(42, "wet_market", "320104", "南京秦淮菜场")

    # Xuzhou: the farm's pigs go to the slaughterhouse, which makes a carcass and ships it to Nanjing's market.
    origin = {"area_code": "320321", "place": "丰县", "producer": "丰润生猪养殖合作社"}
    pigs = (
        await xz.post(
            "/api/v1/batches",
            {"eventID": new_id(), "product": "21111001", "quantity": {"value": 460, "uom": "KGM"},
             "eventTime": minutes_ago(90), "origin": origin,
             "documents": [{"type": "quarantine_certificate", "number": "Q3203210001"}]},
            farm,
        )
    )["traceCode"]  # fmt: skip
    for step, at, token, where in (("shipping", 80, farm, slaughter_node), ("receiving", 70, slaughter, None)):
        event = {"eventID": new_id(), "traceCode": pigs, "bizStep": step, "eventTime": minutes_ago(at),
                 "quantity": {"value": 460, "uom": "KGM"}}  # fmt: skip
        await xz.post("/api/v1/events", {**event, "destination": {"node": where}} if where else event, token)
    made = await xz.post(
        "/api/v1/transformations",
        {"eventID": new_id(), "bizStep": "commissioning", "eventTime": minutes_ago(60),
         "inputs": [{"traceCode": pigs, "quantity": {"value": 460, "uom": "KGM"}}],
         "outputs": [{"product": "21113011", "quantity": {"value": 160, "uom": "KGM"},
                      "documents": [{"type": "meat_inspection_certificate", "number": "M3203110001"}]}]},
        slaughter,
    )  # fmt: skip
    carcass, shipment = made["outputs"][0]["traceCode"], new_id()
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment, "traceCode": carcass, "bizStep": "shipping", "eventTime": minutes_ago(50),
         "quantity": {"value": 160, "uom": "KGM"}, "destination": {"node": market_node}},
        slaughter,
    )  # fmt: skip
    voucher = await fetch_voucher(xz, carcass, shipment, slaughter)

    # Nanjing's market: a forged voucher (its checkpoint signed by another key) is refused, the genuine one taken.
    receipt = {"eventID": new_id(), "bizStep": "receiving", "eventTime": minutes_ago(20),
               "quantity": {"value": 160, "uom": "KGM"}}  # fmt: skip
    forged = dict(voucher, checkpoint=notes.sign_checkpoint(XUZHOU, voucher["tree_size"], b"\x02" * 32,
                                                            notes.generate_signer(XUZHOU)))  # fmt: skip
    status, body = await nj.call("POST", "/api/v1/handovers", {"voucher": forged, "event": receipt}, market)
    assert status == 422 and body["error"]["code"] == "voucher_bad_signature", body
    await nj.post("/api/v1/handovers", {"voucher": vouchers.compact(voucher), "event": receipt}, market)
    for step, at, token, where in (("shipping", 10, market, stall_node), ("receiving", 8, stall, None)):
        event = {"eventID": new_id(), "traceCode": carcass, "bizStep": step, "eventTime": minutes_ago(at),
                 "quantity": {"value": 40, "uom": "KGM"}}  # fmt: skip
        await nj.post("/api/v1/events", {**event, "destination": {"node": where}} if where else event, token)
    bought = (
        await nj.post(
            "/api/v1/sales",
            {"eventID": new_id(), "source": carcass, "quantity": {"value": 0.5, "uom": "KGM"},
             "eventTime": minutes_ago(1)},
            stall,
        )
    )["traceCode"]  # fmt: skip

    # The shopper's phone, served by Nanjing's replica while the market's scanners keep capturing at the primary.
    captured = 0

    async def capture(stop: asyncio.Event) -> None:
        nonlocal captured
        while not stop.is_set():
            await nj.post("/api/v1/batches", {"eventID": new_id(), "product": "21113011",
                                              "quantity": {"value": 1, "uom": "KGM"}, "eventTime": minutes_ago(0)},
                          market)  # fmt: skip
            captured += 1

    stop = asyncio.Event()
    scanners = asyncio.create_task(capture(stop))
    try:
        await until(
            lambda: from_reader(reader, bought), lambda r: r[0] == "replica-1" and bool(r[1]), "the receipt replayed"
        )
        context, phone = await new_page(browser)
        try:
            answer = await phone.goto(f"{reader.url}/t/{bought}")
            assert answer is not None and answer.headers.get("x-read-from") == "replica-1", answer
            main = phone.locator("main")
            xz_part = main.locator(f'.ledger-part[data-ledger="{XUZHOU}"]')
            nj_part = main.locator('[data-ledger="own"]')
            await expect(xz_part).to_contain_text("徐州账本记录的部分")
            await expect(xz_part).to_contain_text("丰润生猪养殖合作社")  # the farm, from Xuzhou's ledger
            await expect(xz_part).to_contain_text("彭城肉联厂")
            await expect(nj_part).to_contain_text("本市账本记录的部分")
            await expect(nj_part).to_contain_text("南京众彩农副产品批发市场")
            await expect(nj_part).to_contain_text("南京秦淮菜场")
            await expect(main).to_contain_text("Q3203210001")  # the farm's quarantine certificate
            await expect(main).to_contain_text("M3203110001")  # the slaughterhouse's meat inspection
            part_badge = xz_part.locator(".part-badge")
            await expect(part_badge).to_have_attribute("data-state", "ok", timeout=30_000)
            await expect(part_badge).to_contain_text("已用徐州账本的公钥核验")
            await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok", timeout=30_000)
            await phone.goto(f"{reader.url}/t/{bought}?lang=en")
            await expect(main).to_contain_text("Recorded on 徐州's ledger")
            await expect(main).to_contain_text("Recorded on this city's ledger")
            await expect(part_badge).to_have_attribute("data-state", "ok", timeout=30_000)
        finally:
            await context.close()
    finally:
        stop.set()
        await scanners
    assert captured > 0

    # Regulators trace across both ledgers: backward from the Nanjing receipt to the Xuzhou farm's pigs ...
    nj_regulator = (
        await nj.post("/api/v1/admin/tokens", {"role": "regulator", "name": "宁", "authority": "南京市市场监督管理局"})
    )["credential"]
    xz_regulator = (
        await xz.post("/api/v1/admin/tokens", {"role": "regulator", "name": "徐", "authority": "徐州市市场监督管理局"})
    )["credential"]
    status, back = await nj.call("GET", f"/api/v1/batches/{bought}/trace?direction=backward", token=nj_regulator)
    assert status == 200, back
    ledger_of = {b["trace_code"]: b["ledger"] for b in back["batches"]}
    assert ledger_of[pigs] == XUZHOU and ledger_of[carcass] == NANJING and ledger_of[bought] == NANJING, ledger_of
    assert back["origins"] == [pigs] and back["elsewhere"][0]["status"] == "ok", back
    # ... forward from the Xuzhou pigs to the Nanjing stall, Nanjing answering Xuzhou's signed request.
    status, fwd = await xz.call("GET", f"/api/v1/batches/{pigs}/trace?direction=forward", token=xz_regulator)
    assert status == 200, fwd
    assert {n["code"]: n["ledger"] for n in fwd["reached"]}[stall_node] == NANJING, fwd["reached"]
    assert bought in {b["trace_code"] for b in fwd["batches"]}
    # A member request not signed by a member is refused.
    path = f"/api/v1/batches/{bought}/trace?direction=forward"
    request = fn.sign_request(notes.generate_signer(XUZHOU), NANJING, "GET", path, int(time.time()))
    async with aiohttp.ClientSession() as s, s.get(nj.url + path, headers={"Trace-Member": request}) as r:
        assert r.status == 401

    # Xuzhou recalls the farm's pigs: its signed notice reaches Nanjing, which recalls what the carcass became.
    recall = await xz.post("/api/v1/recalls", {"traceCode": pigs, "level": "I", "reason": "瘦肉精"}, xz_regulator)
    assert [n["member"] for n in recall["notices"]] == [NANJING], recall
    assert recall["notices"][0]["delivered_at"] is not None, recall["notices"]
    await until(lambda: from_reader(reader, bought), lambda r: "瘦肉精" in r[1], "the recall on the replica")
    context, phone = await new_page(browser)
    try:
        await phone.goto(f"{reader.url}/t/{bought}")
        await expect(phone.locator("#verdict")).to_contain_text("已召回")
        await expect(phone.locator("#verdict")).to_contain_text("瘦肉精")
        await expect(phone.locator("#badge")).not_to_contain_text("已核验：")
    finally:
        await context.close()
    # Nanjing's regulator sees it, under Xuzhou's authority: through the API and in the console.
    status, listed = await nj.call("GET", "/api/v1/recalls", token=nj_regulator)
    assert status == 200
    (seen,) = [r for r in listed["recalls"] if r["trace_code"] == carcass]
    assert seen["reason"] == "瘦肉精" and seen["authority"] == "徐州市市场监督管理局", seen
    assert seen["issued_by"].startswith(f"federation:{XUZHOU}"), seen
    async with await console(nj) as desk:
        async with desk.get(f"{nj.url}/console/recalls") as r:
            listed_page = await r.text()
        assert r.status == 200 and "瘦肉精" in listed_page and "徐州市市场监督管理局" in listed_page
        async with desk.get(f"{nj.url}/console/batches/{bought}/backward") as r:
            traced = await r.text()
        assert r.status == 200 and pigs in traced and f'data-ledger="{XUZHOU}"' in traced and "徐州" in traced

    await the_province_traces_it(federation, pigs, carcass, bought)
    await notices_are_checked(xz, nj, pigs, carcass)

    # Xuzhou's own key, two histories: a voucher under a checkpoint of the size Nanjing holds but another tree is
    # refused as inconsistent, the evidence kept; from then on every voucher of Xuzhou is refused as a split view.
    xz_key = notes.load_signer_key((xz.server.data_dir / "log-signing-key").read_bytes())
    for size, refusal in ((voucher["tree_size"], "inconsistent"), (voucher["tree_size"] + 5, "split_view")):
        split = forged_tree(voucher, xz_key, size)
        status, body = await nj.call(
            "POST", "/api/v1/handovers", {"voucher": split, "event": dict(receipt, eventID=new_id())}, market
        )
        assert status == 409 and body["error"]["code"] == f"voucher_{refusal}", (size, status, body)
        assert " · " in body["error"]["message"]  # Chinese · English


async def the_province_traces_it(federation: Federation, pigs: str, carcass: str, bought: str) -> None:
    """The province, from its replicated copies: the receipt back to the Xuzhou farm and forward again, the recall
    on it, each member's lag and verification; and it cannot write to either city."""
    province = federation.province
    token = (province.data_dir / "province-token").read_text().strip()
    async with aiohttp.ClientSession(base_url=province.url, headers={"Authorization": f"Bearer {token}"}) as http:

        async def get(path: str) -> Any:
            async with http.get(path) as r:
                assert r.status == 200, (path, r.status, await r.text())
                return await r.json()

        async def held(path: str) -> Any:  # not replicated yet: 404
            async with http.get(path) as r:
                return await r.json() if r.status == 200 else {"backward": [], "status": r.status}

        traced = await until(
            lambda: held(f"/api/v1/province/trace/{bought}"),
            # Each table's initial copy runs on its own, so Nanjing's record of where the carcass came from
            # (foreign_batches) can arrive after its batches and recalls: wait for the whole picture.
            lambda t: (
                len(t["backward"]) == 3
                and all(g["recalls"] for g in t["backward"][1:])
                and any(g["received_from"] for g in t["backward"])
            ),
            "the receipt traced back to the Xuzhou farm, with the recall at both cities",
        )
        assert [leg["origin"] for leg in traced["legs"]] == [NANJING]
        back = [(g["origin"], g["trace_code"]) for g in traced["backward"]]
        assert back == [(XUZHOU, carcass), (NANJING, carcass), (XUZHOU, pigs)], back
        assert traced["backward"][1]["received_from"] == XUZHOU
        # Xuzhou's recall of the pigs, and what Nanjing recorded when its notice came for the carcass.
        assert [r["reason"] for g in traced["backward"][1:] for r in g["recalls"]] == ["瘦肉精", "瘦肉精"]
        assert traced["backward"][1]["recalls"][0]["issued_by"].startswith(f"federation:{XUZHOU}")
        assert [e["biz_step"] for e in traced["backward"][2]["events"]][:3] == ["commissioning", "shipping",
                                                                                "receiving"]  # fmt: skip
        forward = await get(f"/api/v1/province/trace/{pigs}")
        assert [(g["origin"], g["trace_code"]) for g in forward["forward"]][-1] == (NANJING, bought), forward
        assert forward["recall_at"]["origin"] == XUZHOU  # a recall is issued at the home ledger, never here

        # Lag per member, and each copy verified against the member's signed checkpoint of all its records.
        members = await until(
            lambda: get("/api/v1/province/members"),
            lambda m: all(
                x["lag_seconds"] is not None and x["tables_copying"] == 0 and x["verified_size"] >= x["events"]
                for x in m["members"]
            ),
            "lag measured and every record verified",
        )
        for m in members["members"]:
            assert m["subscribed"] and m["verified"] and m["fault"] is None, m
        async with aiohttp.ClientSession(base_url=province.url) as anonymous:
            async with anonymous.get("/api/v1/province/members") as r:
                assert r.status == 401

            async def metrics() -> str:  # the test's address is in TRACE_METRICS_ALLOW
                async with anonymous.get("/metrics") as r:
                    return await r.text()

            lag_line = f'trace_province_replication_lag_seconds{{member="{XUZHOU}"}}'
            text = await until(metrics, lambda t: lag_line in t, "Xuzhou's lag in /metrics")
        assert f'trace_province_copy_verified{{member="{NANJING}"}} 1.0' in text
        async with http.get("/province") as r:
            page = await r.text()
        assert page.count("已按签名检查点核验") == 2 and XUZHOU in page
        async with http.get(f"/province/trace/{bought}?lang=en") as r:
            assert r.status == 200 and XUZHOU in await r.text()
        async with http.get("/api/v1/province/search?q=x&surprise=1") as r:
            assert r.status == 422 and (await r.json())["error"]["field"] == "surprise"
        async with http.get("/openapi.json") as r:
            methods = {m for ops in (await r.json())["paths"].values() for m in ops}
        assert methods <= {"get", "post"}  # the one POST is the console's sign-in form

    # Its role at a member reads and replicates the published records, nothing more.
    member = await asyncpg.connect(**conninfo_args(federation.conninfo[XUZHOU]))
    try:
        for statement in (
            "INSERT INTO enterprises (uscc, name) VALUES ('91320300MA1XXXXX0X', 'forged')",
            "UPDATE events SET biz_step = 'forged'",
            "DELETE FROM log_leaves",
            "CREATE TABLE public.forged (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await member.execute(statement)
        assert await member.fetchval("SELECT count(*) FROM events") >= 2
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await member.fetchval("SELECT count(*) FROM api_tokens")
    finally:
        await member.close()
    # And its server reads its own copies read-only.
    socket = (province.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4]
    conn = await asyncpg.connect(f"postgresql://postgres:@/{database_name(NANJING)}?host={socket}",
                                 server_settings={"role": "traceability_province",
                                                  "default_transaction_read_only": "on"})  # fmt: skip
    try:
        with pytest.raises((asyncpg.ReadOnlySQLTransactionError, asyncpg.InsufficientPrivilegeError)):
            await conn.execute("DELETE FROM events")
    finally:
        await conn.close()


async def notices_are_checked(xz: Ledger, nj: Ledger, pigs: str, carcass: str) -> None:
    """The same recall notice twice changes nothing; a forged, misdirected or reused one is refused."""
    xz_key = notes.load_signer_key((xz.server.data_dir / "log-signing-key").read_bytes())
    body = {"id": "recall-test", "to": NANJING, "issued_at": datetime.now(CHINA).isoformat(), "level": "II",
            "reason": "复检", "authority": "徐州市市场监督管理局", "source": pigs, "codes": [carcass]}  # fmt: skip
    note = fn.sign_recall(xz_key, body)
    status, first = await nj.note("/api/v1/federation/recalls", note)
    assert status == 201 and first["replayed"] is False and carcass in first["batches"], first
    status, again = await nj.note("/api/v1/federation/recalls", note)
    assert status == 200 and again["replayed"] is True and again["batches"] == [], again
    assert again["recalls"] == first["recalls"]
    for bad, code in (
        (fn.sign_recall(notes.generate_signer(XUZHOU), body), "notice_bad_signature"),
        (fn.sign_recall(xz_key, dict(body, to="suzhou.trace.test/log")), "notice_wrong_recipient"),
        (fn.sign_recall(xz_key, dict(body, reason="另一原因")), "notice_replayed"),
    ):
        status, answer = await nj.note("/api/v1/federation/recalls", bad)
        assert status in (409, 422) and answer["error"]["code"] == code, (code, status, answer)
