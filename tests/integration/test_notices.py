"""Notices to whoever must act (issue 12, item 5), on SQLite and PostgreSQL: assignment,
reassignment, a reopen and a returned item notify the people the ticket now waits for, never
the actor; ladder notices reach only people who can act on the ticket in its state; the clerks
are chased about what nobody categorized; after downtime a late warning is not sent beside the
overdue notice; the inbox opens on what is current."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine import db, notifications, timers
from engine.citizen import answer_feedback, decide_reopen_request
from engine.clock import FixedClock
from engine.context import EngineContext, build_context
from engine.errors import ValidationError
from engine.escalation import escalate_ticket
from engine.models import Notification, User
from engine.organisation import load_campaign_file
from engine.reassign import reassign_many
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow, ctx_of
from tests.integration.deadline_support import (
    CAMPAIGN,
    assign,
    assigned_ticket,
    categorized_ticket,
    local,
    ticket,
)


def _notices(session: Session, number: str) -> list[tuple[str, str, str | None]]:
    """(user, kind, message id) of every notice about ``number``, oldest first."""
    t = ticket(session, number)
    return [
        (r.username, r.kind, r.message_id)
        for r in session.execute(
            select(User.username, Notification.kind, Notification.message_id)
            .join(User, User.id == Notification.user_id)
            .where(Notification.ticket_id == t.id)
            .order_by(Notification.id)
        )
    ]


def _who(session: Session, number: str, kind: str) -> list[str]:
    return sorted({u for u, k, _ in _notices(session, number) if k == kind})


def test_assignment_notifies_the_new_officer_and_never_the_actor(session: Session) -> None:
    at = local(2005, 2, 28, 10)
    number = categorized_ticket(session, at).number
    # Routed to the brigade: its leader must now assign it (not the clerk who categorized).
    assert _notices(session, number) == [("traffic.leader", "assignment", "notice.assignment")]
    uow = as_uow(session)
    leader = get_actor(session, "traffic.leader")
    fire(
        uow,
        number,
        "assign",
        actor=leader,
        data={"unit": "traffic-brigade", "officer": "traffic.officer"},
        now=at,
    )
    assert _notices(session, number)[1:] == [("traffic.officer", "assignment", "notice.assignment")]
    # The officer's own work asks nobody to act but the officer: no notice.
    fire(
        uow,
        number,
        "rectify",
        actor=get_actor(session, "traffic.officer"),
        data={"measures": "x"},
        now=at,
    )
    assert len(_notices(session, number)) == 2
    (item,) = [
        i
        for i in notifications.list_inbox(session, get_actor(session, "traffic.officer").id)
        if i.kind == "assignment"
    ]
    assert item.params["trigger"] == "assign" and item.params["actor"] == "traffic.leader"
    assert item.subject == f"{number} is yours to act on: Assign by traffic.leader"


def test_a_refused_assignment_writes_no_notice(engine: Engine) -> None:
    sessions = db.session_factory(engine)
    at = local(2005, 2, 28, 10)
    with sessions() as s:
        number = categorized_ticket(s, at).number
        s.commit()
    with sessions() as s, pytest.raises(ValidationError):
        fire(
            as_uow(s),
            number,
            "assign",
            actor=get_actor(s, "supervisor"),
            data={"unit": "traffic-brigade", "officer": "nobody.at.all"},
            now=at,
        )
    with sessions() as s:
        assert [k for _, k, _ in _notices(s, number)] == ["assignment"]  # the routing one only


def test_reassignment_single_and_from_the_board_notify_the_new_officer(session: Session) -> None:
    at = local(2005, 2, 28, 10)
    first = assigned_ticket(session, at)
    second = assigned_ticket(session, at)
    uow = as_uow(session)
    supervisor = get_actor(session, "supervisor")
    fire(
        uow,
        first,
        "reassign",
        actor=supervisor,
        data={"unit": "luohe-station", "officer": "luohe.officer", "reason": "Their area"},
        now=at + timedelta(hours=1),
    )
    assert _notices(session, first)[-1] == ("luohe.officer", "assignment", "notice.assignment")
    done = reassign_many(
        uow,
        [second],
        actor=supervisor,
        unit="luohe-station",
        officer="luohe.officer",
        reason="Their area",
        now=at + timedelta(hours=2),
    )
    assert done.done == [second]
    assert _notices(session, second)[-1] == ("luohe.officer", "assignment", "notice.assignment")
    assert "supervisor" not in _who(session, second, "assignment")


def test_an_approved_reopen_request_notifies_the_officer(session: Session) -> None:
    at = local(2005, 2, 28, 10)
    uow = as_uow(session)
    officer = get_actor(session, "traffic.officer")
    created = categorized_ticket(session, at)
    number = created.number
    assign(uow, number, at)
    fire(uow, number, "rectify", actor=officer, data={"measures": "Fixed"}, now=at)
    fire(
        uow,
        number,
        "feed_back",
        actor=officer,
        data={"method": "phone", "text": "Fixed", "date": "2005-02-28"},
        now=at,
    )
    later = at + timedelta(days=1)
    request_id = answer_feedback(
        uow, number=number, secret=created.secret, satisfied=False, reason="Still out", now=later
    )
    decide_reopen_request(
        uow,
        request_id,
        actor=get_actor(session, "supervisor"),
        reopen=True,
        note="The light is still out",
        now=later,
    )
    assert _notices(session, number)[-1] == ("traffic.officer", "reopen", "notice.reopen")
    (item,) = [i for i in notifications.list_inbox(session, officer.id) if i.kind == "reopen"]  # type: ignore[arg-type]
    assert item.params["reason"] == "The light is still out"


# --- the hotline: dispatch, send back, returned reply, unsatisfied reopen -------------------

HOTLINE = "hotline-12345"
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def hctx(engine: Engine) -> EngineContext:
    ctx = build_context(engine=engine, clock=FixedClock(MONDAY))
    with ctx.unit_of_work() as uow:
        load_campaign_file(uow, PROJECT_ROOT / "config" / "campaigns" / f"{HOTLINE}.toml")
    return ctx


def test_hotline_returns_and_reopens_notify_who_must_act(hctx: EngineContext) -> None:
    t = MONDAY

    def go(trigger: str, who: str, **data: str) -> None:
        nonlocal t
        t += timedelta(minutes=10)
        with hctx.unit_of_work() as uow:
            fire(uow, number, trigger, actor=get_actor(uow.session, who), data=data, now=t)

    def last(kind: str) -> list[str]:
        with hctx.sessions() as s:
            return _who(s, number, kind)

    with hctx.unit_of_work() as uow:
        number = create_ticket(
            uow,
            campaign=HOTLINE,
            text="Loud music every night",
            kind="complaint",
            actor=get_actor(uow.session, "hotline.operator"),
            now=MONDAY,
            source="phone",
        ).number
    go("dispatch", "hotline.operator", category="noise", unit="luohe-station")
    assert last("assignment") == ["luohe.leader"]  # the station's leader signs for it
    go("send_back", "luohe.officer", reason="Not ours")
    # Back at the centre: whoever holds its intake queue and can dispatch, not the station.
    assert last("returned") == ["hotline.operator", "hotline.operator2", "hotline.supervisor"]
    go("dispatch", "hotline.operator2", category="noise", unit="luohe-station")
    go("sign_for", "luohe.leader", officer="luohe.officer")
    assert "luohe.officer" in last("assignment")
    go("reply", "luohe.officer", method="phone", text="Spoke to them", date="2026-03-02")
    with hctx.sessions() as s:
        before = len(_notices(s, number))
    go("return_reply", "hotline.operator", reason="Say what was done")
    with hctx.sessions() as s:
        assert _notices(s, number)[before:] == [("luohe.officer", "returned", "notice.returned")]
    go("reply", "luohe.officer", method="visit", text="Speakers taken", date="2026-03-02")
    go("accept_reply", "hotline.supervisor")
    go("reopen", "hotline.operator", rating="unsatisfied", reason="It started again")
    assert last("reopen") == ["luohe.officer"]


# --- the ladder reaches only people who can act -----------------------------------------------


def test_no_ladder_notice_to_someone_who_cannot_act(engine: Engine, session: Session) -> None:
    """A ticket escalated to the government: only a supervisor or a clerk can close it, so
    the officer and the unit leader are not chased; the clerks are, then the supervisors."""
    at = local(2005, 2, 28, 10)
    number = assigned_ticket(session, at)
    fire(
        as_uow(session),
        number,
        "escalate_to_government",
        actor=get_actor(session, "supervisor"),
        data={"receiving_body": "County government", "reason": "Road works are theirs"},
        now=at,
    )
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 7, 1))  # the warning (due Mar 8)
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 8, 1))  # overdue: level 1
    with sessions() as s:
        assert _who(s, number, "warning") == ["clerk"]
        assert _who(s, number, "reminder") == ["clerk"]
        assert _who(s, number, "chase") == []
        assert not {"traffic.officer", "traffic.leader"} & {
            u for u, k, _ in _notices(s, number) if k not in ("assignment",)
        }
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 20))  # levels 2 and 3
    with sessions() as s:
        assert _who(s, number, "board") == ["supervisor"]
        assert _who(s, number, "leadership") == ["leadership"]


def test_escalating_by_hand_reaches_only_people_who_can_act(session: Session) -> None:
    at = local(2005, 2, 28, 10)
    number = assigned_ticket(session, at)
    uow = as_uow(session)
    supervisor = get_actor(session, "supervisor")
    fire(
        uow,
        number,
        "escalate_to_government",
        actor=supervisor,
        data={"receiving_body": "County government", "reason": "Road works are theirs"},
        now=at,
    )
    escalate_ticket(uow, number, actor=supervisor, reason="Chase it", level=1, now=at)
    assert _who(session, number, "escalation") == ["clerk"]  # not the officer, not the leader


def test_an_assigned_ticket_still_chases_its_officer_and_leader(
    engine: Engine, session: Session
) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    session.close()
    timers.sweep(ctx_of(db.session_factory(engine)), now=local(2005, 3, 15, 1))
    with db.session_factory(engine)() as s:
        assert _who(s, number, "reminder") == ["traffic.officer"]
        assert _who(s, number, "chase") == ["traffic.leader"]


def test_uncategorized_tickets_chase_the_clerks(engine: Engine, session: Session) -> None:
    at = local(2005, 3, 8, 10)  # the sorting phase: categorizing is due in 2 working days
    clerk = get_actor(session, "clerk")
    number = create_ticket(as_uow(session), campaign=CAMPAIGN, text="x", actor=clerk, now=at).number
    session.commit()
    session.close()
    timers.sweep(ctx_of(db.session_factory(engine)), now=local(2005, 3, 11, 1))
    with db.session_factory(engine)() as s:
        t = ticket(s, number)
        assert t.escalation_level == 1
        assert _who(s, number, "reminder") == ["clerk"]  # not the supervisors: level 2 is theirs


def test_hotline_supervisor_still_reached_at_level_two(hctx: EngineContext) -> None:
    """The hotline's level 2 names its supervisors: they cannot reply for the unit, but they
    may escalate the ticket, so they are people who can act on it."""
    with hctx.unit_of_work() as uow:
        number = create_ticket(
            uow,
            campaign=HOTLINE,
            text="Water cut",
            kind="request",
            priority="urgent",
            actor=get_actor(uow.session, "hotline.operator"),
            now=MONDAY,
        ).number
        fire(
            uow,
            number,
            "dispatch",
            actor=get_actor(uow.session, "hotline.operator"),
            data={"category": "noise", "unit": "luohe-station"},
            now=MONDAY,
        )
        fire(
            uow,
            number,
            "sign_for",
            actor=get_actor(uow.session, "luohe.officer"),
            data={"officer": "luohe.officer"},
            now=MONDAY,
        )
    timers.sweep(hctx, now=MONDAY + timedelta(days=6))
    with hctx.sessions() as s:
        assert _who(s, number, "reminder") == ["luohe.officer"]
        assert "hotline.supervisor" in _who(s, number, "escalation")
        assert "hotline.operator" not in _who(s, number, "escalation")


# --- after downtime ------------------------------------------------------------------------


def test_after_downtime_a_late_warning_is_not_sent_beside_the_overdue_notice(
    engine: Engine, session: Session
) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    fired = timers.sweep(ctx_of(sessions), now=local(2005, 3, 16, 9))  # down since before both
    assert fired.warnings == 1 and fired.breaches == 1  # both timers fired and are logged
    with sessions() as s:
        assert _who(s, number, "warning") == []
        assert _who(s, number, "reminder") == ["traffic.officer"]


# --- the inbox opens on what is current ---------------------------------------------------


def test_the_inbox_folds_notices_about_tickets_that_moved_on(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    ctx = ctx_of(db.session_factory(engine))
    at = local(2005, 2, 28, 10)
    with ctx.unit_of_work() as uow:
        done = assigned_ticket(uow, at)
        still = assigned_ticket(uow, at + timedelta(minutes=1))
        officer = get_actor(uow.session, "traffic.officer")
        fire(uow, done, "rectify", actor=officer, data={"measures": "Fixed"}, now=at)
        fire(
            uow,
            done,
            "feed_back",
            actor=officer,
            data={"method": "phone", "text": "Fixed", "date": "2005-02-28"},
            now=at + timedelta(minutes=2),
        )
        notifications.send_daily_digest(uow.session, campaign=CAMPAIGN, now=local(2005, 3, 16, 8))
        notifications.send_daily_digest(uow.session, campaign=CAMPAIGN, now=local(2005, 3, 17, 8))
    with ctx.unit_of_work() as uow:
        mine = notifications.inbox(uow, officer.id)  # type: ignore[arg-type]
        assert [i.ticket_number for i in mine.current] == [still]
        assert [i.ticket_number for i in mine.older] == [done]
        assert mine.unread == 1 and notifications.unread_count(uow.session, officer.id) == 2  # type: ignore[arg-type]
        leader = get_actor(uow.session, "traffic.leader")
        theirs = notifications.inbox(uow, leader.id)  # type: ignore[arg-type]
        digests = [i for i in theirs.current + theirs.older if i.kind == "digest"]
        assert [i in theirs.current for i in digests] == [True, False]  # the newest is current
        # Another unit's leader cannot act on the brigade's tickets: nothing of theirs counts.
        outsider = get_actor(uow.session, "luohe.leader")
        assert notifications.current_unread_count(uow, outsider.id) == 0  # type: ignore[arg-type]


def test_a_notice_reads_in_each_readers_language_on_pages_and_in_letters(
    ctx: EngineContext, session: Session
) -> None:
    """The mailer and the pages render a notice from its message id and parameters."""
    from engine.i18n import reader_for
    from engine.messages import notice_text

    number = assigned_ticket(session, local(2005, 2, 28, 10))
    officer = get_actor(session, "traffic.officer")
    (item,) = [i for i in notifications.list_inbox(session, officer.id) if i.kind == "assignment"]  # type: ignore[arg-type]
    texts = {
        locale: notice_text(
            item, reader_for(ctx.settings, locale, registry=ctx.registry, policy=ctx.policy)
        )
        for locale in ("zh_CN", "en")
    }
    assert texts["zh_CN"]["subject"] == f"{number} 待您办理：supervisor 交办"
    assert texts["zh_CN"]["body"] == "当前：已交办责任民警。"
    assert texts["en"]["subject"] == f"{number} is yours to act on: Assign by supervisor"
    unknown = notifications.InboxItem(**{**item.__dict__, "message_id": "notice.nonexistent"})
    assert notice_text(unknown, reader_for(ctx.settings, "zh_CN"))["subject"] == item.subject
