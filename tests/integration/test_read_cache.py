"""The campaign clock is read once per process and a few seconds (engine.readcache); an
administrator's change through engine.organisation takes effect at the next transition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, select

from engine.context import build_context
from engine.models import Ticket
from engine.organisation import read_toml, upsert_campaign
from engine.readcache import ReadCache
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, get_actor

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 3, 10, 2, 0, tzinfo=UTC)  # a Thursday: due Monday, before the cap


def test_campaign_clock_cached_and_invalidated_by_a_change(engine: Engine) -> None:
    ctx = build_context(engine=engine)
    reads: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        # the clock's own read (the administrator's upsert reads the whole row, ticket_seq too)
        if (
            statement.startswith("SELECT")
            and "rectification_deadline" in statement
            and ("ticket_seq" not in statement)
        ):
            reads.append(statement)

    def new_ticket() -> Ticket:
        with ctx.unit_of_work() as uow:
            clerk = get_actor(uow.session, "clerk")
            number = create_ticket(uow, campaign=CAMPAIGN, text="x", actor=clerk, now=NOW).number
        with ctx.sessions() as s:
            return s.scalars(select(Ticket).where(Ticket.number == number)).one()

    first, second = new_ticket(), new_ticket()
    assert len(reads) == 1  # the second transition used the cached clock
    assert first.due_rule == second.due_rule == "state received: 2 working days"

    data = read_toml(PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml")
    data["rectification_deadline"] = datetime(2005, 3, 11, 0, 0, tzinfo=UTC)  # an earlier cap
    with ctx.unit_of_work() as uow:
        upsert_campaign(uow, data)
    third = new_ticket()
    assert len(reads) == 2  # read again after the change
    assert third.due_rule == "campaign deadline 2005-03-11"
    event.remove(engine, "before_cursor_execute", _count)


def test_no_timer_statement_when_the_ticket_has_no_clock(engine: Engine) -> None:
    """Issue 15 item 2: a ticket without a due time has no pending timers, so leaving its
    state cancels nothing and runs no statement; a clocked ticket still cancels its own."""
    from engine.tickets import fire
    from tests.integration.deadline_support import assigned_ticket, local

    ctx = build_context(engine=engine)
    at = local(2005, 3, 1, 10)
    with ctx.unit_of_work() as uow:
        number = assigned_ticket(uow, at)
    cancels: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE timers SET cancelled_at"):
            cancels.append(statement)

    def step(trigger: str, user: str, data: dict[str, str]) -> int:
        before = len(cancels)
        with ctx.unit_of_work() as uow:
            fire(uow, number, trigger, actor=get_actor(uow.session, user), data=data, now=at)
        return len(cancels) - before

    officer = "traffic.officer"
    assert step("rectify", officer, {"measures": "m"}) == 1  # assigned had a clock
    feedback = {"method": "phone", "text": "t", "date": "2005-03-01"}
    assert step("feed_back", officer, feedback) == 1  # so had rectified
    assert step("reopen", "supervisor", {"reason": "not satisfied"}) == 0  # fed_back: none
    with ctx.sessions() as s:
        reopened = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert reopened.state == "assigned" and reopened.due_at is not None  # a new clock
    event.remove(engine, "before_cursor_execute", _count)


def _categorized(ctx, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    from engine.tickets import fire

    numbers = []
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        for _ in range(n):
            number = create_ticket(uow, campaign=CAMPAIGN, text="x", actor=clerk, now=NOW).number
            data = {"category": "traffic_management", "kind": "criticism"}
            fire(uow, number, "categorize", actor=clerk, data=data, now=NOW)
            numbers.append(number)
    return numbers


def _assign(ctx, number: str) -> None:  # type: ignore[no-untyped-def]
    from engine.actors import Actor
    from engine.tickets import fire

    with ctx.unit_of_work() as uow:
        supervisor = Actor("supervisor", "supervisor")  # as a request has it: no read
        data = {"unit": "traffic-brigade", "officer": "traffic.officer"}
        fire(uow, number, "assign", actor=supervisor, data=data, now=NOW)


def test_fire_reads_users_and_units_once_and_an_admin_change_drops_them(engine: Engine) -> None:
    """Issue 15 item 2: the users and units a transition names are read once per process and
    kept (no statement on the next transition); an administrator's change through
    engine.admin (adminlog.record) drops this process's copies at once: the next transition
    sees the officer deactivated."""
    import pytest

    from engine import admin
    from engine.errors import ValidationError

    clock = [100.0]
    ctx = build_context(engine=engine)
    ctx.cache = ReadCache(clock=lambda: clock[0])
    first, second, third = _categorized(ctx, 3)
    reads: list[str] = []

    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT") and (
            "FROM users" in statement or "FROM units" in statement
        ):
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        _assign(ctx, first)
        assert len(reads) == 2  # the officer and the unit, read once
        _assign(ctx, second)
        assert len(reads) == 2  # both from the cache
        with ctx.unit_of_work() as uow:
            admin.set_active(uow, get_actor(uow.session, "admin"), "traffic.officer", False)
        with pytest.raises(ValidationError, match="no active user 'traffic.officer'"):
            _assign(ctx, third)  # at once, no TTL to wait for
    finally:
        event.remove(engine, "before_cursor_execute", _count)


def test_another_process_sees_an_admin_change_within_the_ttl(engine: Engine) -> None:
    """A change made by another process (its own context) reaches this one's cached copy
    when the copy expires: at most ``DEFAULT_TTL_SECONDS`` (1.5 s) later, on this
    process's clock."""
    import pytest

    from engine import admin
    from engine.errors import ValidationError
    from engine.readcache import DEFAULT_TTL_SECONDS

    clock = [100.0]
    here = build_context(engine=engine)
    here.cache = ReadCache(clock=lambda: clock[0])
    elsewhere = build_context(engine=engine)  # the administrator's process
    first, second, third = _categorized(here, 3)
    _assign(here, first)  # the officer is now in this process's cache
    with elsewhere.unit_of_work() as uow:
        admin.set_active(uow, get_actor(uow.session, "admin"), "traffic.officer", False)
    clock[0] += DEFAULT_TTL_SECONDS - 0.1
    _assign(here, second)  # the copy is still fresh here: the stale answer is bounded...
    clock[0] += 0.2
    with pytest.raises(ValidationError, match="no active user 'traffic.officer'"):
        _assign(here, third)  # ...by the TTL
    assert DEFAULT_TTL_SECONDS <= 2


