"""The sweep: each ladder step fires once, logged by the system, notices to the right people."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from engine import audit, db, timers
from engine.context import build_context
from engine.models import Notification, Ticket, Timer, TransitionLog, User
from engine.tickets import fire, get_actor
from tests.conftest import as_uow, ctx_of
from tests.integration.deadline_support import Reader, assigned_ticket, local, swept, ticket


def _inbox(session: Session, number: str) -> dict[str, list[str]]:
    t = ticket(session, number)
    rows = session.execute(
        select(User.username, Notification.kind)
        .join(User, User.id == Notification.user_id)
        .where(Notification.ticket_id == t.id)
        .order_by(Notification.id)
    ).all()
    out: dict[str, list[str]] = {}
    for username, kind in rows:
        out.setdefault(kind, []).append(username)
    return out


def test_ladder_fires_each_step_once_in_order(engine: Engine, session: Session) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    read = Reader(sessions)

    warned = swept(ctx_of(sessions), now=local(2005, 3, 14, 1))
    assert [(f.kind, f.level) for f in warned.firings] == [("warning", 0)]
    assert Reader(db.session_factory(engine)).ticket(number).escalation_level == 0

    breach = swept(ctx_of(sessions), now=local(2005, 3, 15, 0, 1))
    assert [(f.kind, f.level) for f in breach.firings] == [("breach", 1)]
    assert read.ticket(number).escalation_level == 1
    assert swept(ctx_of(sessions), now=local(2005, 3, 15, 0, 2)).firings == []

    later = swept(ctx_of(sessions), now=local(2005, 3, 30))
    assert [(f.kind, f.level) for f in later.firings] == [("ladder", 2), ("ladder", 3)]
    t = read.ticket(number)
    assert t.escalation_level == 3
    assert read.pending(number) == []
    assert read.log(number)[-4:] == [
        ("deadline_warning", "system"),
        ("overdue", "system"),
        ("escalated", "system"),
        ("escalated", "system"),
    ]
    with sessions() as s:
        inbox = _inbox(s, number)
        assert audit.verify(s) == []
    assert inbox == {
        # routed to the brigade (its leader assigns), then assigned to the officer
        "assignment": ["traffic.leader", "traffic.officer"],
        "warning": ["traffic.officer"],
        "reminder": ["traffic.officer"],
        "chase": ["traffic.leader"],
        "board": ["supervisor"],
        "leadership": ["leadership"],
    }


def test_a_replayed_firing_is_a_no_op(engine: Engine, session: Session) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    read = Reader(sessions)
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 15, 1))
    version = read.ticket(number).version
    # Re-running the same claim/effect on already-fired timers changes nothing.
    with sessions() as s:
        again = timers.fire_due_timers(as_uow(s), now=local(2005, 3, 15, 1))
        s.commit()
    assert again.firings == []
    assert read.ticket(number).version == version


def test_rectified_in_time_fires_nothing_of_the_old_clock(
    engine: Engine, session: Session, uow
) -> None:
    now = local(2005, 2, 28, 10)
    number = assigned_ticket(session, now)
    officer = get_actor(session, "traffic.officer")
    fire(uow, number, "rectify", actor=officer, data={"measures": "m"}, now=now)
    fire(
        uow,
        number,
        "feed_back",
        actor=officer,
        data={"method": "phone", "text": "t", "date": "2005-02-28"},
        now=now,
    )
    session.commit()
    result = swept(build_context(engine=engine), now=local(2005, 4, 30))
    assert result.firings == []
    assert Reader(db.session_factory(engine)).ticket(number).escalation_level == 0


def test_sweep_batches_and_nothing_due_is_cheap(engine: Engine, session: Session) -> None:
    start = local(2005, 2, 28, 10)
    numbers = [assigned_ticket(session, start + timedelta(minutes=i)) for i in range(7)]
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    result = swept(ctx_of(sessions), now=local(2005, 3, 15, 12), batch=3)
    assert len(result.firings) == 14  # a warning and a breach each
    assert [f.due_at for f in result.firings] == sorted(f.due_at for f in result.firings)
    assert {f.ticket for f in result.firings} == set(numbers)
    with sessions() as s:
        assert timers.due_count(s, now=local(2005, 3, 15, 12)) == 0
        fired = s.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))
        assert fired == 14


def test_firings_alike_share_their_plan_but_log_and_notify_each_ticket_by_name(
    engine: Engine, session: Session
) -> None:
    """The sweep works out a step's recipients and texts once for tickets alike (same
    workflow, state, unit, officer, due time); each log row still records its own timer in
    canonical JSON, each notice names its own ticket, and the chains verify."""
    start = local(2005, 2, 28, 10)
    numbers = [assigned_ticket(session, start) for _ in range(3)]
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    warned = swept(ctx_of(sessions), now=local(2005, 3, 14, 1))
    breached = swept(ctx_of(sessions), now=local(2005, 3, 15, 12))
    firings = warned.firings + breached.firings
    assert sorted((f.kind, f.ticket) for f in firings) == sorted(
        (kind, n) for n in numbers for kind in ("breach", "warning")
    )
    by_timer = {f.timer_id: f for f in firings}
    with sessions() as s:
        assert audit.verify(s) == []
        rows = s.execute(
            select(TransitionLog.trigger, TransitionLog.data, Ticket.number)
            .join(Ticket, Ticket.id == TransitionLog.ticket_id)
            .where(TransitionLog.actor == "system")
        ).all()
        assert len(rows) == 6
        for trigger, data, number in rows:
            logged = json.loads(data)
            assert data == audit.canonical_json(logged)  # the template renders it exactly
            firing = by_timer[logged["timer"]]
            assert firing.ticket == number
            assert trigger == ("deadline_warning" if firing.kind == "warning" else "overdue")
            assert ("level" in logged) == (firing.kind != "warning")
            assert logged["due_at"] == "2005-03-15 00:00"
        notices = s.execute(
            select(Notification.id, Notification.kind, Notification.subject, Ticket.number)
            .join(Ticket, Ticket.id == Notification.ticket_id)
            .where(Notification.kind.in_(["warning", "reminder", "chase"]))
        ).all()
    assert len(notices) == 3 * 3  # a warning, a reminder and a chase notice per ticket
    for _, kind, subject, number in notices:
        assert subject.startswith(f"{number} is "), subject
        assert ("overdue" in subject) == (kind != "warning")
    notified = {nid for f in firings for nid in f.notified}
    every = set(warned.notification_ids) | set(breached.notification_ids)
    assert notified == {n.id for n in notices} == every


@pytest.mark.postgres
def test_a_ticket_busy_in_a_user_transaction_is_deferred_not_waited_for(
    pg_template: str,
) -> None:
    from tests.conftest import fresh_pg_database

    url, drop = fresh_pg_database(pg_template)
    try:
        engine = db.make_engine(url)
        sessions = db.session_factory(engine)
        with sessions() as s:
            busy = assigned_ticket(s, local(2005, 2, 28, 10))
            free = assigned_ticket(s, local(2005, 2, 28, 11))
            s.commit()
        with sessions() as user:
            # A user's transaction is working on the ticket (holds its row lock).
            user.execute(select(Ticket.id).where(Ticket.number == busy).with_for_update())
            result = swept(ctx_of(sessions), now=local(2005, 3, 15, 9))
            assert {f.ticket for f in result.firings} == {free}
            assert result.deferred == 2  # warning and breach of the busy ticket
            user.rollback()
        later = swept(ctx_of(sessions), now=local(2005, 3, 15, 9, 5))
        assert {f.ticket for f in later.firings} == {busy}
        engine.dispose()
    finally:
        drop()  # type: ignore[operator]


class TickingCounter:
    """A fake ``perf_counter``: each reading is ``tick`` seconds after the one before."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_a_large_sweep_commits_within_its_time_budget_and_lets_writers_in(
    engine: Engine, session: Session
) -> None:
    """Issue 13 item 9: a batch is bounded by time as well as size. With every chunk of 2
    timers taking 0.3 s (a fake clock), a 1 s budget commits every 4 chunks although the
    batch allows 500; between two commits an API-style write (rectify, which cancels the
    ticket's pending timers) goes through at once, and the sweep then leaves those timers be."""
    start = local(2005, 2, 28, 10)
    numbers = [assigned_ticket(session, start + timedelta(minutes=i)) for i in range(12)]
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    if engine.dialect.name == "sqlite":
        writer_engine = db.make_engine(str(engine.url))

        @sa_event.listens_for(writer_engine, "connect")
        def _no_wait(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA busy_timeout=0")  # a held lock fails at once

    else:
        writer_engine = db.make_engine(
            engine.url.render_as_string(hide_password=False),
            connect_args={"options": "-c lock_timeout=1"},
        )
    writer = db.session_factory(writer_engine)
    at = local(2005, 3, 15, 12)
    sizes: list[int] = []
    written: list[tuple[str, int]] = []

    def between_batches(part: timers.SweepResult) -> None:
        sizes.append(len(part.firings))
        if len(sizes) == 1:  # a user's write arrives while most of the backlog is still due
            with sessions() as s:
                still_due = timers.due_count(s, now=at)
            with writer() as w:
                officer = get_actor(w, "traffic.officer")
                fire(
                    as_uow(w), numbers[-1], "rectify", actor=officer, data={"measures": "m"}, now=at
                )
                w.commit()
            written.append((numbers[-1], still_due))

    totals = timers.sweep(
        ctx_of(sessions),
        now=at,
        batch=500,
        chunk=2,
        budget_seconds=1.0,
        perf_counter=TickingCounter(0.3),
        after_commit=between_batches,
    )
    assert max(sizes) == 8 and totals.transactions == len(sizes) >= 3
    assert totals.longest_transaction_seconds <= 1.0 + 2 * 0.3
    assert written == [(numbers[-1], 24 - 8)]  # the write went in with 16 timers still due
    assert totals.fired == 24 - 2  # the rectified ticket's warning and breach were cancelled
    assert not hasattr(totals, "firings")  # counts only: memory flat in the backlog
    read = Reader(sessions)
    assert read.log(numbers[-1])[-1] == ("rectify", "traffic.officer")  # no firing logged
    assert read.log(numbers[0])[-2:] == [("deadline_warning", "system"), ("overdue", "system")]
    with sessions() as s:
        assert timers.due_count(s, now=at) == 0
        assert audit.verify(s) == []
    writer_engine.dispose()


def test_slow_chunks_are_halved_so_transactions_stay_near_the_budget(
    engine: Engine, session: Session
) -> None:
    """On a loaded machine a chunk can take longer than half the budget: the chunks after it
    are halved (down to one timer), so each later transaction overshoots the budget less."""
    start = local(2005, 2, 28, 10)
    for i in range(8):
        assigned_ticket(session, start + timedelta(minutes=i))
    session.commit()
    session.close()
    sizes: list[int] = []
    totals = timers.sweep(
        ctx_of(db.session_factory(engine)),
        now=local(2005, 3, 15, 12),
        batch=500,
        chunk=4,
        budget_seconds=1.0,
        perf_counter=TickingCounter(0.6),  # every chunk "takes" 0.6 s, over half the budget
        after_commit=lambda part: sizes.append(len(part.firings)),
    )
    assert sizes[0] == 4 + 2  # a chunk of 4, then one of 2, then the budget is spent
    assert all(n <= 2 for n in sizes[1:])  # one timer a chunk from then on
    assert totals.fired == 16 == sum(sizes)


def test_chunks_grow_back_once_a_stall_has_passed(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk that stalls halves the chunks after it; once one takes under a quarter of the
    budget they double again, up to ``chunk``, so the rest of a backlog is not swept in the
    small chunks a passing stall left behind."""
    start = local(2005, 2, 28, 10)
    for i in range(8):
        assigned_ticket(session, start + timedelta(minutes=i))
    session.commit()
    session.close()
    limits: list[int] = []
    real = timers.fire_due_timers

    def recording(uow, **kw):  # type: ignore[no-untyped-def]
        limits.append(kw["limit"])
        return real(uow, **kw)

    monkeypatch.setattr(timers, "fire_due_timers", recording)
    ticks = iter([0.0, 0.6])  # the first chunk "takes" 0.6 s of a 1 s budget, the rest 0.1 s

    class StallThenQuick:
        now = 0.0

        def __call__(self) -> float:
            self.now += next(ticks, 0.1)
            return self.now

    totals = timers.sweep(
        ctx_of(db.session_factory(engine)),
        now=local(2005, 3, 15, 12),
        batch=500,
        chunk=4,
        budget_seconds=1.0,
        perf_counter=StallThenQuick(),
    )
    assert limits[:4] == [4, 2, 4, 4]  # halved after the stall, back to 4 (never above)
    assert max(limits) == 4
    assert totals.fired == 16 and totals.transactions == 1


def test_sweep_refuses_a_nonsense_budget(engine: Engine) -> None:
    with pytest.raises(ValueError, match="budget positive"):
        timers.sweep(ctx_of(db.session_factory(engine)), now=local(2005, 3, 15), budget_seconds=0)
