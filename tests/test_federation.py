"""The federation file: checked strictly at startup; codes homed at another member ledger are answered there."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import World
from tests.test_access_log import settled
from traceability import errors
from traceability.config import Settings
from traceability.domain import tracecode
from traceability.domain.federation import canonical_prefix
from traceability.http.app import create_app
from traceability.ledger import checkpoint as notes
from traceability.services import federation

OWN = "trace.test/log"
NANJING = "nanjing.trace.test/log"


def signer_file(directory: Path, origin: str) -> notes.Signer:
    """A log signing key where the server looks for it, so the federation file can pin it before start."""
    signer = notes.generate_signer(origin)
    path = directory / "log-signing-key"
    path.write_text(notes.dump_signer_key(signer) + "\n")
    os.chmod(path, 0o600)
    return signer


def member(origin: str, url: str, areas: list[str], signer: notes.Signer | None = None) -> dict[str, Any]:
    return {
        "origin": origin,
        "url": url,
        "areas": areas,
        "key": notes.verifier_key(signer or notes.generate_signer(origin)),
    }


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: m[1].update(areas=["320311"]), "overlap"),
        (lambda m: m[1].update(areas=["32"]), "overlap"),
        (lambda m: m[1].update(areas=["3203x"]), "area-code prefix"),
        (lambda m: m[1].update(colour="red"), "unknown field 'colour'"),
        (lambda m: m[1].update(url="ftp://nanjing"), "url"),
        (lambda m: m[1].update(key="nanjing+00000000+AAAA"), "key"),
        (lambda m: m[1].update(key=m[0]["key"]), "named"),
        (lambda m: m[1].update(origin=OWN, key=m[0]["key"]), "same origin"),
        (lambda m: m[1].pop("areas"), "areas"),
        (lambda m: m[1].update(replication="host=db user=p password=x"), "'password' is not allowed"),
        (lambda m: m[1].update(replication="host=db user"), "key=value"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_problem(tmp_path: Path, change: Any, says: str) -> None:
    members = [member(OWN, "http://trace.test", ["320300"]), member(NANJING, "http://nanjing.test", ["3201"])]
    change(members)
    with pytest.raises(errors.ConfigError) as caught:
        federation.load(write(tmp_path / "f.json", {"members": members}))
    assert says in str(caught.value) and "f.json" in str(caught.value)


def test_toml_and_prefixes(tmp_path: Path) -> None:
    xz, nj = notes.generate_signer(OWN), notes.generate_signer(NANJING)
    path = tmp_path / "federation.toml"
    path.write_text(
        f'[[members]]\norigin = "{OWN}"\nurl = "http://trace.test/"\nareas = ["320300"]\n'
        f'key = "{notes.verifier_key(xz)}"\n\n'
        f'[[members]]\norigin = "{NANJING}"\nurl = "http://nanjing.test"\nareas = ["3201"]\n'
        f'key = "{notes.verifier_key(nj)}"\nname = "南京"\n'
        'replication = "host=nanjing-db.internal port=5432 dbname=trace user=trace_province"\n'
    )
    fed = federation.join(federation.load(path), OWN, notes.verifier_key(xz), path)
    assert canonical_prefix("320000") == "32" and canonical_prefix("320311") == "320311"
    home = fed.home_of(tracecode.make("320102", 7))
    assert home is not None and home.origin == NANJING and home.name == "南京"
    assert home.replication == "host=nanjing-db.internal port=5432 dbname=trace user=trace_province"
    assert fed.elsewhere(tracecode.make("320311", 7)) is None  # Xuzhou's own
    assert fed.elsewhere(tracecode.make("110101", 7)) is None  # no member's: answered here as always
    assert fed.elsewhere("320102000001") is not None  # a Nanjing node
    with pytest.raises(errors.ConfigError, match="not a member"):
        federation.join(federation.load(path), "suzhou.trace.test/log", notes.verifier_key(xz), path)
    with pytest.raises(errors.ConfigError, match="not this ledger's verifier key"):
        federation.join(federation.load(path), OWN, notes.verifier_key(nj), path)


async def test_the_server_will_not_start_without_itself_in_the_file(db_url: str, tmp_path: Path) -> None:
    signer_file(tmp_path, OWN)
    path = write(tmp_path / "f.json", {"members": [member(NANJING, "http://nanjing.test", ["3201"])]})
    settings = Settings.from_env(
        {"TRACE_FEDERATION": str(path)}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )
    with pytest.raises(errors.ConfigError, match="not a member"):
        async with TestServer(create_app(settings)):
            pass
    with pytest.raises(errors.ConfigError, match="no such file"):
        Settings.from_env({"TRACE_FEDERATION": str(tmp_path / "missing.json")})


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The test ledger (Xuzhou, trace.test) in a federation with Nanjing."""
    own = signer_file(tmp_path, OWN)
    path = write(
        tmp_path / "federation.json",
        {
            "members": [
                member(OWN, "http://trace.test", ["3203"], own),
                member(NANJING, "http://nanjing.test", ["3201"]),
            ]
        },
    )
    return Settings.from_env(
        {"TRACE_FEDERATION": str(path)}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )


