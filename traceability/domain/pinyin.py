"""Finding a product by what a vendor types: its Chinese name, part of it, or its pinyin initials.

A vendor at a stall types 猪肉, or ``zr`` (zhu rou) on a keyboard without a Chinese input method; the
station and the vendor page both rank the registry's products with :func:`score`. Initials come from
pypinyin with every reading of a character that has several (长 is chang or zhang), so ``zdj`` and ``cdj``
both find 长豆角.

========================================  =====
match                                      score
========================================  =====
the goods code, or the whole name          100
initials, whole                             95
name starts with the query                  90
goods code starts with the query            88
initials start with the query               85
name contains the query                     80
initials contain the query                  75
full pinyin starts with / contains it    70 / 60
name holds the query's characters in order  50
initials hold the query's letters in order  40
========================================  =====
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass

MAX_VARIANTS = 16
"""Readings kept per name: a name of polyphonic characters has few, bounded all the same."""


@dataclass(frozen=True)
class NameKeys:
    """What a product name can be found by."""

    initials: tuple[str, ...]
    """Pinyin initials, one string per reading (``btzr`` for 白条猪肉); letters and digits kept as typed."""
    spelled: str
    """The full pinyin of the usual reading, without spaces (``baitiaozhurou``)."""


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def keys(name: str) -> NameKeys:
    """The pinyin keys of a product name."""
    # pypinyin loads its dictionaries (about 50 MB) on import: only a process that looks names up pays.
    from pypinyin import Style, lazy_pinyin, pinyin

    folded = unicodedata.normalize("NFKC", name)
    readings = pinyin(folded, style=Style.FIRST_LETTER, heteronym=True)
    options = [sorted({_fold(r) for r in reading if _fold(r)}) or [""] for reading in readings]
    variants = ["".join(combo) for combo in itertools.islice(itertools.product(*options), MAX_VARIANTS)]
    spelled = _fold("".join(lazy_pinyin(folded)))
    return NameKeys(tuple(dict.fromkeys(variants)), spelled)


def _in_order(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


def score(query: str, name: str, goods_code: str, name_keys: NameKeys | None = None) -> int:
    """How well ``query`` finds this product (0: not at all). See the module docstring for the scale."""
    q = _fold(query)
    if not q:
        return 0
    folded = _fold(name)
    if q in (goods_code, folded):
        return 100
    k = name_keys or keys(name)
    found = 0
    if q in k.initials:
        found = 95
    elif folded.startswith(q):
        found = 90
    elif goods_code.startswith(q):
        found = 88
    elif any(i.startswith(q) for i in k.initials):
        found = 85
    elif q in folded:
        found = 80
    elif any(q in i for i in k.initials):
        found = 75
    elif k.spelled.startswith(q):
        found = 70
    elif q in k.spelled:
        found = 60
    elif _in_order(q, folded):
        found = 50
    elif q.isascii() and any(_in_order(q, i) for i in k.initials):
        found = 40
    return found


PLACE_SUFFIXES = (("自治县", "Autonomous County"), ("区", "District"), ("县", "County"), ("市", "City"))


def place_name_en(name: str) -> str:
    """A district's name in English as signs write it: ``鼓楼区`` → ``Gulou District``, ``丰县`` → ``Feng County``."""
    from pypinyin import lazy_pinyin  # see keys()

    for suffix, english in PLACE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = "".join(lazy_pinyin(name[: -len(suffix)])).capitalize()
            return f"{stem} {english}"
    return "".join(lazy_pinyin(name)).capitalize()
