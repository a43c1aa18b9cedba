"""Gossip: a member that shows one history to this ledger and another to a second member is caught when the
second member passes on what it holds; the regulator sees it in the console, Chinese first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import World
from tests.test_federation import member, signer_file
from tests.test_recall_notices import CSRF
from traceability.config import Settings
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle
from traceability.ledger.signed_note import b64
from traceability.services import accounts
from traceability.storage.database import open_database

OWN, NANJING, SUZHOU = "trace.test/log", "nanjing.trace.test/log", "suzhou.trace.test/log"


async def sign_in_as(client: Any, db_url: str, role: str) -> None:
    """A console user of ``role``, signed in on ``client``."""
    name, password = f"{role}-desk", "correct horse battery staple 9"
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, name, role, password, "徐州市市场监督管理局" if role == "regulator" else None)
    client.session.cookie_jar.clear()  # whoever was signed in before
    csrf = CSRF.search(await (await client.get("/console/login")).text())
    assert csrf is not None
    origin = str(client.make_url("")).rstrip("/")
    form = {"csrf": csrf.group(1), "name": name, "password": password}
    resp = await client.post("/console/login", data=form, headers={"Origin": origin})
    assert resp.status == 200, resp.status


@dataclass
class Peer:
    """A member ledger as far as a witness sees it: its checkpoint, what it holds of others, cosignatures."""

    signer: notes.Signer
    checkpoint: str
    holds: list[dict[str, Any]] = field(default_factory=list)
    cosigned: list[str] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        async def checkpoint(_: web.Request) -> web.Response:
            return web.Response(text=self.checkpoint)

        async def witnessed(_: web.Request) -> web.Response:
            return web.json_response({"own": self.signer.name, "checkpoints": self.holds})

        async def cosignatures(request: web.Request) -> web.Response:
            self.cosigned.append(await request.text())
            return web.json_response({"accepted": [OWN]}, status=201)

        app = web.Application()
        app.router.add_get("/api/v1/log/checkpoint", checkpoint)
        app.router.add_get("/api/v1/federation/witnessed", witnessed)
        app.router.add_post("/api/v1/log/cosignatures", cosignatures)
        self.server = TestServer(app)
        await self.server.start_server()


def tree(size: int, salt: int) -> bytes:
    _, root, _ = merkle.append(0, {}, [bytes([salt, n % 256]) * 16 for n in range(size)])
    return root


@pytest.fixture
async def peers() -> AsyncIterator[dict[str, Peer]]:
    out = {}
    for origin in (NANJING, SUZHOU):
        signer = notes.generate_signer(origin)
        out[origin] = Peer(signer, notes.sign_checkpoint(origin, 5, tree(5, 1), signer))
        await out[origin].start()
    yield out
    for p in out.values():
        assert p.server is not None
        await p.server.close()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, peers: dict[str, Peer]) -> Settings:
    own = signer_file(tmp_path, OWN)
    members = [member(OWN, "http://trace.test", ["3203"], own)]
    areas = {NANJING: ["3201"], SUZHOU: ["3205"]}
    members += [member(o, p.url, areas[o], p.signer) for o, p in peers.items()]
    path = tmp_path / "federation.json"
    path.write_text(json.dumps({"members": members}))
    return Settings.from_env(
        {"TRACE_FEDERATION": str(path), "TRACE_WITNESS_INTERVAL_MS": "100"},
        database_url=db_url,
        data_dir=tmp_path,
        public_url="http://trace.test",
    )


async def test_a_member_showing_another_history_to_a_peer_is_caught(
    world: World, peers: dict[str, Peer], settings: Settings, db_url: str
) -> None:
    client, suzhou, nanjing = world.client, peers[SUZHOU], peers[NANJING]
    own_key = notes.verifier_for(notes.load_signer_key(settings.signing_key_path.read_bytes()), notes.COSIGNATURE_V1)

    async def until(probe: Any, what: str) -> Any:
        for _ in range(600):
            if found := await probe():
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what} not seen")

    async def overview() -> dict[str, Any]:
        resp = await client.get("/api/v1/federation/witness", headers=world.auth(world.admin))
        assert resp.status == 200
        return dict(await resp.json())

    # This ledger witnesses Suzhou at size 5 and posts its cosignature there.
    await until(lambda: asyncio.sleep(0, suzhou.cosigned), "a cosignature posted to Suzhou")
    cp = notes.verify_checkpoint(suzhou.cosigned[0], notes.verifier_for(suzhou.signer), [own_key])
    assert cp.size == 5 and [v.name for v in cp.verified] == [SUZHOU, OWN]
    listed = await (await client.get("/api/v1/federation/witnessed")).json()
    assert {c["origin"]: c["cosigned"] for c in listed["checkpoints"]} == {NANJING: True, SUZHOU: True}
    # A signature that fails proves nothing about Suzhou: ignored.
    stranger = notes.generate_signer(SUZHOU)
    nanjing.holds = [{"origin": SUZHOU, "checkpoint": notes.sign_checkpoint(SUZHOU, 5, tree(5, 2), stranger)}]
    await asyncio.sleep(0.5)
    assert (await overview())["split_views"] == []
    # Suzhou showed Nanjing another tree of the same size, signed with its key: Nanjing passes it on.
    other = notes.sign_checkpoint(SUZHOU, 5, tree(5, 2), suzhou.signer)
    # (after an entry of no member, long enough that the list arrives in many pieces)
    nanjing.holds = [{"origin": "elsewhere", "checkpoint": "x" * 300_000}, {"origin": SUZHOU, "checkpoint": other}]

    async def split() -> list[dict[str, Any]]:
        return list((await overview())["split_views"])

    [found] = await until(split, "the split view")
    assert found["origin"] == SUZHOU and found["reason"] == "same_size" and found["via"] == f"gossip:{NANJING}"
    assert found["first_note"] == suzhou.checkpoint and found["second_note"] == other

    async def members() -> dict[str, dict[str, Any]] | None:
        found = {m["origin"]: m for m in (await overview())["members"]}
        return found if found[SUZHOU]["split_view"] and found[SUZHOU]["problem_code"] == "split_view" else None

    status = await until(members, "Suzhou's status")
    assert not status[NANJING]["split_view"]  # Nanjing passed it on; it is not the one at fault

    # Nanjing holds a checkpoint of this very ledger that its own log does not agree with (a tree larger than
    # any it signed: its database was restored from an old backup, or its key used elsewhere): kept too.
    own = notes.load_signer_key(settings.signing_key_path.read_bytes())
    nanjing.holds = [{"origin": OWN, "checkpoint": notes.sign_checkpoint(OWN, 7, tree(7, 3), own)}]

    async def own_split() -> list[dict[str, Any]]:
        return [s for s in (await overview())["split_views"] if s["origin"] == OWN]

    [mine] = await until(own_split, "this ledger's own split view")
    assert mine["reason"] == "shrank" and mine["via"] == f"gossip:{NANJING}"

    # The regulator's console: Chinese first, both notes shown; English when asked; the JSON twin.
    await sign_in_as(client, db_url, "regulator")
    same = {"Origin": str(client.make_url("")).rstrip("/")}
    page = await (await client.get("/console/federation")).text()
    assert "联盟见证" in page and "Split view evidence" not in page  # the console speaks Chinese first
    assert "分叉视图" in page and "同一大小、不同根哈希" in page and f"gossip:{NANJING}" in page
    assert "已证实分叉视图：不再联署" in page  # Suzhou's state, in words
    assert b64(tree(5, 2)) in page and b64(tree(5, 1)) in page
    english = await (await client.get("/console/federation?lang=en")).text()
    assert "Split view evidence" in english and "same size, different root" in english
    twin = await (await client.get("/console/federation?format=json")).json()
    assert [s["id"] for s in twin["split_views"]] == [mine["id"], found["id"]]
    csrf = CSRF.search(page)
    assert csrf is not None and "/clear" not in page  # a regulator sees the evidence; clearing is not theirs
    path = f"/console/federation/split-views/{found['id']}/clear"
    assert (await client.post(path, data={"csrf": csrf.group(1), "reason": "已核查"}, headers=same)).status == 403

    # An administrator clears it from the console, saying why.
    await sign_in_as(client, db_url, "admin")
    page = await (await client.get("/console/federation")).text()
    csrf = CSRF.search(page)
    assert csrf is not None and path in page
    resp = await client.post(path, data={"csrf": csrf.group(1), "reason": " "}, headers=same)
    assert resp.status == 422
    resp = await client.post(path, data={"csrf": csrf.group(1), "reason": "苏州账本已核查"}, headers=same)
    assert resp.status == 200 and "苏州账本已核查" in await resp.text()  # followed back to the page
    [cleared] = [s for s in (await overview())["split_views"] if s["id"] == found["id"]]
    assert cleared["cleared"]["reason"] == "苏州账本已核查" and cleared["cleared"]["by"].startswith("admin:")
