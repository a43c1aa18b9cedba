"""A code typed, scanned or texted, and what it finds: the short view the kiosk shows and the SMS reply tells.

:func:`find` resolves digits the way the consumer page does: a trace code to its batch; a code leased
to a stall whose station has not uploaded yet to that lease (syncing); a 20-digit drug box code (or
a box code of another length) to its lot, naming the box; anything else to what is wrong with it. The
result carries :func:`brief`, the consumer record cut to what a person reads first: the verdict, the
product, the origin and the stall. It is built from the public record, so it holds nothing the
public does not see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from traceability import errors
from traceability.domain import tracecode
from traceability.domain.federation import Federation
from traceability.services.views import consumer, packages
from traceability.storage.database import Database

_LINK = re.compile(r"/t/([0-9 \-]{20,40})(?:[/?#]|$)")


@dataclass(frozen=True, slots=True)
class Found:
    """``outcome``: ``verdict`` (``brief`` set), ``syncing`` (``lease`` set), ``elsewhere`` (``home`` set), ``unknown``,
    or ``invalid`` with
    ``problem`` (``check_bad``: a mistyped digit, ``digits``: not 20 digits, ``code_chars``: not digits)."""

    outcome: str
    code: str | None = None
    brief: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    problem: str | None = None
    digits: int = 0
    home: dict[str, str] | None = None
    """``elsewhere``: the member ledger of another city that is home to the code (``name``, ``origin``, ``url``)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "traceCode": self.code,
            "brief": self.brief,
            "lease": self.lease,
            "problem": self.problem,
            "home": self.home,
        }


def typed(raw: str) -> str:
    """What a keypad, a barcode gun or a phone sent, as digits: full-width digits, spaces and dashes handled,
    and a receipt's QR code (a URL ending in ``/t/{code}``) read for its code."""
    link = _LINK.search(raw)
    return packages.typed_digits(link.group(1) if link else raw)


async def find(db: Database, digits: str, federation: Federation | None = None) -> Found:
    """What ``digits`` (see :func:`typed`) name; with a ``federation``, a code another member ledger issued
    and this one never saw is ``elsewhere``, naming that ledger and the code's page there."""
    if not digits.isascii() or not digits.isdigit():
        return Found("invalid", problem="code_chars", digits=len(digits))
    if len(digits) == tracecode.LENGTH and tracecode.is_valid(digits):
        try:
            return await _found(db, digits, None)
        except errors.NotFound:
            member = federation.elsewhere(digits) if federation is not None else None
            if member is not None:
                home = {
                    "name": member.name or urlsplit(member.url).hostname or member.origin,
                    "origin": member.origin,
                    "url": f"{member.url}/t/{digits}",
                }
                return Found("elsewhere", digits, home=home)
            lease = await consumer.find_lease(db, digits)
            if lease is not None:
                return Found("syncing", digits, lease=lease)
    unit = await packages.find_unit(db, digits)
    if unit is not None:
        return await _found(db, unit["trace_code"], unit)
    if len(digits) != tracecode.LENGTH:
        return Found("invalid", problem="digits", digits=len(digits))
    if not tracecode.is_valid(digits):
        return Found("invalid", digits, problem="check_bad", digits=len(digits))
    return Found("unknown", digits)


async def _found(db: Database, code: str, unit: dict[str, Any] | None) -> Found:
    record, _ = await consumer.consumer_record(db, code)
    return Found("verdict", code, brief=brief(record, unit))


def brief(record: dict[str, Any], unit: dict[str, Any] | None = None) -> dict[str, Any]:
    """The consumer record cut to what is read first: verdict, product, origin, stall (and a drug box)."""
    batch = record["batch"]
    origin = next((s for s in record["journey"] if s.get("kind") == "origin"), None)
    return {
        "trace_code": batch["trace_code"],
        "verdict": record["verdict"],
        "product": batch["product"],
        "origin": None
        if origin is None
        else {
            "name": origin.get("name"),
            "name_en": origin.get("name_en"),
            "place": origin.get("place"),
            "place_en": origin.get("place_en"),
        },
        "vendor": record["vendor"],
        "drug": record["drug"],
        "produced_on": batch.get("produced_on"),
        "expires_on": batch.get("expires_on"),
        "unit": unit,
    }
