"""The read model (engine.read), sign-in slowdown and citizen receipts on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.citizen import answer_feedback, decide_reopen_request, receipt_status
from engine.errors import Conflict, InvalidTransition, NotFound, NotPermitted, ValidationError
from engine.read import pages as queries
from engine.signin import FREE_ATTEMPTS, sign_in
from engine.tickets import create_ticket, fire
from tests.conftest import CAMPAIGN


def _ticket(uow, actor, now, *, state="assigned", officer="luohe.officer", text="Lamps out."):
    c = create_ticket(
        uow, campaign=CAMPAIGN, text=text, area="Luohe", actor=actor("clerk"), now=now
    )
    steps = [
        ("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"}),
        ("supervisor", "assign", {"unit": "luohe-station", "officer": officer}),
        (officer, "rectify", {"measures": "Fixed."}),
        (officer, "feed_back", {"method": "phone", "text": "Fixed it.", "date": "2005-02-28"}),
    ]
    upto = {"received": 0, "categorized": 1, "assigned": 2, "rectified": 3, "fed_back": 4}[state]
    for who, trigger, data in steps[:upto]:
        fire(uow, c.number, trigger, actor=actor(who), data=data, now=now)
    return c


def test_queues_sorted_by_due_with_overdue_flag(uow, session, actor, now):
    early = _ticket(uow, actor, now)
    late = _ticket(uow, actor, now + timedelta(days=3))
    _ticket(uow, actor, now, officer="luohe.leader")
    session.commit()
    officer = actor("luohe.officer")
    later = now + timedelta(days=16)
    mine = queries.officer_queue(session, user_id=officer.id, now=later)
    assert [i.number for i in mine] == [early.number, late.number]
    assert mine[0].overdue and mine[0].time_left < timedelta(0)
    unit = queries.unit_queue(session, unit_id=officer.unit_id, now=now)
    assert len(unit) == 3 and all(not i.overdue for i in unit)
    received = _ticket(uow, actor, now, state="received")
    assert [i.number for i in queries.state_queue(session, states=["received"], now=now)] == [
        received.number
    ]


def test_overdue_board_counts_and_filters(uow, session, actor, now):
    a = _ticket(uow, actor, now)
    _ticket(uow, actor, now, state="fed_back")  # closed: never on the board
    session.commit()
    board = queries.overdue_board(session, now=now + timedelta(days=30))
    assert board.total == 1
    assert board.counts[0].unit_code == "luohe-station"
    assert [i.number for i in board.items] == [a.number]
    other = actor("legal.officer").unit_id
    assert queries.overdue_board(session, now=now + timedelta(days=30), unit_id=other).items == []
    assert queries.overdue_board(session, now=now).total == 0


def test_ticket_detail_log_search_and_sample(uow, session, actor, now):
    c = _ticket(uow, actor, now, state="fed_back")
    session.commit()
    detail = queries.ticket_detail(session, number=c.number)
    assert [h.trigger for h in detail.history] == [
        "create",
        "categorize",
        "assign",
        "rectify",
        "feed_back",
    ]
    assert detail.records[0].kind == "feedback"
    with pytest.raises(NotFound):
        queries.ticket_detail(session, number="2005-9999")
    rows = queries.search_log(session, actor="supervisor", trigger="assign")
    assert [r.ticket_number for r in rows] == [c.number]
    assert queries.search_log(session, since=now + timedelta(seconds=1)) == []
    assert queries.search_log(session, ticket="nope") == []
    page1 = queries.search_log(session, limit=2)
    page2 = queries.search_log(session, limit=2, before_id=page1[-1].id)
    assert page1[-1].id > page2[0].id
    sample = queries.sample_closed(session, size=5, seed=1)
    assert [s.number for s in sample] == [c.number]
    assert queries.sample_closed(session, size=5, seed=1) == sample


def test_sign_in_slowdown_and_reset(uow, session, now):
    for _ in range(FREE_ATTEMPTS):
        assert sign_in(uow, username="clerk", password="x", now=now).actor is None
    blocked = sign_in(uow, username="clerk", password="demo", now=now)
    assert blocked.actor is None and blocked.retry_after > 0
    ok = sign_in(uow, username="clerk", password="demo", now=now + timedelta(minutes=1))
    assert ok.actor is not None and ok.actor.role == "clerk"
    assert sign_in(uow, username="citizen", password="demo", now=now).actor is None


def test_receipt_answer_and_reopen(session, uow, actor, now):
    c = _ticket(uow, actor, now, state="assigned")
    with pytest.raises(NotFound) as wrong:
        receipt_status(uow, number=c.number, secret="wrong")
    with pytest.raises(NotFound) as unknown:
        receipt_status(uow, number="2005-9999", secret="wrong")
    assert wrong.value.message == unknown.value.message
    with pytest.raises(InvalidTransition):
        answer_feedback(uow, number=c.number, secret=c.secret, satisfied=True, now=now)
    for who, trigger, data in (
        ("luohe.officer", "rectify", {"measures": "Fixed."}),
        ("luohe.officer", "feed_back", {"method": "phone", "text": "Done.", "date": "2005-02-28"}),
    ):
        fire(uow, c.number, trigger, actor=actor(who), data=data, now=now)
    status = receipt_status(uow, number=c.number, secret=c.secret)
    assert status.can_answer and status.feedback[0].text == "Done."
    with pytest.raises(ValidationError):
        answer_feedback(uow, number=c.number, secret=c.secret, satisfied=False, now=now)
    req = answer_feedback(
        uow, number=c.number, secret=c.secret, satisfied=False, reason="Still dark.", now=now
    )
    assert req > 0
    with pytest.raises(Conflict):
        answer_feedback(uow, number=c.number, secret=c.secret, satisfied=True, now=now)
    with pytest.raises(NotPermitted):
        decide_reopen_request(uow, req, actor=actor("clerk"), reopen=True, now=now)
    assert (
        decide_reopen_request(uow, req, actor=actor("supervisor"), reopen=True, now=now)
        == "reopened"
    )
    assert queries.ticket_detail(session, number=c.number).state == "assigned"
    with pytest.raises(Conflict):
        decide_reopen_request(uow, req, actor=actor("supervisor"), reopen=False, now=now, note="x")
