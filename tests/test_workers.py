"""``TRACE_WORKERS=2``: a supervisor that replaces a dead worker and takes its workers down when it is killed;
a revocation refused at once by every worker; metrics added up across workers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import make_uscc
from tests.servers import Server, wait_until
from tests.test_metrics import samples, value
from traceability.config import Settings
from traceability.errors import ConfigError


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


async def until_grown(server: Server, before: int, what: str) -> int:
    """The checkpoint's size once it is past ``before`` (the sequencer integrated what was recorded)."""
    for _ in range(1200):
        size = await checkpoint_size(server)
        if size > before:
            return size
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: the log stayed at {before}")


async def checkpoint_size(server: Server) -> int:
    status, text = await call(server, "GET", "/api/v1/log/checkpoint")
    assert status == 200, text
    return int(text.splitlines()[1])


async def open_a_batch(server: Server, device: str) -> None:
    body = {
        "eventID": str(uuid.uuid4()),
        "product": "21113011",
        "quantity": {"value": 90.5, "uom": "KGM"},
        "origin": {"area_code": "320311", "place": "徐州市泉山区"},
        "documents": [{"type": "quarantine_certificate", "number": "A320311-2026-0000001"}],
    }
    status, text = await call(server, "POST", "/api/v1/batches", device, body)
    assert status == 201, text


async def a_device(server: Server, admin: str) -> str:
    """A slaughterhouse's device credential, to record events with."""
    uscc = make_uscc(900)
    for path, body in (
        ("/api/v1/admin/products", {"category": "meat", "goods_code": "21113011", "name": "白条猪肉"}),
        ("/api/v1/admin/enterprises", {"name": "屠宰场", "uscc": uscc}),
    ):
        status, text = await call(server, "POST", path, admin, body)
        assert status in (201, 409), text
    status, text = await call(
        server, "POST", "/api/v1/admin/nodes", admin,
        {"enterprise": uscc, "type": "slaughterhouse", "area_code": "320311", "name": "屠宰场"},
    )  # fmt: skip
    assert status == 201, text
    status, text = await call(
        server, "POST", "/api/v1/admin/devices", admin, {"node": json.loads(text)["code"], "name": "kill line"}
    )
    assert status == 201, text
    return str(json.loads(text)["credential"])


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_background_process_sequences_the_log_and_is_replaced(
    db_url: str, tmp_path: Path, workers: int
) -> None:
    """``TRACE_BACKGROUND=process``: the sequencer runs in a process of their own at a lower priority, started
    by the server itself with one worker and by the supervisor with two; recorded events reach the log; killed,
    it is replaced and the log moves on."""
    env = {"TRACE_DATABASE_URL": db_url, "TRACE_BACKGROUND": "process", "TRACE_WORKERS": str(workers)}
    server = Server(tmp_path, env)
    server.start()
    try:
        await server.wait_healthy()
        await wait_until(
            lambda: len(server.children()) == (0 if workers == 1 else 2) and server.background() is not None,
            what="processes",
        )
        assert server.proc is not None
        serving = server.children() or [psutil.Process(server.proc.pid)]  # one worker: the process started serves
        background = server.background()
        assert background is not None and all(background.nice() > p.nice() for p in serving)
        if workers == 1:  # a program of its own, not a fork of the server
            assert "traceability.http.background_main" in background.cmdline()
        device = await a_device(server, (tmp_path / "admin-token").read_text().strip())

        before = await checkpoint_size(server)
        await open_a_batch(server, device)
        size = await until_grown(server, before, "the event")

        background.kill()  # its locks go with its connections; a new one takes them
        await wait_until(
            lambda: (b := server.background()) is not None and b.pid != background.pid, what="a new background process"
        )
        await open_a_batch(server, device)
        await until_grown(server, size, "the next event, sequenced by the new process")
        assert all(p.is_running() for p in serving)  # the server served on throughout
        assert "background.died" in server.output() or "worker.died" in server.output()
    finally:
        server.stop()


async def test_the_background_process_goes_with_the_server(db_url: str, tmp_path: Path) -> None:
    """One worker: the background process the server started stops with it, on SIGTERM, on Ctrl-C (which the
    terminal sends to both at once) and when the server is killed outright, and is never started again then."""
    env = {"TRACE_DATABASE_URL": db_url, "TRACE_BACKGROUND": "process"}
    for how in ("SIGTERM", "Ctrl-C", "SIGKILL"):
        server = Server(tmp_path, env)
        server.start()
        try:
            await server.wait_healthy()
            await wait_until(lambda: server.background() is not None, what="the background process")
            background = server.background()
            assert background is not None
            # Signalled once it runs: a signal that comes while it is still starting ends it before it has
            # anything to close or to say.
            await wait_until(lambda: '"background.started"' in server.output(), what="the background work to start")
            if how == "SIGKILL":
                server.kill()
            else:
                if how == "Ctrl-C":
                    background.send_signal(signal.SIGINT)
                server.signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
                assert await server.wait_exit() == 0, server.output()
            await wait_until(lambda: not alive(background.pid), what=f"the background process to exit ({how})")
            log = server.output()
            assert "background.stopped" in log, log  # on its own signal, cleanly, after closing its connections
            assert log.count("background.started_process") == 1, log  # and not started again meanwhile
            assert ("server.stopped" in log) == (how != "SIGKILL"), log
        finally:
            server.stop()


def test_where_the_background_work_runs() -> None:
    def runs_apart(**env: str) -> bool:
        return Settings.from_env(env).background_process

    assert not runs_apart()  # one worker: in it
    assert runs_apart(TRACE_WORKERS="2")
    assert not runs_apart(TRACE_WORKERS="2", TRACE_BACKGROUND="inline")
    assert runs_apart(TRACE_BACKGROUND="process")
    with pytest.raises(ConfigError, match="TRACE_BACKGROUND"):
        runs_apart(TRACE_BACKGROUND="thread")


def test_the_background_program_loads_only_what_it_runs() -> None:
    """The background process is a program of its own so that it holds only what the sequencer and the analyzer
    need: not the web server, its pages or the registration rules, nor rich (structlog loads it when it can)."""
    code = "import sys, traceability.http.background_main, traceability.services.background; print(*sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert "traceability.services.analyzer" in loaded and "traceability.services.transparency" in loaded
    assert not loaded & {"aiohttp", "jinja2", "rich", "stdnum", "traceability.domain.registry", "traceability.http.app"}
