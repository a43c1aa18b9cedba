"""Every kind of write is idempotent: resending the same request returns the original answer and records nothing twice.

A scanner that lost the answer (a dropped connection, a crash after sending) sends the same body again
with the same ids. The server must recognise it, whatever it filled in itself the first time.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import World, new_id
from traceability.domain import stations


async def counts(conn: asyncpg.Connection) -> tuple[int, int]:
    return await conn.fetchval("SELECT count(*) FROM events"), await conn.fetchval("SELECT count(*) FROM batches")


async def twice(world: World, path: str, body: Any, token: str, superuser: asyncpg.Connection) -> tuple[Any, Any]:
    """Send ``body`` twice: the first records (201), the second is a replay (200) that records nothing."""
    first = await world.post(path, body, token, expect=201)
    before = await counts(superuser)
    again = await world.post(path, body, token, expect=200)
    assert await counts(superuser) == before
    return first, again


async def test_opening_a_batch(world: World, superuser: asyncpg.Connection) -> None:
    body = {"eventID": new_id(), "product": "21113011", "quantity": {"value": "88.5", "uom": "KGM"}}
    first, again = await twice(world, "/api/v1/batches", body, world.devices["slaughter"], superuser)
    assert again["replayed"] and again["traceCode"] == first["traceCode"]
    assert {k: v for k, v in again["receipt"].items() if k != "replayed"} == {
        k: v for k, v in first["receipt"].items() if k != "replayed"
    }


async def test_capturing_one_event_and_a_list(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    one = world.event(code, "shipping", quantity={"value": "12.50", "uom": "KGM"})
    first, again = await twice(world, "/api/v1/events", one, world.devices["slaughter"], superuser)
    assert again["replayed"] and again["seq"] == first["seq"] and again["hash"] == first["hash"]
    many = {"events": [world.event(code, "storing"), world.event(code, "inspecting", disposition="conformant")]}
    first, again = await twice(world, "/api/v1/events", many, world.devices["slaughter"], superuser)
    assert [r["hash"] for r in again["receipts"]] == [r["hash"] for r in first["receipts"]]
    assert all(r["replayed"] for r in again["receipts"])


async def test_a_transformation(world: World, superuser: asyncpg.Connection) -> None:
    carcass = await world.open_batch()
    body = {
        "eventID": new_id(),
        "bizStep": "repackaging",
        "inputs": [{"traceCode": carcass, "quantity": {"value": 90.5, "uom": "KGM"}}],
        "outputs": [{"product": "21113011", "quantity": {"value": 45, "uom": "KGM"}} for _ in range(2)],
    }
    first, again = await twice(world, "/api/v1/transformations", body, world.devices["slaughter"], superuser)
    assert again["replayed"] and [o["traceCode"] for o in again["outputs"]] == [
        o["traceCode"] for o in first["outputs"]
    ]


async def test_an_error_declaration_without_its_time(world: World, superuser: asyncpg.Connection) -> None:
    """The server once filled in declarationTime from its clock, so the resent declaration was a 409."""
    code = await world.open_batch()
    wrong = world.event(code, "shipping")
    await world.post("/api/v1/events", wrong, world.devices["slaughter"], expect=201)
    declaration = world.event(
        code, "shipping", errorDeclaration={"reason": "did_not_occur", "declaredEventID": wrong["eventID"]}
    )
    first, again = await twice(world, "/api/v1/events", declaration, world.devices["slaughter"], superuser)
    assert again["replayed"] and again["hash"] == first["hash"]
    stored = await (await world.client.get(f"/api/v1/batches/{code}")).json()
    said = stored["events"][-1]["errorDeclaration"]
    assert said["declarationTime"] == stored["events"][-1]["eventTime"]
    # The same id with another declaration is still a conflict.
    other = {**declaration, "errorDeclaration": {**declaration["errorDeclaration"], "reason": "incorrect_data"}}
    await world.post("/api/v1/events", other, world.devices["slaughter"], expect=409)


class SigningStation:
    """A station enrolled with its own Ed25519 key, signing each request as docs/scanners.md says."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = stations.key_id(self.public)

    def headers(self, path: str, body: bytes) -> dict[str, str]:
        created = int(time.time())
        message = stations.signing_string("POST", path, created, hashlib.sha256(body).digest())
        return {
            "Authorization": stations.authorization(self.key_id, created, self.key.sign(message)),
            "Content-Type": "application/json",
        }

    async def post(self, path: str, body: bytes) -> tuple[int, Any]:
        resp = await self.world.client.post(path, data=body, headers=self.headers(path, body))
        return resp.status, await resp.json()

    async def enrol(self, device_id: int) -> None:
        code = await self.world.post(f"/api/v1/admin/devices/{device_id}/enrolment", {}, expect=201)
        body = f'{{"publicKey":"{stations.b64(self.public)}","code":"{code["code"]}"}}'.encode()
        status, data = await self.post("/api/v1/stations/enrol", body)
        assert status == 201, data


async def test_a_station_upload(world: World, superuser: asyncpg.Connection) -> None:
    code = await world.open_batch()
    devices = await (await world.client.get("/api/v1/admin/devices", headers=world.auth(world.admin))).json()
    station = SigningStation(world)
    await station.enrol(devices["items"][0]["id"])
    upload = {"events": [world.event(code, "storing"), world.event(code, "shipping")]}
    body = orjson.dumps(upload)
    status, first = await station.post("/api/v1/stations/events", body)
    assert status == 201, first
    before = await counts(superuser)
    status, again = await station.post("/api/v1/stations/events", body)
    assert status == 200, again
    assert await counts(superuser) == before
    assert [r["hash"] for r in again["receipts"]] == [r["hash"] for r in first["receipts"]]
    signatures = await (
        await world.client.get(
            f"/api/v1/admin/events/{upload['events'][0]['eventID']}/signatures", headers=world.auth(world.admin)
        )
    ).json()
    assert len(signatures["items"]) == 2 and all(s["verified"] for s in signatures["items"])
