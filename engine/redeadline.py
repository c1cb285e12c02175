"""A supervisor sets a new, clearly defined deadline on an overdue ticket.

"Those that cannot be solved for a while have their deadline clearly defined": when a
ticket is already past its due time (too late for an extension, which must be asked
before), a supervisor gives it a new due time with a reason. The breach stays on the
record — its ``overdue``/``escalated`` log rows are untouched, and the report's ``late``
figure still counts the ticket — while the ladder starts again from the new time: the
escalation level goes back to 0 and the warning and ladder timers are re-armed.
"""

from __future__ import annotations

from datetime import datetime

from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.deadlines import campaign_clock, rearm
from engine.errors import ValidationError
from engine.ledger import declare_event, load_ticket_row, record_event

REASON_MAX = 2000

declare_event("deadline_set", "due_at", "due_rule", "escalation_level")


def set_deadline(
    uow: UnitOfWork,
    number: str,
    *,
    actor: Actor,
    due_at: datetime,
    reason: str,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> int:
    """Give overdue ticket ``number`` the new due time ``due_at``; the new version.

    Needs the ``ticket.deadline`` permission, a reason, a ticket whose running due time has
    passed, and a new time later than now (and inside a campaign's end when it has one).
    """
    now = uow.now(now)
    due_at = ensure_utc(due_at)
    ticket = load_ticket_row(uow.conn, number)
    uow.policy.require(actor, "ticket.deadline", ticket, number=number)
    errors: dict[str, str] = {}
    why = (reason or "").strip()
    if not why:
        errors["reason"] = "is required: say why this deadline is the right one"
    elif len(why) > REASON_MAX:
        errors["reason"] = f"is too long ({len(why)} characters; at most {REASON_MAX})"
    if ticket.due_at is None:
        raise ValidationError(
            f"{number} has no running deadline in state {ticket.state!r}; nothing to set",
            ticket=number,
            state=ticket.state,
        )
    if ticket.due_at > now:
        raise ValidationError(
            f"{number} is not overdue (due {ticket.due_at:%Y-%m-%d %H:%M} UTC); before the due "
            "time the unit asks for an extension instead",
            ticket=number,
            state=ticket.state,
        )
    clock = campaign_clock(uow, ticket.campaign_id)
    end = clock.end_instant()  # None: a continuous programme has no end
    if due_at <= now:
        errors["due_at"] = "must be later than now"
    elif end is not None and due_at > end:
        errors["due_at"] = f"is after the campaign's end ({clock.ends_on.isoformat()})"
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(
            f"a new deadline for {number} cannot be set: {listed}",
            fields=errors,
            ticket=number,
            state=ticket.state,
        )
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    rearm(
        uow,
        workflow=workflow,
        ticket_id=ticket.id,
        campaign_id=ticket.campaign_id,
        due_at=due_at,
        now=now,
        priority=ticket.priority,
    )
    local = clock.local(due_at).strftime("%Y-%m-%d %H:%M")
    return record_event(
        uow,
        number,
        "deadline_set",
        actor=actor,
        now=now,
        reason=why,
        data={
            "due_at": local,
            "was_due_at": clock.local(ticket.due_at).strftime("%Y-%m-%d %H:%M"),
            "level_was": ticket.escalation_level,
        },
        values={
            "due_at": due_at,
            "due_rule": f"deadline set by {actor.username} after the breach",
            "escalation_level": 0,
        },
        expected_version=expected_version,
    )
