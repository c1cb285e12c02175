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
