"""The OpenAPI document tells the truth: every route is in it, it is valid OpenAPI 3.1, and real answers match it.

The journey below calls every documented API operation the way its users do (an administrator
registering, a scanner recording, a station signing, a regulator tracing and recalling, the public
reading) and validates each answer's body against the schema the document gives for that operation
and status. tests/test_fuzz.py then throws generated requests at the same document.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson
from openapi_spec_validator import validate

from tests.conftest import World, new_id
from tests.test_replays import SigningStation
from traceability.config import Settings
from traceability.http import openapi
from traceability.http.app import create_app


def app_document() -> tuple[Any, dict[str, Any]]:
    app = create_app(Settings.from_env({}, database_url="postgresql://unused/none"))
    return app, openapi.document(app)


def test_every_route_is_in_the_document() -> None:
    app, document = app_document()
    assert openapi.undocumented(app) == []
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    served = openapi.registered(app)
    assert ("POST", "/api/v1/admin/nodes") in served and ("GET", "/api/v1/batches/{trace_code}") in served
    assert set(served) == documented


def test_the_document_is_valid_openapi_3_1() -> None:
    _, document = app_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


class Checker:
    """Validates answers against the served document, and remembers which operations were seen."""

    def __init__(self, world: World, document: dict[str, Any]) -> None:
        self.world = world
        self.document = document
        self.seen: set[tuple[str, str]] = set()
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in document["paths"]]
        # A path whose last variable spans segments (a tile's x001/234 index), tried when nothing else matches.
        self.spanning = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p[: p.rindex("{")]) + ".+$"), p)
            for p in document["paths"]
            if p.endswith("}")
        ]

    def template(self, path: str) -> str:
        matches = [t for rx, t in self.templates if rx.match(path)] or [t for rx, t in self.spanning if rx.match(path)]
        assert matches, path
        return min(matches, key=lambda t: t.count("{"))  # a literal segment beats a variable

    def check(self, method: str, path: str, status: int, body: bytes, content_type: str) -> None:
        template = self.template(path.split("?")[0])
        operation = self.document["paths"][template][method.lower()]
        responses = operation["responses"]
        answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert answer is not None, (method, template, status)
        self.seen.add((method.upper(), template))
        if "content" not in answer:
            return
        media, spec = next(iter(answer["content"].items()))
        assert content_type == media, (method, template, content_type)
        if media == "application/json":
            schema = {**spec["schema"], "components": self.document["components"]}
            jsonschema.Draft202012Validator(schema).validate(orjson.loads(body))

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.world.client.request(method, path, json=body, headers=headers, **kw)
        raw = await resp.read()
        self.check(method, path, resp.status, raw, resp.content_type)
        return resp.status, (
            orjson.loads(raw) if resp.content_type == "application/json" else raw.decode(errors="replace")
        )


async def test_real_answers_match_the_document(world: World) -> None:
    document = orjson.loads(await (await world.client.get("/api/v1/openapi.json")).read())
    c = Checker(world, document)
    admin, device = world.admin, world.devices["slaughter"]
    call = c.call
    assert (await call("GET", "/api/v1/openapi.json"))[0] == 200
    assert (await call("GET", "/healthz"))[0] == 200
    # The registry.
    status, _ = await call(
        "POST",
        "/api/v1/admin/enterprises",
        {"name": "新企业", "uscc": "91320300MA0000099P", "licences": {"food": "JY1"}},
        admin,
    )
    assert status == 201
    for kind in ("enterprises", "nodes", "operators", "products", "devices"):
        assert (await call("GET", f"/api/v1/admin/{kind}?limit=5", token=admin))[0] == 200
    status, _ = await call(
        "POST", "/api/v1/admin/operators", {"node": world.nodes["market"], "code": "A-1", "name": "王记"}, admin
    )
    assert status == 201
    status, _ = await call(
        "POST",
        "/api/v1/admin/nodes",
        {
            "enterprise": world.enterprises["market"],
            "type": "wet_market",
            "area_code": "320302",
            "name": "二号市场",
            "latitude": 34.2,
        },
        admin,
    )
    assert status == 201
    status, _ = await call(
        "POST", "/api/v1/admin/products", {"category": "other", "goods_code": "X-1", "name": "鸡蛋"}, admin
    )
    assert status == 201
    status, extra = await call("POST", "/api/v1/admin/devices", {"node": world.nodes["market"], "name": "spare"}, admin)
    assert status == 201
    assert (await call("POST", f"/api/v1/admin/devices/{extra['id']}/revoke", token=admin))[0] == 200
    status, token = await call("POST", "/api/v1/admin/tokens", {"role": "regulator", "name": "市场监督管理局"}, admin)
    assert status == 201
    regulator = token["credential"]
    # Capture.
    opening = {
        "eventID": new_id(),
        "product": "21113011",
        "quantity": {"value": 90.5, "uom": "KGM"},
        "identifiers": [{"scheme": "drug_code", "value": "81234560000000000011"}],
    }
    status, opened = await call("POST", "/api/v1/batches", opening, device)
    assert status == 201
    assert (await call("POST", "/api/v1/batches", opening, device))[0] == 200
    code = opened["traceCode"]
    one = world.event(code, "shipping", commercial={"unit_price": "24.6"})
    assert (await call("POST", "/api/v1/events", one, device))[0] == 201
    assert (await call("POST", "/api/v1/events", {"events": [world.event(code, "storing")]}, device))[0] == 201
    assert (await call("POST", "/api/v1/events", one, device))[0] == 200
    status, transformed = await call(
        "POST",
        "/api/v1/transformations",
        {
            "eventID": new_id(),
            "inputs": [{"traceCode": code, "quantity": {"value": 90.5, "uom": "KGM"}}],
            "outputs": [{"product": "21113011", "quantity": {"value": 45, "uom": "KGM"}}],
        },
        device,
    )
    assert status == 201
    child = transformed["outputs"][0]["traceCode"]
    sale = {"eventID": new_id(), "source": child, "quantity": {"value": 1.5, "uom": "KGM"}}
    sale["eventTime"] = world.event(child)["eventTime"]
    assert (await call("POST", "/api/v1/sales", sale, device))[0] == 201
    assert (await call("POST", "/api/v1/sales", sale, device))[0] == 200
    # Reading and tracing.
    assert (await call("GET", f"/api/v1/batches/{code}"))[0] == 200
    assert (await call("GET", f"/api/v1/batches/{code}", token=regulator))[0] == 200
    assert (await call("GET", f"/api/v1/batches/{child}/trace"))[0] == 200
    assert (await call("GET", f"/api/v1/batches/{code}/epcis"))[0] == 200
    assert (await call("GET", f"/api/v1/batches/{code}/trace?direction=forward", token=regulator))[0] == 200
    assert (await call("GET", "/api/v1/identifiers?scheme=drug_code&value=81234560000000000011"))[0] == 200
    assert (await call("GET", f"/api/v1/enterprises/{world.enterprises['slaughter']}/credit"))[0] == 200
    assert (await call("GET", "/api/v1/enterprises", token=regulator))[0] == 200
    assert (await call("GET", "/api/v1/anomalies?since=2026-01-01T00:00:00Z", token=regulator))[0] == 200
    assert (await call("GET", "/api/v1/packages/SSCC00000001"))[0] == 404
    # Recalls.
    assert (await call("POST", "/api/v1/recalls", {"traceCode": code, "level": "I", "reason": "瘦肉精"}, regulator))[
        0
    ] == 201
    assert (await call("GET", "/api/v1/recalls"))[0] == 200
    assert (await call("GET", f"/api/v1/batches/{code}/verdict"))[0] == 200
    # The log.
    for path in ("/api/v1/log", "/api/v1/log/checkpoint", "/api/v1/log/public-key", "/api/v1/log/checkpoints"):
        assert (await call("GET", path))[0] == 200
    assert (await call("GET", "/api/v1/log/consistency?first=0&second=0"))[0] in (200, 422)
    assert (await call("GET", "/api/v1/log/tile/0/000.p/1"))[0] in (200, 404)
    status, _ = await call("GET", f"/api/v1/events/{one['eventID']}/proof")
    assert status in (200, 404)
    assert (await call("GET", f"/api/v1/batches/{code}/proofs?limit=2"))[0] == 200
    assert (await call("GET", f"/api/v1/log/proofs?event={one['eventID']}&leaf=0"))[0] == 200
    assert (await call("POST", "/api/v1/admin/witnesses", {"name": "w", "verifier_key": "bad"}, admin))[0] == 422
    assert (await call("POST", "/api/v1/log/cosignatures", data=b"not a note"))[0] in (400, 401, 422)
    # Stations.
    devices = (await call("GET", "/api/v1/admin/devices", token=admin))[1]["items"]
    station = SigningStation(world)
    await station.enrol(devices[0]["id"])
    c.seen.add(("POST", "/api/v1/admin/devices/{id}/enrolment"))
    c.seen.add(("POST", "/api/v1/stations/enrol"))
    assert (await call("GET", f"/api/v1/admin/devices/{devices[0]['id']}/keys", token=admin))[0] == 200
    status, leases = await call("POST", "/api/v1/stations/leases", {"blocks": 1}, device)
    assert status == 201
    leased = leases["blocks"][0]["firstCode"]
    assert (await call("GET", "/api/v1/stations/watchlist", token=device))[0] == 200
    assert (await call("GET", f"/api/v1/codes/{leased}/lease"))[0] == 200
    body = orjson.dumps({"events": [world.event(code, "storing")]})
    status, signed = await station.post("/api/v1/stations/events", body)
    c.check("POST", "/api/v1/stations/events", status, orjson.dumps(signed), "application/json")
    event_id = orjson.loads(body)["events"][0]["eventID"]
    assert (await call("GET", f"/api/v1/admin/events/{event_id}/signatures", token=admin))[0] == 200
    assert (await call("POST", f"/api/v1/admin/devices/{devices[0]['id']}/revoke-keys", token=admin))[0] == 200
    # Credentials, console users and the access log.
    erp = {"role": "enterprise", "name": "ERP", "enterprise": world.enterprises["slaughter"], "expires_in_days": 30}
    status, extra_token = await call("POST", "/api/v1/admin/tokens", erp, admin)
    assert status == 201
    assert (await call("GET", "/api/v1/admin/tokens?state=active", token=admin))[0] == 200
    status, rotated = await call("POST", f"/api/v1/admin/tokens/{extra_token['id']}/rotate", token=admin)
    assert status == 201
    assert (await call("POST", f"/api/v1/admin/tokens/{rotated['id']}/revoke", token=admin))[0] == 200
    # The recall above reaches the slaughterhouse: its credential sees the notice and acknowledges it, twice.
    status, erp_token = await call("POST", "/api/v1/admin/tokens", erp, admin)
    status, notices = await call("GET", "/api/v1/recalls/notices?limit=5", token=erp_token["credential"])
    assert status == 200 and notices["notices"]
    recall_id = notices["notices"][0]["recall_id"]
    for expected in (201, 200):
        ack = await call("POST", f"/api/v1/recalls/{recall_id}/acknowledge", token=erp_token["credential"])
        assert ack[0] == expected
    user_body = {"name": "张三", "role": "regulator", "password": "a long enough password", "authority": "市场监管局"}
    status, user = await call("POST", "/api/v1/admin/users", user_body, admin)
    assert status == 201
    assert (await call("GET", "/api/v1/admin/users", token=admin))[0] == 200
    for change in ("disable", "enable"):
        assert (await call("POST", f"/api/v1/admin/users/{user['id']}/{change}", token=admin))[0] == 200
    new_password = {"password": "another long password"}
    assert (await call("POST", f"/api/v1/admin/users/{user['id']}/password", new_password, admin))[0] == 200
    authority = {"authority": "鼓楼区市场监督管理局"}
    assert (await call("POST", f"/api/v1/admin/users/{user['id']}/authority", authority, admin))[0] == 200
    assert (await call("GET", "/api/v1/admin/access-log?action=view", token=admin))[0] == 200
    # The registry of inputs and a farm's production records.
    entry = {
        "registration_no": "PD20080001",
        "kind": "pesticide",
        "name": "阿维菌素",
        "interval_days": 7,
        "source": "农药标签",
    }
    assert (await call("POST", "/api/v1/admin/inputs", entry, admin))[0] == 201
    assert (await call("GET", "/api/v1/admin/inputs?limit=5", token=admin))[0] == 200
    farm_device = await world.add_node("openapi-farm", "farm", "320321")
    record = {
        "record_id": new_id(),
        "unit": "A-1",
        "unit_kind": "plot",
        "kind": "pesticide",
        "registration_no": "PD20080001",
        "dose": {"value": "40", "uom": "MLT"},
        "applied_on": "2026-01-05",
    }
    assert (await call("POST", "/api/v1/farm/inputs", record, farm_device))[0] == 201
    assert (await call("GET", "/api/v1/farm/inputs?unit=A-1", token=farm_device))[0] == 200
    assert (await call("GET", "/api/v1/federation"))[0] == 200
    code = await world.open_batch()
    for path in (f"/api/v1/batches/{code}/vouchers/{new_id()}", f"/api/v1/batches/{code}/vouchers/{new_id()}/pdf"):
        assert (await call("GET", path, token=device))[0] == 404
    handover = {"voucher": {"origin": "elsewhere/log"}, "event": {"eventID": new_id(), "bizStep": "receiving"}}
    assert (await call("POST", "/api/v1/handovers", handover, device))[0] == 422
    assert (await call("POST", "/api/v1/federation/recalls", "not a signed note"))[0] == 422
    assert (await call("GET", "/api/v1/federation/witnessed"))[0] == 200
    assert (await call("GET", "/api/v1/federation/witness", token=admin))[0] == 200
    clear = "/api/v1/admin/federation/split-views/1/clear"
    assert (await call("POST", clear, {"reason": "dealt with"}, admin))[0] == 404
    missing = {
        (m.upper(), p) for p, ops in document["paths"].items() for m in ops if p.startswith("/api/") or p == "/healthz"
    } - c.seen
    # Station-only routes are signed by the station itself (tests/test_replays.py, tests/scanners/).
    assert missing <= {
        ("GET", "/api/v1/stations/me"),
        ("POST", "/api/v1/stations/keys"),
        ("POST", "/api/v1/stations/batches"),
        ("POST", "/api/v1/stations/sales"),  # tests/scanners/test_station.py
        ("POST", "/api/v1/admin/station-keys/{key_id}/revoke"),
        ("GET", "/api/v1/stations/products"),
        ("POST", "/api/v1/stations/vendor-card"),
        ("POST", "/api/v1/stations/heartbeat"),  # tests/scanners/test_station_reports.py
        ("POST", "/api/v1/stations/handovers"),  # tests/web/test_federation_journey.py
        ("POST", "/api/v1/sms/inbound"),  # off without TRACE_SMS_SECRET: tests/test_sms.py
    }, sorted(missing)
