"""Rate limits: fixed windows counted in a storage every process shares.

``RateLimiter.hit(name, subject, now=)`` counts one use of the limit ``name`` (e.g.
``signin_per_address``) by ``subject`` (an address, a username, a token id) and says whether
it is allowed, and if not, how many seconds until the window turns. The storage is the
database by default (``DatabaseStorage``: one UPSERT per hit on the ``rate_limits`` table,
SQLite and PostgreSQL), Redis when configured (``RedisStorage``: INCR + EXPIREAT), or
memory for one process and for tests. The clock is the caller's ``now``.

A limit of many hits (``api_token``, 600 a minute) is counted in batches: each process
keeps the hits of such a limit in its own memory and adds them to the shared storage
``batch`` at a time (``batch`` = the limit's count × ``local_share``, 2% by default, so 12
for 600/1m; 1 — every hit stored at once — for the small limits of sign-in, submission and
look-ups). A process decides on the shared count it last read plus its own hits since, and
asks the storage at once when that reaches the limit; so a refusal is always the storage's
word, and a limit of N lets through at most N + P × (batch − 1) hits a window with P
processes (hosts × workers): 600 + 2 × 11 with two gunicorn workers. The storage sees a hit
up to ``batch − 1`` hits late.

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

from sqlalchemy import Engine, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from engine.clock import ensure_utc
from engine.db import make_engine
from engine.errors import ConfigError
from engine.models import RateLimitWindow

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_LOCAL_SHARE = 0.02
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

    def hit(self, key: str, window: int, period: int, n: int = 1) -> int:
        """Count ``n`` hits of ``key`` in ``window`` (its number: seconds since the epoch
        divided by ``period``) and return the hits in it so far; a hit in a newer window
        starts the count again."""
        ...


class MemoryStorage:
    """One process only (tests, a single ``serve``)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    shared = False  # nothing to batch: counting here is as cheap as counting locally

    def hit(self, key: str, window: int, period: int, n: int = 1) -> int:
        with self._lock:
            current, hits = self._counts.get(key, (window, 0))
            hits = hits + n if current == window else n
            self._counts[key] = (window, hits)
            return hits


class DatabaseStorage:
    """Counters in the ``rate_limits`` table: one ``INSERT ... ON CONFLICT DO UPDATE ...
    RETURNING`` per hit (per batch of hits), built once, in a short transaction of its own
    (a hit counts even when the request that made it is then rolled back). Rows of windows
    long past are deleted every ``purge_every`` calls of this process.

    A counter is not a record: its commit does not wait for the disk (SQLite: its own
    connections at ``synchronous=NORMAL``, which in WAL mode skips the fsync per commit;
    PostgreSQL: ``SET LOCAL synchronous_commit = off``). A crash can lose the last hits,
    never the database's consistency."""

    shared = True

    def __init__(self, engine: Engine, *, purge_every: int = 1000) -> None:
        self.purge_every = purge_every
        self._since_purge = 0
        self._lazy_commit = False
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self.engine = engine
            insert: Any = postgresql.insert
            self._lazy_commit = True
        elif dialect == "sqlite":
            self.engine = make_engine(
                engine.url.render_as_string(hide_password=False), sqlite_synchronous="NORMAL"
            )
            insert = sqlite.insert
        else:
            raise ConfigError(
                f"rate limits in the database need SQLite or PostgreSQL, not {dialect}"
            )
        table: Any = RateLimitWindow.__table__
        stmt = insert(table).values(
            key=bindparam("key"),
            window_index=bindparam("window"),
            hits=bindparam("n"),
            expires_at=bindparam("expires_at"),
        )
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                # Both right-hand sides read the row as it was before this statement.
                "hits": _case_same_window(
                    table,
                    stmt,
                    then=table.c.hits + stmt.excluded.hits,
                    otherwise=stmt.excluded.hits,
                ),
                "window_index": stmt.excluded.window_index,
                "expires_at": stmt.excluded.expires_at,
            },
        ).returning(table.c.hits)
        self._purge = delete(table).where(table.c.expires_at < bindparam("before"))

    def hit(self, key: str, window: int, period: int, n: int = 1) -> int:
        expires_at = datetime.fromtimestamp((window + 1) * period, UTC)
        params = {"key": key, "window": window, "n": n, "expires_at": expires_at}
        with self.engine.begin() as conn:
            if self._lazy_commit:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            hits = int(conn.execute(self._upsert, params).scalar_one())
            self._since_purge += 1
            if self._since_purge >= self.purge_every:
                self._since_purge = 0
                conn.execute(self._purge, {"before": expires_at - timedelta(days=1)})
        return hits


def _case_same_window(table: Any, stmt: Any, *, then: Any, otherwise: Any) -> Any:
    from sqlalchemy import case

    return case((table.c.window_index == stmt.excluded.window_index, then), else_=otherwise)


