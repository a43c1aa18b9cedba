"""Known-answer vectors for the bytes an outside verifier must reproduce exactly: canonical event bytes,
the per-batch hash chain and sealed commercial details (tests/vectors/ledger.json, docs/ledger.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.ledger import canonical, chain, sealed

VECTORS = json.loads((Path(__file__).parent / "vectors" / "ledger.json").read_text(encoding="utf-8"))


def reference_encoding(value: Any) -> bytes:
    """The specification's wording as an independent implementation (the standard library's JSON)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("vector", VECTORS["canonical"], ids=lambda v: v["description"][:40])
def test_canonical_bytes_are_reproduced(vector: dict[str, Any]) -> None:
    data = canonical.encode(vector["value"])
    assert data == vector["bytes_utf8"].encode()
    assert canonical.is_canonical(data)
    assert canonical.decode(data) == vector["value"]


@pytest.mark.parametrize("vector", VECTORS["not_canonical"], ids=lambda v: v["why"])
def test_values_without_a_canonical_form_are_refused(vector: dict[str, str]) -> None:
    data = vector["json"].encode()
    assert not canonical.is_canonical(data)
    with pytest.raises((canonical.CanonicalError, orjson.JSONDecodeError)):
        canonical.encode(canonical.decode(data))


def test_python_values_without_a_canonical_form_are_refused() -> None:
    for value in ({"x": 1.5, "键": 1}, {"x": (1, 2)}, {"x": {1: "a"}}, {"x": [[0.1]]}, {"x": b"bytes"}):
        with pytest.raises(canonical.CanonicalError):
            canonical.encode(value)


def test_genesis_and_links_are_reproduced() -> None:
    for vector in VECTORS["genesis"]:
        assert chain.genesis(vector["trace_code"]).hex() == vector["hash"]
    for vector in VECTORS["link"]:
        digest = chain.link(bytes.fromhex(vector["prev_hash"]), vector["canonical_utf8"].encode())
        assert digest.hex() == vector["hash"]


def test_seals_are_reproduced() -> None:
    for vector in VECTORS["sealed"]:
        private = canonical.encode(vector["private"])
        assert private == vector["private_utf8"].encode()
        seal_hex, blob = sealed.seal(private, bytes.fromhex(vector["salt"]))
        assert seal_hex == vector["seal"]
        assert blob.hex() == vector["blob_hex"]
        assert sealed.matches(seal_hex, blob)
        assert sealed.private_bytes(blob) == private


_keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_scalars = st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1) | st.text(max_size=30)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4))
_records = st.dictionaries(_keys, _values, max_size=6)


@given(_records)
def test_canonical_encoding_matches_the_specification_and_round_trips(value: dict[str, Any]) -> None:
    data = canonical.encode(value)
    assert data == reference_encoding(value)
    assert canonical.decode(data) == value
    assert canonical.is_canonical(data)


@given(st.binary(max_size=200), st.binary(min_size=16, max_size=16), st.data())
def test_a_seal_fails_when_any_byte_of_its_blob_changes(private: bytes, salt: bytes, data: st.DataObject) -> None:
    seal_hex, blob = sealed.seal(private, salt)
    assert sealed.matches(seal_hex, blob)
    i = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    flipped = blob[:i] + bytes([blob[i] ^ data.draw(st.integers(min_value=1, max_value=255))]) + blob[i + 1 :]
    assert not sealed.matches(seal_hex, flipped)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=200), st.data())
def test_a_link_changes_when_any_byte_of_its_event_changes(prev: bytes, event: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(min_value=0, max_value=len(event) - 1))
    flipped = event[:i] + bytes([event[i] ^ 0x01]) + event[i + 1 :]
    assert chain.link(prev, event) != chain.link(prev, flipped)
