"""Who may do what, what each viewer sees, caching, and what the logs may hold."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import asyncpg
import structlog

from tests.conftest import World, make_uscc, until
from traceability.domain import tracecode
from traceability.logging import add_request_id


async def test_credentials_are_required(world: World) -> None:
    code = await world.open_batch()
    resp = await world.client.post("/api/v1/events", json=world.event(code))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = await world.client.post(
        "/api/v1/events", json=world.event(code), headers={"Authorization": "Bearer tdv_forged"}
    )
    assert resp.status == 401
    resp = await world.client.post("/api/v1/events", json=world.event(code), headers={"Authorization": "Basic x"})
    assert resp.status == 401


async def test_roles_do_only_what_is_theirs(world: World) -> None:
    code = await world.open_batch()
    data = await world.post("/api/v1/events", world.event(code), world.admin, expect=403)
    assert "device" in data["error"]["message"]
    data = await world.post(
        "/api/v1/admin/products",
        {"category": "meat", "goods_code": "1", "name": "x"},
        world.devices["slaughter"],
        expect=403,
    )
    assert data["error"]["code"] == "forbidden"
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "bureau"}, expect=201)
    resp = await world.client.get("/api/v1/admin/nodes", headers=world.auth(regulator["credential"]))
    assert resp.status == 200
    data = await world.post(
        "/api/v1/admin/enterprises", {"name": "x", "uscc": make_uscc(77)}, regulator["credential"], expect=403
    )


async def test_revoked_device_is_refused(world: World) -> None:
    code = await world.open_batch()
    resp = await world.client.get("/api/v1/admin/devices", headers=world.auth(world.admin))
    device_id = next(d["id"] for d in (await resp.json())["items"] if d["node_code"] == world.nodes["slaughter"])
    await world.post(f"/api/v1/admin/devices/{device_id}/revoke", {}, expect=200)
    data = await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=401)
    assert "revoked" in data["error"]["message"]


async def sold_batch(world: World) -> str:
    code = await world.open_batch()
    await world.post(
        "/api/v1/events",
        world.event(
            code,
            "shipping",
            destination={"enterprise": world.enterprises["market"], "name": "菜市场"},
            commercial={"unit_price": "24.60", "currency": "CNY", "buyer": "王记鲜肉"},
        ),
        world.devices["slaughter"],
        expect=201,
    )
    return code


async def test_public_view_hides_commercial_details(world: World) -> None:
    code = await sold_batch(world)
    resp = await world.client.get(f"/api/v1/batches/{code}")
    view = await resp.json()
    assert view["view"] == "public"
    assert "commercial" not in view["events"][1] and "destination" not in view["events"][1]
    assert "24.60" not in await resp.text() and "王记鲜肉" not in await resp.text()
    assert view["events"][1]["node"]["type"] == "slaughterhouse"
    assert {"event_id", "seq", "hash", "prev_hash"} <= set(view["events"][0])


async def test_regulators_and_involved_enterprises_see_commercial_details(world: World) -> None:
    code = await sold_batch(world)
    regulator = await world.post("/api/v1/admin/tokens", {"role": "regulator", "name": "bureau"}, expect=201)
    view = await (await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(regulator["credential"]))).json()
    assert view["view"] == "full"
    assert view["events"][1]["commercial"]["unit_price"] == "24.6"  # decimals are canonical
    buyer = await world.post(
        "/api/v1/admin/tokens",
        {"role": "enterprise", "name": "market", "enterprise": world.enterprises["market"]},
        expect=201,
    )
    view = await (await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(buyer["credential"]))).json()
    assert view["view"] == "full"
    await world.add_node("bystander", "supermarket", n=55)
    outsider = await world.post(
        "/api/v1/admin/tokens",
        {"role": "enterprise", "name": "other", "enterprise": world.enterprises["bystander"]},
        expect=201,
    )
    view = await (await world.client.get(f"/api/v1/batches/{code}", headers=world.auth(outsider["credential"]))).json()
    assert view["view"] == "public"


async def test_etag_and_conditional_requests(world: World) -> None:
    code = await world.open_batch()
    resp = await world.client.get(f"/api/v1/batches/{code}")
    tag = resp.headers["ETag"]
    resp = await world.client.get(f"/api/v1/batches/{code}", headers={"If-None-Match": tag})
    assert resp.status == 304
    assert resp.headers["ETag"] == tag
    await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
    resp = await world.client.get(f"/api/v1/batches/{code}", headers={"If-None-Match": tag})
    assert resp.status == 200
    assert resp.headers["ETag"] != tag
    assert len((await resp.json())["events"]) == 2
    # The public view is kept encoded by its ETag: gzip for a client that takes it, the same view either way,
    # and the kept bytes never outlive the chain head they were made from.
    plain = await (await world.client.get(f"/api/v1/batches/{code}", headers={"Accept-Encoding": "identity"})).read()
    url = f"/api/v1/batches/{code}"
    zipped = await world.client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(await zipped.read()) == plain
    await world.post("/api/v1/events", world.event(code), world.devices["slaughter"], expect=201)
    resp = await world.client.get(f"/api/v1/batches/{code}", headers={"Accept-Encoding": "gzip"})
    assert len((await resp.json())["events"]) == 3


async def test_heads_asked_for_together_are_read_together(
    world: World, superuser: asyncpg.Connection, db_url: str
) -> None:
    """Lookups arriving while chain heads are being read wait for the next read, which reads all their heads
    in one statement started after they came; each still gets its own batch (an unknown code its 404), and a
    read that fails fails only the lookups it was reading for."""
    from traceability.http.keys import DATABASE, VIEWS

    app = world.client.server.app
    heads = app[VIEWS].heads
    codes = [await world.open_batch() for _ in range(5)]
    for code in codes:  # the views are kept: each lookup below only reads its head
        assert (await world.client.get(f"/api/v1/batches/{code}")).status == 200
    unknown = tracecode.make("320311", 99_999_999)

    async def get(code: str) -> tuple[int, Any]:
        resp = await world.client.get(f"/api/v1/batches/{code}")
        return resp.status, await resp.json()

    async def reading() -> list[int]:
        rows = await superuser.fetch(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            " AND query LIKE '%ANY($1::text[])%' ORDER BY query_start"
        )
        return [r["pid"] for r in rows]

    async def reads_waiting(n: int) -> bool:
        return len(await reading()) == n

    async def lookups_waiting(n: int) -> bool:
        return heads.waiting(app[DATABASE]) == n

    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE batch_heads IN ACCESS EXCLUSIVE MODE")
        first = [asyncio.ensure_future(get(codes[0]))]
        await until(lambda: reads_waiting(1), "the first read waiting")
        (doomed,) = await reading()
        for n in range(1, heads.readers):  # one read under way each
            first.append(asyncio.ensure_future(get(codes[n])))
            await until(lambda n=n: reads_waiting(n + 1), "another read waiting")
        later = [asyncio.ensure_future(get(code)) for code in [*codes[heads.readers :], unknown]]
        await until(lambda: lookups_waiting(len(later)), "the later lookups waiting for the next read")
        assert len(await reading()) == heads.readers
        await superuser.execute("SELECT pg_terminate_backend($1)", doomed)
        assert (await first[0])[0] == 503
    finally:
        await blocker.close()  # the lock goes with the connection
    answers = await asyncio.gather(*first[1:], *later)
    assert [(status, body.get("trace_code")) for status, body in answers[:-1]] == [(200, c) for c in codes[1:]]
    assert answers[-1][0] == 404
    assert heads.waiting(app[DATABASE]) == heads.reading(app[DATABASE]) == 0


async def test_one_log_line_per_request_and_no_secrets(world: World) -> None:
    code = await world.open_batch()
    token = world.devices["slaughter"]
    with structlog.testing.capture_logs(processors=[add_request_id]) as logs:
        posted = await world.client.post(
            "/api/v1/events", json=world.event(code, commercial={"buyer": "secret buyer"}), headers=world.auth(token)
        )
        assert posted.status == 201, await posted.text()
        resp = await world.client.get(f"/api/v1/batches/{code}", headers={"X-Request-ID": "trace-test-0001"})
        assert resp.headers["X-Request-ID"] == "trace-test-0001"
    lines = [entry for entry in logs if entry["event"] == "request.handled"]
    assert len(lines) == 2
    # Each line carries its own request's id, the one its answer was sent with.
    assert [line["request_id"] for line in lines] == [posted.headers["X-Request-ID"], "trace-test-0001"]
    assert lines[0]["route"] == "/api/v1/events" and lines[0]["status"] == 201
    assert lines[0]["actor"].startswith("device:")
    assert lines[1]["route"] == "/api/v1/batches/{trace_code}"
    dump = repr(logs)
    assert token not in dump and token[4:] not in dump
    assert "secret buyer" not in dump


async def test_healthz(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
