"""The rate limiter's decisions (engine.ratelimit), on a memory storage and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import ConfigError
from engine.ratelimit import Limit, MemoryStorage, RateLimiter

T0 = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)  # on a 15-minute boundary


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("10/15m", 10, 900), ("600/1m", 600, 60), ("5/h", 5, 3600), (" 3 / 2d ", 3, 172800)],
)
def test_limits_parse(text: str, count: int, period: int) -> None:
    assert Limit.parse(text) == Limit(count, period)


@pytest.mark.parametrize("text", ["10", "ten/1m", "10/1w", "0/1m", "10/0s", ""])
def test_bad_limits_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="signin_per_address"):
        Limit.parse(text, name="signin_per_address")


def test_allows_up_to_the_count_then_says_when_to_retry() -> None:
    limiter = RateLimiter(MemoryStorage(), {"signin": Limit(3, 900)})
    decisions = [limiter.hit("signin", "10.0.0.7", now=T0 + timedelta(seconds=i)) for i in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]  # type: ignore[union-attr]
    assert decisions[2].remaining == 0  # type: ignore[union-attr]
    assert decisions[3].retry_after == 900 - 3  # type: ignore[union-attr]
    # Another subject has its own count; the window's turn starts a new one.
    assert limiter.hit("signin", "10.0.0.8", now=T0).allowed  # type: ignore[union-attr]
    late = limiter.hit("signin", "10.0.0.7", now=T0 + timedelta(seconds=899))
    assert not late.allowed and late.retry_after == 1  # type: ignore[union-attr]
    assert limiter.hit("signin", "10.0.0.7", now=T0 + timedelta(seconds=900)).allowed  # type: ignore[union-attr]


def test_a_name_without_a_limit_is_not_limited() -> None:
    limiter = RateLimiter(MemoryStorage(), {})
    assert limiter.hit("anything", "x", now=T0) is None


def test_subjects_are_hashed_into_the_key() -> None:
    storage = MemoryStorage()
    RateLimiter(storage, {"signin": Limit(1, 60)}).hit("signin", "li.na", now=T0)
    assert all("li.na" not in key for key in storage._counts)


class CountingStorage(MemoryStorage):
    """A memory storage that records every call, standing for one shared by processes."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def hit(self, key: str, window: int, period: int, n: int = 1) -> int:
        self.calls.append(n)
        return super().hit(key, window, period, n)


def test_a_large_limit_is_counted_in_batches_and_refused_exactly_in_one_process() -> None:
    storage = CountingStorage()
    limiter = RateLimiter(storage, {"api_token": Limit(100, 60)}, local_share=0.05)
    assert limiter.batches == {"api_token": 5}
    decisions = [limiter.hit("api_token", "t", now=T0) for _ in range(102)]
    assert [d.allowed for d in decisions] == [True] * 100 + [False] * 2  # type: ignore[union-attr]
    # 100 hits in 20 calls of 5 (the last one asked because it reached the limit), then
    # every hit past the limit is the storage's own word.
    assert storage.calls == [5] * 20 + [1, 1]
    assert decisions[-1].retry_after == 60  # type: ignore[union-attr]


def test_batched_limits_across_processes_overshoot_by_less_than_a_batch_each() -> None:
    storage = CountingStorage()
    limits = {"api_token": Limit(100, 60)}
    processes = [RateLimiter(storage, limits, local_share=0.05) for _ in range(3)]
    allowed = sum(
        bool(p.hit("api_token", "t", now=T0).allowed)  # type: ignore[union-attr]
        for _ in range(60)
        for p in processes
    )
    assert 100 <= allowed <= 100 + 3 * (5 - 1)
    # Once the shared count is past the limit, every process refuses every further hit.
    assert not any(p.hit("api_token", "t", now=T0).allowed for p in processes)  # type: ignore[union-attr]
    # A new window starts again from nothing, in every process.
    later = T0 + timedelta(minutes=1)
    assert all(p.hit("api_token", "t", now=later).allowed for p in processes)  # type: ignore[union-attr]


def test_small_limits_are_never_batched() -> None:
    storage = CountingStorage()
    limiter = RateLimiter(
        storage, {"signin": Limit(10, 900), "api_token": Limit(600, 60)}, local_share=0.02
    )
    assert limiter.batches == {"signin": 1, "api_token": 12}
    for _ in range(3):
        limiter.hit("signin", "10.0.0.7", now=T0)
    assert storage.calls == [1, 1, 1]


def test_hits_a_failed_storage_did_not_count_are_sent_with_the_next_batch() -> None:
    storage = CountingStorage()
    limiter = RateLimiter(storage, {"api_token": Limit(100, 60)}, local_share=0.05)
    for _ in range(4):
        limiter.hit("api_token", "t", now=T0)
    real_hit = storage.hit
    storage.hit = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down"))  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        limiter.hit("api_token", "t", now=T0)
    storage.hit = real_hit  # type: ignore[method-assign]
    limiter.hit("api_token", "t", now=T0)
    assert storage.calls == [6]  # the five the failure kept, and this one


def test_limiter_from_settings_batches_shared_storages_only() -> None:
    from engine.ratelimit import limiter_from_settings

    settings = {"rate_limits": {"api_token": "600/1m"}, "rate_limit_url": "memory://"}
    assert limiter_from_settings(settings, None).batches == {"api_token": 1}  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate_limit_local_share"):
        limiter_from_settings({**settings, "rate_limit_local_share": "lots"}, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate_limit_local_share"):
        limiter_from_settings({**settings, "rate_limit_local_share": 1.5}, None)  # type: ignore[arg-type]
