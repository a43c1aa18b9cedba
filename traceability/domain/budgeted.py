"""Caches bounded by memory: entries kept least recently used first, within a budget of bytes.

A count does not bound memory when an entry's size depends on its batch (a carcass cut into hundreds
of parts lists them all), so each entry is kept with its cost in bytes, given by the caller when it
is kept, and the oldest go first once the costs pass the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Budgeted(Generic[K, V]):
    """Entries by key, least recently used first out once their costs pass ``budget`` bytes. An entry
    that costs more than the whole budget empties the cache, itself included."""

    __slots__ = ("_entries", "budget", "used")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> Iterator[V]:
        return (value for value, _cost in self._entries.values())

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, cost: int) -> None:
        """Keep ``value`` (counted once if ``key`` was kept already) and drop the oldest past the budget."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self._entries[key] = (value, cost)
        self.used += cost
        while self.used > self.budget and self._entries:
            self.used -= self._entries.popitem(last=False)[1][1]

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0
