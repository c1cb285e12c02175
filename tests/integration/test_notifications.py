"""The inbox (list, unread count, mark read) and the daily overdue digest."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine import db, notifications, timers
from engine.errors import NotFound
from engine.tickets import get_actor
from tests.conftest import ctx_of
from tests.integration.deadline_support import assigned_ticket, local


def test_inbox_lists_counts_and_marks_read(engine: Engine, session: Session) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    session.close()
    sessions = db.session_factory(engine)
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 14, 9))  # the warning
    timers.sweep(ctx_of(sessions), now=local(2005, 3, 15, 9))  # the breach
    with sessions() as s:
        officer = get_actor(s, "traffic.officer")
        items = notifications.list_inbox(s, officer.id)
        assert [i.kind for i in items] == ["reminder", "warning", "assignment"]  # newest first
        assert all(i.ticket_number == number for i in items)
        assert notifications.unread_count(s, officer.id) == 3
        assert (
            notifications.mark_read(s, officer.id, ids=[items[0].id], now=local(2005, 3, 15, 10))
            == 1
        )
        assert notifications.unread_count(s, officer.id) == 2
        assert [i.kind for i in notifications.list_inbox(s, officer.id, unread_only=True)] == [
            "warning",
            "assignment",
        ]
        leader = get_actor(s, "traffic.leader")
        with pytest.raises(NotFound):
            notifications.mark_read(s, leader.id, ids=[items[1].id], now=local(2005, 3, 15, 10))
        assert notifications.mark_read(s, officer.id, now=local(2005, 3, 15, 10)) == 2
        assert notifications.unread_count(s, officer.id) == 0
        s.commit()


def test_daily_digest_per_unit_once_a_day(session: Session) -> None:
    assigned_ticket(session, local(2005, 2, 28, 10))
    assigned_ticket(session, local(2005, 2, 28, 11), unit="luohe-station", officer="luohe.officer")
    now = local(2005, 3, 16, 8)
    units = notifications.overdue_by_unit(session, campaign="consultation-2005", now=now)
    assert sorted(u.unit_code for u in units) == ["luohe-station", "traffic-brigade"]
    ids = notifications.send_daily_digest(session, campaign="consultation-2005", now=now)
    leader = get_actor(session, "traffic.leader")
    supervisor = get_actor(session, "supervisor")
    mine = [n for n in notifications.list_inbox(session, leader.id) if n.kind == "digest"]
    assert len(mine) == 1 and "1 overdue in Traffic Police Brigade" in mine[0].subject
    board = [n for n in notifications.list_inbox(session, supervisor.id) if n.kind == "digest"]
    assert "2 overdue in 2 units" in board[0].subject
    assert "luohe" not in mine[0].body.lower()
    assert ids
    assert notifications.send_daily_digest(session, campaign="consultation-2005", now=now) == []
    with pytest.raises(NotFound):
        notifications.send_daily_digest(session, campaign="nope", now=now)
