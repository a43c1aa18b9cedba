"""Handover vouchers as pure functions: what verifies, what each forgery is refused as, the QR line."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.domain import tracecode
from traceability.ledger import canonical, chain, merkle, proofs, sealed
from traceability.ledger import checkpoint as notes
from traceability.ledger import voucher as vouchers
from traceability.services.views.elsewhere import voucher_parts

ORIGIN = "xuzhou.trace.test/log"
SIGNER = notes.generate_signer(ORIGIN)
KEY = notes.verifier_for(SIGNER)
CODE = tracecode.make("320311", 10)
SHIPMENT = "e40cc260-27c1-440e-b056-f24c3ef4c0a3"


def ledger(extra_leaves: int = 5) -> dict[str, Any]:
    """A batch opened and shipped to a Nanjing node, logged among other leaves, and its voucher."""
    opening = {"eventID": "6f1c2a3e-1111-4c1d-9d2f-0a1b2c3d4e5f", "traceCode": CODE, "bizStep": "commissioning",
               "quantity": {"value": "88.5", "uom": "KGM"}, "batch": {"product": "21113011"}}  # fmt: skip
    seal, blob = sealed.seal(canonical.encode({"destination": {"node": "320102000001"}}))
    shipping = {"eventID": SHIPMENT, "traceCode": CODE, "bizStep": "shipping", "sealed": seal,
                "quantity": {"value": "88.5", "uom": "KGM"}}  # fmt: skip
    events = [canonical.encode(opening), canonical.encode(shipping)]
    prev = chain.genesis(CODE)
    hashes = []
    for data in events:
        prev = chain.link(prev, data)
        hashes.append(prev)
    leaves = [bytes([n]) * 32 for n in range(extra_leaves)] + [merkle.leaf_hash(h) for h in hashes]
    size, root, tiles = merkle.append(0, {}, leaves)
    index = size - 1
    return vouchers.build(
        ORIGIN,
        CODE,
        SHIPMENT,
        events,
        hashes[-1],
        blob,
        index,
        size,
        merkle.inclusion_proof(index, size, tiles),
        notes.sign_checkpoint(ORIGIN, size, root, SIGNER),
    )


def refused(v: Any) -> str:
    with pytest.raises(vouchers.VoucherError) as caught:
        vouchers.verify(v, KEY)
    return caught.value.reason


def test_a_voucher_verifies_and_says_what_it_proves() -> None:
    v = ledger()
    got = vouchers.verify(v, KEY)
    assert got.trace_code == CODE and got.event_id == SHIPMENT and got.seq == 2
    assert got.destination == "320102000001" and got.opening["batch"]["product"] == "21113011"
    assert got.checkpoint.size == v["tree_size"] and got.event_hash.hex() == v["event_hash"]
    assert vouchers.expand(vouchers.compact(v)) == v
    assert vouchers.digest(v) == vouchers.digest(copy.deepcopy(v))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda v: v.update(
                checkpoint=notes.sign_checkpoint(ORIGIN, v["tree_size"], b"\0" * 32, notes.generate_signer(ORIGIN))
            ),
            "bad_signature",
        ),
        (lambda v: v.update(origin="nanjing.trace.test/log"), "bad_signature"),
        (lambda v: v["chain"].__setitem__(0, v["chain"][0].replace("88.5", "98.5")), "altered"),
        (lambda v: v.update(event_hash="00" * 32), "altered"),
        (lambda v: v.update(sealed=v["sealed"][:-2] + "00"), "altered"),
        (lambda v: v.update(trace_code=tracecode.make("320311", 11)), "altered"),
        (lambda v: v["chain"].pop(), "altered"),
        (lambda v: v.update(leaf_index=0), "bad_proof"),
        (lambda v: v.update(audit_path=v["audit_path"][1:]), "bad_proof"),
        (lambda v: v.update(tree_size=v["tree_size"] + 1), "bad_proof"),
        (lambda v: v.update(format="trace-handover/v2"), "malformed"),
        (lambda v: v.update(extra=1), "malformed"),
        (lambda v: v.pop("sealed"), "malformed"),
        (lambda v: v.update(chain=[]), "malformed"),
    ],
)
def test_every_forgery_is_refused_naming_why(change: Any, reason: str) -> None:
    v = ledger()
    change(v)
    assert refused(v) == reason


def test_the_last_event_must_be_the_shipment() -> None:
    v = ledger()
    v["event_id"] = "6f1c2a3e-1111-4c1d-9d2f-0a1b2c3d4e5f"
    assert refused(v) == "not_shipment"


@given(st.data())
def test_flipping_any_byte_of_any_event_fails(data: st.DataObject) -> None:
    v = ledger(extra_leaves=2)
    n = data.draw(st.integers(0, len(v["chain"]) - 1))
    text = v["chain"][n]
    i = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from('0123456789abcxyz"{}:,'))
    if replacement == text[i]:
        return
    v["chain"][n] = text[:i] + replacement + text[i + 1 :]
    assert refused(v) in ("altered", "malformed")


def test_consistency_between_checkpoints() -> None:
    leaves = [bytes([n]) * 32 for n in range(9)]
    _, root5, _ = merkle.append(0, {}, leaves[:5])
    size9, root9, tiles9 = merkle.append(0, {}, leaves)
    older = notes.Checkpoint(ORIGIN, 5, root5)
    newer = notes.Checkpoint(ORIGIN, size9, root9)
    proof = merkle.consistency_proof(5, 9, tiles9)
    vouchers.consistent(older, newer, proof)
    vouchers.consistent(newer, older, proof)  # either order: the smaller is the older tree
    vouchers.consistent(newer, newer, [])
    with pytest.raises(vouchers.VoucherError, match="inconsistent"):
        vouchers.consistent(notes.Checkpoint(ORIGIN, 9, b"\1" * 32), newer, [])
    with pytest.raises(vouchers.VoucherError, match="inconsistent"):
        vouchers.consistent(notes.Checkpoint(ORIGIN, 5, b"\1" * 32), newer, proof)


def test_a_qr_line_that_is_not_a_voucher() -> None:
    for line in ("TRV2:abc", "TRV1:!!!", "TRV1:" + "A" * 40):
        with pytest.raises(vouchers.VoucherError, match="malformed"):
            vouchers.expand(line)


NANJING = "nanjing.trace.test/log"
NJ_SIGNER = notes.generate_signer(NANJING)


def passed_on(first: dict[str, Any], signer: notes.Signer = NJ_SIGNER) -> dict[str, Any]:
    """Nanjing received the batch with ``first`` and ships it on to a Suzhou node: its voucher, ``first`` inside."""
    start = bytes.fromhex(first["event_hash"])
    receipt = {"eventID": "0c5a1f7e-2222-4c1d-9d2f-0a1b2c3d4e5f", "traceCode": CODE, "bizStep": "receiving"}
    seal, blob = sealed.seal(canonical.encode({"destination": {"node": "320505000001"}}))
    shipping = {"eventID": "1d6b2a8f-3333-4c1d-9d2f-0a1b2c3d4e5f", "traceCode": CODE, "bizStep": "shipping",
                "sealed": seal}  # fmt: skip
    events = [canonical.encode(receipt), canonical.encode(shipping)]
    prev = start
    hashes = []
    for data in events:
        prev = chain.link(prev, data)
        hashes.append(prev)
    size, root, tiles = merkle.append(0, {}, [bytes([9]) * 32, *(merkle.leaf_hash(h) for h in hashes)])
    return vouchers.build(
        signer.name,
        CODE,
        shipping["eventID"],
        events,
        hashes[-1],
        blob,
        size - 1,
        size,
        merkle.inclusion_proof(size - 1, size, tiles),
        notes.sign_checkpoint(signer.name, size, root, signer),
        first,
    )


def key_of(origin: str) -> notes.Verifier | None:
    return {ORIGIN: KEY, NANJING: notes.verifier_for(NJ_SIGNER)}.get(origin)


def test_a_batch_passed_on_carries_the_voucher_it_came_with() -> None:
    v = passed_on(ledger())
    got = vouchers.verify(v, notes.verifier_for(NJ_SIGNER), key_of)
    assert got.origin == NANJING and got.home == ORIGIN and [h.origin for h in got.hops] == [ORIGIN, NANJING]
    assert got.opening["bizStep"] == "commissioning" and got.destination == "320505000001" and got.seq == 2
    assert got.previous is not None and got.previous.destination == "320102000001"
    assert vouchers.expand(vouchers.compact(v)) == v


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda v: v["previous"]["chain"].__setitem__(0, v["previous"]["chain"][0].replace("88.5", "98.5")),
         "altered"),
        (lambda v: v["previous"].update(origin="suzhou.trace.test/log"), "bad_signature"),
        (lambda v: v["previous"].update(leaf_index=0), "bad_proof"),
        (lambda v: v.pop("previous"), "altered"),  # the chain here starts at the shipment's hash, not genesis
        (lambda v: v.update(previous=passed_on(ledger())), "altered"),  # not the voucher it was received with
    ],
)  # fmt: skip
def test_a_forged_previous_voucher_is_refused(change: Any, reason: str) -> None:
    v = passed_on(ledger())
    change(v)
    with pytest.raises(vouchers.VoucherError) as caught:
        vouchers.verify(v, notes.verifier_for(NJ_SIGNER), key_of)
    assert caught.value.reason == reason


def test_a_batch_passes_through_at_most_four_ledgers() -> None:
    v = ledger()
    for _ in range(vouchers.MAX_HOPS - 1):
        v = passed_on(v)
    vouchers.verify(v, notes.verifier_for(NJ_SIGNER), key_of)
    with pytest.raises(vouchers.VoucherError, match="at most"):
        vouchers.verify(passed_on(v), notes.verifier_for(NJ_SIGNER), key_of)


def test_a_page_shows_the_records_a_voucher_carried_when_the_home_ledger_is_down() -> None:
    """The parts built from a voucher (services.views.elsewhere) prove what verify.js checks: each part's chain
    from its start, its last record's inclusion proof against the signed checkpoint, the joins between parts."""
    v = passed_on(ledger())
    home, nanjing = voucher_parts(v)
    assert [home["origin"], nanjing["origin"]] == [ORIGIN, NANJING] and home["source"] == "voucher"
    assert home["joins"] == {"seq": 2, "hash": v["previous"]["event_hash"]}
    assert home["chain_start"] is None and nanjing["chain_start"] == v["previous"]["event_hash"]
    for part, key in ((home, KEY), (nanjing, notes.verifier_for(NJ_SIGNER))):
        prev = bytes.fromhex(part["chain_start"]) if part["chain_start"] else chain.genesis(CODE)
        for e in part["events"]:
            prev = chain.link(prev, e["text"].encode())
            assert prev.hex()[:8] == e["check"]
        (bundle,) = part["proofs"]
        cp = notes.verify_checkpoint(bundle["checkpoint"], key, origin=part["origin"])
        (proof,) = bundle["proofs"]
        assert proof["seq"] == len(part["events"])
        nodes = [bytes.fromhex(h) for h in bundle["nodes"]]
        proofs.verify_multiproof({proof["leaf_index"]: merkle.leaf_hash(prev)}, cp.size, nodes, cp.root)
    assert [s["place"] for s in nanjing["journey"]] == [""]  # the test's events name no node
