"""Signed notes, checkpoints and cosignatures: published vectors, our own vectors, and tampering."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from traceability.ledger import checkpoint as cp
from traceability.ledger import proofs
from traceability.ledger.checkpoint import (
    BadSignatureError,
    MalformedKeyError,
    MalformedNoteError,
    NoteError,
    UnknownKeyError,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "checkpoint.json").read_text(encoding="utf-8"))
GO = VECTORS["go_sumdb_note"]
LOG = VECTORS["log"]
WITNESS = VECTORS["witness"]
EM_DASH = "\u2014"

LOG_SIGNER = cp.load_signer_key(LOG["signer_key"])
LOG_KEY = cp.parse_verifier_key(LOG["verifier_key"])
WITNESS_SIGNER = cp.load_signer_key(WITNESS["signer_key"])
WITNESS_KEY = cp.parse_verifier_key(WITNESS["verifier_key"])
ROOT = bytes.fromhex(LOG["root"])


# ------------------------------------------------------------------------------- published vectors


def test_go_sumdb_note_is_reproduced_byte_for_byte() -> None:
    signer = cp.load_signer_key(GO["signer_key"])
    assert cp.dump_signer_key(signer) == GO["signer_key"]
    assert cp.verifier_key(signer) == GO["verifier_key"]
    assert cp.sign_note(GO["text"], [signer]) == GO["note"]
    note, verified = cp.verify_note(GO["note"], [cp.parse_verifier_key(GO["verifier_key"])])
    assert note.text == GO["text"]
    assert [(v.name, v.key_id.hex(), v.sig_type) for v in verified] == [("PeterNeumann", "c74f20a3", cp.ED25519)]


def test_published_key_pairs_derive_their_verifier_keys() -> None:
    for pair in VECTORS["published_key_pairs"]["pairs"]:
        signer = cp.load_signer_key(pair["signer_key"])
        assert cp.verifier_key(signer) == pair["verifier_key"]
        assert cp.dump_signer_key(signer) == pair["signer_key"]


def test_c2sp_cosignature_example_has_the_specified_layout() -> None:
    example = VECTORS["c2sp_cosignature_example"]
    note = cp.parse_note("x\n\n" + example["line"])
    (sig,) = note.signatures
    assert sig.name == "witness.example.com/w1"
    assert sig.key_id.hex() == example["key_id"]
    assert int.from_bytes(sig.signature[:8], "big") == example["timestamp"]
    assert len(sig.signature) == 8 + 64


def test_mangled_verifier_keys_are_refused() -> None:
    # As golang.org/x/mod/sumdb/note tests its parser: every proper substring and every altered byte.
    vkey = GO["verifier_key"]
    cp.parse_verifier_key(vkey)
    for i in range(len(vkey)):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(MalformedKeyError):
                    cp.parse_verifier_key(vkey[i:j])
        with pytest.raises(MalformedKeyError):
            cp.parse_verifier_key(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])
    # Right key ID, but a wrong-length key or an unknown type.
    with pytest.raises(MalformedKeyError):
        cp.parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(MalformedKeyError):
        cp.parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_mangled_signer_keys_are_refused_without_echoing_the_key() -> None:
    skey = GO["signer_key"]
    secret = skey.rsplit("+", 1)[-1][4:]
    for i in range(len(skey)):
        mangled = skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :]
        with pytest.raises(MalformedKeyError) as err:
            cp.load_signer_key(mangled)
        assert secret not in str(err.value)
    for cut in range(1, len(skey)):
        with pytest.raises(MalformedKeyError):
            cp.load_signer_key(skey[:cut])
    assert cp.load_signer_key(f"  {skey}\n".encode()).seed == cp.load_signer_key(skey).seed
    with pytest.raises(MalformedKeyError, match="not an Ed25519"):
        cp.load_signer_key("PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64.b64encode(b"\x04" + b"\0" * 32).decode())


# ------------------------------------------------------------------------------------ our vectors


def test_log_key_vector() -> None:
    signer = cp.signer_from_seed(LOG["origin"], bytes.fromhex(LOG["seed"]))
    assert cp.dump_signer_key(signer) == LOG["signer_key"]
    assert cp.verifier_key(signer) == LOG["verifier_key"]
    assert "seed" not in repr(signer) and LOG["seed"] not in repr(signer)
    assert cp.log_id(LOG["origin"]) == LOG["log_id"]


def test_checkpoint_vector() -> None:
    assert cp.checkpoint_body(LOG["origin"], LOG["size"], ROOT) == LOG["body"]
    assert cp.sign_checkpoint(LOG["origin"], LOG["size"], ROOT, LOG_SIGNER) == LOG["note"]
    checkpoint = cp.verify_checkpoint(LOG["note"], LOG_KEY, origin=LOG["origin"])
    assert (checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.extensions) == (
        LOG["origin"],
        8,
        ROOT,
        (),
    )
    assert checkpoint.body == LOG["body"]
    assert checkpoint.log_id == LOG["log_id"]
    assert [v.name for v in checkpoint.verified] == [LOG["origin"]]
    # The signature is plain Ed25519 over the body, checkable without our code.
    (sig,) = checkpoint.signatures
    Ed25519PublicKey.from_public_bytes(LOG_KEY.public_key).verify(sig.signature, LOG["body"].encode())


def test_checkpoint_with_extension_vector() -> None:
    ext = ("trace-ext example extension line",)
    assert cp.sign_checkpoint(LOG["origin"], 8, ROOT, LOG_SIGNER, ext) == LOG["note_with_extension"]
    assert cp.verify_checkpoint(LOG["note_with_extension"], LOG_KEY).extensions == ext


def test_cosignature_vector() -> None:
    signer = cp.signer_from_seed(WITNESS["name"], bytes.fromhex(WITNESS["seed"]))
    assert cp.verifier_key(signer, cp.COSIGNATURE_V1) == WITNESS["verifier_key"]
    assert WITNESS_KEY.sig_type == cp.COSIGNATURE_V1
    line = cp.cosign(LOG["body"], signer, WITNESS["timestamp"])
    assert line == WITNESS["cosignature_line"]
    assert cp.verify_cosignature(LOG["body"], line, WITNESS_KEY) == WITNESS["timestamp"]
    assert cp.add_signatures(LOG["note"], [line]) == WITNESS["cosigned_note"]
    # Layout per c2sp.org/tlog-cosignature, checked with the cryptography package directly.
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == WITNESS_KEY.key_id and int.from_bytes(raw[4:12], "big") == WITNESS["timestamp"]
    assert WITNESS["signed_message"] == f"cosignature/v1\ntime {WITNESS['timestamp']}\n{LOG['body']}"
    Ed25519PublicKey.from_public_bytes(WITNESS_KEY.public_key).verify(raw[12:], WITNESS["signed_message"].encode())


def test_cosigned_checkpoint_verifies_with_and_without_the_witness() -> None:
    with_witness = cp.verify_checkpoint(WITNESS["cosigned_note"], LOG_KEY, [WITNESS_KEY])
    assert [(v.name, v.sig_type, v.timestamp) for v in with_witness.verified] == [
        (LOG["origin"], cp.ED25519, None),
        (WITNESS["name"], cp.COSIGNATURE_V1, WITNESS["timestamp"]),
    ]
    # A verifier that does not know the witness ignores its line.
    assert len(cp.verify_checkpoint(WITNESS["cosigned_note"], LOG_KEY).verified) == 1
    assert len(cp.parse_checkpoint(WITNESS["cosigned_note"]).signatures) == 2


# ----------------------------------------------------------------------------------------- refusals


def test_unknown_keys_are_refused_or_ignored() -> None:
    stranger = cp.signer_from_seed(LOG["origin"], b"\x07" * 32)  # same name, other key
    with pytest.raises(UnknownKeyError, match="not signed by the log key"):
        cp.verify_checkpoint(LOG["note"], cp.verifier_for(stranger))
    with pytest.raises(UnknownKeyError):
        cp.verify_note(LOG["note"], [WITNESS_KEY])
    # A witness's cosignature alone does not make a checkpoint the log's.
    witness_only = cp.parse_checkpoint_body(LOG["body"]).body + "\n" + WITNESS["cosignature_line"]
    with pytest.raises(UnknownKeyError):
        cp.verify_checkpoint(witness_only, LOG_KEY, [WITNESS_KEY])
    extra = cp.sign_note(LOG["body"], [stranger])
    both = cp.add_signatures(LOG["note"], [extra.split("\n\n")[1]])
    assert len(cp.verify_checkpoint(both, LOG_KEY).verified) == 1


def test_a_bad_signature_from_a_known_key_rejects_the_note() -> None:
    # The witness's signature with a different time: the signed message no longer matches.
    raw = base64.b64decode(WITNESS["cosignature_line"].split(" ")[2])
    later = (WITNESS["timestamp"] + 1).to_bytes(8, "big")
    forged = f"{EM_DASH} {WITNESS['name']} {base64.b64encode(raw[:4] + later + raw[12:]).decode()}\n"
    with pytest.raises(BadSignatureError, match=r"cosignature of witness\.example\.org/w1 does not verify"):
        cp.verify_checkpoint(cp.add_signatures(LOG["note"], [forged]), LOG_KEY, [WITNESS_KEY])
    with pytest.raises(BadSignatureError):
        cp.verify_cosignature(LOG["body"], forged, WITNESS_KEY)
    with pytest.raises(UnknownKeyError):
        cp.verify_cosignature(LOG["body"], WITNESS["cosignature_line"], cp.verifier_for(LOG_SIGNER, cp.COSIGNATURE_V1))
    other = LOG["note"].replace("\n8\n", "\n9\n")
    with pytest.raises(BadSignatureError, match=f"signature of {LOG['origin']} does not verify"):
        cp.verify_checkpoint(other, LOG_KEY)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("no signatures\n", "empty line"),
        ("text\n\n", "at least one signature"),
        ("text\n\n— name AAAAAA==\n", "too short"),
        ("text\n\n— name AAAAAAAAAAAA", "ends with a newline"),
        ("text\n\n- name AAAAAAAAAAAA\n", "em dash"),
        ("text\n\n— name  AAAAAAAAAAAA\n", "not '— <name> <base64>'"),
        ("text\n\n— na+me AAAAAAAAAAAA\n", "contains a space or"),
        ("text\n\n— name AAAAAAAAAAB=\n", "not canonical base64"),
        ("text\n\n— name AAAA!AAAAAAA\n", "not standard base64"),
        ("te\txt\n\n— name AAAAAAAAAAAA\n", "control characters"),
        ("text\n\n" + "— name AAAAAAAAAAAA\n" * 101, "at most 100 signatures"),
    ],
)
def test_malformed_notes_are_named(note: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        cp.parse_note(note)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("log\n8\n", "origin, a tree size and a root"),
        ("\n8\n" + LOG["body"].split("\n")[2] + "\n", "origin is empty"),
        ("log\n08\n" + LOG["body"].split("\n")[2] + "\n", "leading zeros"),
        ("log\n-8\n" + LOG["body"].split("\n")[2] + "\n", "leading zeros"),
        ("log\n\u0668\n" + LOG["body"].split("\n")[2] + "\n", "leading zeros"),
        ("log\n8\nAAAA\n", "3 bytes, not 32"),
        ("log\n8\n" + LOG["body"].split("\n")[2] + "\n\nx\n", "must not be empty"),
        ("log\n8\n" + LOG["body"].split("\n")[2], "ends with a newline"),
    ],
)
def test_malformed_checkpoints_are_named(body: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        cp.parse_checkpoint_body(body)


def test_origin_must_match_when_asked() -> None:
    with pytest.raises(MalformedNoteError, match=r"not 'other\.example/log'"):
        cp.verify_checkpoint(LOG["note"], LOG_KEY, origin="other.example/log")


def test_bad_inputs_to_signing_are_refused() -> None:
    with pytest.raises(MalformedKeyError):
        cp.generate_signer("has space")
    with pytest.raises(MalformedKeyError):
        cp.signer_from_seed("a+b", b"\0" * 32)
    with pytest.raises(MalformedKeyError):
        cp.signer_from_seed("ok", b"\0" * 31)
    with pytest.raises(MalformedNoteError):
        cp.checkpoint_body("log", 1, b"\0" * 31)
    with pytest.raises(MalformedNoteError):
        cp.checkpoint_body("log\nx", 1, ROOT)
    with pytest.raises(MalformedNoteError):
        cp.checkpoint_body("log", 1, ROOT, [""])
    with pytest.raises(NoteError):
        cp.cosign(LOG["body"], WITNESS_SIGNER, -1)
    with pytest.raises(MalformedNoteError):
        cp.sign_note("no newline", [LOG_SIGNER])


def test_generated_keys_round_trip() -> None:
    signer = cp.generate_signer("trace.example.org/generated")
    again = cp.load_signer_key(cp.dump_signer_key(signer))
    assert again.seed == signer.seed and again.name == signer.name
    assert cp.parse_verifier_key(cp.verifier_key(signer)) == cp.verifier_for(signer)
    assert cp.parse_verifier_key(cp.verifier_key(signer, cp.COSIGNATURE_V1)) == cp.verifier_for(
        signer, cp.COSIGNATURE_V1
    )


# -------------------------------------------------------------------------------------- properties

origins = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: "+" not in s and not any(c.isspace() for c in s))
extension_lines = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30), max_size=3
)


@settings(max_examples=100, deadline=None)
@given(origin=origins, size=st.integers(0, 2**63), root=st.binary(min_size=32, max_size=32), ext=extension_lines)
def test_checkpoints_round_trip(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    signer = cp.signer_from_seed(origin, bytes(32))
    note = cp.sign_checkpoint(origin, size, root, signer, ext)
    checkpoint = cp.verify_checkpoint(note.encode(), cp.verifier_for(signer), origin=origin)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.extensions) == (
        origin,
        size,
        root,
        tuple(ext),
    )
    assert str(cp.parse_note(note)) == note


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_flipping_any_bit_of_a_cosigned_checkpoint_fails(position: int, bit: int) -> None:
    original = WITNESS["cosigned_note"].encode()
    i = position % len(original)
    tampered = original[:i] + bytes([original[i] ^ (1 << bit)]) + original[i + 1 :]
    try:
        checkpoint = cp.verify_checkpoint(tampered, LOG_KEY, [WITNESS_KEY])
    except NoteError:
        return
    # Only a flip in the witness's name or key ID can leave the note verifiable: the line is then
    # from a key nobody trusts and is ignored, so the log's signature stands alone.
    assert [v.name for v in checkpoint.verified] == [LOG["origin"]]
    witness_line = original.rindex(EM_DASH.encode())
    assert witness_line < i < witness_line + len(EM_DASH.encode()) + 1 + len(WITNESS["name"]) + 1 + 8


@settings(max_examples=50, deadline=None)
@given(timestamp=st.integers(0, 2**63 - 1))
def test_cosignatures_round_trip(timestamp: int) -> None:
    line = cp.cosign(LOG["body"], WITNESS_SIGNER, timestamp)
    assert cp.verify_cosignature(LOG["body"], line, WITNESS_KEY) == timestamp
    with pytest.raises(BadSignatureError):
        cp.verify_cosignature(LOG["body"].replace("\n8\n", "\n7\n"), line, WITNESS_KEY)


# ------------------------------------------------------------------------------------ the document


def test_the_documented_examples_verify() -> None:
    """docs/ledger.md is what third parties verify with: its examples and its sketch must hold."""
    doc = (Path(__file__).parent.parent / "docs" / "ledger.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", doc, flags=re.DOTALL)
    examples = [json.loads(text) for lang, text in blocks if lang == "json"]
    (inclusion,) = (e for e in examples if "audit_path" in e)
    (consistency,) = (e for e in examples if "first" in e)
    (compact,) = (e for e in examples if "nodes" in e)  # a page's bundle: a multiproof of leaves of the test tree
    tree = json.loads((Path(__file__).parent / "vectors" / "merkle.json").read_text())["rfc6962_tree"]
    leaves = {p["leaf_index"]: bytes.fromhex(tree["leaf_hashes"][p["leaf_index"]]) for p in compact["proofs"]}
    nodes = [bytes.fromhex(h) for h in compact["nodes"]]
    proofs.verify_multiproof(leaves, compact["tree_size"], nodes, bytes.fromhex(tree["roots_by_size"][8]))
    with pytest.raises(proofs.InvalidProofError):
        proofs.verify_multiproof(leaves, compact["tree_size"], nodes[1:], bytes.fromhex(tree["roots_by_size"][8]))
    (sketch,) = (text for lang, text in blocks if lang == "python")
    (example,) = (text for lang, text in blocks if lang == "")
    assert example == WITNESS["cosigned_note"]
    assert LOG["verifier_key"] in doc and WITNESS["verifier_key"] in doc and LOG["log_id"] in doc

    namespace: dict[str, Any] = {}
    exec(compile(sketch, "docs/ledger.md", "exec"), namespace)
    namespace["verify_inclusion_proof"](inclusion, LOG["verifier_key"])
    with pytest.raises(AssertionError):
        namespace["verify_inclusion_proof"]({**inclusion, "leaf_index": 4}, LOG["verifier_key"])

    checkpoint = cp.verify_checkpoint(inclusion["checkpoint"], LOG_KEY)
    assert checkpoint.log_id == inclusion["log_id"] == consistency["log_id"]
    path = [bytes.fromhex(h) for h in inclusion["audit_path"]]
    leaf = bytes.fromhex(inclusion["leaf_hash"])
    proofs.verify_inclusion(leaf, inclusion["leaf_index"], inclusion["tree_size"], path, checkpoint.root)
    roots = [
        bytes.fromhex(h)
        for h in json.loads((Path(__file__).parent / "vectors" / "merkle.json").read_text())["rfc6962_tree"][
            "roots_by_size"
        ]
    ]
    proof = [bytes.fromhex(h) for h in consistency["proof"]]
    first, second = consistency["first"], consistency["second"]
    assert roots[first].hex() in doc and roots[second] == checkpoint.root
    proofs.verify_consistency(first, second, proof, roots[first], roots[second])
