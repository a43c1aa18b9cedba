"""The reader's language: Chinese by default, English by the visible switch or the browser's preference.

The language comes from ``?lang=``, then the ``lang`` cookie the switch sets, then the browser's
``Accept-Language`` (its tags ranked by weight, RFC 9110 §12.5.4, then matched by Babel's
``negotiate_locale``: ``en-GB`` reads English, ``zh-Hant-TW`` Chinese), and is Chinese otherwise.
"""

from __future__ import annotations

import functools

from aiohttp import web
from babel import negotiate_locale

from traceability import i18n

COOKIE = "lang"


def choose(request: web.Request) -> i18n.Words:
    """The words for this request, in the reader's language."""
    for candidate in (request.query.get("lang"), request.cookies.get(COOKIE)):
        if candidate in i18n.LANGS:
            return i18n.words(candidate)
    return i18n.words(from_header(request.headers.get("Accept-Language", "")) or i18n.DEFAULT)


@functools.lru_cache(maxsize=256)  # browsers send few distinct headers
def from_header(accept_language: str) -> str | None:
    """The best of our languages for an ``Accept-Language`` header, or None when it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0 and tag.strip():
            ranked.append((-weight, position, tag.strip()))
    ranked.sort()
    found = negotiate_locale([tag for _, _, tag in ranked], i18n.LANGS, sep="-")
    return found.lower() if found else None