class RedisStorage:
    """Counters in Redis (``rate_limit_url = "redis://..."``): INCR on a key per window,
    which Redis drops a period after its first hit (relative, so an injected clock that is
    not the wall clock still counts right)."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "rectiflow:rl:") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def hit(self, key: str, window: int, period: int, n: int = 1) -> int:
        name = f"{self.prefix}{key}:{window}"
        pipe = self.client.pipeline()
        pipe.incr(name, n)
        pipe.expire(name, period + 1, nx=True)
        hits, _ = pipe.execute()
        return int(hits)


@dataclass
class _LocalCount:
    """This process's view of one key in one window: the shared count it last read, and
    its own hits since (not yet in the storage)."""

    window: int
    period: int
    shared: int = 0
    unsent: int = 0


class RateLimiter:
    """Asks the storage and decides. ``limits`` maps a limit's name to its ``Limit``; a
    name that is not configured is not limited. ``local_share`` > 0 counts the hits of a
    limit in batches of ``count × local_share`` (see the module's docstring); 0 sends
    every hit to the storage."""

    PRUNE_EVERY = 1000  # windows begun here between two sweeps of the counts of past ones

    def __init__(
        self, storage: RateLimitStorage, limits: Mapping[str, Limit], *, local_share: float = 0
    ) -> None:
        if not 0 <= local_share < 1:
            raise ConfigError(f"rate_limit_local_share = {local_share}: give 0 or a fraction < 1")
        self.storage = storage
        self.limits = dict(limits)
        self.batches = {
            name: max(1, int(limit.count * local_share)) for name, limit in self.limits.items()
        }
        self._local: dict[str, _LocalCount] = {}
        self._lock = threading.Lock()
        self._since_prune = 0

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
        key = f"{name}:{digest}"
        batch = self.batches[name]
        if batch <= 1:
            hits = self.storage.hit(key, window, limit.period)
        else:
            entry, estimate = self._count_here(key, window, limit, batch)
            if estimate is not None:
                return Decision(True, limit, estimate, 0)
            hits = self._send(entry, key)
        if hits <= limit.count:
            return Decision(True, limit, hits, 0)
        return Decision(False, limit, hits, max(1, ends - epoch))

    def _count_here(
        self, key: str, window: int, limit: Limit, batch: int
    ) -> tuple[_LocalCount, int | None]:
        """Count the hit in this process: the key's count here, and the estimated total when
        the hit may be decided here (fewer than ``batch`` unsent and within the limit), None
        when the storage must be asked."""
        with self._lock:
            entry = self._local.get(key)
            if entry is None or entry.window != window:  # a new window: earlier hits are moot
                entry = self._local[key] = _LocalCount(window, limit.period)
                self._prune(window * limit.period)
            entry.unsent += 1
            estimate = entry.shared + entry.unsent
            if entry.unsent < batch and estimate <= limit.count:
                return entry, estimate
            return entry, None

    def _send(self, entry: _LocalCount, key: str) -> int:
        """Add this process's unsent hits of ``key`` (another thread may just have sent
        them: then none) to the storage; the shared count."""
        with self._lock:
            unsent, entry.unsent = entry.unsent, 0
        try:
            hits = self.storage.hit(key, entry.window, entry.period, unsent)
        except BaseException:
            with self._lock:  # not counted: kept for the next call to send
                entry.unsent += unsent
            raise
        with self._lock:
            entry.shared = max(entry.shared, hits)
        return hits

    def _prune(self, now_epoch: int) -> None:
        """Every ``PRUNE_EVERY`` windows begun, forget the counts of windows that are over
        (called under the lock)."""
        self._since_prune += 1
        if self._since_prune < self.PRUNE_EVERY:
            return
        self._since_prune = 0
        self._local = {
            k: e for k, e in self._local.items() if (e.window + 1) * e.period > now_epoch
        }


def limiter_from_settings(settings: Mapping[str, Any], engine: Engine) -> RateLimiter:
    """The limiter the settings describe: ``[rate_limits]`` (``enabled`` and one
    ``COUNT/PERIOD`` per limit name), ``rate_limit_url`` (empty: the database;
    ``redis://...``: Redis; ``memory://``: this process only) and
    ``rate_limit_local_share`` (the batch of a shared storage's large limits)."""
    section = dict(settings.get("rate_limits") or {})
    enabled = section.pop("enabled", True)
    limits = (
        {}
        if not enabled
        else {name: Limit.parse(str(value), name=name) for name, value in section.items() if value}
    )
    url = str(settings.get("rate_limit_url") or "").strip()
    share_text = settings.get("rate_limit_local_share", DEFAULT_LOCAL_SHARE)
    try:
        share = float(share_text)
    except (TypeError, ValueError):
        share = -1.0
    if not 0 <= share < 1:
        raise ConfigError(
            f"rate_limit_local_share = {share_text!r}: give a fraction below 1 such as 0.02 "
            "(0: every hit to the storage at once)"
        )
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
    return RateLimiter(
        storage, limits, local_share=share if getattr(storage, "shared", True) else 0
    )
