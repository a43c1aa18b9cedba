"""Where the station's receipts and labels go, and the memory of each one for a reprint.

Every receipt and label is recorded here (its data, as printed) after the sale or batch it belongs to is
queued and before anything is sent to a printer; a printer that is off or out of paper leaves the
printout ``failed`` with the reason, and ``trace-scan reprint CODE`` prints it again exactly. With no
printer set (``trace-scan printer set``), printouts are 1-bit PNGs in the print directory.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from scanners import printers, printing, receipts
from scanners.printers import PrinterConfig
from scanners.printing import LabelData, PrintError
from scanners.queue import Store, now_text
from scanners.receipts import ReceiptData

SCHEMA = """
CREATE TABLE IF NOT EXISTS prints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_code  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('receipt', 'label')),
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'printed', 'failed')),
    copies      INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS prints_code_idx ON prints (trace_code, id);
"""

Kind = Literal["receipt", "label"]


@dataclass(frozen=True)
class Printed:
    ok: bool
    where: str
    """A file written, or the printer's connection."""
    error: str | None = None


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((key, raw),) = value.items()
        if key == "$decimal":
            return Decimal(raw)
        if key == "$datetime":
            return dt.datetime.fromisoformat(raw)
        if key == "$date":
            return dt.date.fromisoformat(raw)
    return value


def _dump(data: ReceiptData | LabelData) -> str:
    return json.dumps({k: _encode(v) for k, v in asdict(data).items()}, ensure_ascii=False)


def _load(kind: str, text: str) -> ReceiptData | LabelData:
    fields = {k: _decode(v) for k, v in json.loads(text).items()}
    return ReceiptData(**fields) if kind == "receipt" else LabelData(**fields)


class Printout:
    def __init__(self, store: Store, print_dir: Path | None) -> None:
        self.store = store
        self.print_dir = print_dir
        store.conn.executescript(SCHEMA)

    # -- printers ----------------------------------------------------------------------------------

    def printer(self, role: Kind) -> PrinterConfig:
        saved = self.store.get(f"printer_{role}")
        if saved:
            return PrinterConfig.from_json(saved)
        return PrinterConfig(role, connection=f"dir:{self.print_dir}" if self.print_dir else "dir:")

    def set_printer(self, config: PrinterConfig) -> None:
        self.store.put(**{f"printer_{config.role}": config.as_json()})

    # -- printing ----------------------------------------------------------------------------------

    def record(self, kind: Kind, data: ReceiptData | LabelData) -> int:
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO prints (trace_code, kind, data, created_at) VALUES (?, ?, ?, ?)",
                (data.trace_code, kind, _dump(data), now_text()),
            )
        return int(cur.lastrowid or 0)

    def _mark(self, print_id: int, printed: Printed) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE prints SET state = ?, error = ?, copies = copies + ? WHERE id = ?",
                ("printed" if printed.ok else "failed", printed.error, 1 if printed.ok else 0, print_id),
            )

    def receipt(self, data: ReceiptData) -> Printed:
        print_id = self.record("receipt", data)
        printed = self._send_receipt(data)
        self._mark(print_id, printed)
        return printed

    def labels(self, labels: list[LabelData]) -> list[Printed]:
        ids = [self.record("label", label) for label in labels]
        done = self._send_labels(labels)
        for print_id, printed in zip(ids, done, strict=True):
            self._mark(print_id, printed)
        return done

    def _send_receipt(self, data: ReceiptData) -> Printed:
        config = self.printer("receipt")
        try:
            if config.is_files:
                path = self._dir(config) / f"receipt-{data.trace_code}.png"
                _write(path, receipts.receipt_png(data, width_px=config.width_dots))
                return Printed(True, str(path))
            printers.send(config, printers.receipt_job(data, config))
            return Printed(True, config.connection)
        except (PrintError, OSError) as exc:
            return Printed(False, config.connection, str(exc))

    def _send_labels(self, labels: list[LabelData]) -> list[Printed]:
        config = self.printer("label")
        try:
            if config.is_files:
                done = []
                for label in labels:
                    path = self._dir(config) / f"label-{label.trace_code}.png"
                    _write(path, printing.batch_label_png(label))
                    done.append(Printed(True, str(path)))
                return done
            printers.send(config, printers.label_job(labels, config))
            return [Printed(True, config.connection) for _ in labels]
        except (PrintError, OSError) as exc:
            return [Printed(False, config.connection, str(exc)) for _ in labels]

    def _dir(self, config: PrinterConfig) -> Path:
        target = config.connection.removeprefix("dir:")
        if target:
            return Path(target).expanduser()
        if self.print_dir is None:
            raise PrintError("no printer and no print directory set")
        return self.print_dir

    # -- reprints ----------------------------------------------------------------------------------

    def last(self, trace_code: str) -> tuple[Kind, ReceiptData | LabelData] | None:
        row = self.store.conn.execute(
            "SELECT kind, data FROM prints WHERE trace_code = ? ORDER BY id DESC LIMIT 1", (trace_code,)
        ).fetchone()
        if row is None:
            return None
        kind: Kind = "receipt" if row["kind"] == "receipt" else "label"
        return kind, _load(row["kind"], row["data"])

    def failed(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = self.store.conn.execute(
            "SELECT trace_code, kind, created_at, error FROM prints p WHERE state = 'failed' AND NOT EXISTS "
            "(SELECT 1 FROM prints q WHERE q.trace_code = p.trace_code AND q.kind = p.kind AND q.id > p.id "
            "AND q.state = 'printed') ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    def reprint(self, trace_code: str) -> tuple[Kind, Printed] | None:
        found = self.last(trace_code)
        if found is None:
            return None
        kind, data = found
        if isinstance(data, ReceiptData):
            return kind, self.receipt(data)
        return kind, self.labels([data])[0]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
