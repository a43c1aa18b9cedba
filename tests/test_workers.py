"""``TRACE_WORKERS=2``: a supervisor that replaces a dead worker and takes its workers down when it is killed;
a revocation refused at once by every worker; metrics added up across workers."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from prometheus_client.multiprocess import MultiProcessCollector

from tests.servers import Server, wait_until
from tests.test_metrics import samples, value


async def call(server: Server, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, str]:
    """One request on a new connection, so the kernel may hand it to either worker."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.request(method, server.url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


def counted(metrics_dir: Path, pid: int, route: str, status: str) -> float:
    """How many requests of ``route`` with ``status`` the worker ``pid`` answered (its own metrics file)."""
    files = [str(p) for p in metrics_dir.glob(f"*_{pid}.db")]
    total = 0.0
    for family in MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]
        for s in family.samples:
            if (
                s.name == "trace_http_requests_total"
                and s.labels.get("route") == route
                and s.labels["status"] == status
            ):
                total += s.value
    return total


async def until_each_worker(server: Server, workers: set[int], request: Any, route: str, status: str) -> list[int]:
    """Send ``request()`` until every worker has answered at least one with ``status``; all statuses sent back."""
    seen = []
    for _ in range(2000):
        seen.append(await request())
        if all(counted(server.data_dir / "metrics", pid, route, status) >= 1 for pid in workers):
            return seen
    raise AssertionError(f"the kernel never handed {route} to every worker")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_two_workers_under_a_supervisor(db_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path, {"TRACE_DATABASE_URL": db_url, "TRACE_WORKERS": "2"})
    server.start()
    try:
        await server.wait_healthy()
        await wait_until(lambda: len(server.children()) == 2, what="two workers")
        workers = {p.pid for p in server.children()}
        admin = (tmp_path / "admin-token").read_text().strip()
        # A credential revoked through one worker is refused by both at once, however warm their caches.
        status, text = await call(
            server, "POST", "/api/v1/admin/tokens", admin, {"role": "regulator", "name": "检查组"}
        )
        assert status == 201, text
        token = json.loads(text)

        async def anomalies() -> int:
            return (await call(server, "GET", "/api/v1/anomalies", token["credential"]))[0]

        warm = await until_each_worker(server, workers, anomalies, "/api/v1/anomalies", "200")
        assert set(warm) == {200}
        status, _ = await call(server, "POST", f"/api/v1/admin/tokens/{token['id']}/revoke", admin)
        assert status == 200
        refused = await until_each_worker(server, workers, anomalies, "/api/v1/anomalies", "401")
        assert set(refused) == {401}  # every answer after the revocation, from both workers

        # Requests are counted by whichever worker answered; a scrape of either adds them all up.
        for _ in range(60):
            assert (await call(server, "GET", "/api/v1/log"))[0] == 200
        for _ in range(6):  # scrapes land on either worker; each must show the same total
            status, text = await call(server, "GET", "/metrics", admin)
            assert status == 200
            assert value(samples(text), "trace_http_requests_total", route="/api/v1/log", method="GET",
                         status="200") == 60  # fmt: skip

        # A worker that dies is replaced; its counts stay counted.
        victim = sorted(workers)[0]
        psutil.Process(victim).kill()
        await wait_until(
            lambda: len(server.children()) == 2 and victim not in {p.pid for p in server.children()},
            what="a replacement worker",
        )
        for _ in range(10):
            assert (await call(server, "GET", "/api/v1/log"))[0] == 200
        status, text = await call(server, "GET", "/metrics", admin)
        assert value(samples(text), "trace_http_requests_total", route="/api/v1/log", method="GET",
                     status="200") == 70  # fmt: skip
        assert "worker.died" in server.output()

        # The supervisor killed outright (SIGKILL, nothing it can catch): its workers go with it.
        children = [p.pid for p in server.children()]
        server.kill()
        await wait_until(lambda: not any(alive(pid) for pid in children), what="the workers to exit")
    finally:
        server.stop()


async def test_the_supervisor_stops_its_workers_on_sigterm(db_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path, {"TRACE_DATABASE_URL": db_url, "TRACE_WORKERS": "2"})
    server.start()
    try:
        await server.wait_healthy()
        await wait_until(lambda: len(server.children()) == 2, what="two workers")
        children = [p.pid for p in server.children()]
        server.signal(signal.SIGINT)  # Ctrl-C
        assert await server.wait_exit() == 0
        assert not any(alive(pid) for pid in children)
        assert "server.stopped" in server.output()
    finally:
        server.stop()
