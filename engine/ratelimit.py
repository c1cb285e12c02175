"""Rate limits: fixed windows counted in a storage every process shares.

``RateLimiter.hit(name, subject, now=)`` counts one use of the limit ``name`` (e.g.
``signin_per_address``) by ``subject`` (an address, a username, a token id) and says whether
it is allowed, and if not, how many seconds until the window turns. The storage is the
database by default (``DatabaseStorage``: one UPSERT per hit on the ``rate_limits`` table,
SQLite and PostgreSQL), Redis when configured (``RedisStorage``: INCR + EXPIREAT), or
memory for one process and for tests. The clock is the caller's ``now``.

A fixed window lets a client spend at most twice the limit across one window boundary; the
limits here are meant to stop scripted guessing and flooding, not to meter fair use.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from engine.clock import ensure_utc
from engine.db import make_engine
from engine.errors import ConfigError
from engine.models import RateLimitWindow

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits per ``period`` seconds."""

    count: int
    period: int

    @classmethod
    def parse(cls, text: str, *, name: str = "limit") -> Limit:
        """``"10/15m"`` (10 per 15 minutes), ``"600/1m"``, ``"5/h"``; units s, m, h, d."""
        match = _SPEC.match(str(text))
        if match is None:
            raise ConfigError(
                f"rate limit {name} = {text!r}: write COUNT/PERIOD, e.g. 10/15m (units s m h d)"
            )
        count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
        period = amount * UNITS[unit]
        if count < 1 or period < 1:
            raise ConfigError(f"rate limit {name} = {text!r}: count and period must be positive")
        return cls(count=count, period=period)


@dataclass(frozen=True)
class Decision:
    """The answer to one hit: allowed or not, what is left, and when to retry."""

    allowed: bool
    limit: Limit
    hits: int
    retry_after: int  # seconds until the window turns (0 when allowed)

    @property
    def remaining(self) -> int:
        return max(0, self.limit.count - self.hits)


class RateLimitStorage(Protocol):
    """Counts hits per key and window; every process using the same storage shares them."""

    def hit(self, key: str, window: int, period: int) -> int:
        """Count one hit of ``key`` in ``window`` (its number: seconds since the epoch
        divided by ``period``) and return the hits in it so far; a hit in a newer window
        starts the count again."""
        ...


class MemoryStorage:
    """One process only (tests, a single ``serve``)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window: int, period: int) -> int:
        with self._lock:
            current, hits = self._counts.get(key, (window, 0))
            hits = hits + 1 if current == window else 1
            self._counts[key] = (window, hits)
            return hits


class DatabaseStorage:
    """Counters in the ``rate_limits`` table: one ``INSERT ... ON CONFLICT DO UPDATE ...
    RETURNING`` per hit, in a short transaction of its own (a hit counts even when the
    request that made it is then rolled back). Rows of windows long past are deleted every
    ``purge_every`` hits of this process.

    A counter is not a record: its commit does not wait for the disk (SQLite: its own
    connections at ``synchronous=NORMAL``, which in WAL mode skips the fsync per commit;
    PostgreSQL: ``SET LOCAL synchronous_commit = off``). A crash can lose the last hits,
    never the database's consistency."""

    def __init__(self, engine: Engine, *, purge_every: int = 1000) -> None:
        self.purge_every = purge_every
        self._since_purge = 0
        self._lazy_commit = False
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self.engine = engine
            self._insert: Any = postgresql.insert
            self._lazy_commit = True
        elif dialect == "sqlite":
            self.engine = make_engine(
                engine.url.render_as_string(hide_password=False), sqlite_synchronous="NORMAL"
            )
            self._insert = sqlite.insert
        else:
            raise ConfigError(
                f"rate limits in the database need SQLite or PostgreSQL, not {dialect}"
            )

    def hit(self, key: str, window: int, period: int) -> int:
        table: Any = RateLimitWindow.__table__
        expires_at = datetime.fromtimestamp((window + 1) * period, UTC)
        stmt = self._insert(table).values(
            key=key, window_index=window, hits=1, expires_at=expires_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                # Both right-hand sides read the row as it was before this statement.
                "hits": _case_same_window(table, stmt, then=table.c.hits + 1, otherwise=1),
                "window_index": stmt.excluded.window_index,
                "expires_at": stmt.excluded.expires_at,
            },
        ).returning(table.c.hits)
        with self.engine.begin() as conn:
            if self._lazy_commit:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            hits = int(conn.execute(stmt).scalar_one())
            self._since_purge += 1
            if self._since_purge >= self.purge_every:
                self._since_purge = 0
                conn.execute(
                    delete(table).where(table.c.expires_at < expires_at - timedelta(days=1))
                )
        return hits


def _case_same_window(table: Any, stmt: Any, *, then: Any, otherwise: int) -> Any:
    from sqlalchemy import case

    return case((table.c.window_index == stmt.excluded.window_index, then), else_=otherwise)


class RedisStorage:
    """Counters in Redis (``rate_limit_url = "redis://..."``): INCR on a key per window,
    which Redis drops a period after its first hit (relative, so an injected clock that is
    not the wall clock still counts right)."""

    def __init__(self, url: str, *, prefix: str = "rectiflow:rl:") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def hit(self, key: str, window: int, period: int) -> int:
        name = f"{self.prefix}{key}:{window}"
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, period + 1, nx=True)
        hits, _ = pipe.execute()
        return int(hits)


class RateLimiter:
    """Asks the storage and decides. ``limits`` maps a limit's name to its ``Limit``; a
    name that is not configured is not limited."""

    def __init__(self, storage: RateLimitStorage, limits: Mapping[str, Limit]) -> None:
        self.storage = storage
        self.limits = dict(limits)

    def hit(self, name: str, subject: str, *, now: datetime) -> Decision | None:
        """Count one use of ``name`` by ``subject`` at ``now``; None when ``name`` has no
        limit. Subjects are hashed into the key (no addresses or usernames in clear)."""
        limit = self.limits.get(name)
        if limit is None:
            return None
        epoch = int(ensure_utc(now).timestamp())
        window = epoch // limit.period
        ends = (window + 1) * limit.period
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        hits = self.storage.hit(f"{name}:{digest}", window, limit.period)
        if hits <= limit.count:
            return Decision(True, limit, hits, 0)
        return Decision(False, limit, hits, max(1, ends - epoch))


def limiter_from_settings(settings: Mapping[str, Any], engine: Engine) -> RateLimiter:
    """The limiter the settings describe: ``[rate_limits]`` (``enabled`` and one
    ``COUNT/PERIOD`` per limit name) and ``rate_limit_url`` (empty: the database;
    ``redis://...``: Redis; ``memory://``: this process only)."""
    section = dict(settings.get("rate_limits") or {})
    enabled = section.pop("enabled", True)
    limits = (
        {}
        if not enabled
        else {name: Limit.parse(str(value), name=name) for name, value in section.items() if value}
    )
    url = str(settings.get("rate_limit_url") or "").strip()
    storage: RateLimitStorage
    if not url:
        storage = DatabaseStorage(engine)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        storage = RedisStorage(url)
    elif url == "memory://":
        storage = MemoryStorage()
    else:
        raise ConfigError(
            f"rate_limit_url = {url!r}: leave it empty (the database), or give redis://… or memory://"
        )
    return RateLimiter(storage, limits)
