"""What a process keeps in memory between requests, in one idiom: `ProcessCache`, a bounded,
thread-safe map that evicts the least recently used entry past its size (never empties itself
wholesale: a flood of new keys cannot push out the ones in use), and one reset for all of them.

The live policies and SDK keys (`routing.live`), the rate limiter's leases and blocked addresses
(`controlplane.ratelimit`), the price book (`metrics.ingest.pricing`), the SDK keys' writable
policies (`metrics.ingest.services`) and the known decision partitions (`metrics.ingest.partitions`)
are each one of these. `forget_all()` clears every one: tests call it between tests, and a forked
child starts with it done (its parent's entries may be stale by the time it serves).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_caches: weakref.WeakSet[ProcessCache[object, object]] = weakref.WeakSet()


class ProcessCache(Generic[K, V]):
    """A bounded least-recently-used map of this process. Reads take no lock (one dict lookup and
    a move to the end, each atomic); writes and evictions do."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError(f"{name}: size must be at least 1, got {size}")
        self.name = name
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        _caches.add(self)  # type: ignore[arg-type]  # a WeakSet of every parametrisation

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            try:  # noqa: SIM105 - suppress() costs a context manager on the hot path
                self._data.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile
                pass
        return value

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def update(self, key: K, change: Callable[[V], V]) -> None:
        """Replace the entry of `key`, if there is one, with `change(entry)`, atomically."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data[key] = change(value)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> Iterator[K]:
        return iter(list(self._data))


def forget_all() -> None:
    """Clear every process cache (tests; after fork)."""
    for cache in list(_caches):
        cache.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_all)
