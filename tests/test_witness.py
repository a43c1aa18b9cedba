"""Witnesses audit the log, cosign checkpoints, and catch a log that shows two histories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World
from tests.test_log import proof_of, record
from traceability import witness
from traceability.ledger import checkpoint as notes


async def register(world: World, tmp_path: Path, name: str) -> Path:
    key = tmp_path / f"{name}.key"
    verifier = witness.new_key(name, key)
    assert (key.stat().st_mode & 0o777) == 0o600
    await world.post("/api/v1/admin/witnesses", {"name": name, "verifier_key": verifier}, expect=201)
    return key


async def test_a_witness_cosigns_and_the_log_publishes_it(world: World, client: Any, tmp_path: Path) -> None:
    key = await register(world, tmp_path, "xuzhou-amr")
    _, ids = await record(world)
    await proof_of(client, ids[-1])
    base = str(client.make_url("")).rstrip("/")
    state = tmp_path / "state.json"
    first = await witness.witness_once(base, key, state)
    published = await (await client.get("/api/v1/log/checkpoint")).text()
    note = notes.parse_note(published)
    assert [s.name for s in note.signatures] == ["trace.test/log", "xuzhou-amr"]
    verifier = notes.parse_verifier_key(json.loads((tmp_path / "state.json").read_text())["log_key"])
    witness_key = notes.verifier_for(notes.load_signer_key(key.read_bytes()), notes.COSIGNATURE_V1)
    cp = notes.verify_checkpoint(published, verifier, [witness_key])
    assert cp.size == first.size and len(cp.verified) == 2
    listing = await (await client.get("/api/v1/log/checkpoints?limit=1")).json()
    assert listing["checkpoints"][0]["witnesses"] == 1
    # The log grows; the witness checks the new checkpoint extends the one it cosigned.
    _, more = await record(world, 2)
    await proof_of(client, more[-1])
    second = await witness.witness_once(base, key, state)
    assert second.size > first.size


async def test_an_unregistered_or_forged_cosignature_is_refused(world: World, client: Any, tmp_path: Path) -> None:
    _, ids = await record(world, 1)
    await proof_of(client, ids[0])
    text = await (await client.get("/api/v1/log/checkpoint")).text()
    stranger = notes.generate_signer("stranger")
    cp = notes.parse_checkpoint(text)
    resp = await client.post(
        "/api/v1/log/cosignatures", data=notes.add_signatures(text, [notes.cosign(cp.body, stranger, 1_800_000_000)])
    )
    assert resp.status == 401
    key = await register(world, tmp_path, "bureau")
    signer = notes.load_signer_key(key.read_bytes())
    forged_body = notes.checkpoint_body(cp.origin, cp.size, b"\x02" * 32)
    resp = await client.post(
        "/api/v1/log/cosignatures", data=forged_body + "\n" + notes.cosign(forged_body, signer, 1_800_000_000)
    )
    assert resp.status == 409
    assert "never published" in (await resp.json())["error"]["message"]


async def test_two_histories_are_caught(world: World, client: Any, tmp_path: Path, settings: Any) -> None:
    """The operator (who holds the log key) shows witness B a different tree of the same size."""
    key_a = await register(world, tmp_path, "witness-a")
    _, ids = await record(world)
    await proof_of(client, ids[-1])
    base = str(client.make_url("")).rstrip("/")
    seen = await witness.witness_once(base, key_a, tmp_path / "a.json")
    log_signer = notes.load_signer_key(settings.signing_key_path.read_bytes())
    fork = notes.sign_checkpoint(seen.origin, seen.size, b"\x03" * 32, log_signer)
    peer = tmp_path / "witness-b-checkpoint.txt"
    peer.write_text(fork)
    with pytest.raises(witness.Alarm, match=f"two different trees of size {seen.size}"):
        await witness.witness_once(base, key_a, tmp_path / "a.json", [peer])
    # A witness whose record disagrees with what the log now shows raises the alarm on its own.
    state = json.loads((tmp_path / "a.json").read_text())
    state["root"] = "04" * 32
    (tmp_path / "a.json").write_text(json.dumps(state))
    with pytest.raises(witness.Alarm, match=r"two different trees|does not extend"):
        await witness.witness_once(base, key_a, tmp_path / "a.json")


async def test_corrections_are_new_events(world: World, client: Any) -> None:
    code = await world.open_batch()
    wrong = await world.post(
        "/api/v1/events",
        world.event(code, "shipping", quantity={"value": 900, "uom": "KGM"}),
        world.devices["slaughter"],
        expect=201,
    )
    fix = await world.post(
        "/api/v1/events",
        world.event(code, "shipping", quantity={"value": 90, "uom": "KGM"}),
        world.devices["slaughter"],
        expect=201,
    )
    declaration = world.event(
        code,
        "shipping",
        errorDeclaration={
            "reason": "incorrect_data",
            "declaredEventID": wrong["eventID"],
            "correctiveEventIDs": [fix["eventID"]],
        },
    )
    await world.post("/api/v1/events", declaration, world.devices["slaughter"], expect=201)
    view = await (await client.get(f"/api/v1/batches/{code}")).json()
    assert len(view["events"]) == 4  # nothing edited, nothing removed
    assert view["events"][1]["declared_wrong"] == {"by": declaration["eventID"], "reason": "incorrect_data"}
    assert view["events"][3]["errorDeclaration"]["correctiveEventIDs"] == [fix["eventID"]]
    other = await world.open_batch()
    bad = world.event(other, errorDeclaration={"reason": "did_not_occur", "declaredEventID": wrong["eventID"]})
    data = await world.post("/api/v1/events", bad, world.devices["slaughter"], expect=422)
    assert data["error"]["field"] == "errorDeclaration.declaredEventID"
    foreign = world.event(code, errorDeclaration={"reason": "did_not_occur", "declaredEventID": wrong["eventID"]})
    data = await world.post("/api/v1/events", foreign, world.devices["market"], expect=403)
    assert "only the node" in data["error"]["message"]
