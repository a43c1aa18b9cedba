"""What the station says to a person, from the one catalogue of words (:mod:`traceability.i18n`).

The station's words are the catalogue's ``station_*`` keys. :func:`say` renders one in the station's
language setting (``trace-scan language``): ``zh`` Chinese only, ``en`` English only, or ``both`` (the
default) Chinese with the English after a middle dot, or the key's shorter ``_both`` form where the
English would only repeat numbers and names. A field that differs by language is a :class:`Localised`.
Refusals say what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traceability import i18n

LANGUAGES: tuple[str, ...] = ("both", "zh", "en")


@dataclass(frozen=True)
class Localised:
    """A field of a message that reads differently in each language (a unit, a step's name)."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.zh


def localised(key: str, **fields: Any) -> Localised:
    """A catalogue phrase as a field of another message (``，产地 丰县`` / ``, origin 丰县``)."""
    return Localised(i18n.words("zh")(key, **fields), i18n.words("en")(key, **fields))


def _fill(lang: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (getattr(v, lang) if isinstance(v, Localised) else v) for k, v in fields.items()}


def say(key: str, language: str = "both", **fields: Any) -> str:
    """The message ``key`` with its fields filled in, in ``language`` (zh, en or both)."""
    if language in ("zh", "en"):
        return i18n.words(language)(key, **_fill(language, fields))
    short = i18n.words("zh").text.get(f"{key}_both")
    if short is not None:
        return short.format(**_fill("zh", fields))
    return f"{i18n.words('zh')(key, **_fill('zh', fields))} · {i18n.words('en')(key, **_fill('en', fields))}"


def word(key: str, language: str = "both") -> str:
    """A label (a status line's name): ``中文 English`` side by side in ``both``, not joined by a dot."""
    if language in ("zh", "en"):
        return i18n.words(language)(key)
    return f"{i18n.words('zh')(key)} {i18n.words('en')(key)}"


def both(zh: str, en: str, language: str = "both") -> str:
    """A message made elsewhere (a parser's reason, which carries both languages) in the station's language."""
    if language == "zh":
        return zh
    if language == "en":
        return en
    return f"{zh} · {en}"


_REFUSALS: tuple[tuple[str, str], ...] = (
    # (what the server's answer says, the key that explains it): the first that matches explains it.
    ("not_destination", "station_refusal_not_destination"),
    ("not_holder", "station_refusal_custody"),
    ("not_own_node", "station_refusal_custody"),
    ("not_own_operator", "station_refusal_operator"),
    ("recalled", "station_refusal_recalled"),
    ("on hold", "station_refusal_on_hold"),
    ("was revoked", "station_refusal_revoked"),
    ("unauthorized", "station_refusal_unauthorized"),
    ("forbidden", "station_refusal_forbidden"),
    ("not_found", "station_refusal_not_found"),
    ("unknown_reference", "station_refusal_unknown"),
    ("already_exists", "station_refusal_exists"),
    ("invalid", "station_refusal_invalid"),
)


def server_refusal(stored: str, language: str = "both") -> str:
    """A refusal the server gave (``"409 conflict: traceCode: batch … recalled since …"``), explained.

    The server's own words follow in brackets, for the market's administrator.
    """
    lowered = stored.lower()
    for needle, key in _REFUSALS:
        if needle in lowered:
            return f"{say(key, language)}（{stored}）"
    return stored
