"""Where reads that tolerate lag go: a PostgreSQL hot standby when it is close enough, else the primary.

Reports and inspector log searches may read from a standby (``read_database_url``)
when its replay is within ``read_max_lag_seconds`` of the primary; every other
page reads the primary, because it must see what its user just wrote. The
adapter asks ``ReadSource.choose()`` and opens its session on the engine the
choice names; the choice carries the reason in words, for a response header.

How the lag is measured: first the primary's WAL write position
(``pg_current_wal_lsn()``), then, on the standby, the position it has replayed.
If the standby has replayed at least that far it holds everything the primary
had written when asked: lag 0, whatever the time since the last commit (an idle
primary writes nothing, so ``now() - pg_last_xact_replay_timestamp()`` would grow
without the standby falling behind). Otherwise the lag is the age of the last
transaction it replayed, the usual measure while the primary is busy. A
measurement is reused for ``check_seconds``, counted on top of the lag it found.

Read-your-writes: after a write, the adapter keeps the primary's position
(``write_position``) for the user (session cookie, or a header for API clients)
and passes it back as ``min_position``; a standby that has not replayed that far
is not used for that user's reads until it has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError

log = logging.getLogger(__name__)

PRIMARY = "primary"
STANDBY = "standby"
HEADER = "X-Rectiflow-Read-Source"
# API clients carry their last write's position themselves (no session cookie).
WRITE_POSITION_HEADER = "X-Rectiflow-Write-Position"
MIN_POSITION_HEADER = "X-Rectiflow-Min-Position"


@dataclass(frozen=True)
class ReadChoice:
    """Which database a lag-tolerant read goes to, and why (in words, for a header)."""

    source: str
    reason: str = ""
    lag_seconds: float | None = None

    @property
    def header(self) -> str:
        """``standby; lag=0.4 s`` or ``primary; reason=standby lag 12.3 s > 5 s``."""
        if self.source == STANDBY:
            return f"{STANDBY}; lag={self.lag_seconds or 0.0:.1f} s"
        return PRIMARY + (f"; reason={self.reason}" if self.reason else "")


@dataclass(frozen=True)
class StandbyState:
    """One measurement: the standby's replayed position and its lag (None: unknown)."""

    measured_at: float
    replay_position: int | None
    lag_seconds: float | None
    problem: str = ""


def parse_position(text: str | None) -> int | None:
    """A WAL position ``16/B374D848`` as a number; None for empty or malformed text."""
    if not text or "/" not in text:
        return None
    high, _, low = text.strip().partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format_position(position: int) -> str:
    """The ``16/B374D848`` spelling of a WAL position."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def primary_position(connection: Any) -> int | None:
    """The primary's current WAL write position (None on SQLite)."""
    if connection.dialect.name != "postgresql":
        return None
    return parse_position(connection.exec_driver_sql("SELECT pg_current_wal_lsn()::text").scalar())


def measure(primary: Engine, standby: Engine, *, now: float) -> StandbyState:
    """Measure the standby against the primary; a failure is a state with ``problem`` set."""
    try:
        with primary.connect() as conn:
            written = primary_position(conn)
        with standby.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                "EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
            ).one()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:120]
        return StandbyState(now, None, None, problem=f"standby unreachable ({reason})")
    in_recovery, replayed_text, age = row
    if not in_recovery:
        return StandbyState(now, None, None, problem="the read database is not a standby")
    replayed = parse_position(replayed_text)
    if replayed is None:
        return StandbyState(now, None, None, problem="standby has replayed nothing yet")
    if written is not None and replayed >= written:
        return StandbyState(now, replayed, 0.0)
    if age is None:
        return StandbyState(now, replayed, None, problem="standby has replayed no transaction yet")
    return StandbyState(now, replayed, max(float(age), 0.0))


