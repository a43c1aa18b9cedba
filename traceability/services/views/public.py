"""The public information page (``/public``) and its open data: recalls in progress and past, failed inspections,
and every enterprise's and stall's credit grade with its factors, searchable by name, district and product.

Nothing sealed or personal: no prices or buyers, no contacts, no accounts (a recall names its authority).
Each list is read a page at a time (:data:`PAGE` on the page, up to :data:`MAX_LIMIT` as open data); the
search is bounded and checked here, and a bad value is a 422 naming the parameter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from traceability import errors, i18n
from traceability.domain import bounds, registry
from traceability.domain.fields import BEIJING
from traceability.ledger import canonical
from traceability.services import credit, genealogy
from traceability.storage import credit_repo, public_repo, recall_repo
from traceability.storage.database import Database
from traceability.storage.public_repo import Filters

LISTS = ("recalls", "failed", "credit")
PAGE = 10
"""Items of each list on one page."""
MAX_LIMIT = 200
"""Items of a list in one open-data answer."""
MAX_PAGE = 1000
SEARCH_TEXT = 50
"""Characters of a name, a district or a product typed into the search."""
KEYS = ("q", "district", "product", "list", "page", "lang", "format")
RETAIL = frozenset({"wet_market", "supermarket", "canteen", "pharmacy", "hospital"})
"""Places where goods reach consumers: what a recall lists as where it was sold."""
SHOWN_BATCHES = 20
NO_FILTERS = Filters()
"""Every item: the feed lists everything."""


# -- the search -----------------------------------------------------------------------------------


def _text(query: dict[str, str], key: str) -> str | None:
    raw = query.get(key, "").strip()
    if not raw:
        return None
    if (problem := bounds.text_problem(raw, SEARCH_TEXT)) is not None:
        raise errors.InvalidField(f"{key}: {problem}", field=key)
    return raw


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def whole(query: dict[str, str], key: str, default: int, hi: int, lo: int = 1) -> int:
    raw = query.get(key, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not lo <= int(raw) <= hi:
        raise errors.InvalidField(f"{key}: must be a whole number from {lo} to {hi}", field=key)
    return int(raw)


def read_search(query: dict[str, str], allowed: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """The search a reader asked for, checked: ``q`` (a name), ``district``, ``product``, ``list``, ``page``.
    A parameter the page does not know is refused, so a mistyped one never silently lists everything."""
    for key in query:
        if key not in allowed:
            raise errors.InvalidField(f"{key}: not a parameter of this page ({', '.join(allowed)})", field=key)
    chosen = query.get("list", "")
    if chosen and chosen not in LISTS:
        raise errors.InvalidField(f"list: must be one of {', '.join(LISTS)}", field="list")
    return {
        "q": _text(query, "q"),
        "district": _text(query, "district"),
        "product": _text(query, "product"),
        "list": chosen or None,
        "page": whole(query, "page", 1, MAX_PAGE),
    }


def district_name(code: str) -> str:
    """A district's name without the province and city (``江苏省徐州市泉山区`` → ``泉山区``), or its code."""
    full = registry.area_name(code) or code
    return re.sub(r"^.+?(省|自治区)", "", re.sub(r"^.+?市(?=.+[区县市旗])", "", full)) or full


async def districts(db: Database) -> list[dict[str, str]]:
    """Every district a registered node is in, for the search's choice."""
    async with db.connection() as conn:
        codes = await public_repo.areas(conn)
    return [{"code": c, "name": district_name(c), "full_name": registry.area_name(c) or c} for c in codes]


async def filters(db: Database, search: dict[str, Any]) -> Filters:
    """The repository's filters for a search; a district is a 6-digit area code (one ending in 00 takes in its
    city or province) or part of a district's name."""
    areas: list[str] | None = None
    if district := search["district"]:
        async with db.connection() as conn:
            known = await public_repo.areas(conn)
        if re.fullmatch(r"[1-8][0-9]{5}", district):
            prefix = district.rstrip("0") if district.endswith("00") else district
            prefix = prefix[: len(prefix) + len(prefix) % 2]
            areas = [c for c in known if c.startswith(prefix)]
        else:
            areas = [c for c in known if district in (registry.area_name(c) or "")]
    product = search["product"]
    return Filters(
        name=_like(search["q"]) if search["q"] else None,
        areas=areas,
        product=_like(product) if product else None,
        goods=product,
    )


