"""A province receives two city ledgers' records by PostgreSQL logical replication, across real processes.

Xuzhou and Nanjing each run ``traceability serve`` on their own embedded PostgreSQL, published for
provinces (``traceability federation publish``); the province runs its own embedded PostgreSQL,
subscribes to both (``traceability province subscribe``) and serves the provincial view
(``traceability province serve``). A carcass slaughtered in Xuzhou is received in Nanjing with its voucher
and sold there; the province finds it in both, traces the Nanjing receipt back across both ledgers, reports
each member's lag, verifies each copy against the member's signed checkpoints, and cannot write to either.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import CHINA, make_uscc, new_id
from tests.servers import Server
from traceability.cli_federation import member_conninfo
from traceability.config import ROOT
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle
from traceability.ledger.frontier import Frontier
from traceability.storage.embedded import pgserver
from traceability.storage.province_repo import conninfo_args, database_name

XUZHOU, NANJING = "xuzhou.trace.test/log", "nanjing.trace.test/log"


def minutes_ago(n: int) -> str:
    return (datetime.now(CHINA) - timedelta(minutes=n)).isoformat(timespec="seconds")


async def cli(env: dict[str, str], *args: str) -> str:
    """``traceability …`` as an operator runs it; its standard output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "traceability", *args, env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


class Ledger:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.admin = ""

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.server.url + path, json=body, headers=headers, allow_redirects=False) as r,
        ):
            return r.status, await r.json() if r.content_type == "application/json" else await r.text()

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        status, data = await self.call("POST", path, body, token)
        assert status in (200, 201), (path, status, data)
        return data

    async def place(self, n: int, node_type: str, area: str, name: str) -> tuple[str, str]:
        uscc = make_uscc(n)
        await self.post("/api/v1/admin/enterprises", {"name": name, "uscc": uscc})
        node = await self.post(
            "/api/v1/admin/nodes", {"enterprise": uscc, "type": node_type, "area_code": area, "name": name}
        )
        device = await self.post("/api/v1/admin/devices", {"node": node["code"], "name": f"{name} scanner"})
        return str(node["code"]), str(device["credential"])


def blank_clusters(root: Path, homes: list[Path]) -> None:
    """An initialised, stopped PostgreSQL data directory in each home's ``pg``: one initdb, copied, instead of
    one per server (each takes seconds; pgserver runs them one at a time across the machine)."""
    blank = pgserver().get_server(root / "blank", cleanup_mode="stop")
    blank.cleanup()  # stops it: this process was its only user
    user = blank.system_user  # the account PostgreSQL runs as when the tests run as root
    for home in homes:
        shutil.copytree(
            root / "blank", home / "pg", ignore=shutil.ignore_patterns("postmaster.*", ".handle_pids.json", "log")
        )
        if user:
            entry = pwd.getpwnam(user)
            for path in (home / "pg", *(home / "pg").rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)


