"""The board's reassign form gives the new unit a fresh time limit (or refuses, writing
nothing), and the inbox opens on current notices, written in the reader's language."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import Notification, Ticket, Timer, TransitionLog
from tests.web.conftest import csrf


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def _reassign(client, numbers: list[str], **limit: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/supervisor/bulk-reassign",
        data={
            "csrf_token": csrf(client),
            "numbers": numbers,
            "unit": "traffic-brigade",
            "officer": "traffic.officer",
            "reason": "Traffic matter.",
            **limit,
        },
        headers={"Accept-Language": "zh-CN"},
        follow_redirects=True,
    )


def _state(db_session, number: str):  # type: ignore[no-untyped-def]
    row = db_session.execute(
        select(
            Ticket.id, Ticket.version, Ticket.due_at, Ticket.due_rule, Ticket.escalation_level
        ).where(Ticket.number == number)
    ).one()
    pending = db_session.scalars(
        select(Timer.due_at).where(
            Timer.ticket_id == row.id, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None)
        )
    ).all()
    events = db_session.scalars(
        select(TransitionLog.trigger)
        .where(TransitionLog.ticket_id == row.id)
        .order_by(TransitionLog.seq)
    ).all()
    db_session.rollback()
    return row, sorted(pending), list(events)


def test_reassigning_from_the_board_gives_a_fresh_time_limit(
    login_as, make_ticket, clock, db_session
) -> None:  # type: ignore[no-untyped-def]
    a, _ = make_ticket("assigned")
    b, _ = make_ticket("assigned")
    clock.advance(timedelta(days=16))  # Mar 16: both overdue since Mar 15
    client = login_as("supervisor")
    from engine import timers
    from engine.context import build_context

    timers.sweep(build_context(engine=db_session.get_bind(), clock=clock))
    before, _, _ = _state(db_session, a)
    assert before.escalation_level == 1
    _reassign(client, [a], limit_days="5")
    row, pending, events = _state(db_session, a)
    assert events[-2:] == ["reassign", "deadline_set"]
    # 5 working days from Wednesday Mar 16 (Thu 17, Fri 18, Mon 21, Tue 22, Wed 23): due at
    # the end of Wednesday Mar 23 in Shanghai, 16:00 UTC.
    assert row.due_at.isoformat().startswith("2005-03-23T16:00")
    assert row.escalation_level == 0 and "fresh time limit" in row.due_rule
    assert pending and min(pending) > clock()  # the ladder starts again from the new time
    _reassign(client, [b], limit_until="2005-03-25")
    row, _, events = _state(db_session, b)
    assert events[-1] == "deadline_set" and row.due_at.isoformat().startswith("2005-03-25T16:00")


@pytest.mark.parametrize(
    ("limit", "says"),
    [
        ({"limit_days": "five"}, "必须是 1 到 250 之间的整数个工作日"),
        ({"limit_days": "0"}, "必须是 1 到 250 之间的整数个工作日"),
        ({"limit_until": "2005-03-10"}, "必须晚于现在"),
        ({"limit_until": "2005-04-05"}, "晚于活动结束日期（2005-03-31）"),
        ({"limit_until": "16/03/2005"}, "日期须按 YYYY-MM-DD 填写"),
        ({"limit_days": "3", "limit_until": "2005-03-25"}, "不能同时填写"),
    ],
)
def test_a_bad_fresh_limit_is_refused_and_nothing_is_written(
    login_as, make_ticket, clock, db_session, limit, says
) -> None:  # type: ignore[no-untyped-def]
    a, _ = make_ticket("assigned")
    clock.advance(timedelta(days=16))
    client = login_as("supervisor")
    before = _state(db_session, a)
    notices = db_session.scalar(select(Notification.id).order_by(Notification.id.desc()))
    db_session.rollback()
    page = _text(_reassign(client, [a], **limit))
    assert says in page, page
    assert _state(db_session, a) == before  # not reassigned either
    assert db_session.scalar(select(Notification.id).order_by(Notification.id.desc())) == notices


def test_the_inbox_opens_on_current_notices_in_the_readers_language(login_as, make_ticket) -> None:  # type: ignore[no-untyped-def]
    closed, _ = make_ticket("fed_back")
    current, _ = make_ticket("assigned")
    client = login_as("officer")
    html = client.get("/inbox", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    head, _, folded = html.partition('id="inbox-older"')
    assert current in head and closed not in head
    assert closed in folded
    assert f"{current} 待您办理：supervisor 交办" in _text_of(head)
    assert "当前：已交办责任民警。" in _text_of(head)
    assert "（1 条未读）" in _text_of(head)  # the closed ticket's notice does not count
    english = _text(client.get("/inbox", headers={"Accept-Language": "en"}))
    assert f"{current} is yours to act on: Assign by supervisor" in english


def _text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
