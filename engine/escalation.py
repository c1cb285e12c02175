"""Escalating by hand: a supervisor raises a ticket's escalation level with a reason.

Reassigning and escalating to government are workflow triggers
(``tickets.fire(..., "reassign" | "escalate_to_government")``); raising the
level is an event on the ticket, logged through ``record_event``. The ladder's
steps at or below the new level will not fire again for this clock; the step above it is
armed in their place.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, update

from engine import acting, deadlines
from engine.actors import Actor
from engine.context import UnitOfWork
from engine.deadlines import BREACH, LADDER
from engine.errors import ValidationError
from engine.ledger import declare_event, load_ticket_row, record_event
from engine.models import Timer
from engine.notices import ladder_audience
from engine.notifications import Recipients, notify

timers_t = cast(Table, Timer.__table__)

declare_event("escalated_by_hand", "escalation_level")


def escalate_ticket(
    uow: UnitOfWork,
    number: str,
    *,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
    level: int | None = None,
) -> int:
    """Raise ``number``'s escalation level (by one, or to ``level``) as a supervisor; the new level.

    Needs a reason; the level must go up and stay within the workflow's
    ladder. Pending ladder timers at or below the new level are cancelled
    (those steps are done) and the step above it is armed; the people of the new level are
    notified.
    """
    now = uow.now(now)
    conn = uow.conn
    ticket = load_ticket_row(conn, number)
    uow.policy.require(actor, "ticket.escalate", ticket, number=number)
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    if ticket.state in workflow.final_states:
        raise ValidationError(
            f"{number} is closed (state {ticket.state!r}); reopen it before escalating",
            ticket=number,
            state=ticket.state,
        )
    top = max((s.level for s in workflow.ladder.steps), default=0)
    target = ticket.escalation_level + 1 if level is None else level
    errors: dict[str, str] = {}
    why = (reason or "").strip()
    if not why:
        errors["reason"] = "is required: say why the ticket is escalated"
    if target <= ticket.escalation_level:
        errors["level"] = f"must be above the current level {ticket.escalation_level}"
    elif target > top:
        errors["level"] = f"the ladder has levels 1 to {top}; {target} is beyond it"
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(
            f"{number} cannot be escalated: {listed}",
            fields=errors,
            ticket=number,
            state=ticket.state,
        )
    cancelled = conn.execute(
        update(timers_t)
        .where(
            timers_t.c.ticket_id == ticket.id,
            timers_t.c.kind.in_((BREACH, LADDER)),
            timers_t.c.level <= target,
            timers_t.c.fired_at.is_(None),
            timers_t.c.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
        .returning(timers_t.c.created_at)
    ).all()
    # The pending step was the clock's next one; the step above the new level takes its place
    # (the sweep arms each step only when the one below fires).
    above = deadlines.next_step(workflow.ladder, target)
    if cancelled and above is not None and ticket.due_at is not None:
        clock = deadlines.campaign_clock(uow, ticket.campaign_id)
        kind, step_level, at = deadlines.step_time(above, ticket.due_at, clock, ticket.priority)
        deadlines.insert_timers(conn, [(ticket.id, kind, step_level, at, cancelled[0].created_at)])
    record_event(
        uow,
        number,
        "escalated_by_hand",
        actor=actor,
        now=now,
        reason=why,
        data={"from_level": ticket.escalation_level, "level": target},
        values={"escalation_level": target},
    )
    step = next((s for s in workflow.ladder.steps if s.level == target), None)
    recipients = Recipients(conn)
    named = recipients.resolve(
        step.notify if step else ("supervisor",),
        assignee_id=ticket.assignee_id,
        unit_id=ticket.unit_id,
    )
    # As the ladder's own notices: only to people who can act on the ticket (or, when none
    # of them can, to those who can).
    people = acting.People(conn, uow.policy, uow.registry, cache=uow.ctx.cache)
    (kept,), instead = ladder_audience(
        people, recipients, workflow, acting.TicketView.of(ticket), level=target, named=[named]
    )
    users = kept or instead
    notify(
        conn,
        user_ids=[u for u in users if u != actor.id],
        kind="escalation",
        subject=f"{number} escalated to level {target} by {actor.username}",
        body=why,
        ticket_id=ticket.id,
        now=now,
    )
    return target
