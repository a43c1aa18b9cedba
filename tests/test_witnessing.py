"""Member ledgers witness each other, across real processes: each cosigns the other's checkpoints; a member that
shows two histories (a forged checkpoint signed with its key, a database rewritten under it) is caught, the
evidence kept and reported, and its vouchers refused until an administrator clears it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import CHINA, cloned_database, make_uscc, new_id
from tests.servers import Server
from traceability.domain.federation import Member
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle
from traceability.services.witnessing import cosigning_key

XUZHOU, NANJING = "xuzhou.trace.test/log", "nanjing.trace.test/log"
AREAS = {XUZHOU: "320300", NANJING: "320100"}


def minutes_ago(n: int) -> str:
    return (datetime.now(CHINA) - timedelta(minutes=n)).isoformat(timespec="seconds")


def forged_tree(v: dict[str, Any], signer: notes.Signer, size: int) -> dict[str, Any]:
    """The voucher re-proved in another tree of ``size`` leaves holding the same shipment leaf, signed with the
    home ledger's own key: what a ledger showing two histories would hand out."""
    leaves = [bytes([n % 256]) * 32 for n in range(size)]
    leaves[v["leaf_index"]] = merkle.leaf_hash(bytes.fromhex(v["event_hash"]))
    new_size, root, tiles = merkle.append(0, {}, leaves)
    path = merkle.inclusion_proof(v["leaf_index"], new_size, tiles)
    checkpoint = notes.sign_checkpoint(v["origin"], new_size, root, signer)
    return dict(v, tree_size=new_size, audit_path=[h.hex() for h in path], checkpoint=checkpoint)


class Ledger:
    """One ``traceability serve`` of the federation, with its own database, key and administrator."""

    def __init__(self, origin: str, home: Path, db_url: str) -> None:
        self.origin, self.home = origin, home
        home.mkdir(parents=True, exist_ok=True)
        self.signer = notes.generate_signer(origin)
        (home / "log-signing-key").write_text(notes.dump_signer_key(self.signer) + "\n")
        os.chmod(home / "log-signing-key", 0o600)
        self.server = Server(home, {"TRACE_DATABASE_URL": db_url, "TRACE_LOG_ORIGIN": origin,
                                    "TRACE_WITNESS_INTERVAL_MS": "200"})  # fmt: skip
        self.admin = ""

    @property
    def key(self) -> str:
        return notes.verifier_key(self.signer)

    async def start(self) -> None:
        self.server.start()
        await self.server.wait_healthy()
        self.admin = (self.home / "admin-token").read_text().strip()
        await self.post("/api/v1/admin/products", {"category": "meat", "goods_code": "21113011", "name": "白条猪肉"})

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.server.url + path, json=body, headers=headers, allow_redirects=False) as r,
        ):
            data = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, data

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        status, data = await self.call("POST", path, body, token)
        assert status in (200, 201), (self.origin, path, status, data)
        return data

    async def place(self, n: int, node_type: str, area: str) -> tuple[str, str]:
        uscc = make_uscc(n)
        await self.post("/api/v1/admin/enterprises", {"name": f"企业{n}", "uscc": uscc})
        body = {"enterprise": uscc, "type": node_type, "area_code": area, "name": f"节点{n}"}
        node = await self.post("/api/v1/admin/nodes", body)
        device = await self.post("/api/v1/admin/devices", {"node": node["code"], "name": f"scanner {n}"})
        return str(node["code"]), str(device["credential"])

    async def open_batch(self, device: str) -> str:
        body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": 88.5, "uom": "KGM"},
                "eventTime": minutes_ago(30)}  # fmt: skip
        return str((await self.post("/api/v1/batches", body, device))["traceCode"])

    async def witnessed(self, origin: str) -> dict[str, Any] | None:
        status, body = await self.call("GET", "/api/v1/federation/witnessed")
        assert status == 200, body
        return next((c for c in body["checkpoints"] if c["origin"] == origin), None)

    async def overview(self) -> dict[str, Any]:
        status, body = await self.call("GET", "/api/v1/federation/witness")
        assert status == 200, body
        return dict(body)


