"""A supervisor sets a new, clearly defined deadline on a ticket.

"Those that cannot be solved for a while have their deadline clearly defined": when a
ticket is already past its due time (too late for an extension, which must be asked
before), a supervisor gives it a new due time with a reason. The breach stays on the
record — its ``overdue``/``escalated`` log rows are untouched, and the report's ``late``
figure still counts the ticket — while the ladder starts again from the new time: the
escalation level goes back to 0 and the warning and ladder timers are re-armed.

Reassigning from the board can give the new unit a fresh time limit the same way
(``FreshLimit``: working days from now, or the end of a given day in the campaign's
timezone): ``give_fresh_limit`` writes the same ``deadline_set`` row right after the
reassignment's, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.deadlines import CampaignClock, campaign_clock, rearm
from engine.errors import ValidationError
from engine.ledger import declare_event, load_ticket_row, record_event

REASON_MAX = 2000
# A fresh limit given on reassignment: at most this many working days (about a year).
FRESH_DAYS_MAX = 250

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
    ticket = load_ticket_row(uow.conn, number)
    uow.policy.require(actor, "ticket.deadline", ticket, number=number)
    if ticket.due_at is not None and ticket.due_at > now:
        raise ValidationError(
            f"{number} is not overdue (due {ticket.due_at:%Y-%m-%d %H:%M} UTC); before the due "
            "time the unit asks for an extension instead",
            ticket=number,
            state=ticket.state,
        )
    return _apply(
        uow,
        ticket,
        actor=actor,
        due_at=ensure_utc(due_at),
        reason=reason,
        rule=f"deadline set by {actor.username} after the breach",
        now=now,
        expected_version=expected_version,
    )


@dataclass(frozen=True)
class FreshLimit:
    """A new time limit: ``working_days`` from now, or the end of the day ``until``."""

    working_days: int | None = None
    until: date | None = None

    @classmethod
    def parse(cls, working_days: str | None, until: str | None) -> FreshLimit | None:
        """The limit a form or command gave (None when neither field was filled); a
        ``ValidationError`` naming the field when one is not a whole number or a date, or
        when both are given."""
        days_text, until_text = (working_days or "").strip(), (until or "").strip()
        if not days_text and not until_text:
            return None
        if days_text and until_text:
            raise ValidationError(
                "give either a number of working days or a date for the new time limit, not both",
                fields={"limit_until": "give either working days or a date, not both"},
            )
        if days_text:
            if not days_text.isdigit() or not 1 <= int(days_text) <= FRESH_DAYS_MAX:
                raise ValidationError(
                    f"the new time limit must be a whole number of working days from 1 to "
                    f"{FRESH_DAYS_MAX}; {days_text!r} is not",
                    fields={"limit_days": f"a whole number from 1 to {FRESH_DAYS_MAX}"},
                )
            return cls(working_days=int(days_text))
        try:
            return cls(until=date.fromisoformat(until_text))
        except ValueError:
            raise ValidationError(
                f"the new time limit's date must be written YYYY-MM-DD; {until_text!r} is not",
                fields={"limit_until": "a date written YYYY-MM-DD"},
            ) from None

    def due_at(self, clock: CampaignClock, now: datetime) -> datetime:
        """The due time this limit gives at ``now`` on the campaign's calendar."""
        if self.working_days is not None:
            return clock.calendar.add_working_days(now, self.working_days, clock.timezone)
        assert self.until is not None
        end = datetime.combine(self.until + timedelta(days=1), time(0), tzinfo=clock.timezone)
        return ensure_utc(end)

    def describe(self) -> str:
        if self.working_days is not None:
            return f"{self.working_days} working day{'s' if self.working_days != 1 else ''}"
        return f"until the end of {self.until}"


def check_fresh_limit(
    uow: UnitOfWork,
    number: str,
    limit: FreshLimit,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Refuse, writing nothing, a fresh limit ``actor`` may not give ``number`` or that
    lands in the past or after the campaign's end."""
    now = uow.now(now)
    ticket = load_ticket_row(uow.conn, number)
    uow.policy.require(actor, "ticket.deadline", ticket, number=number)
    clock = campaign_clock(uow, ticket.campaign_id)
    errors = _due_errors(clock, limit.due_at(clock, now), now)
    if errors:
        field = "limit_days" if limit.working_days is not None else "limit_until"
        raise ValidationError(
            f"a new time limit for {number} cannot be set: due_at: {errors['due_at']}",
            fields={field: errors["due_at"]},
            ticket=number,
            state=ticket.state,
        )


def give_fresh_limit(
    uow: UnitOfWork,
    number: str,
    *,
    actor: Actor,
    limit: FreshLimit,
    reason: str,
    now: datetime | None = None,
) -> int:
    """Give ``number`` (just reassigned) the fresh time limit ``limit``; the new version.
    The same checks, log row and re-armed timers as ``set_deadline``, at any due time."""
    now = uow.now(now)
    ticket = load_ticket_row(uow.conn, number)
    uow.policy.require(actor, "ticket.deadline", ticket, number=number)
    clock = campaign_clock(uow, ticket.campaign_id)
    return _apply(
        uow,
        ticket,
        actor=actor,
        due_at=limit.due_at(clock, now),
        reason=reason,
        rule=f"fresh time limit on reassignment by {actor.username}: {limit.describe()}",
        now=now,
    )


def _due_errors(clock: CampaignClock, due_at: datetime, now: datetime) -> dict[str, str]:
    end = clock.end_instant()  # None: a continuous programme has no end
    if due_at <= now:
        return {"due_at": "must be later than now"}
    if end is not None and due_at > end:
        return {"due_at": f"is after the campaign's end ({clock.ends_on.isoformat()})"}
    return {}


def _apply(
    uow: UnitOfWork,
    ticket: Any,
    *,
    actor: Actor,
    due_at: datetime,
    reason: str,
    rule: str,
    now: datetime,
    expected_version: int | None = None,
) -> int:
    """Check the reason and the new due time, re-arm the ticket's timers from it and write
    the ``deadline_set`` row (level back to 0); the new version."""
    number = ticket.number
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
    clock = campaign_clock(uow, ticket.campaign_id)
    errors.update(_due_errors(clock, due_at, now))
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
        values={"due_at": due_at, "due_rule": rule, "escalation_level": 0},
        expected_version=expected_version,
    )
