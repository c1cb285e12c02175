"""The three-days-down test: a stopped worker catches up at its first sweep, in due-time order;
the ladder steps above a breach that fell due meanwhile are armed by its firing and fire in the
same sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine import db, deadlines, timers
from engine.clock import FixedClock
from engine.models import Ticket, Timer
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

    # What the ladder says fell due in the window, step by step (``deadlines.ladder_times``):
    # the steps above a breach were not armed yet; each is armed when the one below fires.
    ctx = ctx_of(sessions)
    expected: set[tuple[int, str, int, datetime]] = set()
    with ctx.unit_of_work() as uow:
        for t in uow.session.execute(select(Ticket.id, Ticket.due_at, Ticket.campaign_id)):
            clock = deadlines.campaign_clock(uow, t.campaign_id)
            ladder = uow.registry.get("consultation", 1).ladder
            for kind, level, at in deadlines.ladder_times(t.due_at, ladder, clock):
                if down_from < at <= back_at:
                    expected.add((t.id, kind, level, at))
    assert len(expected) > len(missed), "steps above a breach must fall due while down too"

    result = swept(ctx, now=back_at, batch=4)
    with sessions() as s:
        rows = {
            r.id: r
            for r in s.execute(
                select(Timer.id, Timer.ticket_id, Timer.kind, Timer.level, Timer.created_at)
            )
        }
    fired = [(rows[f.timer_id].ticket_id, f.kind, f.level, f.due_at) for f in result.firings]
    # Every step that fell due fired, once, at the first sweep back.
    assert sorted(fired) == sorted(expected)
    assert all(f.fired_at == back_at for f in result.firings)
    # The timers that were armed fire in due-time order; a step armed by its breach's firing
    # comes after it, and each ticket's steps in due order.
    existing = [f for f in result.firings if f.timer_id in {m.id for m in missed}]
    assert [f.timer_id for f in existing] == [m.id for m in missed]
    for ticket_id in {t for t, *_ in fired}:
        own = [f for f in result.firings if rows[f.timer_id].ticket_id == ticket_id]
        assert [f.due_at for f in own] == sorted(f.due_at for f in own)
    # A step armed by the sweep belongs to its breach's clock (the as-of report joins them).
    breach_created = {
        r.ticket_id: r.created_at for r in rows.values() if r.kind == deadlines.BREACH
    }
    assert all(
        r.created_at == breach_created[r.ticket_id]
        for r in rows.values()
        if r.kind == deadlines.LADDER
    )
    with sessions() as s:
        assert timers.due_count(s, now=back_at) == 0
        # The level each ticket reached is the highest step due by then.
        levels = {
            r.id: r.escalation_level for r in s.execute(select(Ticket.id, Ticket.escalation_level))
        }
    for ticket_id, *_ in fired:
        top = max(
            (lv for t, k, lv, _ in expected if t == ticket_id and k != deadlines.WARNING),
            default=0,
        )
        assert levels[ticket_id] >= top
