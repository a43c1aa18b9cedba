"""Fault injection, bounded in time: the server SIGKILLed again and again, and PostgreSQL killed, while several
scanners capture and retry with the same event ids. Nothing acknowledged may be lost or doubled; chains stay
intact, every acknowledged event is provable, checkpoints never shrink, and ``traceability verify`` is clean.

Each test prints its figures (events sent, acknowledged, lost, doubled; kills; 503s) for the report.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from tests.conftest import make_uscc
from tests.servers import Server, wait_until
from tests.test_embedded import postmaster
from tests.test_log import check_proof
from tests.test_verify import cli

CLIENTS = 4
REQUESTS = 30  # per client, each with 1 to 3 events
DEADLINE = 240.0


@dataclass
class Scanner:
    """One scanner device that retries every request, with the same event ids, until it is acknowledged."""

    name: str
    credential: str
    code: str = ""
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> body
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> receipt
    statuses: list[int] = field(default_factory=list)
    retries: int = 0

    async def send(self, http: aiohttp.ClientSession, url: str, path: str, body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.credential}"}
        while True:
            try:
                async with http.post(url + path, json=body, headers=headers) as resp:
                    self.statuses.append(resp.status)
                    if resp.status in (200, 201):
                        data: dict[str, Any] = await resp.json()
                        return data
                    assert resp.status == 503, (resp.status, await resp.text())  # never a 500, never a refusal
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass  # the server is down: try again, with the same ids
            self.retries += 1
            await asyncio.sleep(0.05)

    async def run(self, url: str, product: str) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as http:
            opening = {
                "eventID": str(uuid.uuid4()),
                "product": product,
                "quantity": {"value": 90.5, "uom": "KGM"},
                "eventTime": now(),
            }
            opened = await self.send(http, url, "/api/v1/batches", opening)
            self.code = opened["traceCode"]
            self.acked[opening["eventID"]] = opened["receipt"]
            for _ in range(REQUESTS):
                events = [
                    {"eventID": str(uuid.uuid4()), "traceCode": self.code, "bizStep": "storing", "eventTime": now()}
                    for _ in range(random.randint(1, 3))
                ]
                for e in events:
                    self.sent[e["eventID"]] = e
                answer = await self.send(http, url, "/api/v1/events", {"events": events})
                for e, receipt in zip(events, answer["receipts"], strict=True):
                    assert receipt["eventID"] == e["eventID"]
                    self.acked[e["eventID"]] = receipt


def embedded_url(pg_dir: Path) -> str:
    """The URL of the embedded PostgreSQL running on ``pg_dir``, read from its lock file (attaching to nothing)."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pg_dir)
    assert info is not None
    return str(info.get_uri())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def register(server: Server) -> list[Scanner]:
    admin = (server.data_dir / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {admin}"}
    async with aiohttp.ClientSession() as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with http.post(server.url + path, json=body, headers=headers) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status == 201, data
                return data

        await post("/api/v1/admin/products", {"category": "meat", "goods_code": "21113011", "name": "白条猪肉"})
        scanners = []
        for i in range(CLIENTS):
            uscc = make_uscc(500 + i)
            await post("/api/v1/admin/enterprises", {"name": f"屠宰场 {i}", "uscc": uscc})
            node = await post(
                "/api/v1/admin/nodes",
                {"enterprise": uscc, "type": "slaughterhouse", "area_code": "320311", "name": f"屠宰场 {i}"},
            )
            device = await post("/api/v1/admin/devices", {"node": node["code"], "name": f"kill line {i}"})
            scanners.append(Scanner(f"scanner {i}", device["credential"]))
    return scanners


async def watch_checkpoints(server: Server, sizes: list[int], stop: asyncio.Event) -> None:
    """Read the public checkpoint all along; its size must never go down, across every crash."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while not stop.is_set():
            try:
                async with http.get(server.url + "/api/v1/log/checkpoint") as resp:
                    if resp.status == 200:
                        sizes.append(int((await resp.text()).splitlines()[1]))
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)


async def check_ledger(server: Server, db_url: str, scanners: list[Scanner], sizes: list[int]) -> dict[str, int]:
    """Nothing acknowledged lost, nothing doubled, receipts true, every event provable, checkpoints growing."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT e.event_id::text, e.seq, e.hash, b.trace_code FROM events e JOIN batches b ON b.id = e.batch_id"
        )
        checkpoint_sizes = [
            r["size"] for r in await conn.fetch("SELECT size FROM checkpoints ORDER BY created_at, size")
        ]
    finally:
        await conn.close()
    stored = {r["event_id"]: r for r in rows}
    acked = {k: v for s in scanners for k, v in s.acked.items()}
    sent = {k for s in scanners for k in s.sent} | {k for s in scanners for k in s.acked}
    lost = [k for k in acked if k not in stored]
    doubled = len(rows) - len({r["event_id"] for r in rows}) + len([k for k in stored if k not in sent])
    assert not lost and doubled == 0
    for event_id, receipt in acked.items():  # what the scanner was told is what the ledger holds
        row = stored[event_id]
        assert (row["seq"], row["hash"].hex(), row["trace_code"]) == (
            receipt["seq"],
            receipt["hash"],
            receipt["traceCode"],
        )
    for s in scanners:  # each chain holds exactly what its scanner sent, once
        assert sorted(r["seq"] for r in rows if r["trace_code"] == s.code) == list(range(1, len(s.acked) + 1))
    assert sizes == sorted(sizes) and checkpoint_sizes == sorted(checkpoint_sizes)
    # Every acknowledged event is provable against a signed checkpoint.
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/log/public-key") as resp:
            key = (await resp.text()).strip()
        for event_id in acked:
            for _ in range(600):
                async with http.get(f"{server.url}/api/v1/events/{event_id}/proof") as resp:
                    if resp.status == 200:
                        check_proof(await resp.json(), key)
                        break
                    assert resp.status == 404, resp.status  # not yet in the log
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"event {event_id} never entered the log")
    return {"sent": len(sent), "acknowledged": len(acked), "lost": len(lost), "doubled": doubled}


