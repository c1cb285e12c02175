"""The read source: standby when close enough, else the primary with the reason (no database)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, create_engine

from engine.errors import ConfigError
from engine.readsource import (
    PRIMARY,
    STANDBY,
    ReadSource,
    StandbyState,
    format_position,
    parse_position,
    read_settings,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engines() -> tuple[Engine, Engine]:
    return create_engine("sqlite://"), create_engine("sqlite://")


def source(
    engines: tuple[Engine, Engine],
    states: list[StandbyState | Callable[[], StandbyState]],
    clock: Clock,
    **kw: float,
) -> tuple[ReadSource, list[int]]:
    calls: list[int] = []

    def measure(_p: Engine, _s: Engine) -> StandbyState:
        calls.append(1)
        state = states.pop(0)
        return state() if callable(state) else state

    return ReadSource(*engines, monotonic=clock, measure_standby=measure, **kw), calls


def test_without_a_standby_every_read_goes_to_the_primary_silently(
    engines: tuple[Engine, Engine],
) -> None:
    reads = ReadSource(engines[0])
    choice = reads.choose()
    assert choice.source == PRIMARY and choice.header == "primary"
    assert reads.sessions(choice) is reads.primary_sessions and not reads.has_standby


def test_a_standby_within_the_bound_serves_and_its_lag_is_in_the_header(
    engines: tuple[Engine, Engine],
) -> None:
    clock = Clock()
    reads, _ = source(engines, [StandbyState(clock.now, 1000, 0.4)], clock, max_lag_seconds=5)
    choice = reads.choose()
    assert (choice.source, choice.header) == (STANDBY, "standby; lag=0.4 s")
    assert reads.sessions(choice) is reads.standby_sessions


def test_a_lagging_standby_sends_reads_to_the_primary_and_says_why(
    engines: tuple[Engine, Engine],
) -> None:
    clock = Clock()
    reads, _ = source(engines, [StandbyState(clock.now, 1000, 12.3)], clock, max_lag_seconds=5)
    choice = reads.choose()
    assert choice.source == PRIMARY
    assert choice.header == "primary; reason=standby lag 12.3 s > 5 s"
    assert reads.sessions(choice) is reads.primary_sessions


def test_a_measurement_is_reused_for_check_seconds_and_its_age_counts_as_lag(
    engines: tuple[Engine, Engine],
) -> None:
    clock = Clock()
    reads, calls = source(
        engines,
        [StandbyState(100.0, 1000, 0.0), StandbyState(103.0, 2000, 0.0)],
        clock,
        max_lag_seconds=1.5,
        check_seconds=2.0,
    )
    assert reads.choose().source == STANDBY
    clock.now = 101.0
    assert reads.choose().source == STANDBY and len(calls) == 1
    clock.now = 101.9  # still the first measurement, now 1.9 s old: past the 1.5 s bound
    assert reads.choose().header == "primary; reason=standby lag 1.9 s > 1.5 s"
    clock.now = 103.0
    assert reads.choose().source == STANDBY and len(calls) == 2


def test_a_reader_whose_write_the_standby_has_not_replayed_reads_the_primary(
    engines: tuple[Engine, Engine],
) -> None:
    clock = Clock()
    reads, calls = source(
        engines,
        [
            StandbyState(100.0, 1000, 0.0),
            StandbyState(100.0, 1500, 0.0),  # re-measured at once: still behind 2000
            StandbyState(100.0, 2500, 0.0),  # caught up
        ],
        clock,
        check_seconds=60,
    )
    assert reads.choose().source == STANDBY
    behind = reads.choose(min_position=2000)
    assert behind.source == PRIMARY
    assert behind.reason == f"standby has not replayed your last write ({format_position(2000)})"
    assert reads.choose(min_position=2000).source == STANDBY
    assert len(calls) == 3
    assert reads.choose(min_position=2000).source == STANDBY and len(calls) == 3


def test_an_unreachable_standby_sends_reads_to_the_primary(
    engines: tuple[Engine, Engine],
) -> None:
    clock = Clock()
    reads, _ = source(
        engines,
        [StandbyState(clock.now, None, None, problem="standby unreachable (timeout)")],
        clock,
    )
    assert reads.choose().header == "primary; reason=standby unreachable (timeout)"


def test_wal_positions_round_trip() -> None:
    assert parse_position("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_position(parse_position("16/B374D848") or 0) == "16/B374D848"
    assert parse_position("") is None and parse_position("nonsense") is None
    assert parse_position("zz/1") is None


def test_bad_read_settings_are_refused_with_the_setting_named() -> None:
    assert read_settings({}) == ("", 5.0, 1.0)
    with pytest.raises(ConfigError, match="read_max_lag_seconds='soon'"):
        read_settings({"read_max_lag_seconds": "soon"})
    with pytest.raises(ConfigError, match="read_check_seconds"):
        read_settings({"read_check_seconds": -1})
    with pytest.raises(ConfigError, match="PostgreSQL hot standby"):
        read_settings({"read_database_url": "sqlite:///replica.db"})


class FakeResult:
    def __init__(self, row: tuple[object, ...]) -> None:
        self.row = row

    def scalar(self) -> object:
        return self.row[0]

    def one(self) -> tuple[object, ...]:
        return self.row


class FakeConnection:
    def __init__(self, row: tuple[object, ...] | Exception) -> None:
        self.row = row
        self.dialect = type("Dialect", (), {"name": "postgresql"})()

    def __enter__(self) -> FakeConnection:
        if isinstance(self.row, Exception):
            raise self.row
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def exec_driver_sql(self, _sql: str) -> FakeResult:
        assert not isinstance(self.row, Exception)
        return FakeResult(self.row)


class FakeEngine:
    def __init__(self, row: tuple[object, ...] | Exception) -> None:
        self.row = row

    def connect(self) -> FakeConnection:
        return FakeConnection(self.row)


def _measure(primary_lsn: str, standby_row: tuple[object, ...] | Exception) -> StandbyState:
    from engine.readsource import measure

    return measure(FakeEngine((primary_lsn,)), FakeEngine(standby_row), now=1.0)  # type: ignore[arg-type]


def test_an_idle_primary_does_not_make_a_caught_up_standby_look_late() -> None:
    # Nothing committed for an hour, but the standby has replayed all the primary wrote.
    state = _measure("0/3000060", (True, "0/3000060", 3600.0))
    assert state.lag_seconds == 0.0 and not state.problem


def test_a_standby_behind_the_primary_lags_by_its_last_replayed_transactions_age() -> None:
    state = _measure("0/3000100", (True, "0/3000060", 12.3))
    assert state.lag_seconds == 12.3 and state.replay_position == 0x3000060


def test_what_is_not_a_usable_standby_is_named() -> None:
    from sqlalchemy.exc import OperationalError

    assert _measure("0/1", (False, None, None)).problem == "the read database is not a standby"
    assert _measure("0/1", (True, None, None)).problem == "standby has replayed nothing yet"
    assert _measure("0/5", (True, "0/1", None)).problem == "standby has replayed no transaction yet"
    down = OperationalError("SELECT 1", {}, Exception("connection refused\nmore"))
    assert _measure("0/1", down).problem == "standby unreachable (connection refused)"


def test_the_context_hands_out_a_read_unit_of_work_on_the_chosen_database(
    engines: tuple[Engine, Engine],
) -> None:
    from engine.context import build_context

    ctx = build_context(engine=engines[0])
    with ctx.reading() as (uow, choice):  # no standby configured: the primary, silently
        assert choice.header == "primary" and uow.session.get_bind() is engines[0]
    clock = Clock()
    ctx.reads, _ = source(engines, [StandbyState(clock.now, 10, 0.2)], clock)
    with ctx.reading() as (uow, choice):
        assert choice.source == STANDBY and uow.session.get_bind() is engines[1]
    assert ctx.with_clock(clock).reads is ctx.reads