# -- the lists ------------------------------------------------------------------------------------


def _advice(category: str) -> dict[str, str]:
    key = "public_advice_drug" if category == "drug" else "public_advice_food"
    return {"advice": i18n.words("zh")(key), "advice_en": i18n.words("en")(key)}


async def recalls(db: Database, found: Filters, limit: int, offset: int, public_url: str) -> list[dict[str, Any]]:
    """Recalls newest first: product, batches, level, reason, authority, date, where it was sold, what to do,
    and whether it is still in progress (goods it reached are still held somewhere)."""
    async with db.connection() as conn:
        rows = await public_repo.recalls(conn, found, limit, offset)
    out = []
    for r in rows:
        trace = await genealogy.trace(db, r["trace_code"], "forward", public=True)
        codes = [b["trace_code"] for b in trace["batches"]]
        async with db.connection() as conn:
            stall_rows = await recall_repo.stalls(conn, codes)
        stalls: dict[str, list[dict[str, Any]]] = {}
        for s in stall_rows:  # a stall's trade name and number, never its holder's contact
            entry = {"stall_no": s["stall_no"] or s["code"], "name": s["name"]}
            if entry not in stalls.setdefault(s["node"], []):
                stalls[s["node"]].append(entry)
        places = [
            {
                "name": n["name"],
                "name_en": n["name_en"],
                "type": n["type"],
                "type_name": n["type_name"],
                "type_name_en": n["type_name_en"],
                "district": district_name(n["area_code"]),
                "stalls": stalls.get(n["code"], []),
            }
            for n in trace["reached"]
            if n["type"] in RETAIL
        ]
        receipts = [b for b in trace["batches"] if b["depth"] > 0 and _sold(b)]
        lots = [b["trace_code"] for b in trace["batches"] if b not in receipts]
        held = any(_positive(q["value"]) for q in trace["totals"]["left"])
        out.append(
            {
                "id": r["id"],
                "event_id": r["event_id"],
                "issued_at": r["issued_at"].astimezone(BEIJING).isoformat(timespec="seconds"),
                "level": r["level"],
                "level_name": i18n.name_fields("recall_level", r["level"])["name"],
                "level_name_en": i18n.name_fields("recall_level", r["level"])["name_en"],
                "product": r["product"],
                "product_en": r["product_en"],
                "goods_code": r["goods_code"],
                "category": r["category"],
                "trace_code": r["trace_code"],
                "url": f"{public_url}/t/{r['trace_code']}",
                "batches": lots[:SHOWN_BATCHES],
                "batches_count": len(lots),
                "receipts": len(receipts),
                "affected": r["affected"],
                "reason": r["reason"],
                "scope": r["scope"],
                "authority": r["authority"],
                "enterprise": r["enterprise"],
                "enterprise_en": r["enterprise_en"],
                "district": district_name(r["area_code"]),
                "places": places,
                "status": "in_progress" if held else "completed",
                **_advice(r["category"]),
            }
        )
    return out


def _positive(value: str) -> bool:
    return value not in ("", "0") and not value.startswith("-")


def _sold(batch: dict[str, Any]) -> bool:
    first = batch["nodes"][0] if batch["nodes"] else {}
    return "retail_selling" in first.get("steps", ()) or "dispensing" in first.get("steps", ())


def _outcome(o: Any) -> str:
    if o is None:
        return "on_hold"
    if o["destroyed"]:
        return "destroyed"
    if o["returned"]:
        return "returned"
    if o["recalled"]:
        return "recalled"
    return "on_hold"


