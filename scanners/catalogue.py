"""The goods a stall sells: the registry's products kept on the station, found by name or pinyin initials.

The station keeps a copy of the registry's products (refreshed from ``GET /api/v1/stations/products``
whenever it is online), so a vendor can pick goods by typing 猪肉 or ``zr`` with the network down. What
the stall has chosen before is remembered, with its last price and whether it is priced per 斤 or per kg,
and comes first in every search: the stall's own list, numbered ``#1``, ``#2`` … in the order first sold.
Ranking is :func:`traceability.domain.pinyin.score`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from scanners.queue import Store, now_text
from traceability.domain import pinyin

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    goods_code  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_en     TEXT,
    category    TEXT,
    gtin        TEXT,
    keys        TEXT NOT NULL,
    synced_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stall_products (
    goods_code  TEXT PRIMARY KEY,
    name        TEXT,
    position    INTEGER NOT NULL,
    unit_price  TEXT,
    price_unit  TEXT NOT NULL DEFAULT 'kg' CHECK (price_unit IN ('kg', '斤')),
    uses        INTEGER NOT NULL DEFAULT 0,
    last_used   TEXT NOT NULL
);
"""

PRICE_UNITS = ("kg", "斤")


@dataclass(frozen=True)
class Product:
    goods_code: str
    name: str
    name_en: str | None = None
    category: str | None = None
    gtin: str | None = None
    position: int | None = None
    """The number in the stall's own list (``#3``), or None when the stall has never sold it."""
    unit_price: Decimal | None = None
    price_unit: str = "kg"

    @property
    def label(self) -> str:
        number = f"#{self.position} " if self.position is not None else ""
        price = f"  {self.unit_price:.2f} 元/{self.price_unit}" if self.unit_price is not None else ""
        return f"{number}{self.name}（{self.goods_code}）{price}"


class Catalogue:
    """Products and the stall's memory of them, in the station's SQLite file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.conn.executescript(SCHEMA)

    # -- the registry's copy -----------------------------------------------------------------------

    def replace_all(self, items: list[dict[str, Any]]) -> int:
        """Store the registry's product list as just fetched (one transaction). Returns how many."""
        at = now_text()
        rows = []
        for item in items:
            name = str(item["name"])
            k = pinyin.keys(name)
            rows.append(
                (
                    str(item["goodsCode"]),
                    name,
                    item.get("nameEn"),
                    item.get("category"),
                    item.get("gtin"),
                    json.dumps({"initials": k.initials, "spelled": k.spelled}),
                    at,
                )
            )
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM products")
            conn.executemany(
                "INSERT INTO products (goods_code, name, name_en, category, gtin, keys, synced_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('products_synced_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(at),),
            )
        return len(rows)

    def count(self) -> int:
        return int(self.store.conn.execute("SELECT count(*) FROM products").fetchone()[0])

    # -- lookups -----------------------------------------------------------------------------------

    _SELECT = (
        "SELECT p.goods_code, p.name, p.name_en, p.category, p.gtin, p.keys, s.position, s.unit_price, "
        "coalesce(s.price_unit, 'kg') AS price_unit, coalesce(s.uses, 0) AS uses "
        "FROM products p LEFT JOIN stall_products s USING (goods_code)"
    )

    def _product(self, row: Any) -> Product:
        return Product(
            goods_code=row["goods_code"],
            name=row["name"],
            name_en=row["name_en"],
            category=row["category"],
            gtin=row["gtin"],
            position=row["position"],
            unit_price=Decimal(row["unit_price"]) if row["unit_price"] is not None else None,
            price_unit=row["price_unit"],
        )

    def get(self, goods_code: str) -> Product | None:
        row = self.store.conn.execute(self._SELECT + " WHERE p.goods_code = ?", (goods_code,)).fetchone()
        if row is not None:
            return self._product(row)
        # Chosen by goods code before the registry's list reached the station: what the stall knows of it.
        own = self.store.conn.execute("SELECT * FROM stall_products WHERE goods_code = ?", (goods_code,)).fetchone()
        if own is None:
            return None
        return Product(
            goods_code=goods_code,
            name=own["name"] or goods_code,
            position=own["position"],
            unit_price=Decimal(own["unit_price"]) if own["unit_price"] is not None else None,
            price_unit=own["price_unit"],
        )

    def stall_list(self) -> list[Product]:
        """The stall's own products, numbered as ``#1``, ``#2`` …"""
        rows = self.store.conn.execute(self._SELECT + " WHERE s.position IS NOT NULL ORDER BY s.position")
        return [self._product(r) for r in rows]

    def by_position(self, position: int) -> Product | None:
        row = self.store.conn.execute(self._SELECT + " WHERE s.position = ?", (position,)).fetchone()
        return None if row is None else self._product(row)

    def search(self, query: str, limit: int = 9) -> list[Product]:
        """Products matching ``query`` best first; the stall's own products first among equals."""
        scored = []
        for row in self.store.conn.execute(self._SELECT):
            stored = json.loads(row["keys"])
            k = pinyin.NameKeys(tuple(stored["initials"]), stored["spelled"])
            found = pinyin.score(query, row["name"], row["goods_code"], k)
            if found:
                mine = row["position"] is not None
                scored.append((-(found + (5 if mine else 0)), -row["uses"], row["goods_code"], row))
        scored.sort(key=lambda item: item[:3])
        return [self._product(item[3]) for item in scored[:limit]]

    # -- what the stall remembers ------------------------------------------------------------------

    def remember(
        self,
        goods_code: str,
        *,
        unit_price: Decimal | None = None,
        price_unit: str | None = None,
        used: bool = False,
        name: str | None = None,
    ) -> Product:
        """Add the product to the stall's list (if new) and remember its price and unit when given."""
        if price_unit is not None and price_unit not in PRICE_UNITS:
            raise ValueError("price unit must be kg or 斤")
        with self.store.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM stall_products WHERE goods_code = ?", (goods_code,)).fetchone()
            if exists is None:
                position = conn.execute("SELECT coalesce(max(position), 0) + 1 FROM stall_products").fetchone()[0]
                conn.execute(
                    "INSERT INTO stall_products (goods_code, position, last_used) VALUES (?, ?, ?)",
                    (goods_code, position, now_text()),
                )
            if name is not None:
                conn.execute("UPDATE stall_products SET name = ? WHERE goods_code = ?", (name, goods_code))
            if unit_price is not None:
                conn.execute(
                    "UPDATE stall_products SET unit_price = ? WHERE goods_code = ?", (str(unit_price), goods_code)
                )
            if price_unit is not None:
                conn.execute("UPDATE stall_products SET price_unit = ? WHERE goods_code = ?", (price_unit, goods_code))
            if used:
                conn.execute(
                    "UPDATE stall_products SET uses = uses + 1, last_used = ? WHERE goods_code = ?",
                    (now_text(), goods_code),
                )
        found = self.get(goods_code)
        if found is None:  # a goods code the registry copy does not hold (typed before the first sync)
            return Product(goods_code=goods_code, name=goods_code, unit_price=unit_price, price_unit=price_unit or "kg")
        return found
