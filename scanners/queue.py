"""The station's durable local state: settings, leased code blocks, and the outbox of scans.

One SQLite file in WAL mode with ``synchronous = FULL``: a transaction that returned has reached the
disk, so a scan acknowledged to the person at the counter survives a crash or a power cut. Every
scan is written here before anything else happens (before printing, before any upload), and issuing
a code from a block and queuing the events that use it are one transaction, so a code is never
printed without its records, nor issued twice.

Outbox rows are uploaded in ``seq`` order and marked ``sent`` only after the server's 2xx; each
carries the event id that makes a resend harmless, so a crash between the server's commit and
our mark only means the next upload is a replay, which the server answers with the original receipt.
A row the server refuses on its content is kept, marked ``refused`` with the server's message, and
reported by ``trace-scan status``; it is never silently dropped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from traceability.domain import tracecode

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    block_no      INTEGER PRIMARY KEY,
    area_code     TEXT NOT NULL,
    first_serial  INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    next_index    INTEGER NOT NULL DEFAULT 0,
    leased_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'event', 'sale')),
    event_id    TEXT NOT NULL UNIQUE,
    trace_code  TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     TEXT,
    receipt     TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state_idx ON outbox (state, seq);
"""
OUTBOX_INDEX = "CREATE INDEX IF NOT EXISTS outbox_state_idx ON outbox (state, seq)"


class OutOfCodes(RuntimeError):
    """No leased trace code is left; the station must reach the server to lease more."""


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    kind: str
    event_id: str
    trace_code: str
    body: dict[str, Any]
    created_at: str
    attempts: int


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """The station's SQLite file. One per station; safe to open from several processes (WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.executescript(SCHEMA)
        self._admit_sales()

    def _admit_sales(self) -> None:
        """A queue made before sales were one record (kind ``sale``) is rebuilt to admit them, rows kept as
        they are: sales queued the old way (an opening naming its source, then the sale) upload as before."""
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
        if row is None or "'sale'" in row["sql"]:
            return
        table = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS outbox") : SCHEMA.index("CREATE INDEX")]
        with self.transaction() as conn:
            conn.execute("ALTER TABLE outbox RENAME TO outbox_before_sales")
            conn.execute(table.strip().rstrip(";"))
            conn.execute("INSERT INTO outbox SELECT * FROM outbox_before_sales")
            conn.execute("DROP TABLE outbox_before_sales")
            conn.execute(OUTBOX_INDEX)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: takes the write lock up front so two processes never interleave."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- settings ----------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def put(self, **values: Any) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
            )

    # -- code blocks -------------------------------------------------------------------------------

    def add_blocks(self, blocks: list[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO blocks (block_no, area_code, first_serial, size, leased_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(b["blockNo"], b["areaCode"], b["firstSerial"], b["size"], b["leasedAt"]) for b in blocks],
            )

    def codes_left(self) -> int:
        value = self.conn.execute("SELECT coalesce(sum(size - next_index), 0) FROM blocks").fetchone()[0]
        return int(value)

    def _issue(self, conn: sqlite3.Connection) -> str:
        row = conn.execute(
            "SELECT block_no, area_code, first_serial, next_index FROM blocks "
            "WHERE next_index < size ORDER BY block_no LIMIT 1"
        ).fetchone()
        if row is None:
            raise OutOfCodes("no leased trace codes left: connect to the network so the station can lease more")
        conn.execute("UPDATE blocks SET next_index = next_index + 1 WHERE block_no = ?", (row["block_no"],))
        return tracecode.make(row["area_code"], row["first_serial"] + row["next_index"])

    # -- outbox ------------------------------------------------------------------------------------

    def record(self, rows: list[tuple[str, dict[str, Any]]], *, issue_code: bool = False) -> str | None:
        """Queue rows of (kind, body) in one transaction; with ``issue_code``, issue a leased code first.

        The issued code (if any) replaces ``"{code}"`` wherever a body's ``traceCode``, or a value in
        its ``attributes``, holds that placeholder. Returns the code.
        """
        with self.transaction() as conn:
            code = self._issue(conn) if issue_code else None
            created = now_text()
            for kind, body in rows:
                if code is not None:
                    body = _fill(body, code)
                conn.execute(
                    "INSERT INTO outbox (kind, event_id, trace_code, body, created_at) VALUES (?, ?, ?, ?, ?)",
                    (kind, body["eventID"], body["traceCode"], json.dumps(body, ensure_ascii=False), created),
                )
        return code

    def pending(self, limit: int) -> list[Pending]:
        rows = self.conn.execute(
            "SELECT seq, kind, event_id, trace_code, body, created_at, attempts FROM outbox "
            "WHERE state = 'pending' ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Pending(
                r["seq"],
                r["kind"],
                r["event_id"],
                r["trace_code"],
                json.loads(r["body"]),
                r["created_at"],
                r["attempts"],
            )
            for r in rows
        ]

    def mark_sent(self, receipts: dict[int, dict[str, Any]]) -> None:
        at = now_text()
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, receipt = ?, attempts = attempts + 1 "
                "WHERE seq = ? AND state = 'pending'",
                [(at, json.dumps(r), seq) for seq, r in receipts.items()],
            )
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('last_sync_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(at),),
            )

    def mark_refused(self, seq: int, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'refused', error = ?, attempts = attempts + 1 "
                "WHERE seq = ? AND state = 'pending'",
                (error, seq),
            )

    def status(self) -> dict[str, Any]:
        counts = {
            r["state"]: r["n"] for r in self.conn.execute("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        }
        oldest = self.conn.execute("SELECT min(created_at) FROM outbox WHERE state = 'pending'").fetchone()[0]
        refused = [
            dict(r)
            for r in self.conn.execute(
                "SELECT seq, kind, trace_code, error FROM outbox WHERE state = 'refused' ORDER BY seq DESC LIMIT 5"
            )
        ]
        return {
            "pending": counts.get("pending", 0),
            "sent": counts.get("sent", 0),
            "refused": counts.get("refused", 0),
            "oldestPending": oldest,
            "lastSync": self.get("last_sync_at"),
            "lastError": self.get("last_error"),
            "codesLeft": self.codes_left(),
            "recentRefusals": refused,
        }


def _fill(body: dict[str, Any], code: str) -> dict[str, Any]:
    out = dict(body)
    if out.get("traceCode") == "{code}":
        out["traceCode"] = code
    if isinstance(out.get("attributes"), dict):
        out["attributes"] = {k: code if v == "{code}" else v for k, v in out["attributes"].items()}
    return out
