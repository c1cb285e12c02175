"""API-only reads: the filtered, paginated ticket list (one indexed query plus a COUNT)
and the ticket row the API shows, with its campaign, unit and assignee."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from engine.errors import NotFound, ValidationError
from engine.models import Campaign, Ticket, TransitionLog, Unit, User
from engine.policy import UnitFilter
from engine.rawsql import PreparedQuery
from engine.read.pages import LogEntry, log_entry

if TYPE_CHECKING:
    from engine.context import UnitOfWork
    from engine.firing import Fired

Assignee = aliased(User)

COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.campaign_id,
    Ticket.state,
    Ticket.version,
    Ticket.workflow_name,
    Ticket.workflow_version,
    Ticket.kind,
    Ticket.category,
    Ticket.text,
    Ticket.citizen_name,
    Ticket.citizen_contact,
    Ticket.area,
    Ticket.address,
    Ticket.lat,
    Ticket.long,
    Ticket.unit_id,
    Ticket.assignee_id,
    Ticket.escalation_level,
    Ticket.due_at,
    Ticket.due_rule,
    Ticket.received_at,
    Ticket.created_at,
    Ticket.updated_at,
    Ticket.closed_at,
    Ticket.satisfied,
    Ticket.source,
    Campaign.code.label("campaign_code"),
    Unit.code.label("unit_code"),
    Unit.name.label("unit_name"),
    Assignee.username.label("assignee_username"),
)


def _select() -> Any:
    return (
        select(*COLUMNS)
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .outerjoin(Assignee, Assignee.id == Ticket.assignee_id)
    )


_CAMPAIGN_CODE = PreparedQuery(select(Campaign.code).where(Campaign.id == bindparam("id")))
_UNIT_NAMES = PreparedQuery(select(Unit.code, Unit.name).where(Unit.id == bindparam("id")))
_USERNAME = PreparedQuery(select(User.username).where(User.id == bindparam("id")))


def ticket_after(uow: UnitOfWork, fired: Fired) -> Any:
    """The row ``ticket_row`` would read right after ``fired`` (a ``fire(view=True)``), built
    from the ticket as fire() read it and what the change wrote: no second read of the
    ticket. Campaign, unit and assignee names come from the context's read cache."""
    row = fired.ticket
    if row is None or not hasattr(row, "text"):
        raise ValueError("ticket_after needs the result of fire(..., view=True)")
    out = row._asdict()
    out.update(fired.effects)
    out.update(state=fired.to_state, version=fired.version, updated_at=fired.at)
    conn, cache = uow.conn, uow.ctx.cache

    def cached(query: PreparedQuery, key: int | None) -> Any:
        if key is None:
            return None
        return cache.get((id(query), key), lambda: query.first(conn, {"id": key}))

    out["campaign_code"] = cached(_CAMPAIGN_CODE, out["campaign_id"]).code
    unit = cached(_UNIT_NAMES, out["unit_id"])
    out["unit_code"] = unit.code if unit is not None else None
    out["unit_name"] = unit.name if unit is not None else None
    user = cached(_USERNAME, out["assignee_id"])
    out["assignee_username"] = user.username if user is not None else None
    return SimpleNamespace(**out)


def ticket_row(session: Session, number: str) -> Any:
    row = session.execute(_select().where(Ticket.number == number)).first()
    if row is None:
        raise NotFound(f"no ticket {number!r}; numbers look like 2005-0001", ticket=number)
    return row


def _id_of(session: Session, column: Any, key: Any, value: str, field: str, what: str) -> int:
    found = session.execute(select(column).where(key == value)).scalar()
    if found is None:
        raise ValidationError(
            f"no {what} {value!r}", fields={field: f"no {what} {value!r}"}, details={}
        )
    return int(found)


def list_tickets(
    session: Session,
    *,
    now: datetime,
    unit_scope: UnitFilter | None,
    campaign: str | None = None,
    state: str | None = None,
    category: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    assignee: str | None = None,
    overdue: bool | None = None,
    q: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Any], int]:
    """One page of tickets matching every filter (newest first) and the total count.
    ``unit_scope`` (the policy's ``ticket_filter``) restricts to the tickets of one unit or
    assigned to one user (officers and unit leaders); None is every ticket."""
    conditions: list[Any] = []
    if unit_scope is not None:
        conditions.append(
            or_(Ticket.unit_id == unit_scope.unit_id, Ticket.assignee_id == unit_scope.user_id)
        )
    if campaign:
        conditions.append(
            Ticket.campaign_id
            == _id_of(session, Campaign.id, Campaign.code, campaign, "campaign", "campaign")
        )
    if state:
        conditions.append(Ticket.state == state)
    if category:
        conditions.append(Ticket.category == category)
    if kind:
        conditions.append(Ticket.kind == kind)
    if unit:
        conditions.append(
            Ticket.unit_id == _id_of(session, Unit.id, Unit.code, unit, "unit", "unit")
        )
    if assignee:
        conditions.append(
            Ticket.assignee_id
            == _id_of(session, User.id, User.username, assignee, "assignee", "user")
        )
    if overdue is True:
        conditions.extend([Ticket.due_at < now, Ticket.closed_at.is_(None)])
    elif overdue is False:
        conditions.append(
            or_(Ticket.due_at.is_(None), Ticket.due_at >= now, Ticket.closed_at.isnot(None))
        )
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(Ticket.number == q, Ticket.text.ilike(pattern, escape="\\")))
    total = session.execute(
        select(func.count()).select_from(Ticket).where(*conditions)
    ).scalar_one()
    rows = session.execute(
        _select()
        .where(*conditions)
        .order_by(Ticket.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), int(total)


def history(session: Session, *, ticket_id: int, number: str) -> list[LogEntry]:
    """Every log row of one ticket, in sequence order (the (ticket_id, seq) unique index)."""
    rows = session.execute(
        select(
            TransitionLog.id,
            TransitionLog.seq,
            TransitionLog.trigger,
            TransitionLog.from_state,
            TransitionLog.to_state,
            TransitionLog.actor,
            TransitionLog.role,
            TransitionLog.at,
            TransitionLog.reason,
            TransitionLog.data,
            TransitionLog.hash,
        )
        .where(TransitionLog.ticket_id == ticket_id)
        .order_by(TransitionLog.seq)
    ).all()
    return [log_entry(r, number) for r in rows]
