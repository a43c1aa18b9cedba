"""What the station knows about the batches it sells from: product, origin, where it learned them.

A stall sells from a batch it commissioned itself (known from its own queue) or one it received (known
from the server's public view, fetched when the batch is scanned while online, and kept for offline
days). A receipt prints the source's product and origin from here, and a sale whose named product is not
the source's product is refused before anything is recorded or printed.

The ``status`` column is there for the checks a station makes before it prints (recalled, on hold,
expired); :meth:`BatchBook.check_sale` is the one place a sale is checked, so such rules go there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scanners import client as wire
from scanners.queue import Store, now_text
from traceability import i18n
from traceability.domain.registry import area_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    trace_code    TEXT PRIMARY KEY,
    goods_code    TEXT,
    product_name  TEXT,
    origin        TEXT,
    status        TEXT,
    learned_from  TEXT NOT NULL CHECK (learned_from IN ('own', 'server')),
    learned_at    TEXT NOT NULL
);
"""

LOOKUP_TIMEOUT = 3.0
"""Seconds a scan waits for the server before the station goes on with what it knows."""


@dataclass(frozen=True)
class BatchInfo:
    trace_code: str
    goods_code: str | None
    product_name: str | None
    origin: str | None
    status: str | None = None
    learned_from: str = "own"


@dataclass(frozen=True)
class Refusal:
    """Why a sale must not go ahead, in both languages, and what to do instead."""

    code: str
    message_zh: str
    message: str


def origin_text(origin: Any) -> str | None:
    """``江苏省徐州市丰县 王庄`` from an opening's ``origin`` (area code, place, producer), or None."""
    if not isinstance(origin, dict):
        return None
    area = origin.get("areaCode") or origin.get("area_code")
    named = area_name(area) if isinstance(area, str) else None
    parts = [named] + [origin.get(k) for k in ("place", "producer")]
    words = [p for p in parts if isinstance(p, str) and p]
    # A place that repeats the end of the area's name adds nothing (丰县 after 江苏省徐州市丰县).
    if named and len(words) > 1 and named.endswith(words[1]):
        del words[1]
    return " ".join(words) or None


class BatchBook:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.conn.executescript(SCHEMA)

    def get(self, trace_code: str) -> BatchInfo | None:
        row = self.store.conn.execute(
            "SELECT trace_code, goods_code, product_name, origin, status, learned_from FROM batches "
            "WHERE trace_code = ?",
            (trace_code,),
        ).fetchone()
        if row is not None:
            return BatchInfo(**dict(row))
        return self._own_opening(trace_code)

    def _own_opening(self, trace_code: str) -> BatchInfo | None:
        """A batch this station opened itself: its opening is in the queue."""
        row = self.store.conn.execute(
            "SELECT body FROM outbox WHERE kind = 'open' AND trace_code = ? ORDER BY seq LIMIT 1", (trace_code,)
        ).fetchone()
        if row is None:
            return None
        body = json.loads(row["body"])
        return BatchInfo(
            trace_code=trace_code,
            goods_code=body.get("product"),
            product_name=(body.get("attributes") or {}).get("productName"),
            origin=origin_text(body.get("origin")),
        )

    def remember(self, info: BatchInfo) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO batches (trace_code, goods_code, product_name, origin, status, learned_from, learned_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_code) DO UPDATE SET goods_code = excluded.goods_code, "
                "product_name = excluded.product_name, origin = excluded.origin, status = excluded.status, "
                "learned_from = excluded.learned_from, learned_at = excluded.learned_at",
                (
                    info.trace_code,
                    info.goods_code,
                    info.product_name,
                    info.origin,
                    info.status,
                    info.learned_from,
                    now_text(),
                ),
            )

    async def fetch(self, c: wire.SigningClient, trace_code: str) -> BatchInfo | None:
        """Ask the server (public view, and the trace back to the origin when the batch has none)."""
        ans = await c.call("GET", f"/api/v1/batches/{trace_code}", signed=False)
        if ans.status == 404 or not ans.ok or not isinstance(ans.data, dict):
            return None
        view = ans.data
        origin = origin_text(view.get("origin"))
        if origin is None:
            origin = await self._origin_upstream(c, trace_code)
        product = view.get("product") or {}
        info = BatchInfo(
            trace_code=trace_code,
            goods_code=product.get("goods_code"),
            product_name=product.get("name"),
            origin=origin,
            status=view.get("status") if isinstance(view.get("status"), str) else None,
            learned_from="server",
        )
        self.remember(info)
        return info

    async def _origin_upstream(self, c: wire.SigningClient, trace_code: str) -> str | None:
        """The origin of the batches this one was made from (a carcass cut from a lot of pigs)."""
        ans = await c.call("GET", f"/api/v1/batches/{trace_code}/trace?direction=backward", signed=False)
        if not ans.ok or not isinstance(ans.data, dict):
            return None
        roots = [b for b in ans.data.get("batches", []) if b.get("trace_code") in set(ans.data.get("origins", []))]
        for root in roots:
            if root.get("trace_code") == trace_code:
                continue
            view = await c.call("GET", f"/api/v1/batches/{root['trace_code']}", signed=False)
            if view.ok and isinstance(view.data, dict) and (found := origin_text(view.data.get("origin"))):
                return found
            nodes = root.get("nodes") or []
            if nodes and isinstance(nodes[0], dict) and nodes[0].get("name"):
                return str(nodes[0]["name"])
        return None

    def check_sale(self, source: BatchInfo | None, goods_code: str | None, product_name: str | None) -> Refusal | None:
        """Whether a sale of ``goods_code`` from ``source`` may go ahead (None) or why not.

        The station checks here, before it records or prints anything.
        """
        if source is None or goods_code is None or source.goods_code is None:
            return None
        if source.goods_code != goods_code:
            theirs = source.product_name or source.goods_code
            ours = product_name or goods_code
            fields = {"code": source.trace_code, "theirs": theirs, "ours": ours}
            return Refusal(
                "product_mismatch",
                i18n.words("zh")("station_refusal_mismatch", **fields),
                i18n.words("en")("station_refusal_mismatch", **fields),
            )
        return None
