"""Credentials with a lifecycle: issue, expire, list, revoke, rotate; console users disabled and re-passworded;
a revocation refused at once by every server process; public records naming the authority, not the account."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import World, until
from tests.test_verify import cli
from tests.web.conftest import pork_chain
from traceability import errors
from traceability.config import Settings
from traceability.domain.access import Principal
from traceability.http.app import create_app
from traceability.http.keys import PRINCIPALS
from traceability.services import accounts
from traceability.services.principals import PrincipalCache, token_hash
from traceability.storage.database import open_database

PASSWORD = "a password long enough"


async def wait_for(condition: Any, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def issue(world: World, **body: Any) -> dict[str, Any]:
    data: dict[str, Any] = await world.post(
        "/api/v1/admin/tokens", {"role": "regulator", "name": "检查组", **body}, expect=201
    )
    return data


async def test_tokens_are_issued_listed_revoked_and_refused_at_once(world: World) -> None:
    code = await world.open_batch()
    token = await issue(world, authority="徐州市市场监督管理局", expires_in_days=30)
    assert token["credential"].startswith("tak_") and token["state"] == "active"
    assert token["authority"] == "徐州市市场监督管理局"
    assert datetime.fromisoformat(token["expires_at"]) > datetime.now(UTC) + timedelta(days=29)
    reader = world.auth(token["credential"])
    assert (await world.client.get(f"/api/v1/batches/{code}", headers=reader)).status == 200
    listed = await (
        await world.client.get("/api/v1/admin/tokens?role=regulator", headers=world.auth(world.admin))
    ).json()
    assert [t["id"] for t in listed["items"]] == [token["id"]]
    assert "credential" not in listed["items"][0] and "token_hash" not in listed["items"][0]
    revoked = await world.post(f"/api/v1/admin/tokens/{token['id']}/revoke", {}, expect=200)
    assert revoked["state"] == "revoked"
    resp = await world.client.get(f"/api/v1/batches/{code}", headers=reader)
    assert resp.status == 401 and "revoked" in (await resp.json())["error"]["message"]
    await world.post(f"/api/v1/admin/tokens/{token['id']}/revoke", {}, expect=404)
    states = await (
        await world.client.get("/api/v1/admin/tokens?state=revoked", headers=world.auth(world.admin))
    ).json()
    assert [t["id"] for t in states["items"]] == [token["id"]]
    # Only administrators manage credentials.
    other = await issue(world)
    await world.post("/api/v1/admin/tokens", {"role": "admin", "name": "x"}, other["credential"], expect=403)
    assert (await world.client.get("/api/v1/admin/tokens", headers=world.auth(other["credential"]))).status == 403


async def test_rotation_gives_a_new_credential_and_refuses_the_old(world: World) -> None:
    old = await issue(world, authority="市场监管局")
    new = await world.post(f"/api/v1/admin/tokens/{old['id']}/rotate", {}, expect=201)
    assert new["credential"] != old["credential"] and new["id"] != old["id"]
    assert (new["role"], new["name"], new["authority"]) == ("regulator", "检查组", "市场监管局")
    assert (await world.client.get("/api/v1/anomalies", headers=world.auth(old["credential"]))).status == 401
    assert (await world.client.get("/api/v1/anomalies", headers=world.auth(new["credential"]))).status == 200
    listed = await (
        await world.client.get("/api/v1/admin/tokens?state=revoked", headers=world.auth(world.admin))
    ).json()
    assert listed["items"][0]["replaced_by"] == new["id"]
    # An administrator rotating their own credential: the answer carries the new one, the old is refused.
    mine = await (await world.client.get("/api/v1/admin/tokens?role=admin", headers=world.auth(world.admin))).json()
    rotated = await world.post(f"/api/v1/admin/tokens/{mine['items'][0]['id']}/rotate", {}, expect=201)
    assert (await world.client.get("/api/v1/admin/tokens", headers=world.auth(world.admin))).status == 401
    assert (await world.client.get("/api/v1/admin/tokens", headers=world.auth(rotated["credential"]))).status == 200


async def test_expired_credentials_are_refused(world: World, superuser: asyncpg.Connection) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    data = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "x", "expires_at": past}, expect=422)
    assert data["error"]["field"] == "expires_at"
    await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "x", "expires_in_days": 0}, expect=422)
    token = await issue(world, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    await superuser.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", token["id"])
    resp = await world.client.get("/api/v1/anomalies", headers=world.auth(token["credential"]))
    assert resp.status == 401 and "expired" in (await resp.json())["error"]["message"]
    listed = await (
        await world.client.get("/api/v1/admin/tokens?state=expired", headers=world.auth(world.admin))
    ).json()
    assert [t["id"] for t in listed["items"]] == [token["id"]]


def test_the_cache_never_keeps_what_a_revocation_raced() -> None:
    cache = PrincipalCache()
    who = Principal(role="device", id=1, name="scanner")
    cache.put(b"k", who, cache.generation)
    assert cache.get(b"k") is None  # not listening: nothing is cached
    cache.set_listening(True)
    started = cache.generation  # a lookup starts ...
    cache.clear()  # ... a revocation is announced while it runs ...
    cache.put(b"k", who, started)  # ... and its answer, read before the revocation, is not kept
    assert cache.get(b"k") is None
    cache.put(b"k", who, cache.generation)
    assert cache.get(b"k") == who
    cache.put(b"e", who, cache.generation, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert cache.get(b"e") is None  # never cached past the credential's expiry
    cache.set_listening(False)
    assert cache.get(b"k") is None


async def test_credentials_asked_for_together_are_looked_up_together(
    world: World, superuser: asyncpg.Connection, db_url: str
) -> None:
    """Credentials not cached that arrive while others are being looked up wait for the next lookup, which
    resolves all of them in one statement; each request still gets its own principal (an unknown credential
    its 401)."""
    from traceability.http.keys import DATABASE

    app = world.client.server.app
    cache = app[PRINCIPALS]
    db = app[DATABASE]
    code = await world.open_batch()
    unknown = "tdv_" + "x" * 43
    credentials = [world.devices["slaughter"], world.devices["market"], world.admin, unknown]
    cache.clear()

    async def get(credential: str) -> int:
        return (await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(credential))).status

    async def reads_waiting(n: int) -> bool:
        rows = await superuser.fetch(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            " AND query LIKE '%token_hash = ANY($1::bytea[])%'"
        )
        return len(rows) == n

    async def lookups_waiting(n: int) -> bool:
        return cache.reads.waiting(db) == n

    readers = cache.reads.readers
    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        asked = []
        for n in range(readers):  # one lookup under way each
            asked.append(asyncio.ensure_future(get(credentials[n])))
            await until(lambda n=n: reads_waiting(n + 1), "a lookup waiting")
        asked += [asyncio.ensure_future(get(c)) for c in credentials[readers:]]
        await until(lambda: lookups_waiting(len(credentials) - readers), "the other credentials waiting")
        assert await reads_waiting(readers)
    finally:
        await blocker.close()  # the lock goes with the connection
    assert await asyncio.gather(*asked) == [200, 200, 200, 401]
    assert cache.reads.waiting(db) == cache.reads.reading(db) == 0


@pytest.fixture
async def second_process(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """Another server process on the same database (the same app, its own caches)."""
    settings = Settings.from_env({}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test")
    c = await aiohttp_client(create_app(settings))
    yield c
    await c.close()


async def test_a_revocation_is_refused_at_once_by_every_process(world: World, second_process: Any) -> None:
    code = await world.open_batch()
    cache = second_process.app[PRINCIPALS]
    await wait_for(lambda: cache.listening)
    token = await issue(world)
    device = world.devices["slaughter"]
    for credential in (token["credential"], device):  # warm the other process's cache
        assert (await second_process.get(f"/api/v1/batches/{code}", headers=world.auth(credential))).status == 200
        assert cache.get(token_hash(credential)) is not None
    await world.post(f"/api/v1/admin/tokens/{token['id']}/revoke", {}, expect=200)
    resp = await second_process.get(f"/api/v1/batches/{code}", headers=world.auth(token["credential"]))
    assert resp.status == 401
    devices = await (await world.client.get("/api/v1/admin/devices", headers=world.auth(world.admin))).json()
    device_id = next(d["id"] for d in devices["items"] if d["node_code"] == world.nodes["slaughter"])
    await world.post(f"/api/v1/admin/devices/{device_id}/revoke", {}, expect=200)
    resp = await second_process.post("/api/v1/events", json=world.event(code), headers=world.auth(device))
    assert resp.status == 401


async def test_console_users_are_disabled_and_repassworded(world: World, settings: Settings) -> None:
    data = await world.post(
        "/api/v1/admin/users", {"name": "周八", "role": "regulator", "password": PASSWORD}, expect=422
    )
    assert data["error"]["field"] == "authority"
    user = await world.post(
        "/api/v1/admin/users",
        {"name": "周八", "role": "regulator", "password": PASSWORD, "authority": "徐州市市场监督管理局"},
        expect=201,
    )
    assert user["authority"] == "徐州市市场监督管理局" and "password_hash" not in user
    async with open_database(settings) as db:
        opened = await accounts.sign_in(db, "周八", PASSWORD, "192.0.2.1")
        assert opened.session.principal.authority == "徐州市市场监督管理局"
        assert await accounts.resolve(db, opened.token) is not None
        await world.post(f"/api/v1/admin/users/{user['id']}/disable", {}, expect=200)
        assert await accounts.resolve(db, opened.token) is None  # the session ended with the account
        with pytest.raises(errors.Unauthorized):
            await accounts.sign_in(db, "周八", PASSWORD, "192.0.2.1")
        listed = await (await world.client.get("/api/v1/admin/users", headers=world.auth(world.admin))).json()
        assert listed["items"][0]["disabled_at"] is not None
        await world.post(f"/api/v1/admin/users/{user['id']}/enable", {}, expect=200)
        opened = await accounts.sign_in(db, "周八", PASSWORD, "192.0.2.1")
        # An administrator sets a new password: the old one and every session stop working.
        await world.post(
            f"/api/v1/admin/users/{user['id']}/password", {"password": "another long password"}, expect=200
        )
        assert await accounts.resolve(db, opened.token) is None
        opened = await accounts.sign_in(db, "周八", "another long password", "192.0.2.1")
        # The user changes their own password, proving the current one.
        with pytest.raises(errors.InvalidField):
            await accounts.change_password(db, user["id"], "not the current one", "a third long password")
        await accounts.change_password(db, user["id"], "another long password", "a third long password")
        assert await accounts.resolve(db, opened.token) is None
        await accounts.sign_in(db, "周八", "a third long password", "192.0.2.1")
        await world.post(
            f"/api/v1/admin/users/{user['id']}/authority", {"authority": "鼓楼区市场监督管理局"}, expect=200
        )


async def test_public_recalls_name_the_authority_not_the_account(world: World) -> None:
    code = await pork_chain(world)
    token = await issue(world, name="王科长的接口", authority="徐州市市场监督管理局")
    await world.post(
        "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, token["credential"], expect=201
    )
    public = await (await world.client.get("/api/v1/recalls")).json()
    assert public["recalls"][0]["authority"] == "徐州市市场监督管理局"
    assert "issued_by" not in public["recalls"][0] and "王科长" not in str(public)
    oversight = await (await world.client.get("/api/v1/recalls", headers=world.auth(world.admin))).json()
    assert oversight["recalls"][0]["issued_by"] == f"token:{token['id']} 王科长的接口"
    batch = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    recall = batch["events"][-1]["recall"]
    assert recall["issuedBy"] == "徐州市市场监督管理局" and "王科长" not in str(batch)
    # An administrator's credential names no authority: its recall names the market regulator generically.
    other = await pork_chain_again(world)
    await world.post("/api/v1/recalls", {"traceCode": other, "level": "III", "reason": "x"}, expect=201)
    public = await (await world.client.get("/api/v1/recalls")).json()
    assert public["recalls"][0]["authority"] == "市场监督管理部门" and "admin" not in str(public["recalls"][0])


async def pork_chain_again(world: World) -> str:
    return await world.open_batch("slaughter")


async def test_credentials_by_the_command_line(world: World, db_url: str, tmp_path: Path) -> None:
    out = cli(db_url, "token", "issue", "--role", "regulator", "--name", "接口", "--expires-in-days", "7")
    assert out.returncode == 0, out.stderr
    credential = out.stdout.strip()
    assert credential.startswith("tak_") and credential not in out.stderr
    listed = cli(db_url, "token", "list", "--role", "regulator")
    assert credential not in listed.stdout and '"authority": "接口"' in listed.stdout
    token_id = int(listed.stdout.split('"id": ')[1].split(",")[0])
    rotated = cli(db_url, "token", "rotate", str(token_id))
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("tak_")
    assert (await world.client.get("/api/v1/anomalies", headers=world.auth(credential))).status == 401
    assert (await world.client.get("/api/v1/anomalies", headers=world.auth(rotated.stdout.strip()))).status == 200
    assert cli(db_url, "token", "revoke", str(token_id)).returncode == 2  # already revoked (by the rotation)
    # The administrator credential in its file, rotated in place.
    (tmp_path / "admin-token").write_text(world.admin + "\n")
    out = cli(db_url, "token", "rotate-admin", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    new_admin = (tmp_path / "admin-token").read_text().strip()
    assert new_admin != world.admin and (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
    assert (await world.client.get("/api/v1/admin/tokens", headers=world.auth(world.admin))).status == 401
    assert (await world.client.get("/api/v1/admin/tokens", headers=world.auth(new_admin))).status == 200
    # Console users.
    from tests.web.test_pages import cli_stdin

    out = cli_stdin(
        db_url, PASSWORD + "\n", "user", "add", "--role", "regulator", "--name", "吴九", "--authority", "局"
    )
    assert out.returncode == 0, out.stderr
    assert cli(db_url, "user", "disable", "--name", "吴九").returncode == 0
    users = cli(db_url, "user", "list")
    assert '"disabled_at": null' not in users.stdout and PASSWORD not in users.stdout
    assert cli(db_url, "user", "enable", "--name", "吴九").returncode == 0
    assert cli_stdin(db_url, "a new long password\n", "user", "password", "--name", "吴九").returncode == 0
    assert cli(db_url, "user", "authority", "--name", "吴九", "--authority", "鼓楼区局").returncode == 0
    assert cli(db_url, "user", "disable", "--name", "nobody").returncode == 2
