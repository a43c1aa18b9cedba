"""Schema-driven fuzzing: schemathesis generates requests from the served OpenAPI document and sends them to the
real app on a real port; no answer may be a server error, and every answer must conform to the document.

Each operation gets inputs that fit its schema (positive) and inputs that break it (negative), with the
credential it needs: an administrator's token, a scanner device's, or a station's Ed25519 signature
computed over the very body schemathesis sends. The run is bounded by :data:`BUDGET` seconds in all;
the figures (operations, requests, answers by status) are printed at the end (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import admin_token, make_uscc
from tests.scanners.conftest import free_port
from tests.web.conftest import REGULATOR
from traceability.config import Settings
from traceability.domain import stations
from traceability.http.app import create_app
from traceability.services import accounts
from traceability.storage.database import open_database

BUDGET = 60.0
"""Seconds of fuzzing in all, shared equally among the operations and both kinds of input."""
EXAMPLES = 60
MINIMUM = 3
"""Requests every operation gets in each mode however slow the machine is: the budget only cuts what comes after."""
LINE_LIMIT = 8190
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TIMES: dict[str, float] = {}
DEVICE_PATHS = ("/api/v1/batches", "/api/v1/events", "/api/v1/transformations", "/api/v1/stations/leases")


class TimeUp(Exception):
    """The operation's share of the budget is spent."""


class ServedApp:
    """The app on its own event loop in a thread, so synchronous HTTP clients can call it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class StationSignature(requests.auth.AuthBase):
    """Signs each prepared request as an enrolled station does (docs/scanners.md)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = public
        self.key_id = stations.key_id(public)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        path = r.path_url
        created = int(time.time())
        message = stations.signing_string(r.method or "GET", path, created, hashlib.sha256(body).digest())
        r.headers["Authorization"] = stations.authorization(self.key_id, created, self.key.sign(message))
        return r