async def until(probe: Any, what: str, within: float = 60.0) -> Any:
    """Ask ``probe()`` until it answers something true (the witness runs every 200 ms here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await probe()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what} not seen within {within} s")
        await asyncio.sleep(0.1)


@pytest.fixture
async def pair(server_url: str, template: str, tmp_path: Path) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """Xuzhou and Nanjing, each witnessing the other."""
    async with (
        cloned_database(server_url, template) as xz_db,
        cloned_database(server_url, template) as nj_db,
    ):
        xz, nj = Ledger(XUZHOU, tmp_path / "xuzhou", xz_db), Ledger(NANJING, tmp_path / "nanjing", nj_db)
        members = [
            f'[[members]]\norigin = "{m.origin}"\nurl = "{m.server.url}"\nareas = ["{AREAS[m.origin]}"]\n'
            f'key = "{m.key}"\n'
            for m in (xz, nj)
        ]
        (tmp_path / "federation.toml").write_text("\n".join(members))
        for m in (xz, nj):
            m.server.env.update(TRACE_FEDERATION=str(tmp_path / "federation.toml"), TRACE_PUBLIC_URL=m.server.url)
        try:
            await asyncio.gather(xz.start(), nj.start())
            yield xz, nj
        finally:
            for m in (xz, nj):
                m.server.stop()


def cosigned_by(note: str, log_key: str, witness: Ledger) -> bool:
    """Whether ``witness`` cosigned the checkpoint ``note`` (verified with the key the federation pins)."""
    cosigner = notes.parse_verifier_key(cosigning_key_of(witness))
    cp = notes.verify_checkpoint(note, notes.parse_verifier_key(log_key), [cosigner])
    return any(v.name == witness.origin and v.sig_type == notes.COSIGNATURE_V1 for v in cp.verified)


def cosigning_key_of(ledger: Ledger) -> str:
    return cosigning_key(Member(ledger.origin, ledger.server.url, (), ledger.key))


async def voucher_of(xz: Ledger, code: str, shipment: str, device: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any] | None:
        status, body = await xz.call("GET", f"/api/v1/batches/{code}/vouchers/{shipment}", token=device)
        return dict(body) if status == 200 else None

    return dict(await until(fetch, "the shipment in Xuzhou's log"))


async def shipped(xz: Ledger, device: str, destination: str) -> dict[str, Any]:
    """A carcass opened at Xuzhou and shipped to a Nanjing node: its voucher."""
    code, shipment = await xz.open_batch(device), new_id()
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment, "traceCode": code, "bizStep": "shipping", "eventTime": minutes_ago(20),
         "quantity": {"value": 88.5, "uom": "KGM"}, "destination": {"node": destination}},
        device,
    )  # fmt: skip
    return await voucher_of(xz, code, shipment, device)


def receipt() -> dict[str, Any]:
    return {"eventID": new_id(), "bizStep": "receiving", "eventTime": minutes_ago(5),
            "quantity": {"value": 88.5, "uom": "KGM"}}  # fmt: skip


async def test_members_witness_each_other_and_catch_two_histories(
    pair: tuple[Ledger, Ledger], server_url: str, template: str
) -> None:
    xz, nj = pair
    _, slaughter = await xz.place(11, "slaughterhouse", "320311")
    market_node, market = await nj.place(21, "wholesale_market", "320102")
    v = await shipped(xz, slaughter, market_node)

    # Each ledger cosigns the other's checkpoints: served with the checkpoint (C2SP cosignature/v1 lines)
    # and listed, cosigned, for the other members to gossip.
    async def witnessed_at_least(size: int) -> dict[str, Any] | None:
        held = await nj.witnessed(XUZHOU)
        return held if held and held["size"] >= size and held["cosigned"] else None

    held = await until(lambda: witnessed_at_least(v["tree_size"]), "Nanjing cosigning Xuzhou's checkpoint")
    assert cosigned_by(held["checkpoint"], xz.key, nj)

    async def served_with(ledger: Ledger, witness: Ledger) -> bool:
        status, note = await ledger.call("GET", "/api/v1/log/checkpoint")
        return status == 200 and cosigned_by(note, ledger.key, witness)

    await until(lambda: served_with(xz, nj), "Xuzhou serving Nanjing's cosignature")
    await until(lambda: served_with(nj, xz), "Nanjing serving Xuzhou's cosignature")
    members = (await nj.overview())["members"]
    assert [(m["origin"], m["failures"], m["problem"]) for m in members] == [(XUZHOU, 0, None)]

    # A voucher under a checkpoint Xuzhou's key signed, of the size Nanjing witnessed but another tree: a
    # ledger showing two histories. Refused, naming why in both languages, and the evidence kept.
    forged = forged_tree(v, xz.signer, held["size"])
    status, body = await nj.call("POST", "/api/v1/handovers", {"voucher": forged, "event": receipt()}, market)
    assert status == 409 and body["error"]["code"] == "voucher_inconsistent", body
    message = body["error"]["message"]
    assert "不是同一段历史" in message and "not one history" in message and XUZHOU in message
    # From now on even a genuine voucher is refused: Xuzhou is not to be trusted until this is dealt with.
    status, body = await nj.call("POST", "/api/v1/handovers", {"voucher": v, "event": receipt()}, market)
    assert status == 409 and body["error"]["code"] == "voucher_split_view", body
    assert "分叉视图" in body["error"]["message"] and "split view" in body["error"]["message"]
    overview = await nj.overview()
    [split] = overview["split_views"]
    assert split["origin"] == XUZHOU and split["reason"] == "same_size" and split["via"] == "voucher"
    assert split["cleared"] is None
    assert notes.parse_checkpoint(split["first_note"]).root != notes.parse_checkpoint(split["second_note"]).root
    for note in (split["first_note"], split["second_note"]):  # both validly signed by Xuzhou: evidence
        notes.verify_checkpoint(note, notes.parse_verifier_key(xz.key))
    status, metrics = await nj.call("GET", "/metrics")
    assert status == 200 and f'trace_federation_split_views{{origin="{XUZHOU}"}} 1.0' in metrics
    assert re.search(rf'trace_witness_size{{origin="{re.escape(XUZHOU)}"}} [1-9]', metrics)
    assert "federation.split_view" in nj.server.output()

    # Only an administrator clears it, with a reason; Xuzhou's history starts again from what is fetched next.
    path = f"/api/v1/admin/federation/split-views/{split['id']}/clear"
    status, body = await nj.call("POST", path, {"reason": "已核查", "by": "me"})
    assert status == 422 and body["error"]["field"] == "by", body
    status, body = await nj.call("POST", path, {"reason": "已核查：伪造凭证，徐州账本无误"}, market)
    assert status == 403, body
    await nj.post(path, {"reason": "已核查：伪造凭证，徐州账本无误"})
    status, body = await nj.call("POST", path, {"reason": "again"})
    assert status == 409, body
    status, metrics = await nj.call("GET", "/metrics")
    assert f'trace_federation_split_views{{origin="{XUZHOU}"}} 0.0' in metrics
    later = await shipped(xz, slaughter, market_node)
    await until(lambda: witnessed_at_least(later["tree_size"]), "Nanjing witnessing Xuzhou again")

    # Xuzhou goes down. A voucher under the checkpoint Nanjing witnessed is received without asking it; one
    # under an earlier checkpoint needs Xuzhou's proof: it waits (503, Retry-After), nothing written.
    xz.server.stop()
    status, body = await nj.call("POST", "/api/v1/handovers", {"voucher": v, "event": receipt()}, market)
    assert status == 503 and body["error"]["code"] == "voucher_unverified", body
    assert "稍后重试" in body["error"]["message"] and "retry later" in body["error"]["message"]
    status, body = await nj.call("POST", "/api/v1/handovers", {"voucher": later, "event": receipt()}, market)
    assert status == 201 and body["origin"] == XUZHOU, body

    async def failing() -> dict[str, Any] | None:
        [member] = (await nj.overview())["members"]
        return member if member["failures"] and "unreachable" in (member["problem"] or "") else None

    await until(failing, "Nanjing reporting Xuzhou unreachable")
    status, metrics = await nj.call("GET", "/metrics")
    assert re.search(rf'trace_witness_failures{{origin="{re.escape(XUZHOU)}"}} [1-9]', metrics)

    # Xuzhou's operator puts another database under the same key and origin: a different history, which
    # Nanjing's witness catches by itself.
    async with cloned_database(server_url, template) as other_db:
        xz.server.env["TRACE_DATABASE_URL"] = other_db
        with contextlib.suppress(FileNotFoundError):
            (xz.home / "admin-token").unlink()
        await xz.start()
        _, slaughter = await xz.place(12, "slaughterhouse", "320311")
        await xz.open_batch(slaughter)

        async def caught() -> list[dict[str, Any]]:
            return [s for s in (await nj.overview())["split_views"] if s["cleared"] is None]

        [split] = await until(caught, "Nanjing catching Xuzhou's rewritten log")
        assert split["origin"] == XUZHOU and split["via"] == "witness"
        assert split["reason"] in ("shrank", "same_size", "not_consistent"), split
        [member] = (await nj.overview())["members"]
        assert member["split_view"]
        xz.server.stop()
