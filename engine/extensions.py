"""Extensions: asking for a later due time with a reason, and a supervisor's decision.

Every step is logged on the ticket through ``engine.tickets.record_event``
(``extension_requested``, ``extension_approved``, ``extension_refused``);
approval moves the ticket's due time and its timers in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.deadlines import campaign_clock, rearm
from engine.errors import Conflict, NotFound, ValidationError
from engine.ledger import declare_event, load_ticket_row, record_event
from engine.models import Extension, Ticket, User
from engine.notifications import Recipients, notify

extensions_t = cast(Table, Extension.__table__)
REASON_MAX = 2000

declare_event("extension_requested")
declare_event("extension_approved", "due_at", "due_rule", "escalation_level")
declare_event("extension_refused")


@dataclass(frozen=True)
class ExtensionView:
    id: int
    ticket: str
    requested_by: str
    requested_due_at: datetime
    current_due_at: datetime | None
    reason: str
    status: str
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


def _fmt(instant: datetime, tz: object) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]


def request_extension(
    uow: UnitOfWork,
    number: str,
    *,
    actor: Actor,
    due_at: datetime,
    reason: str,
    now: datetime | None = None,
) -> int:
    """Ask for ``due_at`` as the ticket's new due time, with a reason; returns the request id.

    Allowed to the ticket's officer or unit leader (their own unit) and to
    supervisors, before the current due time passes. Refused: no reason, a
    time not later than now and the current due time, a time after the
    campaign's end, a ticket with no running clock, a request already pending.
    Supervisors are told in their inbox.
    """
    now = uow.now(now)
    session = uow.session
    conn = uow.conn
    ticket = load_ticket_row(conn, number)
    uow.policy.require(actor, "extension.ask", ticket, number=number)
    if ticket.due_at is None:
        raise ValidationError(
            f"{number} has no running deadline in state {ticket.state!r}; nothing to extend",
            ticket=number,
            state=ticket.state,
        )
    clock = campaign_clock(uow, ticket.campaign_id)
    if now >= ticket.due_at:
        raise ValidationError(
            f"{number} was due at {_fmt(ticket.due_at, clock.timezone)} and that has passed; an "
            "extension must be asked before the due time — ask a supervisor to act on the overdue "
            "ticket instead",
            ticket=number,
            state=ticket.state,
            fields={"due_at": "the current due time has already passed"},
        )
    errors: dict[str, str] = {}
    why = (reason or "").strip()
    if not why:
        errors["reason"] = "is required: say why the work cannot be done in time"
    elif len(why) > REASON_MAX:
        errors["reason"] = f"is too long ({len(why)} characters; at most {REASON_MAX})"
    wanted = ensure_utc(due_at)
    end = clock.end_instant()
    if wanted <= now:
        errors["due_at"] = f"{_fmt(wanted, clock.timezone)} is in the past; give a later time"
    elif wanted <= ticket.due_at:
        errors["due_at"] = (
            f"must be later than the current due time {_fmt(ticket.due_at, clock.timezone)}"
        )
    elif end is not None and wanted > end:
        errors["due_at"] = (
            f"is after the campaign's end ({clock.ends_on.isoformat()}); "
            f"give a time by {_fmt(end, clock.timezone)}"
        )
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(
            f"the extension for {number} cannot be asked: {listed}",
            fields=errors,
            ticket=number,
            state=ticket.state,
        )
    pending = session.scalar(
        select(Extension.id).where(Extension.ticket_id == ticket.id, Extension.status == "pending")
    )
    if pending is not None:
        raise Conflict(
            f"{number} already has extension request #{pending} waiting for a supervisor; "
            "wait for that decision",
            ticket=number,
            state=ticket.state,
            details={"extension": pending},
        )
    ext_id = conn.execute(
        insert(extensions_t)
        .values(
            ticket_id=ticket.id,
            requested_by_id=actor.id,
            requested_due_at=wanted,
            reason=why,
            status="pending",
            created_at=now,
        )
        .returning(extensions_t.c.id)
    ).scalar_one()
    record_event(
        uow,
        number,
        "extension_requested",
        actor=actor,
        now=now,
        reason=why,
        data={"extension": ext_id, "requested_due_at": _fmt(wanted, clock.timezone)},
    )
    notify(
        conn,
        user_ids=Recipients(conn).supervisors(),
        kind="extension",
        subject=f"{number}: extension to {_fmt(wanted, clock.timezone)} asked by {actor.username}",
        body=why,
        ticket_id=ticket.id,
        now=now,
    )
    return int(ext_id)


def decide_extension(
    uow: UnitOfWork,
    extension_id: int,
    *,
    actor: Actor,
    approve: bool,
    now: datetime | None = None,
    note: str | None = None,
) -> ExtensionView:
    """A supervisor approves or refuses a pending request; approval moves due time and timers.

    Approving sets ``due_at`` to the requested time, ``due_rule`` to
    "extension #N approved by USER", the escalation level back to 0, and
    re-arms the warning and the ladder. A refusal needs a note. The requester
    is told in their inbox.
    """
    now = uow.now(now)
    session = uow.session
    conn = uow.conn
    ext = session.get(Extension, extension_id)
    if ext is None:
        raise NotFound(f"no extension request #{extension_id}")
    ticket = conn.execute(select(Ticket.number).where(Ticket.id == ext.ticket_id)).scalar_one()
    row = load_ticket_row(conn, ticket)
    uow.policy.require(actor, "extension.decide", row, number=row.number)
    if ext.status != "pending":
        raise Conflict(
            f"extension #{extension_id} was already {ext.status}",
            ticket=row.number,
            state=row.state,
        )
    clock = campaign_clock(uow, row.campaign_id)
    text = (note or "").strip() or None
    if approve:
        if row.due_at is None:
            raise ValidationError(
                f"{row.number} no longer has a running deadline (state {row.state!r}); "
                "refuse the request instead",
                ticket=row.number,
                state=row.state,
            )
        if ext.requested_due_at <= now:
            raise ValidationError(
                f"the requested time {_fmt(ext.requested_due_at, clock.timezone)} has passed; "
                "refuse this request and let the unit ask again",
                ticket=row.number,
                state=row.state,
            )
    elif not text:
        raise ValidationError(
            f"refusing extension #{extension_id} needs a note saying why",
            fields={"note": "is required when refusing"},
            ticket=row.number,
            state=row.state,
        )
    status = "approved" if approve else "refused"
    result = conn.execute(
        update(extensions_t)
        .where(extensions_t.c.id == extension_id, extensions_t.c.status == "pending")
        .values(status=status, decided_by_id=actor.id, decided_at=now, decision_note=text)
    )
    if result.rowcount != 1:
        raise Conflict(f"extension #{extension_id} was decided by someone else meanwhile")
    values: dict[str, object] = {}
    if approve:
        workflow = uow.registry.get(row.workflow_name, row.workflow_version)
        rearm(
            uow,
            workflow=workflow,
            ticket_id=row.id,
            campaign_id=row.campaign_id,
            due_at=ext.requested_due_at,
            now=now,
            priority=row.priority,
        )
        values = {
            "due_at": ext.requested_due_at,
            "due_rule": f"extension #{extension_id} approved by {actor.username}",
            "escalation_level": 0,
        }
    record_event(
        uow,
        row.number,
        f"extension_{status}",
        actor=actor,
        now=now,
        reason=text,
        data={
            "extension": extension_id,
            "requested_due_at": _fmt(ext.requested_due_at, clock.timezone),
        },
        values=values,
    )
    notify(
        conn,
        user_ids=[ext.requested_by_id],
        kind="extension",
        subject=f"{row.number}: extension #{extension_id} {status} by {actor.username}",
        body=text or "",
        ticket_id=row.id,
        now=now,
    )
    session.expire(ext)
    return _view(session, extension_id)


def _view(session: Session, extension_id: int) -> ExtensionView:
    requester = User.__table__.alias("requester")
    decider = User.__table__.alias("decider")
    row = session.execute(
        select(
            Extension.id,
            Ticket.number,
            requester.c.username,
            Extension.requested_due_at,
            Ticket.due_at,
            Extension.reason,
            Extension.status,
            Extension.created_at,
            decider.c.username,
            Extension.decided_at,
            Extension.decision_note,
        )
        .join(Ticket, Ticket.id == Extension.ticket_id)
        .join(requester, requester.c.id == Extension.requested_by_id)
        .outerjoin(decider, decider.c.id == Extension.decided_by_id)
        .where(Extension.id == extension_id)
    ).one()
    return ExtensionView(*row)


def get_extension(session: Session, extension_id: int) -> ExtensionView:
    """One request, with its ticket, requester and decision."""
    if session.get(Extension, extension_id) is None:
        raise NotFound(f"no extension request #{extension_id}")
    return _view(session, extension_id)


def list_extensions(
    session: Session,
    *,
    status: str | None = "pending",
    ticket: str | None = None,
    unit_id: int | None = None,
    campaign_id: int | None = None,
) -> list[ExtensionView]:
    """Requests (pending ones by default), oldest first; filter by ticket, unit or campaign."""
    query = select(Extension.id).join(Ticket, Ticket.id == Extension.ticket_id)
    if status is not None:
        query = query.where(Extension.status == status)
    if ticket is not None:
        query = query.where(Ticket.number == ticket)
    if unit_id is not None:
        query = query.where(Ticket.unit_id == unit_id)
    if campaign_id is not None:
        query = query.where(Ticket.campaign_id == campaign_id)
    ids = list(session.scalars(query.order_by(Extension.created_at, Extension.id)))
    return [_view(session, i) for i in ids]


def list_pending_extensions(session: Session, **filters: object) -> list[ExtensionView]:
    """The requests waiting for a supervisor (see ``list_extensions`` for filters)."""
    return list_extensions(session, status="pending", **filters)  # type: ignore[arg-type]