async def failed_inspections(
    db: Database, found: Filters, limit: int, offset: int, public_url: str
) -> list[dict[str, Any]]:
    """Failed inspections newest first: product, lot, analyte, value, limit, enterprise, date, and what happened
    to the goods (held, recalled, destroyed or returned, counting everything made from the lot)."""
    async with db.connection() as conn:
        rows = await public_repo.failed_inspections(conn, found, limit, offset)
        outcomes = await public_repo.outcomes(conn, [r["batch_id"] for r in rows], [r["event_time"] for r in rows])
    out = []
    for r in rows:
        attrs = canonical.decode(r["canonical"]).get("attributes") or {}
        test = str(attrs.get("test") or "")
        test_names = i18n.names("test", test) or (test, test)
        o = outcomes.get(r["batch_id"])
        outcome = _outcome(o)
        out.append(
            {
                "event_id": r["event_id"],
                "tested_at": r["event_time"].astimezone(BEIJING).isoformat(timespec="seconds"),
                "product": r["product"],
                "product_en": r["product_en"],
                "goods_code": r["goods_code"],
                "category": r["category"],
                "trace_code": r["trace_code"],
                "url": f"{public_url}/t/{r['trace_code']}",
                "test": test or None,
                "test_name": test_names[0] or None,
                "test_name_en": test_names[1] or None,
                "analyte": _str(attrs.get("analyte")) or test_names[0] or None,
                "analyte_en": _str(attrs.get("analyte_en")) or _str(attrs.get("analyte")) or test_names[1] or None,
                "value": _str(attrs.get("value")),
                "limit": _str(attrs.get("limit")),
                "unit": _str(attrs.get("unit")),
                "method": _str(attrs.get("method")),
                "lab": _str(attrs.get("lab")),
                "enterprise": r["enterprise"],
                "enterprise_en": r["enterprise_en"],
                "district": district_name(r["area_code"]),
                "tested_by": r["tested_at"],
                "tested_by_en": r["tested_at_en"],
                "outcome": outcome,
                "outcome_name": i18n.name_fields("public_outcome", outcome)["name"],
                "outcome_name_en": i18n.name_fields("public_outcome", outcome)["name_en"],
                "batches": o["batches"] if o else 1,
                "held": o["held"] if o else 0,
                "destroyed": o["destroyed"] if o else 0,
                "returned": o["returned"] if o else 0,
            }
        )
    return out


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


async def ratings(db: Database, found: Filters, limit: int, offset: int) -> list[dict[str, Any]]:
    """Enterprises, then stalls: the credit grade and score over the last twelve months with every factor
    (the rules of :mod:`traceability.services.credit`, the same the console shows)."""
    at = datetime.now(UTC)
    out = []
    async with db.connection() as conn:
        for r in await public_repo.rated(conn, found, limit, offset):
            if r["kind"] == "enterprise":
                record = await credit_repo.record(conn, r["id"], at - credit.WINDOW, at)
            else:
                record = await credit_repo.operator_record(conn, r["id"], at - credit.WINDOW, at)
            value, factors = credit.score(record)
            active = bool(record["events"]) or bool(record["anomalies"])
            out.append(
                {
                    "kind": r["kind"],
                    "uscc": r["uscc"],
                    "name": r["name"],
                    "name_en": r["name_en"],
                    "market": r["node_name"],
                    "market_en": r["node_name_en"],
                    "stall_no": r["stall_no"],
                    "districts": [district_name(a) for a in r["areas"]],
                    "grade": credit.grade(value) if active else None,
                    "score": value if active else None,
                    "active": active,
                    "events": record["events"],
                    "factors": [f for f in factors if f["factor"] != "anomalies_by_kind"],
                    "as_of": at.astimezone(BEIJING).isoformat(timespec="seconds"),
                }
            )
    return out


async def fingerprint(db: Database) -> tuple[int, ...]:
    """What the public lists depend on (see :func:`traceability.storage.public_repo.fingerprint`)."""
    async with db.connection() as conn:
        return await public_repo.fingerprint(conn)


async def page(db: Database, query: dict[str, str], public_url: str) -> dict[str, Any]:
    """The public page's view model: the search, and a page of each list asked for (all three by default)."""
    search = read_search(query)
    found = await filters(db, search)
    chosen = (search["list"],) if search["list"] else LISTS
    offset = (search["page"] - 1) * PAGE
    readers = {
        "recalls": lambda: recalls(db, found, PAGE + 1, offset, public_url),
        "failed": lambda: failed_inspections(db, found, PAGE + 1, offset, public_url),
        "credit": lambda: ratings(db, found, PAGE + 1, offset),
    }
    lists: dict[str, Any] = {}
    for name in chosen:
        items = await readers[name]()
        lists[name] = {"items": items[:PAGE], "more": len(items) > PAGE}
    return {
        "search": search,
        "districts": await districts(db),
        "page": search["page"],
        "page_size": PAGE,
        **lists,
    }
