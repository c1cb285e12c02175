"""Due times per state: working days, the campaign cap, the exempt state, stopping and restarting."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from engine.tickets import fire, get_actor
from tests.integration.deadline_support import (
    assigned_ticket,
    local,
    pending_timers,
    ticket,
)


def test_assigned_ticket_is_due_in_ten_working_days_with_its_ladder(session: Session) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 15)
    assert t.due_rule == "state assigned: 10 working days"
    assert t.escalation_level == 0
    # The warning and the ladder's first step; each later step is armed when the one below
    # it fires (tests/integration/test_sweep_downtime.py follows this ticket's ladder).
    assert pending_timers(session, number) == [
        ("warning", 0, local(2005, 3, 14)),
        ("breach", 1, local(2005, 3, 15)),
    ]


def test_new_ticket_gets_the_received_state_limit(session: Session, uow) -> None:
    from engine.tickets import create_ticket

    created = create_ticket(
        uow,
        campaign="consultation-2005",
        text="x",
        actor=get_actor(session, "clerk"),
        now=local(2005, 2, 28, 10),
    )
    t = ticket(session, created.number)
    assert t.due_at == local(2005, 3, 3)  # Mar 1 and 2
    assert t.due_rule == "state received: 2 working days"


def test_campaign_deadline_caps_the_state_limit(session: Session) -> None:
    number = assigned_ticket(session, local(2005, 3, 8, 14))
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 18)  # "feedback before March 18"
    assert t.due_rule == "campaign deadline 2005-03-18"


def test_after_the_campaign_deadline_the_state_limit_applies(session: Session) -> None:
    number = assigned_ticket(session, local(2005, 3, 21, 9))
    t = ticket(session, number)
    assert t.due_at == local(2005, 4, 5)  # 10 working days: Mar 22 .. Apr 4
    assert t.due_rule == "state assigned: 10 working days"


def test_escalated_to_government_is_not_capped(session: Session, uow) -> None:
    number = assigned_ticket(session, local(2005, 3, 15, 9))
    fire(
        uow,
        number,
        "escalate_to_government",
        actor=get_actor(session, "supervisor"),
        data={"receiving_body": "County government", "reason": "land use"},
        now=local(2005, 3, 15, 9),
    )
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 23)  # 5 working days: 16, 17, 18, 21, 22
    assert t.due_rule == "state escalated: 5 working days"


def test_rectifying_stops_the_old_clock_and_feedback_ends_it(session: Session, uow) -> None:
    now = local(2005, 2, 28, 10)
    number = assigned_ticket(session, now)
    officer = get_actor(session, "traffic.officer")
    fire(uow, number, "rectify", actor=officer, data={"measures": "fixed"}, now=now)
    t = ticket(session, number)
    assert t.due_rule == "state rectified: 3 working days"
    assert [k for k, _, _ in pending_timers(session, number)] == ["warning", "breach"]
    assert all(due < local(2005, 3, 15) for _, _, due in pending_timers(session, number))
    fire(
        uow,
        number,
        "feed_back",
        actor=officer,
        data={"method": "phone", "text": "done", "date": "2005-02-28"},
        now=now + timedelta(hours=1),
    )
    t = ticket(session, number)
    assert (t.due_at, t.due_rule, t.escalation_level) == (None, None, 0)
    assert pending_timers(session, number) == []


def test_reassign_keeps_the_clock_and_reopen_starts_a_new_one(session: Session, uow) -> None:
    now = local(2005, 2, 28, 10)
    number = assigned_ticket(session, now)
    before = pending_timers(session, number)
    supervisor = get_actor(session, "supervisor")
    fire(
        uow,
        number,
        "reassign",
        actor=supervisor,
        data={"unit": "luohe-station", "officer": "luohe.officer", "reason": "territory"},
        now=now + timedelta(days=1),
    )
    assert pending_timers(session, number) == before
    officer = get_actor(session, "luohe.officer")
    fire(
        uow,
        number,
        "rectify",
        actor=officer,
        data={"measures": "m"},
        now=now + timedelta(days=1),
    )
    fire(
        uow,
        number,
        "feed_back",
        actor=officer,
        data={"method": "visit", "text": "t", "date": "2005-03-01"},
        now=now + timedelta(days=1),
    )
    reopened_at = local(2005, 3, 7, 9)
    fire(uow, number, "reopen", actor=supervisor, data={"reason": "unsatisfied"}, now=reopened_at)
    t = ticket(session, number)
    assert t.state == "assigned"
    assert t.due_at == local(2005, 3, 18)  # 10 working days would be Mar 22: capped
    assert [k for k, _, _ in pending_timers(session, number)] == ["warning", "breach"]


def _timer_rows(session: Session, number: str) -> list[tuple]:  # type: ignore[type-arg]
    from sqlalchemy import select

    from engine.models import Timer

    t = ticket(session, number)
    return [
        tuple(r)
        for r in session.execute(
            select(Timer.id, Timer.kind, Timer.due_at, Timer.created_at, Timer.cancelled_at)
            .where(Timer.ticket_id == t.id)
            .order_by(Timer.id)
        )
    ]


def test_entering_a_state_with_the_same_due_time_keeps_the_running_timers(
    session: Session, uow
) -> None:  # type: ignore[no-untyped-def]
    """Categorized before the campaign deadline caps both states: the new clock would be the
    running one (same due time, level 0, warning and breach ahead), so its timers stand —
    the same rows, armed when the clock started — and only the rule changes."""
    from tests.integration.deadline_support import assign, categorized_ticket

    categorized = local(2005, 3, 15, 10)
    number = categorized_ticket(uow, categorized).number
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 18)
    before = _timer_rows(session, number)
    assert [(kind, cancelled) for _, kind, _, _, cancelled in before][-2:] == [
        ("warning", None),
        ("breach", None),
    ]
    assign(uow, number, local(2005, 3, 16, 10))
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 18)
    assert t.due_rule == "campaign deadline 2005-03-18"
    assert _timer_rows(session, number) == before
    assert pending_timers(session, number) == [
        ("warning", 0, local(2005, 3, 17)),
        ("breach", 1, local(2005, 3, 18)),
    ]


def test_a_new_clock_is_armed_when_its_warning_would_be_past(session: Session, uow) -> None:  # type: ignore[no-untyped-def]
    """The same due time, but the warning's time has come: the running clock's warning is
    cancelled and the new clock arms the breach alone (as any state entry after its
    warning time does)."""
    from tests.integration.deadline_support import assign, categorized_ticket

    number = categorized_ticket(uow, local(2005, 3, 16, 10)).number
    assert ticket(session, number).due_at == local(2005, 3, 18)
    assign(uow, number, local(2005, 3, 17, 10))
    assert ticket(session, number).due_at == local(2005, 3, 18)
    assert pending_timers(session, number) == [("breach", 1, local(2005, 3, 18))]
    warnings = [at for _, kind, _, _, at in _timer_rows(session, number) if kind == "warning"]
    assert warnings and all(at is not None for at in warnings)  # cancelled, none pending


def test_keeps_clock_only_for_the_same_due_time_at_level_0_with_every_timer_ahead() -> None:
    from engine.deadlines import BREACH, WARNING, keeps_clock
    from engine.workflow import Ladder

    due, now = local(2005, 3, 18), local(2005, 3, 16, 10)
    ladder = Ladder(warning_before_hours=24)
    times = [(WARNING, 0, local(2005, 3, 17)), (BREACH, 1, due)]
    same = due
    assert keeps_clock(ladder, times, same, due, 0, now)
    assert not keeps_clock(ladder, times, same, due, 1, now)  # the ladder has climbed
    assert not keeps_clock(ladder, times, local(2005, 3, 19), due, 0, now)
    assert not keeps_clock(ladder, times, same, None, 0, now)  # no running clock
    assert not keeps_clock(ladder, times[1:], same, due, 0, now)  # the warning is past
    late = local(2005, 3, 18, 1)
    assert not keeps_clock(ladder, [(BREACH, 1, due)], same, due, 0, late)
