"""What the serving process loads at start: the heavy dictionaries only where a request needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pypinyin",)  # about 50 MB of resident memory once imported


def test_the_server_starts_without_the_heavy_dictionaries() -> None:
    code = f"import sys, traceability.http.app; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing the app loads {out.strip()}: import them inside the functions that use them"


def test_kept_views_are_bounded_by_bytes_however_big_each_is() -> None:
    from traceability.services.history import VIEW_COST, ViewCache

    cache = ViewCache(budget=100_000)
    small = ({"events": [{"bizStep": "receiving"}]}, '"a"')
    big = ({"events": [{"bizStep": "receiving", "note": "x" * 4000}]}, '"b"')
    for n in range(50):
        cache.put((f"small{n}", b"h", False), small)
    assert cache.get(("small49", b"h", False)) == small
    for n in range(50):
        cache.put((f"big{n}", b"h", False), big)
    assert cache.used <= cache.budget
    assert cache.get(("small0", b"h", False)) is None  # the oldest went first
    assert cache.get(("big49", b"h", False)) == big
    kept = len(cache._views)
    assert 0 < kept <= 100_000 // (VIEW_COST * 4_000)
    cache.put(("big49", b"h", False), big)  # kept again: counted once
    assert len(cache._views) == kept and cache.used <= cache.budget
    huge = ({"events": [{"note": "x" * 20_000}]}, '"c"')
    cache.put(("huge", b"h", False), huge)  # more than the whole budget: not kept, nothing left over
    assert cache.get(("huge", b"h", False)) is None and cache.used == 0


def test_rendered_answers_are_bounded_by_bytes() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from traceability.http.compression import KEPT_COST, Kept, Rendered

    rendered = Rendered(budget=50_000)
    none = CIMultiDictProxy(CIMultiDict[str]())
    page = Kept(200, b"x" * 9_000, b"y" * 1_000, none, none)
    for n in range(20):
        rendered.put(n, page)
    assert rendered.used <= 50_000
    assert rendered.get(19) is page and rendered.get(0) is None
    assert rendered.used == len(rendered._kept) * (10_000 + KEPT_COST)
    rendered.clear()
    assert rendered.used == 0 and rendered.get(19) is None


def test_kept_consumer_pages_are_bounded_by_bytes() -> None:
    from datetime import date

    from traceability.services.views.page_cache import PageCache, _Page

    cache = PageCache(budget=60_000)

    def page(n: int, note: int) -> _Page:
        return _Page([n], b"s", date(2026, 12, 1), 0.0, {"code": str(n), "note": "x" * note}, None, [])

    for n in range(30):
        cache.keep(str(n), page(n, 2_000))
    assert 0 < cache.used <= 60_000
    assert cache.find("29") is not None and cache.find("0") is None
    cache.keep("29", page(29, 2_000))  # rebuilt: counted once
    assert cache.used == sum(p.cost for p in cache._pages.values())
    cache.keep("big", page(99, 20_000))  # more than the budget: nothing kept
    assert cache.find("big") is None and cache.used == 0
