"""``python -m bench.province``: a province's replication lag while a member ledger takes capture load.

Sets up what ``traceability demo --federation`` sets up (Xuzhou, Nanjing and the province, each on its own
embedded PostgreSQL, the province subscribed to both) in a fresh directory, then loads Xuzhou with capture:
``--clients`` concurrent clients each opening batches (``POST /api/v1/batches``: a batch and its first
record) as fast as they are answered. Rounds alternate, each ``--seconds`` long:

- **baseline**: the province's subscription to Xuzhou disabled (Xuzhou still publishes: its WAL is
  decoded for nobody, and kept for the slot);
- **subscribed**: the subscription enabled; the province's ``/api/v1/province/members`` is read every
  0.2 s for Xuzhou's ``lag_seconds`` and ``lag_bytes``.

It prints capture per second in each round (the ratio subscribed/baseline is the price of a province for
the member), the lag's median, 95th percentile and maximum while subscribed, how long the province took to
catch up after each re-enable, and the load average. The machine is shared: read ratios, not rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from traceability.config import ROOT
from traceability.demo import federation
from traceability.domain.fields import BEIJING
from traceability.storage.province_repo import database_name


async def capture(url: str, device: str, clients: int, seconds: float) -> float:
    """Batches opened per second by ``clients`` concurrent clients over ``seconds``."""
    done = 0
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {device}"}

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            at = (datetime.now(BEIJING) - timedelta(minutes=1)).isoformat(timespec="seconds")
            body = {"eventID": str(uuid.uuid4()), "product": "21113011", "quantity": {"value": 90, "uom": "KGM"},
                    "eventTime": at}  # fmt: skip
            async with http.post(f"{url}/api/v1/batches", json=body, headers=headers) as r:
                if r.status == 201:
                    done += 1
                else:
                    await asyncio.sleep(0.05)

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return done / (time.monotonic() - started)


async def lag(province: federation.Site, origin: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{province.url}/api/v1/province/members", headers={"Authorization": f"Bearer {province.token}"}) as r,
    ):
        members = (await r.json())["members"]
    return next(m for m in members if m["origin"] == origin)


async def main(args: argparse.Namespace) -> None:
    root = ROOT / "var" / "bench-province"
    shutil.rmtree(root, ignore_errors=True)
    sites: list[federation.Site] = []
    try:
        await federation.setup(root, print, sites)
        xz, _, province = sites
        socket_dir = (province.home / "pg" / "postmaster.pid").read_text().splitlines()[4]
        sub = database_name(xz.origin)
        admin = await asyncpg.connect(f"postgresql://postgres:@/{sub}?host={socket_dir}")
        async with aiohttp.ClientSession() as http:
            api = federation.DemoApi(http, xz)
            _, device = await api.place(federation.demo_uscc(90, "320311"), "slaughterhouse", "320311", "压测屠宰场")
        rates: dict[str, list[float]] = {"baseline": [], "subscribed": []}
        samples: list[tuple[float, int]] = []
        catch_up: list[float] = []
        for _ in range(args.rounds):
            for mode in ("baseline", "subscribed"):
                await admin.execute(f"ALTER SUBSCRIPTION {sub} {'DISABLE' if mode == 'baseline' else 'ENABLE'}")
                if mode == "subscribed":
                    started = time.monotonic()
                    for _ in range(3000):
                        m = await lag(province, xz.origin)
                        if m["lag_bytes"] is not None and m["lag_bytes"] == 0:
                            break
                        await asyncio.sleep(0.1)
                    catch_up.append(time.monotonic() - started)
                load = asyncio.create_task(capture(xz.url, device, args.clients, args.seconds))
                while mode == "subscribed" and not load.done():
                    m = await lag(province, xz.origin)
                    if m["lag_seconds"] is not None:
                        samples.append((m["lag_seconds"], m["lag_bytes"]))
                    await asyncio.sleep(0.2)
                rates[mode].append(await load)
                print(f"{mode:>10}: {rates[mode][-1]:7.1f} batches/s")
        await admin.close()
        base, subscribed = statistics.median(rates["baseline"]), statistics.median(rates["subscribed"])
        seconds = sorted(s for s, _ in samples)
        sizes = sorted(b for _, b in samples)

        def pct(xs: list[Any], q: float) -> Any:
            return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

        print(f"capture, median of {args.rounds} rounds: baseline {base:.1f}/s, subscribed {subscribed:.1f}/s, "
              f"ratio {subscribed / base:.2f}")  # fmt: skip
        print(f"lag while subscribed ({len(samples)} samples): seconds p50 {pct(seconds, 0.5):.2f} "
              f"p95 {pct(seconds, 0.95):.2f} max {max(seconds, default=float('nan')):.2f}; "
              f"bytes p50 {pct(sizes, 0.5)} p95 {pct(sizes, 0.95)} max {max(sizes, default=0)}")  # fmt: skip
        print(f"catch-up after each re-enable (s): {', '.join(f'{c:.1f}' for c in catch_up)}")
        print(f"load average: {os.getloadavg()}")
    finally:
        federation.stop(sites)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
