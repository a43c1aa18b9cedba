"""Reads scale out: a streaming replica serves the consumer page while the primary takes capture, and reads
fall back to the primary when the replica lags past ``TRACE_READ_MAX_LAG_MS`` or stops.

Real processes throughout: a PostgreSQL primary (the embedded server's binaries), a hot standby made from
it with ``pg_basebackup -R``, and ``traceability serve`` pointed at both.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import asyncpg
import pytest

from tests.conftest import World
from tests.servers import Server
from tests.test_metrics import samples, value
from traceability.config import Settings
from traceability.errors import ConfigError
from traceability.ledger import checkpoint as cp
from traceability.storage.database import Database
from traceability.storage.embedded import pgserver
from traceability.storage.replicas import Reads


class Standby:
    """A hot standby of ``primary`` in ``directory``, on a Unix socket of its own."""

    def __init__(self, primary: Any, directory: Path) -> None:
        pg = pgserver()
        self.bin = Path(pg.POSTGRES_BIN_PATH)
        self.user = primary.system_user  # the account PostgreSQL runs as when the tests run as root
        self.directory = directory
        directory.mkdir(mode=0o700)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        info = primary.get_postmaster_info()
        self._run("pg_basebackup", "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres",
                  "-D", str(directory), "-R", "-X", "stream", "--checkpoint=fast")  # fmt: skip
        self.url = f"postgresql://postgres:@/postgres?host={directory}&port=5433"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bin / tool), *args], check=True, capture_output=True, user=self.user, timeout=120)

    def start(self) -> None:
        options = f"-c listen_addresses='' -c unix_socket_directories={self.directory} -p 5433"
        self._run("pg_ctl", "-D", str(self.directory), "-l", str(self.directory / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        if (self.directory / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.directory), "-m", "immediate", "-w", "stop")


@pytest.fixture
def primary_and_standby(server_home: Path) -> Iterator[tuple[str, Standby]]:
    primary = pgserver().get_server(server_home / "primary", cleanup_mode="delete")
    standby = Standby(primary, server_home / "standby")
    try:
        standby.start()
        yield primary.get_uri(), standby
    finally:
        standby.stop()
        primary.cleanup()


async def page(http: aiohttp.ClientSession, code: str) -> tuple[str, int]:
    """Who answered the consumer page of ``code`` (``X-Read-From``) and how many records it shows."""
    async with http.get(f"/t/{code}?format=json") as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["X-Read-From"], len((await resp.json())["ledger"]["events"])


async def test_a_replica_serves_the_consumer_page_while_the_primary_takes_capture(
    primary_and_standby: tuple[str, Standby], server_home: Path
) -> None:
    primary_url, standby = primary_and_standby
    server = Server(
        server_home / "app",
        {
            "TRACE_DATABASE_URL": primary_url,
            "TRACE_DATABASE_READ_URLS": standby.url,
            "TRACE_READ_MAX_LAG_MS": "1000",
            "TRACE_METRICS_ALLOW": "127.0.0.1",
        },
    )
    server.data_dir.mkdir()
    server.start("--migrate")
    try:
        await server.wait_healthy()
        admin = (server.data_dir / "admin-token").read_text().strip()
        async with aiohttp.ClientSession(base_url=server.url) as http:
            world = World(http, admin)
            await world.add_node("slaughter", "slaughterhouse", "320311")
            await world.post(
                "/api/v1/admin/products", {"category": "meat", "goods_code": "21113011", "name": "白条猪肉"}, expect=201
            )
            code = await world.open_batch()

            async def metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                async with http.get("/metrics") as resp:
                    return samples(await resp.text())

            async def chosen() -> float:
                return value(await metrics(), "trace_db_replica_chosen", replica="replica-1")

            # Capture through the primary; the page, read from the replica, shows each record once replayed.
            answered = set()
            for n in range(2, 5):
                await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
                for _ in range(2000):
                    who, shown = await page(http, code)
                    answered.add(who)
                    if shown == n:
                        break
                else:
                    raise AssertionError(f"the page never showed record {n}")
            assert "replica-1" in answered
            assert value(await metrics(), "trace_db_reads_total", pool="replica-1") >= 1

            # The replica stops replaying: it falls behind the bound and the primary answers, with every record.
            replica_conn = await asyncpg.connect(standby.url)
            try:
                assert await replica_conn.fetchval("SELECT pg_is_in_recovery()")
                await replica_conn.execute("SELECT pg_wal_replay_pause()")
                await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
                await wait_until_async(lambda: chosen(), 0.0, "the lagging replica to be skipped")
                assert await page(http, code) == ("primary", 5)
                stale = await replica_conn.fetchval(
                    "SELECT count(*) FROM events e JOIN batches b ON b.id = e.batch_id WHERE b.trace_code = $1", code
                )
                assert stale == 4  # the replica really is behind: without the fallback the page would miss one
                lag = value(await metrics(), "trace_db_replica_lag_seconds", replica="replica-1")
                assert lag > 1.0
                # Replaying again, it catches up and serves the page again.
                await replica_conn.execute("SELECT pg_wal_replay_resume()")
            finally:
                await replica_conn.close()
            await wait_until_async(lambda: chosen(), 1.0, "the replica to be chosen again")
            assert await page(http, code) == ("replica-1", 5)

            # The replica stops altogether: reads go to the primary and stay right.
            standby.stop()
            # At once, before any check has noticed: the read fails on the replica and the primary answers it.
            assert (await page(http, code))[1] == 5
            await wait_until_async(lambda: chosen(), 0.0, "the stopped replica to be skipped")
            assert await page(http, code) == ("primary", 5)
            assert (await http.get("/healthz")).status == 200
    finally:
        server.stop()
    assert "postgres:@" not in server.output() and standby.url not in server.output()


async def wait_until_async(read: Any, expected: float, what: str) -> None:
    found: list[float] = []

    async def check() -> bool:
        found.append(await read())
        return found[-1] == expected

    for _ in range(1200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: still {found[-1]}")


def test_read_urls_are_checked_without_echoing_them() -> None:
    urls = "postgresql://trace:s3cret@replica-a/trace, postgresql://trace:s3cret@replica-b/trace"
    settings = Settings.from_env({"TRACE_DATABASE_READ_URLS": urls, "TRACE_READ_MAX_LAG_MS": "500"})
    assert len(settings.database_read_urls) == 2 and settings.read_max_lag_ms == 500
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match="URL 2 must start with postgresql://") as refused:
        Settings.from_env({"TRACE_DATABASE_READ_URLS": "postgresql://a/b,mysql://trace:s3cret@h/x"})
    assert "s3cret" not in str(refused.value)


def tree_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash of ``leaves`` (leaf hashes), written out independently of the ledger."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + tree_root(leaves[:k]) + tree_root(leaves[k:])).digest()


async def test_tiles_are_served_as_tlog_tiles_and_cached_for_good(client: Any, world: World) -> None:
    code = await world.open_batch()
    for _ in range(4):
        await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
    for _ in range(1200):
        note = await (await client.get("/api/v1/log/checkpoint")).text()
        if cp.parse_checkpoint(note).size >= 5:
            break
        await asyncio.sleep(0.05)
    checkpoint = cp.parse_checkpoint(note)
    size = checkpoint.size
    assert size >= 5

    resp = await client.get(f"/api/v1/log/tile/0/000.p/{size}")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Type"] == "application/octet-stream"
    hashes = await resp.read()
    assert len(hashes) == size * 32
    assert tree_root([hashes[i : i + 32] for i in range(0, len(hashes), 32)]) == checkpoint.root
    shorter = await client.get(f"/api/v1/log/tile/0/000.p/{size - 1}")
    assert await shorter.read() == hashes[: (size - 1) * 32]

    # Hashes the log does not have yet: not found, and not cached for good.
    for missing in ("0/000", f"0/000.p/{size + 1}", "0/x001/000", "1/000.p/1"):
        resp = await client.get(f"/api/v1/log/tile/{missing}")
        assert resp.status == 404, missing
        assert "immutable" not in resp.headers.get("Cache-Control", "")
    for bad in ("8/000", "0/12", "0/000.p/0", "0/000.p/256", "0/001/000", "x/000"):
        resp = await client.get(f"/api/v1/log/tile/{bad}")
        assert resp.status == 422, bad


def test_lag_is_measured_from_the_primarys_positions_and_stays_zero_when_idle() -> None:
    reads = Reads(cast(Database, None), [], max_lag_ms=2000)
    for at, position in ((10.0, 100), (10.5, 100), (11.0, 250), (11.5, 400)):
        reads.positions.append((at, position))
    assert reads.behind(400, now=11.5) == 0.0  # replayed what the primary had just now
    assert reads.behind(500, now=11.5) == 0.0
    assert reads.behind(300, now=12.0) == 1.0  # has what the primary had at 11.0, not what it had at 11.5
    assert reads.behind(100, now=12.0) == 1.5  # an idle stretch (10.0 to 10.5) counts from its newest reading
    assert reads.behind(99, now=12.0) is None  # behind everything kept: not fresh
