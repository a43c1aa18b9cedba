"""Answering a text message: a trace code (or a drug box code) in, one message out.

The answer is the consumer page's opening in one message: the verdict first (可放心食用, 已召回，请勿食用,
检测不合格，已暂扣, 已过保质期, and the drug words), then the product, why (the recall's reason, the failed
analyte, the expiry date), where it came from and the stall that sold it, and the code's last four digits
so a shopper who sent several can tell the answers apart. It is built from the same public record
as the page (:func:`traceability.services.views.consumer.consumer_record`), so it never holds a price, a
buyer or anything else the public does not see. A code leased to a stall whose station has not uploaded
yet says whose it is and that it is syncing; a code nobody issued, a mistyped one and a text without a
code each get a reply that says what to do.

Chinese answers fit one 70-character message, English ones 160 GSM 7-bit characters
(:mod:`traceability.domain.sms`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from traceability import i18n
from traceability.domain import sms
from traceability.domain.federation import Federation
from traceability.services.views import query
from traceability.storage.database import Database

CUT_FIRST = ("market", "origin", "why", "stall", "product")
"""The parts of an answer shortened first when it is too long for one message; the verdict never is."""
_PROVINCE = re.compile(r"^.{2,8}?(省|自治区)")


async def answer(
    db: Database, text: str, lang: str | None = None, federation: Federation | None = None, reserve: int = 0
) -> dict[str, Any]:
    """The reply to ``text``: ``{"reply", "lang", "outcome", "traceCode", "state", "length", "limit"}``.

    ``reserve``: characters the gateway adds to every reply (a carrier signature such as 【徐州追溯】), left free.

    ``outcome`` is ``verdict``, ``syncing``, ``elsewhere`` (another city's ledger issued it: where to ask),
    ``unknown``, ``invalid`` (a mistyped code) or ``help`` (no code).
    """
    asked = sms.read_query(text, lang)
    t = i18n.words(asked.lang)
    room = sms.room(reserve)
    digits = asked.code or asked.digits
    if not digits:
        return _reply(t, room, "help", t("sms_help"))
    found = await query.find(db, digits, federation)
    if found.brief is not None:
        state = found.brief["verdict"]["state"]
        return _reply(t, room, "verdict", _verdict(t, room, found.brief), code=found.code, state=state)
    if found.lease is not None and found.code is not None:
        return _reply(t, room, "syncing", _syncing(t, room, found.code, found.lease), code=found.code)
    if found.home is not None and found.code is not None:
        name = found.home["name"] if t.lang == "zh" else sms.gsm_text(found.home["name"])
        text = sms.fit(
            lambda p: t("sms_elsewhere", tail=code_tail(digits), **p),
            {"ledger": name, "url": found.home["url"]},
            ("ledger",),  # a URL cut short leads nowhere
            room,
        )
        return _reply(t, room, "elsewhere", text, code=found.code)
    if found.outcome == "unknown":
        return _reply(t, room, "unknown", t("sms_unknown", code=digits), code=found.code)
    if found.problem == "check_bad":
        return _reply(t, room, "invalid", t("sms_check_bad", code=digits))
    return _reply(t, room, "invalid", t("sms_digits", n=len(digits)))


def _reply(
    t: i18n.Words,
    room: Callable[[str], int],
    outcome: str,
    text: str,
    *,
    code: str | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    return {
        "reply": text,
        "lang": t.lang,
        "outcome": outcome,
        "traceCode": code,
        "state": state,
        "length": sms.length(text),
        "limit": room(text),
    }


def _name(t: i18n.Words, zh: str | None, en: str | None) -> str:
    """A name in the answer's language; in English, pinyin for a name recorded only in Chinese."""
    return t.pick(zh, en) if t.lang == "zh" else sms.gsm_text(en or zh or "")


def _compose(
    t: i18n.Words, key: str, parts: Mapping[str, str], wrap: Mapping[str, str] | None = None, **fixed: str
) -> str:
    """The answer ``key`` with each non-empty part wrapped in its own words (``sms_part_origin``: ，产地{value}),
    or in those ``wrap`` names for it."""
    wraps = wrap or {}
    wrapped = {
        name: (t(wraps.get(name, f"sms_part_{name}"), value=value) if value else "") for name, value in parts.items()
    }
    text = t(key, **fixed, **wrapped)
    return text if t.lang == "zh" else sms.gsm_text(text)


def _verdict(t: i18n.Words, room: Callable[[str], int], brief: dict[str, Any]) -> str:
    verdict, unit = brief["verdict"], brief["unit"]
    product = _name(t, brief["product"]["name"], brief["product"].get("name_en"))
    why = ""
    if verdict.get("recall"):
        why = t("sms_why_recalled", reason=verdict["recall"].get("reason") or "-")
    elif verdict.get("failed_test"):
        failed = verdict["failed_test"]
        why = t.pick(failed.get("analyte"), failed.get("analyte_en")) or ""
    elif verdict["state"] == "expired" and verdict.get("expires_on"):
        why = t("sms_why_expired", date=verdict["expires_on"])
    if unit is not None and unit.get("dispensed"):
        why = t("sms_unit_dispensed")
    origin = brief["origin"]
    place = ""
    if origin is not None:
        place = _PROVINCE.sub("", origin.get("place") or "") or origin.get("name") or ""
    vendor = brief.get("vendor") or {}
    stall = " ".join(
        x
        for x in (vendor.get("name") or "", t("sms_stall_no", no=vendor["stall_no"]) if vendor.get("stall_no") else "")
        if x
    )
    market = _name(t, vendor.get("node"), vendor.get("node_en")) if vendor else ""
    parts = {
        "why": why if t.lang == "zh" else sms.gsm_text(why),
        "product": product,
        "origin": place if t.lang == "zh" else sms.gsm_text(place),
        "stall": stall if t.lang == "zh" else sms.gsm_text(stall),
        "market": market,
    }
    headline = verdict["headline"][t.lang]
    return sms.fit(lambda p: _compose(t, "sms_answer", p, verdict=headline, tail=code_tail(brief["trace_code"])),
                   parts, CUT_FIRST, room)  # fmt: skip


def _syncing(t: i18n.Words, room: Callable[[str], int], code: str, lease: dict[str, Any]) -> str:
    node = lease.get("node") or {}
    op = lease.get("operator") or {}
    stall = " ".join(
        x for x in (op.get("name") or "", t("sms_stall_no", no=op["stallNo"]) if op.get("stallNo") else "") if x
    )
    parts = {
        "stall": stall if t.lang == "zh" else sms.gsm_text(stall),
        "market": _name(t, node.get("name"), node.get("nameEn")),
    }
    plain = {"market": "sms_part_plain", "stall": "sms_part_market"}
    return sms.fit(lambda p: _compose(t, "sms_syncing", p, plain, tail=code_tail(code)), parts, CUT_FIRST, room)


def code_tail(code: str) -> str:
    """The last four digits, which tell a shopper's several answers apart."""
    return code[-4:]
