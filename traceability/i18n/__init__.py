"""Every word a person reads, in one catalogue per language: ``zh.po`` (Chinese, the default) and ``en.po``.

The catalogues are gettext PO files, read once per process with Babel, so translators' tools (Poedit,
Weblate, ``pybabel``) open them as they are. Both carry the same keys (a test holds that):

* text for pages, the error page and stations, by key: ``msgid "recalled_title"``; ``{placeholders}``
  are filled in from keyword arguments;
* the names of the codes in the domain's code sets, with the set as the context:
  ``msgctxt "node_type"`` / ``msgid "wet_market"``. The domain keeps only the codes
  (``traceability.domain.events.BIZ_STEPS`` and the like).

::

    words = i18n.words("en")
    words("digits", n=12)                  # "12 of 20 digits"
    words.name("node_type", "wet_market")  # "Wet market"; None for a code the catalogue lacks
    i18n.names("unit", "KGM")              # ("千克", "kg"): both, for JSON that carries both names
    i18n.name_fields("anomaly", kind)      # {"name": ..., "name_en": ...}, the API's shape
    i18n.say("station_weigh")              # "请称重：销售需要重量 · a sale needs a weight (e.g. 1.25kg)"

To add a word: the same key in both files (a code set's names: one entry per code, context = the set);
``tests/test_words.py`` fails on a key a template or module uses that a catalogue lacks. A third language
would need its file, its code in :data:`LANGS` and :data:`HTML_LANG`, and a language menu where the pages
now offer a two-way switch (:attr:`Words.other`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LANGS = ("zh", "en")
"""The languages, the default first."""
DEFAULT = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
"""Each language's tag for ``<html lang>`` and ``Content-Language``."""
HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Words:
    """One language's catalogue. Templates get it as ``t``: ``t('site')``, ``t.step(code)``, ``t.pick(zh, en)``."""

    lang: str
    text: Mapping[str, str] = field(repr=False)
    """Pages' and stations' text by key (placeholders not yet filled in)."""
    code_names: Mapping[str, Mapping[str, str]] = field(repr=False)
    """Code set → code → name."""

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.lang]

    @property
    def other(self) -> str:
        """The language the switch on every page offers."""
        return LANGS[1] if self.lang == LANGS[0] else LANGS[0]

    @property
    def other_html_lang(self) -> str:
        return HTML_LANG[self.other]

    def __call__(self, key: str, **values: Any) -> str:
        """The text for ``key`` with its ``{placeholders}`` filled in (a missing key is a KeyError)."""
        text = self.text[key]
        return text.format(**values) if values else text

    def both(self, key: str) -> dict[str, str]:
        """The text for ``key`` in every language, e.g. ``t.both('unknown_title')[t.other]``."""
        return {lang: words(lang).text[key] for lang in LANGS}

    def name(self, kind: str, code: str) -> str | None:
        """The name of ``code`` in the code set ``kind`` (``"biz_step"``, ``"unit"``, ...), or None."""
        return self.code_names.get(kind, {}).get(code)

    def pick(self, zh: str | None, en: str | None) -> str:
        """Of a name recorded in both languages (a node's, a product's): the English when chosen and there
        is one; the Chinese otherwise."""
        if self.lang == "en" and en:
            return en
        return zh or en or ""

    def step(self, biz_step: str | None) -> str:
        """A CBV business step's name; a step the catalogue lacks reads as its code."""
        if not biz_step:
            return ""
        return self.name("biz_step", biz_step) or biz_step.replace("_", " ")

    def disposition(self, disposition: str | None) -> str:
        """A CBV disposition's name; one the catalogue lacks reads as its code."""
        if not disposition:
            return ""
        return self.name("disposition", disposition) or disposition.replace("_", " ")


@functools.cache
def words(lang: str) -> Words:
    """The catalogue of ``lang`` (one of :data:`LANGS`), read on first use and kept."""
    if lang not in LANGS:
        raise ValueError(f"no catalogue for {lang!r}; the languages are {', '.join(LANGS)}")
    # Imported here: a station command that shows no words does not pay for Babel (~30 ms).
    from babel.messages.pofile import read_po

    text: dict[str, str] = {}
    names: dict[str, dict[str, str]] = {}
    with (HERE / f"{lang}.po").open("rb") as po:
        for message in read_po(po, abort_invalid=True):
            if not message.id or message.fuzzy:
                continue  # the header; a fuzzy entry is a guess, not yet a translation
            key, value = str(message.id), str(message.string)
            if message.context:
                names.setdefault(message.context, {})[key] = value
            else:
                text[key] = value
    return Words(lang, text, names)


def names(kind: str, code: str) -> tuple[str, str] | None:
    """The Chinese and English names of ``code`` in the code set ``kind``, or None for a code without any."""
    zh, en = words("zh").name(kind, code), words("en").name(kind, code)
    return None if zh is None or en is None else (zh, en)


def name_fields(kind: str, code: str) -> dict[str, str]:
    """``{"name": 中文, "name_en": English}`` for a code, as the API and the JSON twins carry it (the code
    itself where the catalogue has no name)."""
    zh, en = names(kind, code) or (code, code)
    return {"name": zh, "name_en": en}


def say(key: str, **values: Any) -> str:
    """A line for a station's screen or a bilingual page, in both languages: ``中文 · English``."""
    return f"{words('zh')(key, **values)} · {words('en')(key, **values)}"
