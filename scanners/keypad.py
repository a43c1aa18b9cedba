"""Words typed at the counter: goods by name or initials, ``#N``, prices, tare, reprints, and scale lines.

:class:`Keypad` is the part of :class:`scanners.modes.Counter` that reads what a vendor types that is not a
scan: it finds goods in the station's catalogue (:mod:`scanners.catalogue`), remembers prices, sets the
tare, prints again, and takes a scale's line typed or sent in keyboard mode as one weighing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from scanners.batches import BatchBook
from scanners.catalogue import Catalogue, Product
from scanners.printout import Printed, Printout
from scanners.queue import Store
from scanners.scales import ScaleError, parse_frame, to_kilograms
from scanners.weighing import Weighed, Weigher
from scanners.words import both, say

_PRICE = re.compile(
    r"(?:单价|价格|price)?\s*(?P<price>[0-9]{1,6}(?:\.[0-9]{1,2})?)\s*(?:元|yuan)?\s*(?:/\s*(?P<unit>斤|kg|公斤|千克))?",
    re.IGNORECASE,
)
_PRICE_WORD = re.compile(r"(单价|价格|price)|.*元|.*/\s*(斤|kg|公斤|千克)$", re.IGNORECASE)
_TARE = re.compile(r"(?:去皮|tare)\s*(?P<amount>[0-9.]+)?\s*(?P<unit>kg|g|斤|两|公斤|克)?", re.IGNORECASE)
_CHOICE = re.compile(r"[#＃](?P<n>[0-9]{1,3})")
_REPRINT = re.compile(r"(?:重打|补打|reprint)\s*(?P<code>[0-9 \-]{20,30})?", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z\u3400-\u9fff][A-Za-z0-9\u3400-\u9fff（）() ·\-]*")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    trace_code: str | None = None
    printed: list[str] = field(default_factory=list)
    recorded: int = 0
    lines: list[str] = field(default_factory=list)
    """More to show under the message (a list of goods to choose from)."""


class Keypad:
    """What a vendor types that is not a scan. Mixed into :class:`scanners.modes.Counter`."""

    store: Store
    mode: str
    product: str | None
    product_name: str | None
    unit_price: Decimal | None
    price_unit: str | None
    source: str | None
    language: str
    default_unit: str
    weigher: Weigher
    choices: list[Product]
    catalogue: Catalogue
    book: BatchBook
    printout: Printout
    _explicit: tuple[Decimal | None, str | None]

    def weighed(self, weighed: Weighed) -> Outcome:
        raise NotImplementedError

    def say(self, key: str, **fields: Any) -> str:
        return say(key, self.language, **fields)

    def fail(self, key: str, **fields: Any) -> Outcome:
        return Outcome(False, self.say(key, **fields))

    @property
    def goods(self) -> str:
        return self.product_name or self.product or ""

    def _resolve(self, wanted: str) -> Product:
        """A goods code, or a name or initials that find exactly one product (else ValueError)."""
        found = self.catalogue.get(wanted)
        if found is not None:
            return found
        if re.fullmatch(r"[0-9]{4,20}", wanted):
            return Product(wanted, self.product_name or wanted)
        matches = self.catalogue.search(wanted)
        if len(matches) == 1 or (matches and matches[0].name == wanted):
            return matches[0]
        listing = "；".join(p.label for p in matches[:5]) or "—"
        raise ValueError(self.say("station_product_ambiguous", query=wanted, listing=listing))

    def _select(self, product: Product, *, remember: bool = True) -> None:
        self.product = product.goods_code
        if not self.product_name or product.name != product.goods_code:
            self.product_name = product.name if product.name != product.goods_code else self.product_name
        self.unit_price = product.unit_price
        self.price_unit = product.price_unit
        price, unit = getattr(self, "_explicit", (None, None))
        if price is not None or unit is not None:
            # A price given for this run (--price) holds for whatever goods the run sells, and is remembered.
            self.unit_price = price if price is not None else self.unit_price
            self.price_unit = unit or self.price_unit
            self.catalogue.remember(product.goods_code, unit_price=price, price_unit=unit)
        if remember:
            known = self.catalogue.get(product.goods_code)
            named = self.product_name if known is None or known.name == product.goods_code else None
            self.catalogue.remember(product.goods_code, name=named)
            self.store.put(current_product=product.goods_code)

    def _not_a_scan(self, text: str) -> Outcome:
        try:
            reading = parse_frame(text, "auto", self.default_unit)
        except ScaleError as exc:
            if _NAME.fullmatch(text) and exc.code == "unreadable":
                return self.choose(text)
            if exc.code != "unreadable":
                return Outcome(False, both(exc.message_zh, exc.message, self.language))
            return self.fail("station_unrecognised")
        # A line typed or sent by a scale in keyboard mode is one deliberate weighing.
        self.weigher.output = "demand"
        weighed = self.weigher.feed(reading)
        assert weighed is not None
        return self.weighed(weighed)

    def _command(self, text: str) -> Outcome | None:
        if m := _CHOICE.fullmatch(text):
            return self.choose_number(int(m["n"]))
        if m := _TARE.fullmatch(text):
            return self.tare(m["amount"], m["unit"])
        if m := _REPRINT.fullmatch(text):
            return self.reprint(m["code"])
        if _PRICE_WORD.match(text) and (m := _PRICE.fullmatch(text)):
            return self.set_price(Decimal(m["price"]), m["unit"])
        return None

    # -- goods, prices, tare -----------------------------------------------------------------------

    def choose(self, query: str) -> Outcome:
        matches = self.catalogue.search(query)
        if not matches:
            synced = self.store.get("products_synced_at") or self.say("station_status_never")
            return self.fail("station_product_not_found", query=query, count=self.catalogue.count(), synced=synced)
        if len(matches) == 1 or matches[0].name == query:
            return self._choose(matches[0])
        self.choices = matches
        lines = [f"  #{i} {p.name}（{p.goods_code}）" for i, p in enumerate(matches, 1)]
        return Outcome(True, self.say("station_product_choose_one"), lines=lines)

    def choose_number(self, n: int) -> Outcome:
        product = self.choices[n - 1] if 0 < n <= len(self.choices) else self.catalogue.by_position(n)
        self.choices = []
        if product is None:
            synced = self.store.get("products_synced_at") or self.say("station_status_never")
            return self.fail("station_product_not_found", query=f"#{n}", count=self.catalogue.count(), synced=synced)
        return self._choose(product)

    def _choose(self, product: Product) -> Outcome:
        self._select(product)
        self.choices = []
        message = self.say("station_product_chosen", label=(self.catalogue.get(product.goods_code) or product).label)
        if self.mode == "sell" and self.source is not None:
            info = self.book.get(self.source)
            if info is not None and info.goods_code not in (None, product.goods_code):
                self.source = None
                message = self.say("station_product_changed_source_cleared", product=product.name)
        if self.mode == "sell" and self.unit_price is None:
            message += "\n" + self.say("station_no_price")
        return Outcome(True, message)

    def set_price(self, price: Decimal, unit: str | None) -> Outcome:
        if self.product is None:
            return self.fail("station_need_product")
        self.unit_price = price
        if unit:
            self.price_unit = "斤" if unit == "斤" else "kg"
        self.price_unit = self.price_unit or "kg"
        self.catalogue.remember(self.product, unit_price=price, price_unit=self.price_unit)
        return Outcome(
            True, self.say("station_price_set", price=f"{price:.2f}", unit=self.price_unit, product=self.goods)
        )

    def tare(self, amount: str | None, unit: str | None) -> Outcome:
        try:
            if amount is None:
                kg = self.weigher.set_tare()
            else:
                kg = self.weigher.set_tare(to_kilograms(Decimal(amount), unit or self.default_unit))
        except ScaleError as exc:
            return Outcome(False, both(exc.message_zh, exc.message, self.language))
        except InvalidOperation:
            return self.fail("station_unrecognised")
        self.store.put(tare_kg=str(kg))
        return Outcome(True, self.say("station_tare_cleared") if kg == 0 else self.say("station_tare_set", tare=kg))

    def _printed(self, message: str, code: str, printed: list[Printed], recorded: int) -> Outcome:
        lines = []
        for p in printed:
            if p.ok:
                lines.append(self.say("station_printed_to", where=p.where))
            else:
                lines.append(self.say("station_print_failed", error=p.error, code=code))
        ok_prints = [p.where for p in printed if p.ok]
        return Outcome(True, message, trace_code=code, printed=ok_prints, recorded=recorded, lines=lines)

    # -- reprints ----------------------------------------------------------------------------------

    def reprint(self, code: str | None) -> Outcome:
        wanted = re.sub(r"[ \-]", "", code) if code else None
        if wanted is None:
            row = self.store.conn.execute("SELECT trace_code FROM prints ORDER BY id DESC LIMIT 1").fetchone()
            wanted = row["trace_code"] if row else None
        done = self.printout.reprint(wanted) if wanted else None
        if done is None:
            return self.fail("station_nothing_to_reprint", code=wanted or "")
        _kind, printed = done
        return self._printed("", wanted or "", [printed], recorded=0)
