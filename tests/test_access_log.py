"""The access log: every full view, forward trace, export and recall, with who, what, when and where;
nothing for the public; read by administrators; append-only in the database itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import World
from tests.test_limits import speaking_from
from tests.web.conftest import pork_chain
from traceability import errors
from traceability.config import Settings
from traceability.domain.access import Principal
from traceability.http.app import create_app
from traceability.services.access_log import AccessLog


async def entries(world: World, query: str = "") -> list[dict[str, Any]]:
    resp = await world.client.get(f"/api/v1/admin/access-log{query}", headers=world.auth(world.admin))
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def settled(world: World, count: int, query: str = "") -> list[dict[str, Any]]:
    """The log once ``count`` records are written (the queue is flushed every fraction of a second)."""
    for _ in range(500):
        found = await entries(world, query)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} access records, have {len(found)}")


async def test_who_saw_what_is_recorded_and_the_public_is_not(aiohttp_client: Any, world: World, db_url: str,
                                                              tmp_path: Path) -> None:  # fmt: skip
    code = await pork_chain(world)
    regulator = await world.post(
        "/api/v1/admin/tokens", {"role": "regulator", "name": "抽检组", "authority": "徐州市市场监督管理局"}, expect=201
    )
    settings = Settings.from_env(
        {"TRACE_TRUSTED_PROXIES": "127.0.0.1"}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )
    proxied = await aiohttp_client(create_app(settings))
    try:
        # The public reads: nothing is recorded.
        assert (await proxied.get(f"/api/v1/batches/{code}")).status == 200
        assert (await proxied.get(f"/api/v1/batches/{code}/trace")).status == 200
        assert (await proxied.get(f"/t/{code}")).status == 200
        # A regulator's full view, forward trace and recall, from a desk behind the proxy.
        desk = speaking_from("192.0.2.44", regulator["credential"])
        view = await (await proxied.get(f"/api/v1/batches/{code}", headers=desk)).json()
        assert view["view"] == "full"
        assert (await proxied.get(f"/api/v1/batches/{code}/trace?direction=forward", headers=desk)).status == 200
        resp = await proxied.post(
            "/api/v1/recalls", json={"traceCode": code, "level": "II", "reason": "抽检不合格"}, headers=desk
        )
        assert resp.status == 201
    finally:
        await proxied.close()
    found = await settled(world, 3)
    assert [e["action"] for e in found] == ["recall", "trace", "view"]  # newest first
    for e in found:
        assert e["target"] == code and e["source"] == "192.0.2.44" and len(e["request_id"]) >= 8
        assert e["actor"] == {
            "kind": "token",
            "id": regulator["id"],
            "role": "regulator",
            "name": "抽检组",
            "authority": "徐州市市场监督管理局",
        }
    assert found[1]["detail"]["direction"] == "forward" and found[0]["detail"]["level"] == "II"
    # Filters and paging.
    assert [e["action"] for e in await entries(world, "?action=view")] == ["view"]
    assert len(await entries(world, f"?target={code}&actor_kind=token&actor_id={regulator['id']}")) == 3
    page = await (await world.client.get("/api/v1/admin/access-log?limit=2", headers=world.auth(world.admin))).json()
    assert len(page["items"]) == 2 and page["next"] == page["items"][-1]["id"]
    rest = await entries(world, f"?before={page['next']}")
    assert [e["action"] for e in rest] == ["view"]
    bad = await world.client.get("/api/v1/admin/access-log?action=delete", headers=world.auth(world.admin))
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "action"
    # Only administrators read it.
    resp = await world.client.get("/api/v1/admin/access-log", headers=world.auth(regulator["credential"]))
    assert resp.status == 403


async def test_an_enterprise_seeing_its_own_prices_is_recorded(world: World) -> None:
    code = await pork_chain(world)
    enterprise = await world.post(
        "/api/v1/admin/tokens", {"role": "enterprise", "name": "ERP", "enterprise": world.enterprises["market"]},
        expect=201,
    )  # fmt: skip
    view = await (
        await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(enterprise["credential"]))
    ).json()
    assert view["view"] == "full"
    [entry] = await settled(world, 1)
    assert entry["actor"]["role"] == "enterprise" and entry["action"] == "view"
    # A conditional request that sends nothing new is not a view.
    tag = (await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(enterprise["credential"]))).headers
    resp = await world.client.get(
        f"/api/v1/batches/{code}", headers={**world.auth(enterprise["credential"]), "If-None-Match": tag["ETag"]}
    )
    assert resp.status == 304
    await asyncio.sleep(0.5)
    assert len(await entries(world)) == 2


async def test_the_access_log_is_append_only_in_the_database(world: World, superuser: asyncpg.Connection,
                                                             db_url: str) -> None:  # fmt: skip
    code = await pork_chain(world)
    await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(world.admin))
    await settled(world, 1)
    for sql in ("UPDATE access_log SET target = 'x'", "DELETE FROM access_log", "TRUNCATE access_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser.execute(sql)
    runtime = await asyncpg.connect(db_url, server_settings={"role": "traceability_runtime"})
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("DROP TRIGGER access_log_append_only ON access_log")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("UPDATE access_log SET target = 'x'")
    finally:
        await runtime.close()


def test_a_full_queue_refuses_rather_than_forgets() -> None:
    log = AccessLog(capacity=2)
    who = Principal(role="regulator", id=1, name="x")
    log.record(who, "view", "c", source=None, request_id="r1")
    log.record(who, "view", "c", source=None, request_id="r2")
    with pytest.raises(errors.StorageUnavailable):
        log.record(who, "view", "c", source=None, request_id="r3")
    log.record(who, "recall", "c", source=None, request_id="r4")  # a recall already happened: always kept
    assert len(log) == 3
