"""A per-process cache of read-mostly rows, short-lived and invalidated.

The hot path of a transition reads the same few rows again and again (the
campaign's clock, the units, users and categories its data names, the routing
rules, the API token). Each ``EngineContext`` keeps them here for
``ttl_seconds`` (1.5 s by default); an administrator's change made through the
engine (``engine.adminlog.record``, which every write of ``engine.admin`` goes
through, and ``engine.organisation``) drops this process's copies at once and
again when it commits, and other processes see it when their copies expire,
within the TTL: no generation row to read on the hot path, at most 1.5 s late.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_TTL_SECONDS = 1.5


class ReadCache:
    """``get(key, load)``: the cached value while fresh, else ``load()`` (and keep it)."""

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, load: Callable[[], T], ttl_seconds: float | None = None) -> T:
        """The value for ``key`` if loaded less than ``ttl_seconds`` (default: the cache's)
        ago, else ``load()``'s, kept from now."""
        now = self.clock()
        entry = self._entries.get(key)
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        if entry is not None and now - entry[0] < ttl:
            value: T = entry[1]
            return value
        value = load()
        self._entries[key] = (now, value)
        return value

    def forget(self, key: Hashable) -> None:
        """Drop the entry for ``key`` (a miss the caller does not want kept)."""
        self._entries.pop(key, None)

    def invalidate(self) -> None:
        """Forget everything (an administrator changed organisation or campaign data)."""
        self._entries.clear()
