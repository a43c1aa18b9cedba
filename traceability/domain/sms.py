"""Text messages: reading a shopper's query out of an SMS, and fitting the answer into one message.

A query is whatever a shopper types on a phone: ``32031100000000000010``, the same in groups of four,
with dashes, in full-width digits from a Chinese input method, after a word (``查询 3203 1100 …``), and
``EN`` anywhere for an English answer. :func:`read_query` finds the first run of 20 digits (a trace code
or a 20-digit drug code); a shorter or longer run is kept to say what was wrong with it.

One message is 70 characters in UCS-2 (any Chinese text) or 160 in the GSM 03.38 7-bit alphabet
(English, if every character is in it; ``€``, ``[``, ``]`` and a few more take two). :func:`fit` shortens
the least important parts of an answer until it fits, so a reply never splits into a second, billed,
message; :func:`gsm_text` writes Chinese names in pinyin and drops what the alphabet lacks, so an
English answer stays 7-bit.

Nothing here logs or stores a sender's number: :func:`mask` shows the first three and last four digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

UCS2_LIMIT = 70
"""Characters in one message whose text is not all GSM 7-bit (every Chinese answer)."""
GSM_LIMIT = 160
"""Septets in one message of GSM 7-bit text."""
MAX_TEXT = 1000
"""The longest inbound text read (a concatenated message is at most a few hundred characters)."""
MAX_SENDER = 32
CODE_DIGITS = 20
SENDER_BURST = 10
"""Texts one sender may send at once: a shopper checking a basket, one receipt at a time."""
SENDER_INTERVAL = 60.0
"""Seconds between texts past the burst: a person keeps up; a flood or an auto-responder loop does not."""

# GSM 03.38: the basic alphabet (one septet each) and its extension table (escape + one: two septets).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

_RUN = re.compile(r"\d(?:[\d]|[ \-](?=\d))*")
_ENGLISH = re.compile(r"(?<![A-Za-z])EN(?![A-Za-z])|(?<![A-Za-z])english(?![A-Za-z])", re.IGNORECASE)
_SENDER = re.compile(r"\+?\d{3,20}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_GSM_FOR = {"·": "-", "，": ",", "。": ".", "：": ":", "；": ";", "（": "(", "）": ")", "、": ",", "…": "...", "—": "-"}


@dataclass(frozen=True, slots=True)
class Query:
    """What a text asks: ``code`` (20 digits) or ``digits`` (a run of another length, to name), and a language."""

    code: str | None
    digits: str | None
    lang: str


def read_query(text: str, lang: str | None = None) -> Query:
    """The code a text asks about and the language to answer in (``lang``, else ``en`` if it says EN, else zh)."""
    plain = unicodedata.normalize("NFKC", text)[:MAX_TEXT]
    chosen = lang if lang in ("zh", "en") else "en" if _ENGLISH.search(plain) else "zh"
    runs = [re.sub(r"[ \-]", "", m.group()) for m in _RUN.finditer(plain)]
    code = next((r for r in runs if len(r) == CODE_DIGITS), None)
    other = None if code is not None else max(runs, key=len, default=None)
    return Query(code, other, chosen)


def sender_number(raw: str) -> str | None:
    """A sender's number as the gateway gave it, spaces and dashes out: ``+8613812345678``; None if it is not one."""
    number = re.sub(r"[ \-]", "", unicodedata.normalize("NFKC", raw))
    return number if _SENDER.fullmatch(number) else None


def mask(number: str) -> str:
    """``13812345678`` → ``138****5678``: enough to tell senders apart in a log, not enough to call one."""
    digits = number.lstrip("+")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def is_gsm(text: str) -> bool:
    """Whether ``text`` can travel in the GSM 7-bit alphabet."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text)


def length(text: str) -> int:
    """What ``text`` costs of one message: septets if it is GSM 7-bit, else UTF-16 code units."""
    if is_gsm(text):
        return sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def limit(text: str) -> int:
    """One message's room for ``text``: 160 septets if it is GSM 7-bit, else 70 characters."""
    return GSM_LIMIT if is_gsm(text) else UCS2_LIMIT


MAX_RESERVE = 12
"""The most a gateway may add to each reply (``TRACE_SMS_RESERVE``): a carrier signature 【…】 of up to ten characters.
The fixed replies (help, unknown, mistyped) are written to fit with this much taken."""


def room(reserve: int = 0) -> Callable[[str], int]:
    """One message's room for a text when the gateway adds ``reserve`` characters (0..:data:`MAX_RESERVE`)."""
    return lambda text: limit(text) - reserve


def gsm_text(text: str) -> str:
    """``text`` in the GSM 7-bit alphabet: Chinese in pinyin (王记鲜肉 → Wang Ji Xian Rou), full-width forms
    narrowed, the few CJK marks replaced, anything else left out."""
    from pypinyin import lazy_pinyin  # its dictionaries cost about 50 MB: only when an answer needs them

    text = "".join(_GSM_FOR.get(ch, ch) for ch in text)
    text = _CJK.sub(lambda m: " " + " ".join(p.capitalize() for p in lazy_pinyin(m.group())) + " ", text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch in GSM_BASIC or ch in GSM_EXTENDED)
    return re.sub(r" {2,}", " ", re.sub(r" ([,;:)]|\.(?!\.))", r"\1", re.sub(r"\( ", "(", text))).strip()


def fit(
    compose: Callable[[Mapping[str, str]], str],
    parts: Mapping[str, str],
    order: Sequence[str],
    room: Callable[[str], int] = limit,
) -> str:
    """``compose(parts)`` shortened to one message: the parts named in ``order`` (least important first) lose
    characters from their end (with ``…``, or ``...`` in 7-bit text) until the whole fits ``room``; a part
    that reaches nothing is emptied. The text ``compose`` adds around the parts is kept as it is."""
    current = dict(parts)
    text = compose(current)
    for name in order:
        while length(text) > room(text) and current.get(name):
            value = current[name].removesuffix("…").removesuffix("...")
            value = value[:-1].rstrip(" ,;")
            mark = "..." if is_gsm(value) and is_gsm(text) else "…"
            current[name] = value + mark if value else ""
            text = compose(current)
        if length(text) <= room(text):
            return text
    if length(text) > room(text):  # only what compose adds is left: cut at the message's end
        cut = text
        while length(cut) > room(text):
            cut = cut[:-1]
        return cut
    return text
