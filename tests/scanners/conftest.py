"""Station tests run the real station code against the real server on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import admin_token, make_uscc
from tests.servers import free_port
from traceability.config import Settings
from traceability.http.app import create_app


class Live:
    """The app served on a fixed port, which tests can stop and start again (the network going away)."""

    def __init__(self, aiohttp_server: Any, settings: Settings) -> None:
        self._factory = aiohttp_server
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Any = None
        self.admin = ""

    async def start(self) -> None:
        self.server = await self._factory(create_app(self.settings), port=self.port)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        h = dict(headers or {})
        if token or (token is None and self.admin and "Authorization" not in h):
            h["Authorization"] = f"Bearer {token or self.admin}"
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.url + path, json=body, data=data, headers=h) as resp,
        ):
            return resp.status, await resp.json()

    async def market(self, key: str, n: int, *, stall: str | None = None) -> dict[str, Any]:
        """Register an enterprise, a wet-market node, optionally a stall operator, and a device there."""
        uscc = make_uscc(n)
        status, _ = await self.call("POST", "/api/v1/admin/enterprises", {"name": f"{key} 市场", "uscc": uscc})
        assert status == 201
        status, node = await self.call(
            "POST",
            "/api/v1/admin/nodes",
            {"enterprise": uscc, "type": "wet_market", "area_code": "320302", "name": f"{key}菜市场"},
        )
        assert status == 201, node
        device_body: dict[str, Any] = {"node": node["code"], "name": f"{key} station"}
        if stall:
            status, _ = await self.call(
                "POST",
                "/api/v1/admin/operators",
                {"node": node["code"], "code": stall, "name": "王记鲜肉", "stall_no": stall},
            )
            assert status == 201
            device_body["operator"] = stall
        status, device = await self.call("POST", "/api/v1/admin/devices", device_body)
        assert status == 201, device
        return {"node": node, "device": device}

    async def enrolment_code(self, device_id: int) -> str:
        status, data = await self.call("POST", f"/api/v1/admin/devices/{device_id}/enrolment")
        assert status == 201, data
        return str(data["code"])


@pytest.fixture
async def live(aiohttp_server: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    settings = Settings.from_env(
        {}, database_url=db_url, data_dir=tmp_path / "server", public_url="https://trace.example.cn"
    )
    lv = Live(aiohttp_server, settings)
    await lv.start()
    lv.admin = await admin_token(db_url)
    status, _ = await lv.call(
        "POST",
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
    )
    assert status == 201
    yield lv
    await lv.stop()
