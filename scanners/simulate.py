"""``trace-scan simulate``: many virtual stations selling against one server, for demos and load tests.

It registers its own enterprise, wet-market node, product and one device per station (with the
administrator credential it is given), enrols each station with a one-time code, opens a source
batch per station, then records sales at the given total rate (Poisson arrivals) while every
station's upload loop runs, exactly as ``trace-scan run --mode sell`` would. At the end it flushes
the queues and reports what was queued, acknowledged, replayed, refused and retried, with upload
latencies, and checks that every queued record reached the server (``lost``).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from stdnum.cn import uscc

from scanners.modes import Counter
from scanners.station import Station
from traceability.domain.scans import Quantity

PRODUCT = "21113011"


async def _admin(session: aiohttp.ClientSession, server: str, token: str, path: str, body: Any) -> Any:
    async with session.post(server + path, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json()
        if resp.status >= 300 and not (resp.status == 409 and path.endswith("/products")):
            raise RuntimeError(f"{path}: {resp.status} {data}")
        return data


async def _register(server: str, token: str, count: int) -> list[str]:
    """Register a market with ``count`` station devices; returns their one-time enrolment codes."""
    body = f"91320302MA{secrets.randbelow(10**7):07d}"
    code = body + str(uscc.calc_check_digit(body))
    async with aiohttp.ClientSession() as s:
        await _admin(s, server, token, "/api/v1/admin/enterprises", {"name": "模拟菜市场", "uscc": code})
        node = await _admin(
            s,
            server,
            token,
            "/api/v1/admin/nodes",
            {"enterprise": code, "type": "wet_market", "area_code": "320302", "name": "模拟菜市场"},
        )
        await _admin(
            s, server, token, "/api/v1/admin/products", {"category": "meat", "goods_code": PRODUCT, "name": "白条猪肉"}
        )
        codes = []
        for i in range(count):
            device = await _admin(
                s, server, token, "/api/v1/admin/devices", {"node": node["code"], "name": f"simulated station {i + 1}"}
            )
            enrolment = await _admin(s, server, token, f"/api/v1/admin/devices/{device['id']}/enrolment", {})
            codes.append(enrolment["code"])
    return codes


async def simulate(
    server: str,
    token: str,
    *,
    stations: int,
    rate: float,
    duration: float,
    workdir: Path | None = None,
    flush_timeout: float = 60.0,
) -> dict[str, Any]:
    server = server.rstrip("/")
    root = workdir or Path(tempfile.mkdtemp(prefix="trace-sim-"))
    codes = await _register(server, token, stations)
    fleet = [Station(root / f"station-{i + 1:03d}", max_backoff=5.0, batch_size=100) for i in range(stations)]
    await asyncio.gather(*(st.enrol(server, code, blocks=2) for st, code in zip(fleet, codes, strict=True)))
    counters = []
    for st in fleet:
        commission = Counter(st.store, "commission", product=PRODUCT)
        source = commission.commission(Quantity(Decimal(90), "kg", Decimal(90))).trace_code
        counters.append(Counter(st.store, "sell", product=PRODUCT, unit_price=Decimal("32.00"), source=source))
    stop = asyncio.Event()
    wakes = [asyncio.Event() for _ in fleet]
    uploaders = [
        asyncio.create_task(st.sync(until_empty=False, wake=w, stop=stop, idle_poll=1.0))
        for st, w in zip(fleet, wakes, strict=True)
    ]
    rng = random.Random()  # noqa: S311 - arrival times, not secrets
    sales = refused_at_counter = 0
    start = time.monotonic()
    next_at = start
    while True:
        next_at += rng.expovariate(rate) if rate > 0 else duration
        if next_at - start >= duration:
            break
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        i = rng.randrange(stations)
        weight = Decimal(rng.randint(200, 3000)) / 1000
        outcome = counters[i].sell(weight)
        sales += outcome.ok
        refused_at_counter += not outcome.ok
        wakes[i].set()
    scanning = time.monotonic() - start
    stop.set()
    await asyncio.gather(*uploaders)
    flush_start = time.monotonic()
    await asyncio.gather(*(st.sync(until_empty=True, within=flush_timeout) for st in fleet))
    flush = time.monotonic() - flush_start
    statuses = [st.store.status() for st in fleet]
    latencies = sorted(x for st in fleet for x in st.stats.latencies)
    queued = sum(s["pending"] + s["sent"] + s["refused"] for s in statuses)
    report = {
        "stations": stations,
        "rate": rate,
        "duration_s": round(scanning, 1),
        "flush_s": round(flush, 2),
        "sales": sales,
        "refused_at_counter": refused_at_counter,
        "queued": queued,
        "acknowledged": sum(st.stats.acknowledged for st in fleet),
        "replayed": sum(st.stats.replayed for st in fleet),
        "refused_by_server": sum(s["refused"] for s in statuses),
        "retried": sum(st.stats.retries for st in fleet),
        "requests": sum(st.stats.requests for st in fleet),
        "leases": sum(st.stats.leases for st in fleet),
        "pending": sum(s["pending"] for s in statuses),
        "upload_ms_p50": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "upload_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
        "workdir": str(root),
    }
    report["lost"] = queued - report["acknowledged"] - report["refused_by_server"] - report["pending"]
    for st in fleet:
        st.close()
    return report
