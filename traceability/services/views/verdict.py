"""The verdict: the one line a shopper, a patient or a stall reads first about a batch.

``ok`` (可放心食用 / 可放心使用), ``recalled`` (已召回，请勿食用), ``on_hold`` (检测不合格，已暂扣, with the
failed analyte, its value, limit and unit; or held for another reason) or ``expired`` (已过保质期 /
已过有效期, past the expiry date in Beijing time on the day it is asked). Worst first: a recall outranks a
hold, a hold outranks an expiry.

A batch's own state comes from its chain (recalls and holds reach every batch made from the one stopped, as
events of their own), and a batch cut, made or sold from others also takes the worst state and the earliest
expiry of those (its genealogy), so a receipt tells what its source tells. Computed here once; the consumer
page, its JSON twin, ``GET /api/v1/batches/{code}/verdict`` and the stations all read this.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from traceability import errors, i18n
from traceability.domain import tracecode
from traceability.domain.access import Principal
from traceability.domain.fields import BEIJING
from traceability.epcis import records
from traceability.ledger import canonical
from traceability.services import history
from traceability.services.views.batch import batch_status
from traceability.storage import verdict_repo
from traceability.storage.database import Database, Record

STATES = ("ok", "recalled", "on_hold", "expired")
_RANK = {"active": 0, "on_hold": 1, "recalled": 2}
_BILINGUAL = re.compile(r"^\s*(?P<zh>[^()（）]+?)\s*[(（](?P<en>[^()（）]+)[)）]\s*$")


def today() -> date:
    """Today in Beijing time: a batch expires at the end of its last day there."""
    return datetime.now(BEIJING).date()


async def batch_verdict(
    db: Database, code: str, cache: history.ViewCache | None = None, on: date | None = None
) -> dict[str, Any]:
    """The verdict on batch ``code`` (NotFound when no batch has it)."""
    view, _ = await history.read_batch(db, code, None, cache)
    return await verdict_of(db, view, cache, on)


async def verdict_of(
    db: Database, view: dict[str, Any], cache: history.ViewCache | None = None, on: date | None = None
) -> dict[str, Any]:
    """The verdict on a batch whose public view is already at hand (the consumer page has read it)."""
    code = view["trace_code"]
    status = batch_status(view)
    async with db.connection() as conn:
        upstream = await verdict_repo.ancestors(conn, code)
        if not upstream and (source := _sold_from(view)) is not None:
            # A receipt printed before sales were linked as children names its source in an attribute.
            row = await verdict_repo.batch_state(conn, source)
            upstream = [row] if row is not None else []
    state, inherited = status["state"], None
    worst = max(upstream, key=lambda r: (_RANK.get(r["status"], 0), -r["depth"]), default=None)
    if worst is not None and _RANK.get(worst["status"], 0) > _RANK.get(state if state != "ok" else "active", 0):
        state, inherited = worst["status"], worst["trace_code"]
    expires = _expiry(view, upstream)
    use = _use(view["product"])
    recall = failed = None
    if state == "recalled":
        recall = await _recall(db, view if inherited is None else await _view(db, inherited, cache))
    elif state == "on_hold":
        failed = await _failed_test(db, view if inherited is None else await _view(db, inherited, cache))
    elif expires is not None and expires < (on or today()):
        state = "expired"
    events = status["recalled"] or status["held"]
    since = events[0]["eventTime"] if events and inherited is None else None
    if since is None and inherited is not None:
        since = next((r["status_since"] for r in upstream if r["trace_code"] == inherited), None)
        since = since.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(since, datetime) else None
    verdict: dict[str, Any] = {
        "trace_code": code,
        "state": state,
        "use": use,
        "since": since,
        "expires_on": expires.isoformat() if expires else None,
        "source": inherited,
        "recall": recall,
        "failed_test": failed,
        "checked_at": checked_now(),
    }
    verdict["headline"] = {lang: headline(verdict, i18n.words(lang)) for lang in i18n.LANGS}
    verdict["detail"] = {lang: detail(verdict, i18n.words(lang)) for lang in i18n.LANGS}
    return verdict


def _use(product: dict[str, Any]) -> str:
    """Whether the verdict speaks of eating or of using: a drug is used, and so is what an EPCIS key names without
    a GTIN (:data:`records.KEY_PRODUCT_PREFIX`: a place's chain, a logistic unit, an asset)."""
    if product["category"] == "drug" or (product.get("goods_code") or "").startswith(records.KEY_PRODUCT_PREFIX):
        return "use"
    return "eat"


def checked_now() -> str:
    """Now, as a verdict's ``checked_at`` gives it."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def headline(verdict: dict[str, Any], t: i18n.Words) -> str:
    """可放心食用 / 已召回，请勿食用 / 检测不合格，已暂扣 / 已过保质期, and the drug words, in one language."""
    state, use = verdict["state"], verdict.get("use", "eat")
    if state == "on_hold" and verdict.get("failed_test"):
        return t("verdict_failed")
    return t(f"verdict_{state}_{use}")


def detail(verdict: dict[str, Any], t: i18n.Words) -> str:
    """The line under the verdict: the failed analyte and its limit, the recall's reason, the expiry date."""
    parts: list[str] = []
    failed, recall = verdict.get("failed_test"), verdict.get("recall")
    if failed:
        analyte = t.pick(failed.get("analyte"), failed.get("analyte_en")) or _test_name(failed.get("test"))
        amount = " ".join(str(x) for x in (failed.get("value"), failed.get("unit")) if x)
        text = " ".join(x for x in (analyte, amount) if x)
        if failed.get("limit"):
            text = t("verdict_limit", found=text, limit=failed["limit"])
        if text:
            parts.append(text)
    if recall:
        day = str(recall.get("issued_at") or "")[:10]
        parts.append(
            t(
                "verdict_recall_detail",
                reason=recall.get("reason") or "-",
                authority=recall.get("authority") or "-",
                date=day,
            )
        )
    if verdict["state"] in ("expired", "ok") and verdict.get("expires_on"):
        key = "verdict_expires_use" if verdict.get("use") == "use" else "verdict_expires_eat"
        parts.append(t(key, date=verdict["expires_on"]))
    if verdict.get("source"):
        parts.append(t("verdict_source", code=tracecode.pretty(verdict["source"])))
    return t("verdict_sep").join(parts)


def _test_name(test: Any) -> str:
    return str(test).replace("_", " ") if isinstance(test, str) else ""


def _sold_from(view: dict[str, Any]) -> str | None:
    events = view.get("events") or []
    attrs = (events[0].get("attributes") if events else None) or {}
    source = attrs.get("soldFrom")
    return source if isinstance(source, str) and tracecode.is_valid(source) and source != view["trace_code"] else None


def _expiry(view: dict[str, Any], upstream: list[Record]) -> date | None:
    """The batch's own expiry; a batch without one (a receipt, a cut) keeps the nearest source's."""
    if view.get("expires_on"):
        return date.fromisoformat(view["expires_on"])
    dates = sorted((r["depth"], r["expires_on"]) for r in upstream if r["expires_on"] is not None)
    return dates[0][1] if dates else None


async def _view(db: Database, code: str, cache: history.ViewCache | None) -> dict[str, Any]:
    view, _ = await history.read_batch(db, code, None, cache)
    return view


async def _recall(db: Database, view: dict[str, Any]) -> dict[str, Any] | None:
    """The recall event on the chain: level, reason, the authority that issued it, when, which batch it named."""
    for e in view["events"]:
        rec = e.get("recall")
        if e.get("disposition") == "recalled" and isinstance(rec, dict) and not e.get("declared_wrong"):
            return {
                "level": rec.get("level"),
                "reason": rec.get("reason"),
                "authority": rec.get("issuedBy"),
                "issued_at": e.get("eventTime"),
                "source": rec.get("source"),
            }
    return None


async def _failed_test(db: Database, view: dict[str, Any]) -> dict[str, Any] | None:
    """The failed inspection behind a hold: on the batch itself, or the one a hold event points at."""
    for e in reversed(view["events"]):
        if e.get("declared_wrong"):
            continue
        if e.get("bizStep") in ("inspecting", "sampling") and e.get("disposition") == "non_conformant":
            node = e.get("node") or {}
            return _test(e.get("attributes") or {}, e.get("eventTime"), node.get("name"), node.get("name_en"), view)
        hold = e.get("hold")
        if isinstance(hold, dict) and isinstance(hold.get("inspection"), str):
            async with db.connection() as conn:
                row = await verdict_repo.event(conn, hold["inspection"])
            if row is None:
                return None
            content = canonical.decode(row["canonical"])
            return _test(
                content.get("attributes") or {},
                content.get("eventTime"),
                row["node"],
                row["node_en"],
                {"trace_code": row["trace_code"]},
            )
    return None


def _test(attrs: dict[str, Any], at: Any, node: Any, node_en: Any, view: dict[str, Any]) -> dict[str, Any]:
    analyte = attrs.get("analyte")
    zh = en = analyte if isinstance(analyte, str) else None
    if isinstance(analyte, str) and (m := _BILINGUAL.match(analyte)):
        zh, en = m["zh"], m["en"]
    return {
        "analyte": zh,
        "analyte_en": en,
        "test": attrs.get("test"),
        "value": _text(attrs.get("value")),
        "limit": _text(attrs.get("limit")),
        "unit": _text(attrs.get("unit")),
        "method": _text(attrs.get("method")),
        "node": node,
        "node_en": node_en,
        "at": at,
        "batch": view.get("trace_code"),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# -- what a station keeps for its offline days --------------------------------------------------------

WATCH_DAYS = 90
"""How far back a station's list reaches: its stock seen in that time, and the stops issued in it."""
WATCH_LIMIT = 5000


async def station_watchlist(db: Database, principal: Principal, on: date | None = None) -> dict[str, Any]:
    """The list a station checks a scan against while offline: every batch recalled or put on hold in the last
    :data:`WATCH_DAYS` days (recalls and failed tests are public), and the batches its own node holds or held
    in that time, each with its state (``ok``, ``recalled``, ``on_hold``, ``expired``) and expiry."""
    if principal.node_id is None:
        raise errors.Forbidden("only a device bound to a node keeps a station's list")
    now = datetime.now(UTC)
    since = now - timedelta(days=WATCH_DAYS)
    day = on or today()
    async with db.connection() as conn:
        stock = await verdict_repo.node_stock(conn, principal.node_id, since, WATCH_LIMIT)
        stopped = await verdict_repo.stopped(conn, since, WATCH_LIMIT)
    held = {r["trace_code"] for r in stock}

    def item(r: Record) -> dict[str, Any]:
        status = r["status"] if r["status"] in ("recalled", "on_hold") else "ok"
        if status == "ok" and r["expires_on"] is not None and r["expires_on"] < day:
            status = "expired"
        return {
            "traceCode": r["trace_code"],
            "state": status,
            "use": "use" if r["category"] == "drug" else "eat",
            "goodsCode": r["goods_code"],
            "product": r["product_name"],
            "productEn": r["product_name_en"],
            "expiresOn": r["expires_on"].isoformat() if r["expires_on"] else None,
            "inStock": r["trace_code"] in held,
        }

    items = {r["trace_code"]: item(r) for r in stopped}
    items.update({r["trace_code"]: item(r) for r in stock})
    return {
        "node": principal.node_code,
        "generatedAt": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "days": WATCH_DAYS,
        "items": list(items.values()),
    }
