"""What a citizen does with a receipt: check the status, say whether the feedback satisfied.

A receipt is the ticket number plus the secret shown once at submission (only
its hash is stored). A wrong secret and an unknown number get the same answer,
so the status page tells nobody which numbers exist. An unsatisfied citizen's
answer becomes a ``ReopenRequest`` for a supervisor, who reopens the ticket or
refuses with a reason (``decide_reopen_request``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.actors import Actor
from engine.context import UnitOfWork
from engine.creating import hash_secret, normalise_secret
from engine.errors import Conflict, InvalidTransition, NotFound, ValidationError
from engine.firing import fire
from engine.ledger import declare_event, record_event
from engine.models import Campaign, FeedbackRecord, ReopenRequest, Ticket, TransitionLog, Unit

PUBLIC_ACTOR = Actor(username="public", role="citizen")

declare_event("citizen_satisfied", "satisfied")
declare_event("citizen_unsatisfied", "satisfied")
declare_event("reopen_refused")
REASON_MAX = 2000
NO_SUCH_RECEIPT = (
    "No opinion matches this receipt number and secret. Check both against your receipt "
    "(letters may be typed in small or capital letters)."
)


@dataclass(frozen=True)
class Feedback:
    method: str
    text: str
    given_on: date


@dataclass(frozen=True)
class ReceiptStatus:
    """What the citizen may see: no names of officers, no internal notes."""

    number: str
    state: str
    state_title: str
    received_at: datetime
    closed_at: datetime | None
    satisfied: bool | None
    feedback: list[Feedback]
    reopen_pending: bool
    version: int
    text: str = ""
    # The responsible unit's code (pages show its name); never an officer's name.
    unit_code: str | None = None
    # When the work is expected to be done (the running due time), if one runs.
    due_at: datetime | None = None
    timezone: str = "Asia/Shanghai"
    # Why it was taken up again: (when, the supervisor's reason) per reopening, oldest first.
    reopenings: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def can_answer(self) -> bool:
        """Feedback was given and the citizen has not yet said whether it satisfied."""
        return self.closed_at is not None and self.satisfied is None and bool(self.feedback)


def _ticket_by_receipt(session: Session, number: str, secret: str) -> Any:
    number = (number or "").strip()[:40]
    secret = (secret or "").strip()
    row = session.execute(
        select(
            Ticket.id,
            Ticket.number,
            Ticket.state,
            Ticket.version,
            Ticket.received_at,
            Ticket.closed_at,
            Ticket.satisfied,
            Ticket.secret_hash,
            Ticket.workflow_name,
            Ticket.workflow_version,
            Ticket.text,
            Ticket.due_at,
            Unit.code.label("unit_code"),
            Campaign.timezone,
        )
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .where(Ticket.number == number)
    ).first()
    # Compare against a hash even when the number is unknown: same answer, similar time.
    stored = row.secret_hash if row is not None and row.secret_hash else "0" * 64
    # Secrets issued before the look-alike-free alphabet are compared as typed.
    matches = [
        hmac.compare_digest(stored, hash_secret(c)) for c in (secret, normalise_secret(secret))
    ]
    if not secret or not any(matches) or row is None:
        raise NotFound(NO_SUCH_RECEIPT)
    return row


def receipt_status(
    uow: UnitOfWork,
    *,
    number: str,
    secret: str,
) -> ReceiptStatus:
    """The status of the opinion on receipt ``number`` + ``secret``; ``NotFound`` (one message
    for an unknown number and a wrong secret) otherwise."""
    session = uow.session
    row = _ticket_by_receipt(session, number, secret)
    workflow = uow.registry.get(row.workflow_name, row.workflow_version)
    state = workflow.states.get(row.state)
    feedback = [
        Feedback(m, t, d)
        for m, t, d in session.execute(
            select(FeedbackRecord.method, FeedbackRecord.text, FeedbackRecord.given_on)
            .where(FeedbackRecord.ticket_id == row.id)
            .order_by(FeedbackRecord.at, FeedbackRecord.id)
        )
    ]
    pending = (
        session.execute(
            select(ReopenRequest.id).where(
                ReopenRequest.ticket_id == row.id, ReopenRequest.status == "pending"
            )
        ).first()
        is not None
    )
    reopenings = [
        (at, reason or "")
        for at, reason in session.execute(
            select(TransitionLog.at, TransitionLog.reason)
            .where(TransitionLog.ticket_id == row.id, TransitionLog.trigger == "reopen")
            .order_by(TransitionLog.seq)
        )
    ]
    return ReceiptStatus(
        number=row.number,
        state=row.state,
        state_title=state.title if state else row.state,
        received_at=row.received_at,
        closed_at=row.closed_at,
        satisfied=row.satisfied,
        feedback=feedback,
        reopen_pending=pending,
        version=row.version,
        text=row.text,
        unit_code=row.unit_code,
        due_at=row.due_at if row.closed_at is None else None,
        timezone=row.timezone,
        reopenings=reopenings,
    )


def answer_feedback(
    uow: UnitOfWork,
    *,
    number: str,
    secret: str,
    satisfied: bool,
    now: datetime | None = None,
    reason: str | None = None,
) -> int:
    """Record whether the feedback satisfied the citizen (a log row; the state stays).

    Unsatisfied needs a reason and opens a ``ReopenRequest`` for a supervisor;
    returns its id (0 when satisfied). Only once per feedback round.
    """
    now = uow.now(now)
    session = uow.session
    row = _ticket_by_receipt(session, number, secret)
    text = (reason or "").strip()
    if row.closed_at is None:
        raise InvalidTransition(
            f"{row.number} has not been fed back yet; you can answer once you have the feedback",
            ticket=row.number,
            state=row.state,
        )
    if row.satisfied is not None:
        raise Conflict(
            f"you already answered for {row.number}; a supervisor has your answer",
            ticket=row.number,
            state=row.state,
        )
    errors: dict[str, str] = {}
    if not satisfied and not text:
        errors["reason"] = "is required: say what is still wrong, so it can be put right"
    if len(text) > REASON_MAX:
        errors["reason"] = f"is too long ({len(text)} characters; at most {REASON_MAX})"
    if errors:
        raise ValidationError(
            "your answer cannot be recorded: " + "; ".join(f"{k} {v}" for k, v in errors.items()),
            fields=errors,
            ticket=row.number,
        )
    record_event(
        uow,
        row.number,
        "citizen_satisfied" if satisfied else "citizen_unsatisfied",
        actor=PUBLIC_ACTOR,
        now=now,
        data={"satisfied": satisfied, **({"reason": text} if text else {})},
        reason=text or None,
        values={"satisfied": satisfied},
        expected_version=row.version,
    )
    if satisfied:
        return 0
    return int(
        session.execute(
            insert(ReopenRequest)
            .values(ticket_id=row.id, reason=text, status="pending", created_at=now)
            .returning(ReopenRequest.id)
        ).scalar_one()
    )


def decide_reopen_request(
    uow: UnitOfWork,
    request_id: int,
    *,
    actor: Actor,
    reopen: bool,
    now: datetime | None = None,
    note: str | None = None,
    unit: str | None = None,
    officer: str | None = None,
) -> str:
    """A supervisor acts on a reopen request: ``reopen`` fires the workflow's ``reopen``
    (back to the officer, or to ``unit``/``officer``); otherwise it is refused with ``note``.
    Returns the new status (``reopened`` or ``refused``)."""
    now = uow.now(now)
    session = uow.session
    uow.policy.require(actor, "reopen.decide")
    req = session.execute(
        select(ReopenRequest.id, ReopenRequest.status, ReopenRequest.reason, Ticket.number)
        .join(Ticket, Ticket.id == ReopenRequest.ticket_id)
        .where(ReopenRequest.id == request_id)
    ).first()
    if req is None:
        raise NotFound(f"no reopen request {request_id}")
    if req.status != "pending":
        raise Conflict(
            f"reopen request {request_id} was already decided ({req.status})", ticket=req.number
        )
    why = (note or "").strip()
    if reopen:
        data: dict[str, Any] = {"reason": why or f"citizen unsatisfied: {req.reason}"[:2000]}
        if unit:
            data["unit"] = unit
        if officer:
            data["officer"] = officer
        trigger = _reopen_trigger(uow, req.number)
        fire(uow, req.number, trigger, actor=actor, data=data, now=now)
        status = "reopened"
    else:
        if not why:
            raise ValidationError(
                "refusing a reopen request needs a note saying why (the citizen may be told)",
                fields={"note": "is required when refusing"},
                ticket=req.number,
            )
        record_event(
            uow,
            req.number,
            "reopen_refused",
            actor=actor,
            now=now,
            data={"request": request_id, "note": why[:2000]},
            reason=why[:2000],
        )
        status = "refused"
    session.execute(
        update(ReopenRequest)
        .where(ReopenRequest.id == request_id, ReopenRequest.status == "pending")
        .values(status=status, decided_by_id=actor.id, decided_at=now)
    )
    return status


def _reopen_trigger(uow: UnitOfWork, number: str) -> str:
    """The trigger the ticket's workflow names for reopening (``[uses] reopen``)."""
    row = uow.session.execute(
        select(Ticket.workflow_name, Ticket.workflow_version).where(Ticket.number == number)
    ).one()
    workflow = uow.registry.get(row.workflow_name, row.workflow_version)
    trigger = workflow.use("reopen")
    if trigger is None:
        raise InvalidTransition(
            f"{number}: the {workflow.key} workflow names no reopen trigger ([uses] reopen)",
            ticket=number,
        )
    return trigger
