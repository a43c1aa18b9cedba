"""What the station refuses before it records or prints: recalled, held (a failed test), or expired goods.

Online, a scanned batch's verdict comes from the server (``GET /api/v1/batches/{code}/verdict``) just
before the scan is handled. Offline, the station checks the list it keeps: every batch recalled or put on
hold in the city in the last 90 days and its own node's stock with each one's state and expiry
(``GET /api/v1/stations/watchlist``, replaced on every sync; ``trace-scan status`` says as of when). A
verdict fetched for one scan updates that batch's line, so the freshest word wins either way. Expiry is
checked against the station's own date, so goods that expire while the station is offline are still
refused.

A batch the station knows nothing about passes: the server checks the sale again when it arrives, refuses
one made after a recall, and the station shows that refusal.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from scanners.batches import Refusal
from scanners.queue import Store, now_text
from traceability import i18n

SCHEMA = """
CREATE TABLE IF NOT EXISTS stoplist (
    trace_code    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    use           TEXT NOT NULL DEFAULT 'eat',
    expires_on    TEXT,
    in_stock      INTEGER NOT NULL DEFAULT 0,
    headline      TEXT,
    detail        TEXT,
    learned_from  TEXT NOT NULL CHECK (learned_from IN ('list', 'verdict')),
    learned_at    TEXT NOT NULL
);
"""
STOPPED = ("recalled", "on_hold", "expired")


@dataclass(frozen=True)
class Entry:
    trace_code: str
    state: str
    use: str
    expires_on: str | None
    headline: dict[str, str] | None
    detail: dict[str, str] | None
    learned_from: str


class StopList:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.conn.executescript(SCHEMA)

    def replace(self, listed: dict[str, Any]) -> int:
        """Replace the list with the server's (``items`` of traceCode, state, use, expiresOn, inStock)."""
        items = [i for i in listed.get("items", []) if isinstance(i, dict) and isinstance(i.get("traceCode"), str)]
        at = now_text()
        with self.store.transaction() as conn:
            # A verdict fetched for a scan says the same with its reasons (the failed test, the recall's): it
            # stays while the list agrees with it; the list wins where the state has changed since.
            conn.execute("DELETE FROM stoplist WHERE learned_from = 'list'")
            conn.executemany(
                "INSERT INTO stoplist (trace_code, state, use, expires_on, in_stock, learned_from, learned_at) "
                "VALUES (?, ?, ?, ?, ?, 'list', ?) ON CONFLICT (trace_code) DO UPDATE SET state = excluded.state, "
                "use = excluded.use, expires_on = excluded.expires_on, in_stock = excluded.in_stock, headline = NULL, "
                "detail = NULL, learned_from = 'list', learned_at = excluded.learned_at "
                "WHERE stoplist.state <> excluded.state",
                [
                    (
                        i["traceCode"],
                        str(i.get("state") or "ok"),
                        "use" if i.get("use") == "use" else "eat",
                        i.get("expiresOn"),
                        1 if i.get("inStock") else 0,
                        at,
                    )
                    for i in items
                ],
            )
        self.store.put(stoplist_at=at, stoplist_generated_at=listed.get("generatedAt"))
        return len(items)

    def remember(self, verdict: dict[str, Any]) -> None:
        """Keep the server's verdict on one batch (fetched for a scan) in place of what the list said."""
        code = verdict.get("trace_code")
        if not isinstance(code, str):
            return
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO stoplist (trace_code, state, use, expires_on, headline, detail, learned_from, learned_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'verdict', ?) ON CONFLICT (trace_code) DO UPDATE SET "
                "state = excluded.state, use = excluded.use, expires_on = excluded.expires_on, "
                "headline = excluded.headline, detail = excluded.detail, learned_from = excluded.learned_from, "
                "learned_at = excluded.learned_at",
                (
                    code,
                    str(verdict.get("state") or "ok"),
                    "use" if verdict.get("use") == "use" else "eat",
                    verdict.get("expires_on"),
                    json.dumps(verdict.get("headline"), ensure_ascii=False),
                    json.dumps(verdict.get("detail"), ensure_ascii=False),
                    now_text(),
                ),
            )

    def get(self, trace_code: str) -> Entry | None:
        row = self.store.conn.execute(
            "SELECT trace_code, state, use, expires_on, headline, detail, learned_from FROM stoplist "
            "WHERE trace_code = ?",
            (trace_code,),
        ).fetchone()
        if row is None:
            return None
        return Entry(
            row["trace_code"],
            row["state"],
            row["use"],
            row["expires_on"],
            _words(row["headline"]),
            _words(row["detail"]),
            row["learned_from"],
        )

    def summary(self) -> dict[str, Any]:
        """How many entries by state, and as of when (None: never downloaded)."""
        counts = {
            r["state"]: r["n"]
            for r in self.store.conn.execute("SELECT state, count(*) AS n FROM stoplist GROUP BY state")
        }
        return {
            "asOf": self.store.get("stoplist_at"),
            "recalled": counts.get("recalled", 0),
            "onHold": counts.get("on_hold", 0),
            "entries": sum(counts.values()),
        }

    def check(self, trace_code: str, action: str, today: dt.date | None = None) -> Refusal | None:
        """Why ``action`` (``sell`` or ``receive``) of this batch must not go ahead, or None."""
        entry = self.get(trace_code)
        if entry is None:
            return None
        state = entry.state
        day = today or dt.date.today()
        if state not in ("recalled", "on_hold") and entry.expires_on and entry.expires_on < day.isoformat():
            state = "expired"
        if state not in STOPPED:
            return None
        key = "station_stop_sell" if action == "sell" else "station_stop_receive"
        texts = {}
        for lang in i18n.LANGS:
            t = i18n.words(lang)
            headline = (entry.headline or {}).get(lang) if state == entry.state else None
            headline = headline or t(f"verdict_{state}_{entry.use}")
            detail = (entry.detail or {}).get(lang) if state == entry.state else None
            if not detail and state == "expired" and entry.expires_on:
                detail = t(f"verdict_expires_{entry.use}", date=entry.expires_on)
            more = t("station_stop_detail", detail=detail) if detail else ""
            texts[lang] = t(key, code=trace_code, headline=headline, detail=more)
        return Refusal(state, texts["zh"], texts["en"])


def _words(stored: str | None) -> dict[str, str] | None:
    if not stored:
        return None
    value = json.loads(stored)
    return value if isinstance(value, dict) else None
