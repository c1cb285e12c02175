"""Rate-limit counters shared across processes: the database storage (SQLite and PostgreSQL,
two engines standing for two processes) and Redis (the server on 127.0.0.1:6379)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine import db
from engine.models import RateLimitWindow
from engine.ratelimit import DatabaseStorage, Limit, RateLimiter, RedisStorage

T0 = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)


def test_database_counters_are_shared_between_processes(db_url: str) -> None:
    first, second = db.make_engine(db_url), db.make_engine(db_url)
    try:
        limits = {"public_submit": Limit(3, 3600)}
        a = RateLimiter(DatabaseStorage(first), limits)
        b = RateLimiter(DatabaseStorage(second), limits)
        assert a.hit("public_submit", "10.0.0.7", now=T0).allowed  # type: ignore[union-attr]
        assert b.hit("public_submit", "10.0.0.7", now=T0).allowed  # type: ignore[union-attr]
        assert a.hit("public_submit", "10.0.0.7", now=T0).allowed  # type: ignore[union-attr]
        refused = b.hit("public_submit", "10.0.0.7", now=T0 + timedelta(minutes=10))
        assert not refused.allowed and refused.retry_after == 50 * 60  # type: ignore[union-attr]
        # One row per key: the next window reuses it and starts again at 1.
        again = a.hit("public_submit", "10.0.0.7", now=T0 + timedelta(hours=1))
        assert again.allowed and again.hits == 1  # type: ignore[union-attr]
        with first.connect() as conn:
            assert conn.execute(select(func.count()).select_from(RateLimitWindow)).scalar() == 1
    finally:
        first.dispose()
        second.dispose()


def test_database_storage_adds_a_batch_of_hits_at_once(db_url: str) -> None:
    """A process that counts a large limit in batches adds several hits in one statement; two
    processes' batches add up, and a new window starts from the batch alone."""
    first, second = db.make_engine(db_url), db.make_engine(db_url)
    try:
        a, b = DatabaseStorage(first), DatabaseStorage(second)
        assert a.hit("api_token:t", 100, 60, 12) == 12
        assert b.hit("api_token:t", 100, 60, 12) == 24
        assert a.hit("api_token:t", 100, 60, 0) == 24  # nothing to add: a read
        assert b.hit("api_token:t", 101, 60, 5) == 5
        limiter = RateLimiter(a, {"api_token": Limit(100, 60)}, local_share=0.05)
        for _ in range(101):
            last = limiter.hit("api_token", "u", now=T0)
        assert not last.allowed and last.hits == 101  # type: ignore[union-attr]
    finally:
        first.dispose()
        second.dispose()


def test_database_storage_purges_windows_long_past(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        limiter = RateLimiter(DatabaseStorage(engine, purge_every=3), {"x": Limit(5, 60)})
        limiter.hit("x", "old", now=T0)
        limiter.hit("x", "old-too", now=T0)
        limiter.hit("x", "new", now=T0 + timedelta(days=2))  # third hit: purges
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(RateLimitWindow)).scalar() == 1
    finally:
        engine.dispose()


@pytest.fixture
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure: no server here
        pytest.skip(f"no Redis server answers at {url}: {exc}")
    return url


def test_redis_counters_are_shared_between_processes(redis_url: str) -> None:
    prefix = f"rectiflow-test:{uuid.uuid4().hex}:"
    limits = {"api_token": Limit(2, 60)}
    a = RateLimiter(RedisStorage(redis_url, prefix=prefix), limits)
    b = RateLimiter(RedisStorage(redis_url, prefix=prefix), limits)
    now = T0  # an injected clock far from the wall clock still counts (relative expiry)
    assert a.hit("api_token", "t", now=now).allowed  # type: ignore[union-attr]
    assert b.hit("api_token", "t", now=now).allowed  # type: ignore[union-attr]
    refused = a.hit("api_token", "t", now=now)
    assert not refused.allowed and 1 <= refused.retry_after <= 60  # type: ignore[union-attr]
    keys = a.storage.client.keys(f"{prefix}*")  # type: ignore[attr-defined]
    assert len(keys) == 1 and 0 < a.storage.client.ttl(keys[0]) <= 61  # type: ignore[attr-defined]
    a.storage.client.delete(*keys)  # type: ignore[attr-defined]


def test_redis_adds_a_batch_of_hits_at_once(redis_url: str) -> None:
    prefix = f"rectiflow-test:{uuid.uuid4().hex}:"
    a, b = RedisStorage(redis_url, prefix=prefix), RedisStorage(redis_url, prefix=prefix)
    try:
        assert a.hit("api_token:t", 100, 60, 12) == 12
        assert b.hit("api_token:t", 100, 60, 12) == 24
        assert b.hit("api_token:t", 101, 60, 5) == 5
    finally:
        keys = a.client.keys(f"{prefix}*")
        if keys:
            a.client.delete(*keys)
