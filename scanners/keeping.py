"""What a station keeps from the server for its offline days: the product registry, the stop list (recalled,
held and expired goods, :mod:`scanners.stoplist`) and what it learned about the batches it scanned."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scanners import client as wire
from scanners.batches import LOOKUP_TIMEOUT, BatchBook, BatchInfo
from scanners.catalogue import Catalogue
from scanners.queue import Store
from scanners.stoplist import StopList


class Keeping:
    """Mixed into :class:`scanners.station.Station`: refreshes of what it keeps, and lookups for a scan."""

    store: Store

    if TYPE_CHECKING:  # the station's own, used here

        def client(self, key: Ed25519PrivateKey | None = None) -> wire.SigningClient: ...

        def _check(self, ans: wire.Answer) -> None: ...

    async def refresh_products(self, c: wire.SigningClient) -> int | None:
        """Replace the station's copy of the product registry; None when the server has no list for stations."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            ans = await c.call("GET", f"/api/v1/stations/products?limit=500&offset={offset}")
            if ans.status in (404, 405):
                self.store.put(products_checked_at=time.time())
                return None
            self._check(ans)
            page = ans.data.get("items", []) if isinstance(ans.data, dict) else []
            items += page
            if len(page) < 500:
                break
            offset += len(page)
        self.store.put(products_checked_at=time.time())
        return Catalogue(self.store).replace_all(items)

    async def refresh_stoplist(self, c: wire.SigningClient) -> int | None:
        """Replace the station's stop list (recalled and held batches, its node's stock); None when the
        server keeps no such list."""
        ans = await c.call("GET", "/api/v1/stations/watchlist")
        if ans.status in (404, 405):
            return None
        self._check(ans)
        return StopList(self.store).replace(ans.data if isinstance(ans.data, dict) else {})

    async def check_batch(self, code: str, wait: float = LOOKUP_TIMEOUT) -> bool:
        """Ask the server for batch ``code``'s verdict and keep it; False when offline (the list decides)."""
        try:
            async with self.client() as c:
                ans = await asyncio.wait_for(c.call("GET", f"/api/v1/batches/{code}/verdict", signed=False), wait)
        except (wire.Unreachable, TimeoutError):
            return False
        if ans.ok and isinstance(ans.data, dict):
            StopList(self.store).remember(ans.data)
        return ans.ok

    async def learn_batch(self, code: str, wait: float = LOOKUP_TIMEOUT) -> BatchInfo | None:
        """What the server says about batch ``code``, its verdict first (both kept for offline use); None
        when offline or unknown."""
        book = BatchBook(self.store)

        async def ask(c: wire.SigningClient) -> BatchInfo | None:
            verdict = await c.call("GET", f"/api/v1/batches/{code}/verdict", signed=False)
            if verdict.ok and isinstance(verdict.data, dict):
                StopList(self.store).remember(verdict.data)
            return await book.fetch(c, code)

        try:
            async with self.client() as c:
                return await asyncio.wait_for(ask(c), wait)
        except (wire.Unreachable, TimeoutError):
            return book.get(code)
