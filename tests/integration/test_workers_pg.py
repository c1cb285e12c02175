"""Four worker processes sweep the same 10,000 due timers on PostgreSQL: each fires exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bench.timers import check_fired_once, seed_due_timers
from engine import db
from engine.context import build_context
from engine.models import Notification, Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TIMERS = 10_000
WORKERS = 4
SWEEP_AT = datetime(2005, 3, 18, 1, 0, tzinfo=UTC)


def _worker(url: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:  # type: ignore[name-defined]
    from engine import timers

    engine = db.make_engine(url)
    start.wait(30)
    fired: list[int] = []
    timers.sweep(
        build_context(engine=engine),
        now=SWEEP_AT,
        batch=100,
        after_commit=lambda part: fired.extend(f.timer_id for f in part.firings),
    )
    out.put(fired)
    engine.dispose()


def test_four_workers_fire_each_timer_once(pg_template: str) -> None:
    from tests.conftest import fresh_pg_database

    url, drop = fresh_pg_database(pg_template)
    try:
        engine = db.make_engine(url)
        seed_due_timers(engine, TIMERS)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(url, start, out)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        start.set()
        fired = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        every = [t for part in fired for t in part]
        assert len(every) == TIMERS
        assert len(set(every)) == TIMERS  # none twice
        assert sum(1 for part in fired if part) >= 2  # the load was shared
        assert check_fired_once(engine, TIMERS) == {
            "pending": 0,
            "fired": TIMERS,
            "logged": TIMERS,
            "twice": 0,
            "armed": TIMERS,  # each fired breach armed its ladder's next step
        }
        with db.session_factory(engine)() as s:
            assert s.scalar(select(func.count()).select_from(Notification)) == 2 * TIMERS
            assert set(s.scalars(select(Ticket.escalation_level).distinct())) == {1}
            assert s.scalar(select(func.max(Ticket.version))) == 4
        engine.dispose()
    finally:
        drop()  # type: ignore[operator]
