"""``traceability demo --federation``: two city ledgers and a province on one machine, in one command.

Xuzhou (320300) and Nanjing (320100) each run ``traceability serve`` on an embedded PostgreSQL of their
own, published for provinces (``traceability federation publish``); the province (Jiangsu) runs its own
embedded PostgreSQL, subscribed to both (``traceability province subscribe``), and serves the provincial
view (``traceability province serve``). All of them share one federation file. The demo journey crosses
the two cities: a Xuzhou slaughterhouse ships a pork carcass to a Nanjing wholesale market with its
handover voucher, the market receives it and sells on to a wet market, whose stall sells a cut with a
receipt code; a second carcass stays in Xuzhou. The commands are the ones an operator runs; the demo
only sequences them, then keeps the servers running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from stdnum.cn import uscc

from traceability.config import ROOT, child_environment
from traceability.domain.fields import BEIJING
from traceability.ledger import checkpoint as notes

START_WITHIN = 180.0


@dataclass(slots=True)
class Site:
    """One server of the demo: a city ledger or the province."""

    key: str
    name: str
    home: Path
    port: int
    origin: str = ""
    area: str = ""
    proc: subprocess.Popen[bytes] | None = None
    token: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(site: Site, federation: Path) -> dict[str, str]:
    return child_environment({
        "TRACE_DATA_DIR": str(site.home),
        "TRACE_PORT": str(site.port),
        "TRACE_HOST": "127.0.0.1",
        "TRACE_PUBLIC_URL": site.url,
        "TRACE_FEDERATION": str(federation),
        "TRACE_LOG_LEVEL": "warning",
        "TRACE_SEQUENCER_INTERVAL_MS": "200",
        **({"TRACE_LOG_ORIGIN": site.origin} if site.origin else {}),
        **site.extra,
    })  # fmt: skip


async def _run(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "traceability", *args, env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"traceability {' '.join(args)} failed:\n{err.decode()[-2000:]}")
    return out.decode()


def _start(site: Site, env: dict[str, str], *args: str) -> None:
    log = (site.home / "server.log").open("ab")
    site.proc = subprocess.Popen(  # noqa: S603 - our own program, arguments we built
        [sys.executable, "-m", "traceability", *args], env=env, cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


async def _healthy(site: Site) -> None:
    deadline = asyncio.get_running_loop().time() + START_WITHIN
    async with aiohttp.ClientSession() as http:
        while True:
            assert site.proc is not None
            if site.proc.poll() is not None:
                raise RuntimeError(f"{site.name} stopped; see {site.home / 'server.log'}")
            try:
                async with http.get(f"{site.url}/healthz") as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{site.name} did not start; see {site.home / 'server.log'}")
            await asyncio.sleep(0.2)


def _ago(minutes: int) -> str:
    return (datetime.now(BEIJING) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


class DemoApi:
    def __init__(self, http: aiohttp.ClientSession, site: Site) -> None:
        self.http, self.site = http, site

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.site.token}"}
        async with self.http.request(method, self.site.url + path, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def post(self, path: str, body: Any, token: str = "") -> Any:
        status, data = await self.call("POST", path, body, token)
        if status not in (200, 201):
            raise RuntimeError(f"{self.site.name} {path}: {status} {data}")
        return data

    async def place(self, uscc: str, node_type: str, area: str, name: str) -> tuple[str, str]:
        await self.post("/api/v1/admin/enterprises", {"name": name, "uscc": uscc})
        node = await self.post(
            "/api/v1/admin/nodes", {"enterprise": uscc, "type": node_type, "area_code": area, "name": name}
        )
        device = await self.post("/api/v1/admin/devices", {"node": node["code"], "name": f"{name} 扫码枪"})
        return str(node["code"]), str(device["credential"])


def demo_uscc(n: int, area: str) -> str:
    """A well-formed unified social credit code (its check character computed) for demo enterprise ``n``."""
    body = f"91{area}MA{n:07d}"
    return body + uscc.calc_check_digit(body)


async def _journey(xz: DemoApi, nj: DemoApi) -> dict[str, str]:
    """The carcass that crosses from Xuzhou to Nanjing, and one that stays; the codes worth opening."""
    pork = {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"}
    for api in (xz, nj):
        await api.post("/api/v1/admin/products", pork)
    _, slaughter = await xz.place(demo_uscc(1, "320311"), "slaughterhouse", "320311", "徐州彭城肉联厂")
    market_node, market = await nj.place(
        demo_uscc(2, "320102"), "wholesale_market", "320102", "南京众彩农副产品批发市场"
    )
    stall_node, stall = await nj.place(demo_uscc(3, "320104"), "wet_market", "320104", "南京秦淮菜场")
    codes = {}
    for n, kg in enumerate((88.5, 91.0)):
        opened = await xz.post(
            "/api/v1/batches",
            {"eventID": str(uuid.uuid4()), "product": "21113011", "quantity": {"value": kg, "uom": "KGM"},
             "eventTime": _ago(90 - n), "documents": [{"type": "quarantine_certificate", "number": f"320300{n:04d}"}]},
            slaughter,
        )  # fmt: skip
        codes["stays" if n else "crosses"] = opened["traceCode"]
    code = codes["crosses"]
    shipment = str(uuid.uuid4())
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment, "traceCode": code, "bizStep": "shipping", "disposition": "in_transit",
         "eventTime": _ago(60), "quantity": {"value": 88.5, "uom": "KGM"},
         "destination": {"node": market_node, "name": "南京众彩"}, "commercial": {"unit_price": "23.50"}},
        slaughter,
    )  # fmt: skip
    for _ in range(600):  # until Xuzhou's sequencer has logged the shipment
        status, voucher = await xz.call("GET", f"/api/v1/batches/{code}/vouchers/{shipment}", token=slaughter)
        if status == 200:
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError(f"Xuzhou never logged the shipment: {status} {voucher}")
    receipt = {"eventID": str(uuid.uuid4()), "bizStep": "receiving", "eventTime": _ago(30),
               "quantity": {"value": 88.5, "uom": "KGM"}}  # fmt: skip
    await nj.post("/api/v1/handovers", {"voucher": voucher, "event": receipt}, market)
    await nj.post(
        "/api/v1/events",
        {"eventID": str(uuid.uuid4()), "traceCode": code, "bizStep": "shipping", "disposition": "in_transit",
         "eventTime": _ago(20), "quantity": {"value": 40, "uom": "KGM"}, "destination": {"node": stall_node}},
        market,
    )  # fmt: skip
    await nj.post(
        "/api/v1/events",
        {"eventID": str(uuid.uuid4()), "traceCode": code, "bizStep": "receiving", "eventTime": _ago(15),
         "quantity": {"value": 40, "uom": "KGM"}},
        stall,
    )  # fmt: skip
    sale = await nj.post(
        "/api/v1/sales",
        {"eventID": str(uuid.uuid4()), "source": code, "quantity": {"value": 0.75, "uom": "KGM"}, "eventTime": _ago(5)},
        stall,
    )
    codes["receipt"] = sale["traceCode"]
    return codes


async def setup(root: Path, say: Callable[[str], None], sites: list[Site]) -> dict[str, str]:
    cities = [
        Site("xuzhou", "徐州 Xuzhou", root / "xuzhou", _free_port(), "xuzhou.trace.demo/log", "320300"),
        Site("nanjing", "南京 Nanjing", root / "nanjing", _free_port(), "nanjing.trace.demo/log", "320100"),
    ]
    province = Site("province", "江苏省 Jiangsu", root / "province", _free_port())
    province.extra["TRACE_METRICS_ALLOW"] = "127.0.0.1"
    sites.extend([*cities, province])  # stopped by the caller whatever happens
    members = []
    for city in cities:
        city.home.mkdir(parents=True, exist_ok=True)
        key_file = city.home / "log-signing-key"
        if not key_file.exists():
            key_file.write_text(notes.dump_signer_key(notes.generate_signer(city.origin)) + "\n")
            key_file.chmod(0o600)
        key = notes.verifier_key(notes.load_signer_key(key_file.read_bytes()))
        members.append(
            f'[[members]]\norigin = "{city.origin}"\nname = "{city.name}"\nurl = "{city.url}"\n'
            f'areas = ["{city.area}"]\nkey = "{key}"\n'
        )
    federation = root / "federation.toml"
    federation.write_text("\n".join(members))
    province.home.mkdir(parents=True, exist_ok=True)
    say(f"federation file: {federation}")
    say("publishing both cities' records for the province (embedded PostgreSQL, wal_level=logical)…")
    printed = await asyncio.gather(*(_run(_env(c, federation), "federation", "publish", "--migrate") for c in cities))
    conninfo = [out.split("subscribe <this ledger's origin> '")[1].split("'")[0] for out in printed]
    # Where the province reaches each city's PostgreSQL goes in the federation file, as `replication`.
    federation.write_text("\n".join(f'{m}replication = "{c}"\n' for m, c in zip(members, conninfo, strict=True)))
    for city in cities:
        _start(city, _env(city, federation), "serve")
    await asyncio.gather(*(_healthy(c) for c in cities))
    for city in cities:
        city.token = (city.home / "admin-token").read_text().strip()
    say("the province subscribes to both…")
    await _run(_env(province, federation), "province", "subscribe", "--all")
    _start(province, _env(province, federation), "province", "serve")
    await _healthy(province)
    province.token = (province.home / "province-token").read_text().strip()
    say("recording the journey across the two cities…")
    async with aiohttp.ClientSession() as http:
        return await _journey(DemoApi(http, cities[0]), DemoApi(http, cities[1]))


def stop(sites: list[Site]) -> None:
    for site in sites:
        if site.proc is not None and site.proc.poll() is None:
            site.proc.send_signal(signal.SIGTERM)
    for site in sites:
        if site.proc is not None:
            try:
                site.proc.wait(60)
            except subprocess.TimeoutExpired:
                site.proc.kill()


def run(root: Path, say: Callable[[str], None], wait: bool = True) -> int:
    """Set the federation up under ``root``, print what to open, and serve until Ctrl-C (``wait``)."""
    if root.exists() and any(root.iterdir()):
        say(f"{root} is not empty: the demo sets a federation up from nothing (remove it, or give another --dir)")
        return 2
    root.mkdir(parents=True, exist_ok=True)
    sites: list[Site] = []
    try:
        codes = asyncio.run(setup(root, say, sites))
        xz, nj, province = sites
        print(f"\nFederation demo under {root} (federation file {root / 'federation.toml'}):")
        for site in (xz, nj):
            print(f"  {site.name}: {site.url}/console  (admin credential: {site.home / 'admin-token'})")
        print(f"  {province.name}: {province.url}/province  (sign in with {province.home / 'province-token'})")
        print(f"      {province.token}")
        print("Open:")
        print(f"  {xz.url}/t/{codes['crosses']}     the carcass at home, Xuzhou")
        print(f"  {nj.url}/t/{codes['crosses']}     the same carcass received in Nanjing")
        print(f"  {nj.url}/t/{codes['receipt']}     a Nanjing stall's receipt for a cut of it")
        print(f"  {province.url}/province/trace/{codes['receipt']}   the receipt traced back across both cities")
        print(f"  {province.url}/metrics   replication lag per city")
        if not wait:
            return 0
        print(f"Ctrl-C stops all three servers; their data stays under {root}.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        stop(sites)
