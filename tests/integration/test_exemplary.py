"""The exemplary mark: a supervisor's action on a fed-back ticket, logged and hash-chained."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import verify
from engine.errors import Conflict, NotPermitted, ValidationError
from engine.exemplary import exemplary_ticket_ids, mark_exemplary
from engine.models import Ticket
from engine.tickets import get_actor
from tests.conftest import as_uow
from tests.integration.deadline_support import assigned_ticket, local, log_triggers


def _fed_back(session: Session) -> str:
    from engine.tickets import fire

    number = assigned_ticket(session, local(2005, 3, 9, 10))
    officer = get_actor(session, "traffic.officer")
    at = local(2005, 3, 10, 10)
    fire(
        as_uow(session), number, "rectify", actor=officer, data={"measures": "Lights fixed"}, now=at
    )
    fire(
        as_uow(session),
        number,
        "feed_back",
        actor=officer,
        data={"method": "visit", "text": "Answered at the door", "date": "2005-03-10"},
        now=at + timedelta(hours=1),
    )
    return number


def test_a_supervisor_marks_and_unmarks_and_every_step_is_logged(session: Session) -> None:
    number = _fed_back(session)
    boss = get_actor(session, "supervisor")
    at = local(2005, 3, 11, 9)
    mark_exemplary(as_uow(session), number, actor=boss, reason="Fixed within a day", now=at)
    campaign_id = session.scalar(select(Ticket.campaign_id).where(Ticket.number == number))
    ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
    assert exemplary_ticket_ids(session, campaign_id) == [ticket_id]
    assert exemplary_ticket_ids(session, campaign_id, before=at) == []  # as of before the mark
    with pytest.raises(Conflict, match="already marked"):
        mark_exemplary(as_uow(session), number, actor=boss, reason="again", now=at)
    mark_exemplary(as_uow(session), number, actor=boss, reason="", exemplary=False, now=at)
    assert exemplary_ticket_ids(session, campaign_id) == []
    assert log_triggers(session, number)[-2:] == [
        ("marked_exemplary", "supervisor"),
        ("unmarked_exemplary", "supervisor"),
    ]
    session.commit()
    assert verify(session) == []


def test_refusals_write_nothing(session: Session) -> None:
    number = _fed_back(session)
    open_number = assigned_ticket(session, local(2005, 3, 9, 11))
    at = local(2005, 3, 11, 9)
    boss = get_actor(session, "supervisor")
    before = log_triggers(session, number)
    with pytest.raises(NotPermitted, match="needs the role supervisor; clerk is clerk"):
        mark_exemplary(
            as_uow(session), number, actor=get_actor(session, "clerk"), reason="x", now=at
        )
    with pytest.raises(ValidationError, match="needs a reason"):
        mark_exemplary(as_uow(session), number, actor=boss, reason="  ", now=at)
    with pytest.raises(ValidationError, match="not fed back yet"):
        mark_exemplary(as_uow(session), open_number, actor=boss, reason="x", now=at)
    with pytest.raises(Conflict, match="is not marked"):
        mark_exemplary(as_uow(session), number, actor=boss, reason="", exemplary=False, now=at)
    assert log_triggers(session, number) == before