@pytest.fixture
async def federation() -> AsyncIterator[tuple[Ledger, Ledger, Server, dict[str, str]]]:
    root = ROOT / "var" / "test-servers" / uuid.uuid4().hex[:12]
    homes = {XUZHOU: root / "xuzhou", NANJING: root / "nanjing"}
    keys = {}
    for origin, home in homes.items():
        home.mkdir(parents=True)
        signer = notes.generate_signer(origin)
        (home / "log-signing-key").write_text(notes.dump_signer_key(signer) + "\n")
        os.chmod(home / "log-signing-key", 0o600)
        keys[origin] = notes.verifier_key(signer)
    servers = {o: Server(h, {"TRACE_LOG_ORIGIN": o}) for o, h in homes.items()}
    areas = {XUZHOU: "320300", NANJING: "320100"}
    (root / "federation.toml").write_text(
        "\n".join(
            f'[[members]]\norigin = "{o}"\nname = "{o[:6]}"\nurl = "{s.url}"\n'
            f'areas = ["{areas[o]}"]\nkey = "{keys[o]}"\n'
            for o, s in servers.items()
        )
    )
    (root / "province").mkdir()
    await asyncio.to_thread(blank_clusters, root, [*homes.values(), root / "province"])
    province = Server(root / "province", command=("province", "serve"))
    for server in (*servers.values(), province):
        server.env.update(TRACE_FEDERATION=str(root / "federation.toml"), TRACE_PUBLIC_URL=server.url)
    province.env["TRACE_METRICS_ALLOW"] = "127.0.0.1"
    try:
        # Each member publishes for provinces (wal_level=logical, the province's role) before it serves.
        province.start()  # the province serves from the start; members appear as it subscribes to them
        printed = await asyncio.gather(*(cli(s.env, "federation", "publish", "--migrate") for s in servers.values()))
        said = dict(zip(servers, printed, strict=True))
        conninfo = {o: out.split("subscribe <this ledger's origin> '")[1].split("'")[0] for o, out in said.items()}
        for server in servers.values():
            server.start()
        await asyncio.gather(*(s.wait_healthy() for s in servers.values()))
        await asyncio.gather(*(cli(province.env, "province", "subscribe", o, conninfo[o]) for o in servers))
        await province.wait_healthy()
        xz, nj = Ledger(servers[XUZHOU]), Ledger(servers[NANJING])
        for ledger in (xz, nj):
            ledger.admin = (ledger.server.data_dir / "admin-token").read_text().strip()
            await ledger.post(
                "/api/v1/admin/products",
                {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
            )
        yield xz, nj, province, conninfo
    finally:
        province.stop()
        for server in servers.values():
            server.stop()
        # Three clusters and six databases take a dozen seconds to remove on a busy disk: not the test's time.
        subprocess.run(["sh", "-c", 'rm -rf "$0" &', str(root)], check=True)  # noqa: ASYNC221 - returns at once


async def until(read: Any, ok: Any, what: str, tries: int = 600) -> Any:
    for _ in range(tries):
        found = await read()
        if ok(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last seen {found}")


async def test_a_province_sees_both_cities_and_traces_across_them(
    federation: tuple[Ledger, Ledger, Server, dict[str, str]],
) -> None:
    xz, nj, province, conninfo = federation
    token = (province.data_dir / "province-token").read_text().strip()
    _, slaughter = await xz.place(11, "slaughterhouse", "320311", "彭城肉联厂")
    market_node, market = await nj.place(21, "wholesale_market", "320102", "南京众彩农副产品批发市场")
    opened = await xz.post(
        "/api/v1/batches",
        {"eventID": new_id(), "product": "21113011", "quantity": {"value": 88.5, "uom": "KGM"},
         "eventTime": minutes_ago(30)},
        slaughter,
    )  # fmt: skip
    code = opened["traceCode"]
    shipment = new_id()
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment, "traceCode": code, "bizStep": "shipping", "disposition": "in_transit",
         "eventTime": minutes_ago(20), "quantity": {"value": 88.5, "uom": "KGM"}, "destination": {"node": market_node}},
        slaughter,
    )  # fmt: skip

    async def voucher() -> tuple[int, Any]:
        return await xz.call("GET", f"/api/v1/batches/{code}/vouchers/{shipment}", token=slaughter)

    _, v = await until(voucher, lambda r: r[0] == 200, "the shipment's voucher")
    receipt = {"eventID": new_id(), "bizStep": "receiving", "eventTime": minutes_ago(5),
               "quantity": {"value": 88.5, "uom": "KGM"}}  # fmt: skip
    await nj.post("/api/v1/handovers", {"voucher": v, "event": receipt}, market)
    sale = await nj.post(
        "/api/v1/sales",
        {"eventID": new_id(), "source": code, "quantity": {"value": 0.75, "uom": "KGM"}, "eventTime": minutes_ago(1)},
        market,
    )
    receipt_code = sale["traceCode"]

    async with aiohttp.ClientSession(base_url=province.url, headers={"Authorization": f"Bearer {token}"}) as http:

        async def get(path: str) -> Any:
            async with http.get(path) as r:
                assert r.status == 200, (path, r.status, await r.text())
                return await r.json()

        # Captured at the cities, the records appear at the province: the carcass in both ledgers.
        found = await until(
            lambda: get(f"/api/v1/province/search?q={code}"),
            lambda f: len(f["batches"]) == 2,
            "the code in both copies",
        )
        assert {b["origin"] for b in found["batches"]} == {XUZHOU, NANJING}
        # The Nanjing receipt traced back across both ledgers; the carcass's home is where a recall is issued.
        traced = await until(
            lambda: get(f"/api/v1/province/trace/{receipt_code}"),
            lambda t: len(t["backward"]) == 2 and t["backward"][1]["received_from"] == XUZHOU,
            "the receipt traced back to Xuzhou",
        )
        assert [leg["origin"] for leg in traced["legs"]] == [NANJING]
        assert [(g["origin"], g["trace_code"]) for g in traced["backward"]] == [(XUZHOU, code), (NANJING, code)]
        assert [e["biz_step"] for e in traced["backward"][0]["events"]] == ["commissioning", "shipping"]
        assert traced["backward"][1]["received_from"] == XUZHOU
        forward = await get(f"/api/v1/province/trace/{code}")
        assert [g["trace_code"] for g in forward["forward"]] == [receipt_code]
        assert forward["recall_at"]["origin"] == XUZHOU

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
            assert m["lag_bytes"] >= 0
        async with aiohttp.ClientSession(base_url=province.url) as anonymous:
            async with anonymous.get("/api/v1/province/members") as r:
                assert r.status == 401

            async def metrics() -> str:  # the test's address is in TRACE_METRICS_ALLOW
                async with anonymous.get("/metrics") as r:
                    return await r.text()

            # (On a loaded machine a lag check may time out now and then: the lag is then unknown, not stale.)
            lag_line = f'trace_province_replication_lag_seconds{{member="{XUZHOU}"}}'
            text = await until(metrics, lambda t: lag_line in t, "Xuzhou's lag in /metrics")
        assert f'trace_province_copy_verified{{member="{NANJING}"}} 1.0' in text

        async def console() -> str:
            async with http.get("/province") as r:
                assert r.status == 200
                return await r.text()

        page = await until(console, lambda p: p.count("最多落后") == 2, "both members' lag on the console")
        assert XUZHOU in page and page.count("已按签名检查点核验") == 2
        async with http.get(f"/province?q={code}&lang=en") as r:
            assert code in await r.text()
        async with http.get(f"/province/trace/{receipt_code}") as r:
            assert r.status == 200 and XUZHOU in await r.text()
        async with http.get("/api/v1/province/search?q=x&surprise=1") as r:
            assert r.status == 422 and (await r.json())["error"]["field"] == "surprise"
        async with http.get("/openapi.json") as r:
            methods = {m for ops in (await r.json())["paths"].values() for m in ops}
        assert methods <= {"get", "post"}  # the one POST is the console's sign-in form

    # The province cannot write a member's ledger: its role there reads and replicates, nothing more.
    member = await asyncpg.connect(**conninfo_args(conninfo[XUZHOU]))
    try:
        for statement in (
            "INSERT INTO enterprises (uscc, name) VALUES ('91320300MA1XXXXX0X', 'forged')",
            "UPDATE events SET biz_step = 'forged'",
            "DELETE FROM log_leaves",
            "CREATE TABLE public.forged (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await member.execute(statement)
        assert await member.fetchval("SELECT count(*) FROM events") >= 2  # it does read the published records
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await member.fetchval("SELECT count(*) FROM api_tokens")  # and nothing else
    finally:
        await member.close()
    # And its server reads its copies read-only.
    copy_url = f"postgresql://postgres:@/{database_name(NANJING)}?host={province_socket(province.data_dir)}"
    conn = await asyncpg.connect(copy_url, server_settings={"role": "traceability_province",
                                                            "default_transaction_read_only": "on"})  # fmt: skip
    try:
        with pytest.raises((asyncpg.ReadOnlySQLTransactionError, asyncpg.InsufficientPrivilegeError)):
            await conn.execute("DELETE FROM events")
    finally:
        await conn.close()


def province_socket(data_dir: Path) -> str:
    """The province's embedded PostgreSQL socket directory (its postmaster.pid's fifth line)."""
    return (data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4]


def test_the_right_edge_of_a_tree_gives_the_logs_roots() -> None:
    leaves = [merkle.leaf_hash(n.to_bytes(32, "big")) for n in range(300)]
    edge = Frontier()
    assert edge.root() == merkle.append(0, {}, [])[1]
    for n, leaf in enumerate(leaves, 1):
        edge.append(leaf)
        if n in (1, 2, 3, 7, 8, 9, 255, 256, 257, 300):
            assert edge.root() == merkle.append(0, {}, leaves[:n])[1], n
    assert len(edge.subtrees) == bin(300).count("1")  # one perfect subtree per set bit of the size


def test_member_databases_and_conninfo() -> None:
    a, b = database_name("xuzhou.trace.example/log"), database_name("xuzhou.trace.example/log2")
    assert a.startswith("member_xuzhou_trace_example_log_") and a != b and len(database_name("x" * 200)) <= 63
    assert conninfo_args("host=/run/pg port=5433 dbname=trace user=trace_province") == {
        "host": "/run/pg", "port": 5433, "database": "trace", "user": "trace_province"}  # fmt: skip
    socket = member_conninfo("postgresql://postgres:@/postgres?host=/work/var/pg", "trace_province")
    assert socket == "host=/work/var/pg port=5432 dbname=postgres user=trace_province"
    tcp = member_conninfo("postgresql://trace:secret@db.internal:6432/trace", "trace_province")
    assert tcp == "host=db.internal port=6432 dbname=trace user=trace_province"  # never the password
