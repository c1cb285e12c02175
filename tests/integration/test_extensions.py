"""Extensions and escalation by hand: the happy paths, every refusal, nothing half-written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import deadlines
from engine.errors import Conflict, NotPermitted, ValidationError
from engine.escalation import escalate_ticket
from engine.extensions import decide_extension, list_pending_extensions, request_extension
from engine.models import Extension, Timer, TransitionLog
from engine.tickets import get_actor
from tests.integration.deadline_support import assigned_ticket, local, pending_timers, ticket


def _counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Extension)) or 0,
        session.scalar(select(func.count()).select_from(TransitionLog)) or 0,
    )


@pytest.fixture
def number(session: Session) -> str:
    return assigned_ticket(session, local(2005, 2, 28, 10))  # due 2005-03-15 00:00


def test_ask_and_approve_moves_due_time_and_timers(session: Session, uow, number: str) -> None:
    officer = get_actor(session, "traffic.officer")
    ext_id = request_extension(
        uow,
        number,
        actor=officer,
        due_at=local(2005, 3, 25),
        reason="The lights must be ordered from the city",
        now=local(2005, 3, 10, 9),
    )
    assert [e.id for e in list_pending_extensions(session)] == [ext_id]
    view = decide_extension(
        uow,
        ext_id,
        actor=get_actor(session, "supervisor"),
        approve=True,
        now=local(2005, 3, 11, 9),
    )
    assert view.status == "approved" and view.decided_by == "supervisor"
    t = ticket(session, number)
    assert t.due_at == local(2005, 3, 25)
    assert t.due_rule == f"extension #{ext_id} approved by supervisor"
    kinds = pending_timers(session, number)
    assert kinds[0] == ("warning", 0, local(2005, 3, 24))
    assert kinds[1] == ("breach", 1, local(2005, 3, 25))
    triggers = list(
        session.scalars(
            select(TransitionLog.trigger)
            .where(TransitionLog.ticket_id == t.id)
            .order_by(TransitionLog.seq)
        )
    )
    assert triggers[-2:] == ["extension_requested", "extension_approved"]
    assert list_pending_extensions(session) == []


def test_refusal_needs_a_note_and_keeps_the_due_time(session: Session, uow, number: str) -> None:
    ext_id = request_extension(
        uow,
        number,
        actor=get_actor(session, "traffic.leader"),
        due_at=local(2005, 3, 20),
        reason="busy",
        now=local(2005, 3, 1, 9),
    )
    supervisor = get_actor(session, "supervisor")
    with pytest.raises(ValidationError, match="needs a note"):
        decide_extension(uow, ext_id, actor=supervisor, approve=False, now=local(2005, 3, 2))
    view = decide_extension(
        uow, ext_id, actor=supervisor, approve=False, note="do it now", now=local(2005, 3, 2)
    )
    assert view.status == "refused"
    assert ticket(session, number).due_at == local(2005, 3, 15)
    with pytest.raises(Conflict, match="already refused"):
        decide_extension(uow, ext_id, actor=supervisor, approve=True, now=local(2005, 3, 2))


@pytest.mark.parametrize(
    ("due", "reason", "field", "message"),
    [
        ((2005, 3, 20), "  ", "reason", "reason: is required"),
        ((2005, 3, 1), "late parts", "due_at", "is in the past"),
        ((2005, 3, 14), "late parts", "due_at", "later than the current due time"),
        ((2005, 4, 2), "late parts", "due_at", "after the campaign's end"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_written(
    session: Session,
    uow,
    number: str,
    due: tuple[int, int, int],
    reason: str,
    field: str,
    message: str,
) -> None:
    before = _counts(session)
    with pytest.raises(ValidationError, match=message) as err:
        request_extension(
            uow,
            number,
            actor=get_actor(session, "traffic.officer"),
            due_at=local(*due),
            reason=reason,
            now=local(2005, 3, 2, 9),
        )
    assert field in err.value.fields
    assert _counts(session) == before


def test_asking_after_the_breach_is_refused(session: Session, uow, number: str) -> None:
    with pytest.raises(ValidationError, match="must be asked before the due time"):
        request_extension(
            uow,
            number,
            actor=get_actor(session, "traffic.officer"),
            due_at=local(2005, 3, 25),
            reason="late",
            now=local(2005, 3, 15, 9),
        )


def test_other_units_and_non_supervisors_are_not_permitted(
    session: Session, uow, number: str
) -> None:
    with pytest.raises(NotPermitted, match="another unit"):
        request_extension(
            uow,
            number,
            actor=get_actor(session, "luohe.officer"),
            due_at=local(2005, 3, 25),
            reason="x",
            now=local(2005, 3, 2),
        )
    ext_id = request_extension(
        uow,
        number,
        actor=get_actor(session, "traffic.officer"),
        due_at=local(2005, 3, 25),
        reason="x",
        now=local(2005, 3, 2),
    )
    before = _counts(session)
    with pytest.raises(NotPermitted, match="needs the role (hotline_supervisor or )?supervisor"):
        decide_extension(
            uow,
            ext_id,
            actor=get_actor(session, "traffic.leader"),
            approve=True,
            now=local(2005, 3, 3),
        )
    assert _counts(session) == before
    with pytest.raises(Conflict, match="already has extension request"):
        request_extension(
            uow,
            number,
            actor=get_actor(session, "traffic.officer"),
            due_at=local(2005, 3, 26),
            reason="y",
            now=local(2005, 3, 2),
        )


def test_supervisor_escalates_by_hand_and_the_ladder_skips_done_steps(
    session: Session, uow, number: str
) -> None:
    supervisor = get_actor(session, "supervisor")
    with pytest.raises(ValidationError, match="reason"):
        escalate_ticket(uow, number, actor=supervisor, reason="", now=local(2005, 3, 3))
    with pytest.raises(NotPermitted):
        escalate_ticket(
            uow,
            number,
            actor=get_actor(session, "traffic.leader"),
            reason="x",
            now=local(2005, 3, 3),
        )
    level = escalate_ticket(
        uow,
        number,
        actor=supervisor,
        reason="citizen called twice",
        level=2,
        now=local(2005, 3, 3),
    )
    assert level == 2
    assert ticket(session, number).escalation_level == 2
    assert [(k, lv) for k, lv, _ in pending_timers(session, number)] == [
        ("warning", 0),
        ("ladder", 3),
    ]
    # The step above the new level takes the cancelled step's place: timed by the ladder from
    # the ticket's due time, and part of the same clock (its breach's created_at).
    t = ticket(session, number)
    clock = deadlines.campaign_clock(uow, t.campaign_id)
    ladder = uow.registry.get(t.workflow_name, t.workflow_version).ladder
    step_3 = next(at for k, lv, at in deadlines.ladder_times(t.due_at, ladder, clock) if lv == 3)
    assert pending_timers(session, number)[-1][2] == step_3
    created = set(
        session.scalars(select(Timer.created_at).where(Timer.ticket_id == t.id, Timer.level > 0))
    )
    assert len(created) == 1
    with pytest.raises(ValidationError, match="beyond"):
        escalate_ticket(uow, number, actor=supervisor, reason="x", level=4, now=local(2005, 3, 3))


def test_approval_after_the_requested_time_is_refused(session: Session, uow, number: str) -> None:
    ext_id = request_extension(
        uow,
        number,
        actor=get_actor(session, "traffic.officer"),
        due_at=local(2005, 3, 16),
        reason="x",
        now=local(2005, 3, 2),
    )
    with pytest.raises(ValidationError, match="has passed"):
        decide_extension(
            uow,
            ext_id,
            actor=get_actor(session, "supervisor"),
            approve=True,
            now=local(2005, 3, 16) + timedelta(hours=1),
        )
