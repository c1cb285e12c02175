"""Exemplary cases: a supervisor marks a fed-back ticket as an example worth citing.

The situation report's section on rectification and feedback cites "typical"
cases (the ID card taken to Nanjing, the alarms installed for enterprises...).
The office draws them from tickets a supervisor marked: the mark is an event on
the ticket (``marked_exemplary``, with the reason), logged and hash-chained like
every change; ``unmarked_exemplary`` takes it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from engine.context import UnitOfWork
from engine.errors import Conflict, ValidationError
from engine.models import Ticket, TransitionLog
from engine.tickets import Actor, declare_event, load_ticket_row, record_event

MARKED, UNMARKED = "marked_exemplary", "unmarked_exemplary"
declare_event(MARKED)  # log-only: the mark changes no ticket column
declare_event(UNMARKED)
REASON_MAX = 2000
log_t = cast(Table, TransitionLog.__table__)
tickets_t = cast(Table, Ticket.__table__)


def _marked(session: Session, ticket_id: int) -> bool:
    last = session.scalar(
        select(log_t.c.trigger)
        .where(log_t.c.ticket_id == ticket_id, log_t.c.trigger.in_((MARKED, UNMARKED)))
        .order_by(log_t.c.seq.desc())
        .limit(1)
    )
    return last == MARKED


def mark_exemplary(
    uow: UnitOfWork,
    number: str,
    *,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
    exemplary: bool = True,
) -> int:
    """Mark (or, with ``exemplary=False``, unmark) a fed-back ticket as exemplary; the caller
    commits. Only who holds ``ticket.mark_exemplary`` (supervisors); marking needs a reason (what makes it an example) and a
    ticket in a final state; marking a marked ticket, or unmarking an unmarked one, is a
    ``Conflict``. Returns the ticket's new version."""
    session = uow.session
    ticket = load_ticket_row(uow.conn, number)
    uow.policy.require(actor, "ticket.mark_exemplary", ticket, number=number)
    why = (reason or "").strip()
    if exemplary:
        workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
        if ticket.state not in workflow.final_states:
            raise ValidationError(
                f"{number} is not fed back yet (state {ticket.state!r}); an example of "
                "rectification and feedback must be finished",
                ticket=number,
                state=ticket.state,
            )
        if not why:
            raise ValidationError(
                f"marking {number} as exemplary needs a reason",
                fields={"reason": "is required: say what makes it an example"},
                ticket=number,
                state=ticket.state,
            )
    if len(why) > REASON_MAX:
        raise ValidationError(
            f"the reason is too long ({len(why)} characters; at most {REASON_MAX})",
            fields={"reason": f"at most {REASON_MAX} characters"},
            ticket=number,
            state=ticket.state,
        )
    if _marked(session, ticket.id) == exemplary:
        raise Conflict(
            f"{number} is {'already' if exemplary else 'not'} marked as exemplary",
            ticket=number,
            state=ticket.state,
        )
    return record_event(
        uow,
        number,
        MARKED if exemplary else UNMARKED,
        actor=actor,
        now=now,
        reason=why or None,
        data={"reason": why} if why else {},
    )


def exemplary_ticket_ids(
    session: Session, campaign_id: int, *, before: datetime | None = None
) -> list[int]:
    """The campaign's tickets marked exemplary (as of ``before``), oldest mark first."""
    query = (
        select(log_t.c.ticket_id, log_t.c.trigger, log_t.c.seq)
        .join(tickets_t, tickets_t.c.id == log_t.c.ticket_id)
        .where(tickets_t.c.campaign_id == campaign_id, log_t.c.trigger.in_((MARKED, UNMARKED)))
        .order_by(log_t.c.ticket_id, log_t.c.seq)
    )
    if before is not None:
        query = query.where(log_t.c.at < before)
    last: dict[int, tuple[str, int]] = {}
    for row in session.execute(query):
        last[row.ticket_id] = (row.trigger, row.seq)
    return [tid for tid, (trigger, _) in last.items() if trigger == MARKED]


def is_exemplary(session: Session, ticket_id: int) -> bool:
    return _marked(session, ticket_id)


__all__ = ["MARKED", "UNMARKED", "exemplary_ticket_ids", "is_exemplary", "mark_exemplary"]
