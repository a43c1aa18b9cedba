"""What a scan, a weight or a typed word means at the counter, by mode, and what gets printed.

=============  ==============================================================================================
``receive``    a scanned trace code (code, QR URL, GS1 with our code as batch) → a ``receiving`` event
``ship``       … → a ``shipping`` event (disposition in_transit) to the node ``--to`` names
``inspect``    … → an ``inspecting`` event
``commission`` a weight or count → a new batch of the chosen goods under a leased code, and its label; a
               GS1 barcode (GTIN and lot) or a drug code → a new batch carrying that identifier, and its label
``sell``       a scanned trace code sets the batch being sold from (and the goods, when none is chosen); a
               weight → a sale: a leased code for the receipt, queued as one record that the server turns
               into the receipt's batch (a child of its source) and the ``retail_selling`` event on the
               source, together; then the receipt is printed. One weight, one receipt.
=============  ==============================================================================================

A weight comes from the scale (:mod:`scanners.scales`: a serial port, or its line typed or sent in
keyboard mode) or is typed (``1.25kg``, ``2.5斤``, a bare ``0.5`` in the station's unit). Words typed at
the counter:

=====================  ====================================================================================
``猪肉``, ``zr``       choose goods by name or pinyin initials; several matches are listed as ``#1`` …
``#3``                 the third of the last list shown, or of the stall's own list
``单价 16/斤``          the price of the chosen goods, per 斤 or per kg (``16元/kg``, ``price 16``); remembered
``去皮`` / ``tare``     take the scale's current gross weight as tare; ``去皮 0.05kg`` sets it; ``去皮 0`` clears
``重打 CODE``           print a receipt or label again (``reprint CODE``)
=====================  ====================================================================================

A line that is not usable is refused at once with a reason (and the terminal bell); nothing is recorded.
Everything is recorded in the station's queue before anything is printed, and a sale is checked
(:meth:`scanners.batches.BatchBook.check_sale`) before anything is recorded. Goods recalled, on hold
(a failed test) or past their expiry are refused when scanned to sell or receive, and again when weighed
(:mod:`scanners.stoplist`): nothing is recorded or printed, the bell rings.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from scanners import printing, receipts
from scanners.batches import BatchBook, BatchInfo
from scanners.catalogue import Catalogue, Product
from scanners.keypad import Keypad, Outcome
from scanners.printout import Printed, Printout
from scanners.queue import OutOfCodes, Store
from scanners.scales import Reading, to_kilograms
from scanners.stoplist import StopList
from scanners.weighing import Weighed, Weigher
from scanners.words import Localised, both, localised
from traceability.domain import tracecode
from traceability.domain.scans import Quantity, Scan, ScanError, parse_scan

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


@dataclass
class Counter(Keypad):
    """The state of one station's counter while it runs in one mode."""

    store: Store
    mode: str
    product: str | None = None
    """The goods code sold or commissioned (``--product`` may also be a name or pinyin initials)."""
    product_name: str | None = None
    unit_price: Decimal | None = None
    price_unit: str | None = None
    print_dir: Path | None = None
    source: str | None = None
    destination: str | None = None
    """``ship``: the code of the node the goods go to (custody passes to it when it receives them)."""
    quantity: Quantity | None = None
    language: str = "both"
    default_unit: str = "kg"
    """The unit of a weight typed or sent without one."""
    weigher: Weigher = field(default_factory=lambda: Weigher(output="demand"))
    choices: list[Product] = field(default_factory=list)
    auto_print: bool = True
    """Print each receipt and label as it is made (off when a command prints a run of them itself)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.catalogue = Catalogue(self.store)
        self.book = BatchBook(self.store)
        self.stops = StopList(self.store)
        self.printout = Printout(self.store, self.print_dir)
        self.language = str(self.store.get("language", self.language))
        scale = self.store.get("scale")
        if scale:
            self.default_unit = str(scale.get("unit", self.default_unit))
        self.weigher.tare_kg = Decimal(str(self.store.get("tare_kg", "0")))
        explicit_price, explicit_unit = self.unit_price, self.price_unit
        self._explicit = (explicit_price, explicit_unit)
        if self.product:
            self._select(self._resolve(self.product), remember=explicit_price is not None or explicit_unit is not None)
        elif self.mode in ("sell", "commission") and (current := self.store.get("current_product")):
            self._select(self.catalogue.get(current) or Product(current, self.product_name or current), remember=False)
        if explicit_price is not None or explicit_unit is not None:
            self.unit_price = explicit_price if explicit_price is not None else self.unit_price
            self.price_unit = explicit_unit or self.price_unit
            if self.product:
                self.catalogue.remember(self.product, unit_price=self.unit_price, price_unit=self.price_unit)
        if self.source:
            self.source = self.source.strip()

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def station(self) -> dict[str, Any]:
        return dict(self.store.get("station") or {})

    @property
    def base_url(self) -> str:
        return str(self.store.get("public_url") or "http://localhost")

    # -- one line from the gun, the keyboard or a scale in keyboard mode ----------------------------

    def handle(self, line: str) -> Outcome:
        """Handle one line from the scanner, scale or keypad."""
        text = line.strip()
        try:
            command = self._command(text)
            if command is not None:
                return command
            if text.startswith(VOUCHER_PREFIX) and self.mode == "receive":
                return self.receive_with_voucher(text)
            try:
                scan = parse_scan(line, base_urls=[self.base_url])
            except ScanError as exc:
                if exc.code != "unrecognized":
                    return Outcome(False, both(exc.message_zh, exc.message, self.language))
                return self._not_a_scan(text)
            return self._dispatch(scan)
        except OutOfCodes:
            return self.fail("station_out_of_codes")
        except printing.PrintError as exc:
            return Outcome(False, self.say("station_print_error", reason=exc))

    # -- scans -------------------------------------------------------------------------------------

    def _dispatch(self, scan: Scan) -> Outcome:
        if scan.kind == "quantity":
            assert scan.quantity is not None
            q = scan.quantity
            if q.unit is None and self.mode in ("sell", "commission"):
                kg = to_kilograms(q.amount, self.default_unit)
                q = Quantity(q.amount, self.default_unit, kg)
            if self.mode == "sell":
                if q.kilograms is None:
                    return self.fail("station_weigh")
                return self.sell(q.kilograms)
            if self.mode == "commission":
                return self.commission(q)
            self.quantity = q
            return Outcome(
                True, self.say("station_quantity_held", quantity=f"{q.amount} {q.unit or self.default_unit}")
            )
        code = scan.trace_code
        if self.mode == "commission":
            return self._commission_identifier(scan)
        if code is None:
            return self.fail("station_no_trace_code")
        if self.mode == "sell":
            return self.sell_from(code)
        if self.mode == "receive" and (stop := self.stops.check(code, "receive")) is not None:
            return Outcome(False, both(stop.message_zh, stop.message, self.language), trace_code=code)
        step, disposition = _STEPS[self.mode]
        body = self._event(code, step, disposition)
        if self.mode == "ship" and self.destination:
            body["destination"] = {"node": self.destination}
        if self.quantity is not None:
            body["quantity"] = _quantity_json(self.quantity)
            self.quantity = None
        self.store.record([("event", body)])
        return Outcome(
            True,
            self.say("station_recorded_step", step=localised(f"station_mode_{self.mode}"), code=code),
            trace_code=code,
            recorded=1,
        )

    def receive_with_voucher(self, line: str) -> Outcome:
        """Goods from another city's ledger, with the handover voucher's QR code (卡单同行): the receipt is queued
        with the voucher, which the ledger verifies on upload (offline, the station only reads its trace code)."""
        code = voucher_trace_code(line)
        if code is None:
            return self.fail("station_bad_voucher")
        if (stop := self.stops.check(code, "receive")) is not None:
            return Outcome(False, both(stop.message_zh, stop.message, self.language), trace_code=code)
        body = self._event(code, "receiving", "active")
        if self.quantity is not None:
            body["quantity"] = _quantity_json(self.quantity)
            self.quantity = None
        body["voucher"] = line
        self.store.record([("event", body)])
        return Outcome(True, self.say("station_received_handover", code=code), trace_code=code, recorded=1)

    def sell_from(self, code: str) -> Outcome:
        """Set the batch being sold from; refused when it is stopped (recalled, held, expired) or not the goods
        chosen."""
        if (stop := self.stops.check(code, "sell")) is not None:
            if self.source == code:
                self.source = None  # stopped since it was scanned: no weight sells from it any more
            return Outcome(False, both(stop.message_zh, stop.message, self.language), trace_code=code)
        info = self.book.get(code)
        if self.product is None and info is not None and info.goods_code:
            known = self.catalogue.get(info.goods_code)
            self._select(known or Product(info.goods_code, info.product_name or info.goods_code))
        refusal = self.book.check_sale(info, self.product, self.product_name)
        if refusal is not None:
            return Outcome(False, both(refusal.message_zh, refusal.message, self.language), trace_code=code)
        self.source = code
        origin = info.origin if info is not None else None
        message = self.say(
            "station_selling_from",
            product=self.goods or "?",
            code=code,
            origin=localised("station_origin_part", origin=origin) if origin else "",
        )
        if self.unit_price is None:
            message += "\n" + self.say("station_no_price")
        return Outcome(True, message, trace_code=code)

    # -- weights -----------------------------------------------------------------------------------

    def weighed(self, weighed: Weighed) -> Outcome:
        """A weight from the scale (or a refusal such as "not stable")."""
        if not weighed.ok or weighed.kilograms is None:
            return Outcome(False, both(weighed.message_zh, weighed.message, self.language))
        kg = weighed.kilograms
        if self.mode == "sell":
            return self.sell(kg)
        q = Quantity(kg, "kg", kg)
        if self.mode == "commission":
            return self.commission(q)
        self.quantity = q
        return Outcome(True, self.say("station_quantity_held", quantity=f"{kg} kg"))

    def reading(self, reading: Reading) -> Outcome | None:
        """One frame from a scale on the serial port (continuous or demand output)."""
        weighed = self.weigher.feed(reading)
        return None if weighed is None else self.weighed(weighed)

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
        if self.product is None and "gtin" not in extra and "identifiers" not in extra:
            return self.fail("station_need_product")
        code = self.store.record([("open", self._opening(_quantity_json(quantity), **extra))], issue_code=True)
        assert code is not None
        if self.product:
            self.book.remember(BatchInfo(code, self.product, self.product_name, None))
        message = self.say("station_new_batch", product=self.goods, code=code)
        printed = self._label(code)
        return self._printed(message, code, printed, recorded=1)

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
        return self.fail("station_commission_needs")

    def _take_quantity(self, default: Quantity) -> Quantity:
        q, self.quantity = self.quantity or default, None
        return q

    def label_data(self, code: str) -> printing.LabelData:
        return printing.LabelData(
            trace_code=code,
            product_name=self.goods,
            date=dt.date.today(),
            node_name=self.station.get("node", {}).get("name", ""),
            base_url=self.base_url,
        )

    def _label(self, code: str) -> list[Printed]:
        if not self._prints():
            return []
        return self.printout.labels([self.label_data(code)])

    def _prints(self) -> bool:
        if not self.auto_print:
            return False
        return self.print_dir is not None or any(
            not self.printout.printer(role).is_files for role in ("receipt", "label")
        )

    # -- selling -----------------------------------------------------------------------------------

    def sell(self, weight: Decimal) -> Outcome:
        if self.source is None:
            return self.fail("station_need_source")
        if (stop := self.stops.check(self.source, "sell")) is not None:
            return Outcome(False, both(stop.message_zh, stop.message, self.language), trace_code=self.source)
        info = self.book.get(self.source)
        if self.product is None and info is not None and info.goods_code:
            self._select(self.catalogue.get(info.goods_code) or Product(info.goods_code, info.product_name or ""))
        if self.product is None:
            return self.fail("station_need_product")
        refusal = self.book.check_sale(info, self.product, self.product_name)
        if refusal is not None:
            return Outcome(False, both(refusal.message_zh, refusal.message, self.language))
        price_unit = self.price_unit or "kg"
        amount = None
        commercial: dict[str, Any] = {}
        if self.unit_price is not None:
            amount = receipts.sale_amount(weight, self.unit_price, price_unit)
            # The ledger's quantity is in kilograms, so its unit price is per kilogram (16 元/斤 is 32 元/kg).
            per_kg = self.unit_price * 2 if price_unit == "斤" else self.unit_price
            commercial = {"unit_price": str(per_kg), "amount": str(amount), "currency": "CNY"}
        sale: dict[str, Any] = {
            "eventID": str(uuid.uuid4()),
            "traceCode": "{code}",
            "source": self.source,
            "quantity": {"value": str(weight), "uom": "KGM"},
            "eventTime": _now(),
        }
        if commercial:
            sale["commercial"] = commercial
        code = self.store.record([("sale", sale)], issue_code=True)
        assert code is not None
        self.catalogue.remember(self.product, used=True)
        message = self.say(
            "station_sold",
            product=self.goods,
            weight=Localised(receipts.weight_text(weight, price_unit), receipts.weight_text(weight)),
            amount=localised("station_amount_part", amount=f"{amount:.2f}") if amount is not None else "",
            code=code,
        )
        printed = self._receipt(code, weight, amount, info)
        return self._printed(message, code, printed, recorded=2)

    def receipt_data(
        self, code: str, weight: Decimal, amount: Decimal | None, info: BatchInfo | None
    ) -> receipts.ReceiptData:
        station = self.station
        operator = station.get("operator") or {}
        return receipts.ReceiptData(
            market_name=station.get("node", {}).get("name", ""),
            stall_number=operator.get("stallNo") or station.get("device", {}).get("name", ""),
            stall_name=operator.get("name") or "",
            item=self.goods,
            origin=info.origin if info is not None else None,
            weight_kg=weight,
            unit_price=self.unit_price,
            sold_at=dt.datetime.now().astimezone(),
            trace_code=code,
            base_url=self.base_url,
            price_unit="斤" if self.price_unit == "斤" else "kg",
            total=amount,
        )

    def _receipt(self, code: str, weight: Decimal, amount: Decimal | None, info: BatchInfo | None) -> list[Printed]:
        if not self._prints():
            return []
        return [self.printout.receipt(self.receipt_data(code, weight, amount, info))]


def _quantity_json(q: Quantity) -> dict[str, Any]:
    if q.kilograms is not None or q.unit is None:
        return {"value": str(q.kilograms if q.kilograms is not None else q.amount), "uom": "KGM"}
    return {"value": str(q.amount), "uom": _COUNT_UOM.get(q.unit, "H87")}


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


VOUCHER_PREFIX = "TRV1:"
"""A handover voucher's QR code: ``TRV1:`` and base64url of its deflated JSON (docs/federation.md)."""


def voucher_trace_code(line: str) -> str | None:
    """The trace code a handover voucher's QR line carries, or None when it is not one."""
    body = line[len(VOUCHER_PREFIX) :]
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), 4 * 1024 * 1024)
        code = json.loads(raw).get("trace_code") if not inflater.unconsumed_tail else None
    except (ValueError, zlib.error, AttributeError):
        return None
    return code if isinstance(code, str) and tracecode.is_valid(code) else None