def verify_clean(db_url: str | None, data_dir: Path) -> None:
    if db_url is None:
        import subprocess
        import sys

        from traceability.config import ROOT

        env = {**os.environ, "TRACE_DATA_DIR": str(data_dir), "TRACE_LOG_LEVEL": "warning"}
        env.pop("TRACE_DATABASE_URL", None)
        out = subprocess.run(
            [sys.executable, "-m", "traceability", "verify"], env=env, cwd=ROOT, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    else:
        out = cli(db_url, "verify", tmp=data_dir)
    assert out.returncode == 0 and "all verified" in out.stdout, out.stdout + out.stderr


async def test_the_server_killed_again_and_again_under_capture(db_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path, {"TRACE_DATABASE_URL": db_url})
    server.start()
    try:
        await server.wait_healthy()
        scanners = await register(server)
        sizes: list[int] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_checkpoints(server, sizes, stop))
        clients = [asyncio.create_task(s.run(server.url, "21113011")) for s in scanners]
        kills = 0
        total = CLIENTS * (REQUESTS * 2 + 1)  # about: 1 to 3 events a request

        async def killer() -> None:
            nonlocal kills
            for share in (0.15, 0.35, 0.55, 0.75):
                await wait_until(
                    lambda share=share: (
                        sum(len(s.acked) for s in scanners) >= share * total or all(c.done() for c in clients)
                    ),
                    within=DEADLINE,
                )
                if all(c.done() for c in clients):
                    return
                server.kill()  # SIGKILL: mid-request, mid-transaction, mid-sequencing
                kills += 1
                server.start()
                await server.wait_healthy()

        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(killer(), *clients), DEADLINE)
        elapsed = time.monotonic() - started
        figures = await check_ledger(server, db_url, scanners, sizes)
        stop.set()
        await watcher
        assert kills >= 3, kills
        statuses = [st for s in scanners for st in s.statuses]
        print(
            f"\nFAULTS server-kill: {figures}, kills={kills}, retries={sum(s.retries for s in scanners)}, "
            f"503s={statuses.count(503)}, checkpoints seen={len(sizes)} (max {max(sizes, default=0)}), "
            f"{elapsed:.1f} s"
        )
    finally:
        server.stop()
    verify_clean(db_url, tmp_path)


async def test_postgresql_killed_under_capture(server_home: Path) -> None:
    """The embedded PostgreSQL killed: the server answers 503 (never 500), starts it again, and nothing is lost."""
    pg_dir = server_home / "pg"
    server = Server(server_home)
    server.start("--migrate")
    try:
        await server.wait_healthy()
        scanners = await register(server)
        sizes: list[int] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_checkpoints(server, sizes, stop))
        clients = [asyncio.create_task(s.run(server.url, "21113011")) for s in scanners]
        total = CLIENTS * (REQUESTS * 2 + 1)
        await wait_until(lambda: sum(len(s.acked) for s in scanners) >= 0.3 * total, within=DEADLINE)
        victim = postmaster(pg_dir)
        assert victim is not None
        psutil.Process(victim).kill()
        await asyncio.wait_for(asyncio.gather(*clients), DEADLINE)
        restarted = postmaster(pg_dir)
        assert restarted is not None and restarted != victim  # the server started it again
        statuses = [st for s in scanners for st in s.statuses]
        assert statuses.count(503) >= 1  # clients saw the outage as 503s (and never a 500: Scanner.send)
        figures = await check_ledger(server, embedded_url(pg_dir), scanners, sizes)
        stop.set()
        await watcher
        print(
            f"\nFAULTS postgres-kill: {figures}, 503s={statuses.count(503)}, retries={sum(s.retries for s in scanners)}"
        )
    finally:
        server.stop()
    verify_clean(None, server_home)
    if (pid := postmaster(pg_dir)) is not None:
        psutil.Process(pid).kill()
