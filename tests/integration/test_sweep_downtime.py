"""The three-days-down test: a stopped worker catches up at its first sweep, in due-time order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine import db, timers
from engine.clock import FixedClock
from engine.models import Timer
from tests.conftest import ctx_of
from tests.integration.deadline_support import assigned_ticket, local, swept


def test_three_days_down_then_everything_fires_in_due_order(
    engine: Engine, session: Session
) -> None:
    # Tickets assigned at staggered times so their timers fall due over several days.
    for day, hour in [(28, 10), (28, 15), (1, 9), (2, 11), (3, 16)]:
        month = 2 if day == 28 else 3
        assigned_ticket(session, local(2005, month, day, hour))
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    clock = FixedClock(local(2005, 3, 14, 9))

    # The worker sweeps until it stops at 09:00 on March 14 (its last sweep fires what was due).
    timers.sweep(ctx_of(sessions), now=clock())
    with sessions() as s:
        assert timers.due_count(s, now=clock()) == 0
    # Down for three days; nothing sweeps.
    clock.advance(timedelta(days=3))
    down_from, back_at = local(2005, 3, 14, 9), clock()
    with sessions() as s:
        missed = s.execute(
            select(Timer.id, Timer.due_at)
            .where(Timer.due_at > down_from, Timer.due_at <= back_at, Timer.cancelled_at.is_(None))
            .order_by(Timer.due_at, Timer.id)
        ).all()
    assert missed, "the scenario must have timers falling due while the worker is down"

    result = swept(ctx_of(sessions), now=back_at, batch=4)
    assert [f.timer_id for f in result.firings] == [m.id for m in missed]
    assert [f.due_at for f in result.firings] == sorted(m.due_at for m in missed)
    assert all(f.fired_at == back_at for f in result.firings)
    with sessions() as s:
        assert timers.due_count(s, now=back_at) == 0