def test_who_must_act_is_kept_with_the_users_and_dropped_by_an_admin_change(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 item 2: the people a notice goes to are worked out once per workflow, state,
    unit and officer and kept with the cached users (no user is read again on the next such
    transition); an administrator's change drops both at once: a user deactivated is not
    notified by the very next transition."""
    from engine import admin, firing
    from engine.actors import Actor
    from engine.models import Notification, User
    from engine.tickets import fire

    clock = [100.0]
    ctx = build_context(engine=engine)
    ctx.cache = ReadCache(clock=lambda: clock[0])
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        numbers = [
            create_ticket(uow, campaign=CAMPAIGN, text="x", actor=clerk, now=NOW).number
            for _ in range(3)
        ]
    clerk = Actor("clerk", "clerk", id=clerk.id)  # as a request has it: no read

    def categorize(number: str) -> set[str]:
        """Categorize (routed to the traffic brigade); who was notified."""
        with ctx.unit_of_work() as uow:
            data = {"category": "traffic_management", "kind": "criticism"}
            fire(uow, number, "categorize", actor=clerk, data=data, now=NOW)
        with ctx.sessions() as s:
            return set(
                s.scalars(
                    select(User.username)
                    .join(Notification, Notification.user_id == User.id)
                    .join(Ticket, Ticket.id == Notification.ticket_id)
                    .where(Ticket.number == number)
                )
            )

    reads: list[str] = []

    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        own_question = "notifications" in statement  # the test's, not fire()'s
        if statement.startswith("SELECT") and "FROM users" in statement and not own_question:
            reads.append(statement)

    asked: list[str] = []
    check_actor = firing.check_actor

    def counted(policy, spec, ticket, actor):  # type: ignore[no-untyped-def]
        asked.append(actor.username)
        return check_actor(policy, spec, ticket, actor)

    monkeypatch.setattr(firing, "check_actor", counted)
    assert categorize(numbers[0]) == {"traffic.leader"}
    assert len(asked) > 1  # the clerk, then who can act on the categorized ticket
    asked.clear()
    event.listen(engine, "before_cursor_execute", _count)
    try:
        assert categorize(numbers[1]) == {"traffic.leader"}
        assert reads == []  # the users: kept
        assert asked == ["clerk"]  # the actor only: the answer was kept with the users
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    with ctx.unit_of_work() as uow:
        admin.set_active(uow, get_actor(uow.session, "admin"), "traffic.leader", False)
    assert "traffic.leader" not in categorize(numbers[2])  # at once, no TTL to wait for