async def test_a_code_homed_elsewhere_is_answered_there(world: World) -> None:
    client = world.client
    nanjing_code = tracecode.make("320102", 42)
    resp = await client.get(f"/t/{nanjing_code}?lang=en", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"http://nanjing.test/t/{nanjing_code}?lang=en"
    resp = await client.get(f"/api/v1/batches/{nanjing_code}", allow_redirects=False)
    assert resp.status == 307
    assert resp.headers["Location"] == f"http://nanjing.test/api/v1/batches/{nanjing_code}"
    assert (await resp.json())["home"]["origin"] == NANJING
    # Codes of this ledger, and codes no member is home for, are answered here as always.
    own = await world.open_batch()
    assert (await client.get(f"/t/{own}", allow_redirects=False)).status == 200
    for code in (tracecode.make("320311", 42), tracecode.make("110101", 42)):
        assert (await client.get(f"/t/{code}", allow_redirects=False)).status == 404  # the lookup: unknown
        assert (await client.get(f"/api/v1/batches/{code}", allow_redirects=False)).status == 404
    listed = await (await client.get("/api/v1/federation")).json()
    assert listed["own"] == OWN and [m["origin"] for m in listed["members"]] == [OWN, NANJING]


async def test_a_shipment_to_another_members_node_leaves_with_a_voucher(world: World) -> None:
    client, slaughter, market = world.client, world.devices["slaughter"], world.devices["market"]
    code = await world.open_batch()
    kilos = {"value": 90.5, "uom": "KGM"}
    away = world.event(code, "shipping", destination={"node": "320102000001"}, quantity=kilos)
    await world.post("/api/v1/events", away, slaughter, expect=201)  # a Nanjing node, not registered here
    nowhere = world.event(code, "shipping", destination={"node": "110101000001"}, quantity=kilos)
    assert (await world.post("/api/v1/events", nowhere, slaughter, expect=422))["error"]["code"] == "unknown_reference"
    path = f"/api/v1/batches/{code}/vouchers/{away['eventID']}"
    resp = await client.get(path, headers=world.auth(market))
    assert resp.status == 403  # not the shipper's
    for _ in range(100):
        resp = await client.get(path, headers=world.auth(slaughter))
        if resp.status == 200:
            break
        assert resp.status == 409 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "not_yet_logged"
        await asyncio.sleep(0.1)
    v = await resp.json()
    assert v["format"] == "trace-handover/v1" and v["origin"] == OWN and v["event_id"] == away["eventID"]
    assert [json.loads(e)["bizStep"] for e in v["chain"]] == ["commissioning", "shipping"]
    assert (await client.get(path, headers=world.auth(world.admin))).status == 200  # and a regulator's, an admin's
    exports = await settled(world, 1, "?action=export")  # it opens the shipment's seal: logged
    assert exports[0]["target"] == code and "voucher-json" in str(exports[0]), exports
    # Within this ledger, a shipment needs no voucher.
    here = world.event(code, "shipping", destination={"node": world.nodes["market"]}, quantity=kilos)
    await world.post("/api/v1/events", here, slaughter, expect=201)
    resp = await client.get(f"/api/v1/batches/{code}/vouchers/{here['eventID']}", headers=world.auth(slaughter))
    assert resp.status == 409 and "needs no voucher" in (await resp.json())["error"]["message"]
    # A receipt whose voucher comes from no member is refused before anything is written.
    body = {"voucher": dict(v, origin="suzhou.trace.test/log"), "event": world.event(code)}
    answer = await world.post("/api/v1/handovers", body, market, expect=422)
    assert answer["error"]["code"] == "voucher_unknown_ledger" and " · " in answer["error"]["message"]
