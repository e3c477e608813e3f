"""Read caches for the hot path, invalidated by the writes that make them stale, never by a timer.

A cache names the tables its values are read from. The database's change feed
(`store.change_feed.ChangeFeed`) tells it, on the writer's thread, right after a
write transaction commits and before the writer answers its caller, which tables
that transaction changed; a cache that reads from one of them drops everything.
So a read never returns data older than the last write this server acknowledged.

The race that matters is a read that starts before a write commits and finishes
after it: its value may predate the write. Every read therefore takes the cache's
generation *before* it reads the database, and `put` keeps the value only if no
invalidation happened since. Invalidation is coarse (the whole cache) on purpose:
writes to these tables are rare next to the reads, and a whole-cache drop cannot
miss a key.

Another replica's writes do not reach this feed yet: with several replicas sharing
PostgreSQL, LISTEN/NOTIFY will call the same `on_commit` (see docs/architecture.md).
"""

from __future__ import annotations

import threading
from typing import Generic, Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class InvalidatedCache(Generic[K, V]):
    """A bounded map from key to a value read from `tables`; thread-safe, lock-free on hits."""

    def __init__(self, name: str, tables: Iterable[str], *, max_entries: int = 4096) -> None:
        self.name = name
        self.tables = frozenset(tables)
        self._max = max_entries
        self._entries: dict[K, V] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    @property
    def generation(self) -> int:
        """Take this before reading the database; hand it to `put` with what was read."""
        return self._generation

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)  # one dict lookup: atomic under the GIL, no lock on the hot path
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep `value` unless the cache was invalidated since `generation` was taken (it may be stale)."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self._max and key not in self._entries:
                # Bounded memory: drop the oldest entry (dicts keep insertion order).
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = value

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self.invalidations += 1

    def on_commit(self, tables: frozenset[str]) -> None:
        """The change feed's callback: a committed write changed `tables`."""
        if tables & self.tables:
            self.invalidate()

    def __len__(self) -> int:
        return len(self._entries)
