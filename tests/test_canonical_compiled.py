"""The compiled walk of the canonical value check (traceability/_canonical.c) passes only what the Python walk
(``canonical._check``) passes, so ``canonical.encode`` refuses the same values with the same errors."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceability.ledger import canonical


class Text(str):
    pass


class Number(int):
    pass


class Level(enum.IntEnum):
    LOW = 1


def python_verdict(value: Any) -> str | None:
    """None where the Python walk passes ``value``, else its error."""
    try:
        canonical._check(value)
    except canonical.CanonicalError as exc:
        return str(exc)
    return None


def test_the_compiled_walk_is_built() -> None:
    assert canonical._plain is not None  # make install builds it; the tests below compare it with Python


EDGES: list[Any] = [
    {},
    {"a": "b", "n": None, "t": True, "f": False, "i": 0},
    {"i": (1 << 63) - 1, "j": -(1 << 63)},
    {"i": 1 << 63},
    {"i": -(1 << 63) - 1},
    {"i": 1 << 64},
    {"x": 1.5},
    {"x": [1.5]},
    {"x": (1, 2)},
    {"x": {1: "a"}},
    {"键": 1},
    {Text("k"): 1},
    {"k": Text("v")},
    {"k": Number(3)},
    {"k": Level.LOW},
    {"k": [Text("v")]},
    {"k": b"bytes"},
    {"k": {"a": [{"b": [None, True, "c", 7]}]}},
    {"k": [[[[{"deep": float("nan")}]]]]},
    {"k": set()},
]


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for i in range(depth):
        value = {"d": value} if i % 2 else [value]
    return {"root": value}


@pytest.mark.parametrize("value", [*EDGES, nested(200, "ok"), nested(200, 0.5), nested(63, "ok"), nested(64, "ok")])
def test_the_compiled_walk_passes_only_what_python_passes(value: Any) -> None:
    assert canonical._plain is not None
    passed = canonical._plain(value)
    verdict = python_verdict(value)
    if passed:
        assert verdict is None
    if verdict is not None:
        with pytest.raises(canonical.CanonicalError) as raised:
            canonical.encode(value)
        assert str(raised.value) == verdict


@pytest.mark.parametrize("value", [{"a": "b"}, {"k": {"a": [{"b": [None, True, "c", 7]}]}}, nested(63, "ok")])
def test_the_compiled_walk_passes_plain_records(value: Any) -> None:
    assert canonical._plain is not None and canonical._plain(value)


def test_the_compiled_walk_takes_only_a_dict() -> None:
    assert canonical._plain is not None
    for value in ([], "x", None, 1, ({},)):
        assert not canonical._plain(value)


_keys = st.text(max_size=6) | st.integers(max_value=3).map(str) | st.just(Text("s"))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 65), max_value=1 << 65)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=4)
    | st.just(Level.LOW)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4) | st.tuples(inner),
)


@given(st.dictionaries(_keys, _values, max_size=5))
def test_the_compiled_walk_agrees_with_python(value: dict[str, Any]) -> None:
    assert canonical._plain is not None
    verdict = python_verdict(value)
    assert canonical._plain(value) == (verdict is None)
