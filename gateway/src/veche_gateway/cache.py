"""A small bounded LRU map (parsed documents, plans, persisted queries).

Bounded by entries and, when given `max_bytes`, by the bytes its entries are
weighed at (`put(key, value, weight)`): one huge document must not hold the
memory of thousands of small ones. An entry heavier than the whole budget is
not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self.size = max(size, 1)
        self.max_bytes = max_bytes
        self.bytes = 0  # the weights of the entries held
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        self._items.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, weight: int = 0) -> None:
        self.discard(key)
        if self.max_bytes is not None and weight > self.max_bytes:
            return
        self._items[key] = (value, weight)
        self.bytes += weight
        while len(self._items) > self.size or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def discard(self, key: K) -> None:
        entry = self._items.pop(key, None)
        if entry is not None:
            self.bytes -= entry[1]

    def __len__(self) -> int:
        return len(self._items)