class ReadSource:
    """Chooses, per read, between the primary and an optional hot standby.

    ``standby=None`` (SQLite, or no ``read_database_url``) always chooses the
    primary, with no reason to report. Thread-safe: one measurement at a time,
    shared by every request of the process for ``check_seconds``.
    """

    def __init__(
        self,
        primary: Engine,
        standby: Engine | None = None,
        *,
        max_lag_seconds: float = 5.0,
        check_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        measure_standby: Callable[[Engine, Engine], StandbyState] | None = None,
        primary_sessions: sessionmaker[Session] | None = None,
    ) -> None:
        if max_lag_seconds < 0:
            raise ConfigError(f"read_max_lag_seconds must be 0 or more, got {max_lag_seconds}")
        self.primary = primary
        self.standby = standby
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self._monotonic = monotonic
        self._measure = measure_standby or (lambda p, s: measure(p, s, now=self._monotonic()))
        self._lock = threading.Lock()
        self._state: StandbyState | None = None
        self.primary_sessions = primary_sessions or sessionmaker(
            bind=primary, expire_on_commit=False
        )
        self.standby_sessions = (
            sessionmaker(bind=standby, expire_on_commit=False) if standby is not None else None
        )

    @property
    def has_standby(self) -> bool:
        return self.standby is not None

    def _current(self, *, fresh: bool = False) -> StandbyState:
        assert self.standby is not None
        with self._lock:
            state = self._state
            if (
                fresh
                or state is None
                or self._monotonic() - state.measured_at >= self.check_seconds
            ):
                state = self._measure(self.primary, self.standby)
                if state.problem:
                    log.warning("reads go to the primary: %s", state.problem)
                self._state = state
            return state

    def choose(self, *, min_position: int | None = None) -> ReadChoice:
        """The database for one lag-tolerant read; ``min_position``: the reader's last write."""
        if self.standby is None:
            return ReadChoice(PRIMARY)
        state = self._current()
        if min_position is not None and (state.replay_position or 0) < min_position:
            state = self._current(fresh=True)  # it may have caught up since the last look
        if state.problem:
            return ReadChoice(PRIMARY, state.problem)
        assert state.lag_seconds is not None
        # A measurement ``age`` seconds old bounds the lag now by lag + age.
        lag = state.lag_seconds + max(self._monotonic() - state.measured_at, 0.0)
        if lag > self.max_lag_seconds:
            return ReadChoice(
                PRIMARY, f"standby lag {lag:.1f} s > {self.max_lag_seconds:g} s", lag_seconds=lag
            )
        if min_position is not None and (state.replay_position or 0) < min_position:
            return ReadChoice(
                PRIMARY,
                f"standby has not replayed your last write ({format_position(min_position)})",
                lag_seconds=lag,
            )
        return ReadChoice(STANDBY, lag_seconds=lag)

    def sessions(self, choice: ReadChoice) -> sessionmaker[Session]:
        """The session factory for ``choice``."""
        if choice.source == STANDBY and self.standby_sessions is not None:
            return self.standby_sessions
        return self.primary_sessions

    def write_position(self) -> int | None:
        """The primary's WAL position now: after a commit, a reader's read-your-writes mark."""
        if self.standby is None:
            return None
        try:
            with self.primary.connect() as conn:
                return primary_position(conn)
        except SQLAlchemyError:
            log.warning("could not read the primary's WAL position", exc_info=True)
            return None

    def dispose(self) -> None:
        if self.standby is not None:
            self.standby.dispose()


def read_settings(settings: Mapping[str, Any]) -> tuple[str, float, float]:
    """``(read_database_url, read_max_lag_seconds, read_check_seconds)``, checked."""
    url = str(settings.get("read_database_url") or "").strip()
    values = []
    for key, default in (("read_max_lag_seconds", 5.0), ("read_check_seconds", 1.0)):
        raw = settings.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={raw!r}: expected a number of seconds") from None
        if value < 0:
            raise ConfigError(f"{key}={raw!r}: must be 0 or more")
        values.append(value)
    if url and not (url.startswith("postgresql") or url.startswith("postgres://")):
        raise ConfigError(
            f"read_database_url must be a PostgreSQL hot standby (postgresql://...), got {url!r}"
        )
    return url, values[0], values[1]


def build_read_source(
    settings: Mapping[str, Any],
    primary: Engine,
    make_engine: Callable[..., Engine],
    *,
    primary_sessions: sessionmaker[Session] | None = None,
) -> ReadSource:
    """A ReadSource from the settings: the standby's engine when ``read_database_url`` is set."""
    url, max_lag, check = read_settings(settings)
    if url and primary.dialect.name != "postgresql":
        raise ConfigError("read_database_url needs database_url on PostgreSQL (the primary)")
    standby = make_engine(url, connect_args={"connect_timeout": 3}) if url else None
    return ReadSource(
        primary,
        standby,
        max_lag_seconds=max_lag,
        check_seconds=check,
        primary_sessions=primary_sessions,
    )
