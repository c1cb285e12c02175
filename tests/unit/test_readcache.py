"""The read cache keeps a value for its TTL, reloads after it, and forgets on invalidate."""

from __future__ import annotations

from engine.readcache import ReadCache


def test_kept_for_the_ttl_then_reloaded_and_invalidated() -> None:
    now = [100.0]
    loads: list[int] = []
    cache = ReadCache(ttl_seconds=5, clock=lambda: now[0])

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("k", load) == 1
    now[0] += 4.9
    assert cache.get("k", load) == 1  # fresh: no read
    now[0] += 0.2
    assert cache.get("k", load) == 2  # expired: read again
    cache.invalidate()
    assert cache.get("k", load) == 3  # an administrator's change: read at once
    assert cache.get("other", load) == 4