class World:
    """What the fuzzer needs to reach past authentication: credentials, a station key, real trace codes."""

    def __init__(self, url: str, admin: str) -> None:
        self.url = url
        self.admin = admin
        self.http = requests.Session()
        self.device = ""
        self.station = StationSignature(Ed25519PrivateKey.generate())
        self.codes: list[str] = []
        self.known: dict[str, Any] = {}

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        resp = self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {token or self.admin}"}, timeout=30
        )
        assert resp.status_code < 300, (path, resp.status_code, resp.text)
        return resp.json()

    def build(self) -> None:
        uscc = make_uscc(1)
        self.call("POST", "/api/v1/admin/enterprises", {"name": "徐州彭城肉联厂", "uscc": uscc})
        node = self.call(
            "POST",
            "/api/v1/admin/nodes",
            {"enterprise": uscc, "type": "slaughterhouse", "area_code": "320311", "name": "肉联厂"},
        )
        self.call(
            "POST",
            "/api/v1/admin/products",
            {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
        )
        device = self.call("POST", "/api/v1/admin/devices", {"node": node["code"], "name": "kill line"})
        self.device = device["credential"]
        station = self.call("POST", "/api/v1/admin/devices", {"node": node["code"], "name": "station"})
        enrolment = self.call("POST", f"/api/v1/admin/devices/{station['id']}/enrolment")
        resp = self.http.post(
            self.url + "/api/v1/stations/enrol",
            json={"publicKey": stations.b64(self.station.public), "code": enrolment["code"]},
            auth=self.station,
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        # The console's session, so its pages are fuzzed behind the sign-in too.
        form = self.http.get(self.url + "/console/login", timeout=30).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        signed = self.http.post(
            self.url + "/console/login",
            data={"csrf": csrf.group(1), "name": REGULATOR[0], "password": REGULATOR[1]},
            allow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 303, signed.text
        assert self.http.get(self.url + "/console/recalls?format=json", timeout=30).status_code == 200
        for _ in range(3):
            opened = self.call(
                "POST",
                "/api/v1/batches",
                {"eventID": str(uuid.uuid4()), "product": "21113011", "quantity": {"value": 90, "uom": "KGM"}},
                token=self.device,
            )
            self.codes.append(opened["traceCode"])
        event = self.call("GET", f"/api/v1/batches/{self.codes[0]}")["events"][0]["event_id"]
        self.known = {
            "trace_code": self.codes[0],
            "code": self.codes[0],
            "id": station["id"],
            "event_id": event,
            "uscc": uscc,
            "key_id": self.station.key_id,
        }

    def path_values(self, operation: Any) -> dict[str, Any] | None:
        names = [p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"]
        return {n: self.known[n] for n in names if n in self.known} or None

    def auth(self, operation: Any) -> dict[str, Any]:
        """How to call ``operation``: the credential its security names, the device's where a scanner records."""
        security = operation.definition.raw.get("security") or []
        schemes = {name for item in security for name in item}
        if "signature" in schemes and "bearer" not in schemes:
            return {"auth": self.station}
        if "bearer" in schemes:
            token = self.device if operation.path in DEVICE_PATHS else self.admin
            return {"headers": {"Authorization": f"Bearer {token}"}}
        return {}


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[ServedApp]:
    settings = Settings.from_env({}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test")
    with ServedApp(settings) as served:
        yield served


@pytest.fixture
async def admin(db_url: str) -> AsyncIterator[str]:
    """An administrator's credential, and a regulator's console account (REGULATOR) on the same ledger."""
    async with open_database(Settings.from_env({}, database_url=db_url)) as db:
        await accounts.create_user(db, REGULATOR[0], "regulator", REGULATOR[1], "徐州市市场监督管理局")
    yield await admin_token(db_url)


def refused_by_the_http_parser(response: Any) -> bool:
    """A request line over aiohttp's 8,190-byte limit is answered 400 in plain text by the HTTP parser, before
    any route sees it (a path of a few hundred characters percent-encoded can get there): a clear refusal that
    no operation's document can describe. ``response``: schemathesis's (headers as lists, names lower-case)."""
    line = len(response.request.method or "") + len(response.request.url or "")
    types = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    return bool(response.status_code == 400 and line > LINE_LIMIT and types[0].startswith("text/plain"))


def fuzz(
    url: str,
    world: World,
    operation: Any,
    mode: GenerationMode,
    until: float,
    statuses: collections.Counter[int],
    failures: list[str],
) -> int:
    """Send generated requests for one operation until its time slice ends (or :data:`EXAMPLES` are sent), never
    fewer than :data:`MINIMUM`, so a busy machine sends fewer requests but never skips an operation.

    Inputs that fit the schema name things that exist (a real trace code, device, event) in the path, so
    they reach past the lookup; inputs that break it are generated whole."""
    kwargs = world.auth(operation)
    sent = [0]
    known = world.path_values(operation) if mode is GenerationMode.POSITIVE else None

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known))
    def run(case: Any) -> None:
        if sent[0] >= MINIMUM and time.monotonic() > until:
            raise TimeUp  # ends generation at once (no shrinking phase runs)
        response = case.call(base_url=url, session=world.http, timeout=30, allow_redirects=False, **kwargs)
        sent[0] += 1
        statuses[response.status_code] += 1
        if refused_by_the_http_parser(response):
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # collect them all, report them together
            failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: {exc}"[:2000])

    started = time.monotonic()
    try:
        run()
    except Unsatisfiable:  # nothing about this operation's input can be broken (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    except TimeUp:
        pass
    TIMES[f"{mode.value} {operation.method.upper()} {operation.path}"] = time.monotonic() - started
    return sent[0]


def test_no_request_makes_a_server_error_and_every_answer_conforms(served: ServedApp, admin: str) -> None:
    world = World(served.url, admin)
    world.build()
    document = requests.get(served.url + "/api/v1/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    # Revocations last: they take away the credentials the other operations are called with.
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda o: "revoke" in o.path)
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()
    deadline = started + BUDGET
    slice_ = BUDGET / (2 * len(operations))
    untried: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            until = min(deadline, time.monotonic() + slice_)
            sent = fuzz(served.url, world, operation, mode, until, statuses, failures)
            if mode is GenerationMode.POSITIVE and sent == 0:
                untried.append(f"{operation.method.upper()} {operation.path}")
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    print(
        f"\nfuzz: {len(operations)} operations, {total} requests in {elapsed:.1f} s, "
        f"by status {dict(sorted(statuses.items()))}, {len(failures)} failures"
    )
    for name, seconds in sorted(TIMES.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {seconds:5.1f} s  {name}")
    assert not untried, untried  # every operation was called with inputs that fit its schema
    assert not [s for s in statuses if s >= 500], dict(statuses)
    assert not failures, "\n\n".join(failures[:10])
