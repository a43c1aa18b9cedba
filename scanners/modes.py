"""What a scan means at the counter, by mode, and what gets printed.

=============  ==============================================================================================
``receive``    a scanned trace code (code, QR URL, GS1 with our code as batch) → a ``receiving`` event
``ship``       … → a ``shipping`` event (disposition in_transit)
``inspect``    … → an ``inspecting`` event
``commission`` a weight or count → a new batch under a leased code, and its label; a GS1 barcode (GTIN and
               lot) or a drug code → a new batch carrying that identifier, and its label
``sell``       a scanned trace code sets the batch being sold from; a weight (the scale's line) → a sale:
               a leased code for the receipt, opened as a batch that names its source, a ``retail_selling``
               event on the source batch, and the receipt. One line from the scale, one receipt.
=============  ==============================================================================================

A weight or count typed or sent by a scale before a scan goes with that scan. A line that is not
usable is refused at once with a reason (and the terminal bell); nothing is recorded for it.
Everything is recorded in the station's queue before anything is printed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from scanners import printing
from scanners.queue import OutOfCodes, Store
from traceability.domain.scans import Quantity, Scan, ScanError, parse_scan
from traceability.i18n import say

MODES = ("receive", "ship", "inspect", "commission", "sell")
_STEPS = {"receive": ("receiving", "active"), "ship": ("shipping", "in_transit"), "inspect": ("inspecting", None)}
_COUNT_UOM = {
    "件": "H87",
    "个": "EA",
    "只": "EA",
    "头": "HEA",
    "箱": "XCT",
    "盒": "XBX",
    "袋": "XBG",
    "瓶": "XBO",
    "包": "XPK",
    "筐": "XCR",
    "把": "EA",
    "捆": "EA",
}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    trace_code: str | None = None
    printed: list[Path] = field(default_factory=list)
    recorded: int = 0


@dataclass
class Counter:
    """The state of one station's counter while it runs in one mode."""

    store: Store
    mode: str
    product: str | None = None
    product_name: str | None = None
    unit_price: Decimal | None = None
    price_unit: str = "kg"
    print_dir: Path | None = None
    source: str | None = None
    quantity: Quantity | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if self.mode in ("sell", "commission") and not self.product:
            raise ValueError(f"{self.mode} mode needs --product GOODS_CODE (what is sold or commissioned)")

    @property
    def station(self) -> dict[str, Any]:
        return dict(self.store.get("station") or {})

    @property
    def base_url(self) -> str:
        return str(self.store.get("public_url") or "http://localhost")

    def handle(self, line: str) -> Outcome:
        """Handle one line from the scanner, scale or keypad."""
        try:
            scan = parse_scan(line, base_urls=[self.base_url])
        except ScanError as exc:
            return Outcome(False, f"{exc.message_zh} · {exc.message}")
        try:
            return self._dispatch(scan)
        except OutOfCodes as exc:
            return Outcome(False, say("station_no_codes", reason=exc))
        except printing.PrintError as exc:
            return Outcome(False, say("station_print_failed", reason=exc))

    def _dispatch(self, scan: Scan) -> Outcome:
        if scan.kind == "quantity":
            assert scan.quantity is not None
            if self.mode == "sell":
                return self.sell(scan.quantity)
            if self.mode == "commission":
                return self.commission(scan.quantity)
            self.quantity = scan.quantity
            return Outcome(True, say("station_quantity", amount=scan.quantity.amount, unit=scan.quantity.unit or "kg"))
        code = scan.trace_code
        if self.mode == "commission":
            return self._commission_identifier(scan)
        if code is None:
            return Outcome(False, say("station_no_trace_code"))
        if self.mode == "sell":
            self.source = code
            return Outcome(True, say("station_selling", code=code), trace_code=code)
        step, disposition = _STEPS[self.mode]
        body = self._event(code, step, disposition)
        if self.quantity is not None:
            body["quantity"] = _quantity_json(self.quantity)
            self.quantity = None
        self.store.record([("event", body)])
        return Outcome(True, f"✓ {step} {code}", trace_code=code, recorded=1)

    # -- events ------------------------------------------------------------------------------------

    def _event(self, code: str, step: str, disposition: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"eventID": str(uuid.uuid4()), "traceCode": code, "bizStep": step, "eventTime": _now()}
        if disposition:
            body["disposition"] = disposition
        return body

    def _opening(self, quantity: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "eventID": str(uuid.uuid4()),
            "traceCode": "{code}",
            "quantity": quantity,
            "eventTime": _now(),
        }
        if "gtin" not in extra:
            body["product"] = self.product
        body.update(extra)
        return body

    # -- commissioning -----------------------------------------------------------------------------

    def commission(self, quantity: Quantity, **extra: Any) -> Outcome:
        code = self.store.record([("open", self._opening(_quantity_json(quantity), **extra))], issue_code=True)
        assert code is not None
        printed = self._label(code)
        return Outcome(True, say("station_new_batch", code=code), trace_code=code, printed=printed, recorded=1)

    def _commission_identifier(self, scan: Scan) -> Outcome:
        if scan.drug_code is not None and scan.kind == "drug_code":
            ident = {"scheme": "drug_code", "value": scan.drug_code.code}
            return self.commission(self._take_quantity(Quantity(Decimal(1), "件")), identifiers=[ident])
        if scan.gs1 is not None and scan.gs1.gtin is not None and scan.trace_code is None:
            extra: dict[str, Any] = {"gtin": scan.gs1.gtin}
            if scan.gs1.batch:
                extra["identifiers"] = [{"scheme": "gs1", "gtin": scan.gs1.gtin, "lot": scan.gs1.batch}]
            if scan.gs1.net_weight_kg is not None:
                q = Quantity(scan.gs1.net_weight_kg, "kg", scan.gs1.net_weight_kg)
            else:
                q = self._take_quantity(Quantity(Decimal(1), "件"))
            return self.commission(q, **extra)
        return Outcome(False, say("station_commission_needs"))

    def _take_quantity(self, default: Quantity) -> Quantity:
        q, self.quantity = self.quantity or default, None
        return q

    def _label(self, code: str) -> list[Path]:
        if self.print_dir is None:
            return []
        label = printing.LabelData(
            trace_code=code,
            product_name=self.product_name or self.product or "",
            date=dt.date.today(),
            node_name=self.station.get("node", {}).get("name", ""),
            base_url=self.base_url,
        )
        path = self.print_dir / f"label-{code}.png"
        _write(path, printing.batch_label_png(label))
        return [path]

    # -- selling -----------------------------------------------------------------------------------

    def sell(self, quantity: Quantity) -> Outcome:
        if quantity.kilograms is None:
            return Outcome(False, say("station_weigh"))
        weight = quantity.kilograms
        amount = None
        commercial: dict[str, Any] = {}
        if self.unit_price is not None:
            per_unit = weight * 2 if self.price_unit == "斤" else weight
            amount = (per_unit * self.unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            commercial = {"unit_price": str(self.unit_price), "amount": str(amount), "currency": "CNY"}
        attrs = {"soldFrom": self.source} if self.source else None
        rows: list[tuple[str, dict[str, Any]]] = [
            ("open", self._opening(_quantity_json(quantity), **({"attributes": attrs} if attrs else {})))
        ]
        if self.source:
            sale = self._event(self.source, "retail_selling", "retail_sold")
            sale["quantity"] = _quantity_json(quantity)
            sale["attributes"] = {"receiptCode": "{code}"}
            if commercial:
                sale["commercial"] = commercial
            rows.append(("event", sale))
        code = self.store.record(rows, issue_code=True)
        assert code is not None
        printed = self._receipt(code, weight, amount)
        sold = say("station_sold", weight=weight, code=code)
        return Outcome(True, sold, trace_code=code, printed=printed, recorded=len(rows))

    def _receipt(self, code: str, weight: Decimal, amount: Decimal | None) -> list[Path]:
        if self.print_dir is None:
            return []
        info = self.station
        operator = info.get("operator") or {}
        receipt = printing.ReceiptData(
            market_name=info.get("node", {}).get("name", ""),
            stall_number=operator.get("stallNo") or operator.get("name") or info.get("device", {}).get("name", ""),
            item=self.product_name or self.product or "",
            weight_kg=weight,
            unit_price=self.unit_price or Decimal(0),
            sold_at=dt.datetime.now().astimezone(),
            trace_code=code,
            base_url=self.base_url,
            price_unit="斤" if self.price_unit == "斤" else "kg",
            total=amount,
        )
        path = self.print_dir / f"receipt-{code}.png"
        _write(path, printing.receipt_png(receipt))
        return [path]


def _quantity_json(q: Quantity) -> dict[str, Any]:
    if q.kilograms is not None or q.unit is None:
        return {"value": str(q.kilograms if q.kilograms is not None else q.amount), "uom": "KGM"}
    return {"value": str(q.amount), "uom": _COUNT_UOM.get(q.unit, "H87")}


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
