"""Setting up through the API, as an operator and the scanners would: enterprises, nodes, devices,
products, then batches opened by the devices and events captured on them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from stdnum.cn import uscc

from bench.workloads import event

T = TypeVar("T")
PRODUCT = "21113011"
NODE_TYPES = ("wholesale_market", "wholesaler", "wet_market", "supermarket")
AREAS = ("320302", "320311")


def make_uscc(n: int) -> str:
    body = f"91320300MB{n:07d}"
    return body + uscc.calc_check_digit(body)


async def gather_limited(aws: Iterable[Awaitable[T]], limit: int = 16) -> list[T]:
    sem = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[T]) -> T:
        async with sem:
            return await aw

    return await asyncio.gather(*(one(a) for a in aws))


class SetupError(RuntimeError):
    """The service refused something the set-up needed."""


@dataclass(slots=True)
class Device:
    node: str
    node_id: int
    device_id: int
    token: str


@dataclass(slots=True)
class World:
    """A registered world, and a client to the service for setting more of it up."""

    session: aiohttp.ClientSession
    admin: str
    devices: list[Device] = field(default_factory=list)

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None, expect: int = 201) -> Any:
        headers = {"Authorization": f"Bearer {token or self.admin}"} if token != "" else {}
        async with self.session.request(method, path, json=body, headers=headers) as resp:
            data = await resp.json()
            if resp.status != expect:
                raise SetupError(f"{method} {path}: HTTP {resp.status} {data}")
            return data

    async def register(self, devices: int) -> None:
        """One enterprise, node and scanner device per device wanted, and the products."""
        await self.call(
            "POST",
            "/api/v1/admin/products",
            {
                "category": "meat",
                "goods_code": PRODUCT,
                "name": "白条猪肉",
                "name_en": "Pork carcass",
                "default_uom": "KGM",
            },
        )

        async def one(i: int) -> Device:
            code = make_uscc(i + 1)
            await self.call(
                "POST",
                "/api/v1/admin/enterprises",
                {"name": f"徐州市第{i + 1}农贸有限公司", "uscc": code, "name_en": f"Xuzhou Trading Co. {i + 1}"},
            )
            node = await self.call(
                "POST",
                "/api/v1/admin/nodes",
                {
                    "enterprise": code,
                    "type": NODE_TYPES[i % len(NODE_TYPES)],
                    "area_code": AREAS[i % len(AREAS)],
                    "name": f"第{i + 1}号摊位",
                    "name_en": f"Stall {i + 1}",
                    "address": "徐州市鼓楼区中山北路1号",
                },
            )
            device = await self.call(
                "POST", "/api/v1/admin/devices", {"node": node["code"], "name": f"scanner {i + 1}"}
            )
            return Device(node["code"], int(node["id"]), int(device["id"]), device["credential"])

        self.devices = await gather_limited(one(i) for i in range(devices))

    async def open_batch(self, device: Device) -> str:
        body = {
            "eventID": str(uuid.uuid4()),
            "product": PRODUCT,
            "quantity": {"value": 90.5, "uom": "KGM"},
            "origin": {"area_code": "320311", "place": "徐州市泉山区"},
            "documents": [{"type": "quarantine_certificate", "number": "A320311-2026-0000001"}],
        }
        data = await self.call("POST", "/api/v1/batches", body, token=device.token)
        return str(data["traceCode"])

    async def open_batches(self, per_device: dict[int, int]) -> dict[int, list[str]]:
        """Open ``count`` batches with each ``device index: count``; returns the trace codes by device."""
        jobs = [(i, self.open_batch(self.devices[i])) for i, count in per_device.items() for _ in range(count)]
        codes = await gather_limited(aw for _, aw in jobs)
        out: dict[int, list[str]] = {i: [] for i in per_device}
        for (i, _), code in zip(jobs, codes, strict=True):
            out[i].append(code)
        return out

    async def capture(self, device: Device, codes: list[str], per_batch: int) -> list[str]:
        """Record ``per_batch`` events on each batch, one request per batch; returns the event ids."""

        async def one(code: str) -> list[str]:
            events = [event(code, "receiving" if k % 2 == 0 else "storing") for k in range(per_batch)]
            await self.call("POST", "/api/v1/events", {"events": events}, token=device.token)
            return [e["eventID"] for e in events]

        return [eid for ids in await gather_limited(one(c) for c in codes) for eid in ids]
