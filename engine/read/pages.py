"""The read model: what the pages (and the JSON API) show, as indexed SQL with a LIMIT.

Every function takes a session and keyword arguments and returns small frozen
dataclasses, never ORM objects, so callers cannot write through them. None of
them loops over all tickets in Python: each list is one query ordered along an
index and cut by ``limit`` (the scale benchmarks run them at a million
tickets). Times are UTC; the caller shows them in the campaign's timezone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, table, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import quoted_name

from engine.clock import ensure_utc
from engine.errors import NotFound
from engine.models import (
    Campaign,
    Extension,
    FeedbackRecord,
    GovernmentEscalation,
    ReopenRequest,
    Ticket,
    TransitionLog,
    Unit,
    User,
    UTCDateTime,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


@dataclass(frozen=True)
class QueueItem:
    """One line of a queue: the ticket, its due time, the time left and whether it is overdue."""

    number: str
    state: str
    kind: str | None
    category: str | None
    text: str
    area: str | None
    unit_code: str | None
    assignee: str | None
    escalation_level: int
    received_at: datetime
    due_at: datetime | None
    due_rule: str | None
    time_left: timedelta | None
    overdue: bool
    version: int


_SNIPPET = 160
_AssigneeUser = aliased(User)


def _queue_select() -> Any:
    return (
        select(
            Ticket.number,
            Ticket.state,
            Ticket.kind,
            Ticket.category,
            func.substr(Ticket.text, 1, _SNIPPET).label("text"),
            Ticket.area,
            Unit.code.label("unit_code"),
            _AssigneeUser.username.label("assignee"),
            Ticket.escalation_level,
            Ticket.received_at,
            Ticket.due_at,
            Ticket.due_rule,
            Ticket.version,
        )
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .outerjoin(_AssigneeUser, _AssigneeUser.id == Ticket.assignee_id)
    )


def _item(row: Any, now: datetime) -> QueueItem:
    left = None if row.due_at is None else row.due_at - now
    return QueueItem(
        number=row.number,
        state=row.state,
        kind=row.kind,
        category=row.category,
        text=row.text,
        area=row.area,
        unit_code=row.unit_code,
        assignee=row.assignee,
        escalation_level=row.escalation_level,
        received_at=row.received_at,
        due_at=row.due_at,
        due_rule=row.due_rule,
        time_left=left,
        overdue=left is not None and left.total_seconds() < 0,
        version=row.version,
    )


def _by_due() -> tuple[Any, ...]:
    # Tickets without a due time go last; ties by number so pages are stable.
    return (Ticket.due_at.is_(None), Ticket.due_at, Ticket.id)


def officer_queue(
    session: Session, *, user_id: int, now: datetime, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> list[QueueItem]:
    """Open tickets assigned to user ``user_id``, soonest due first (index assignee, state, due)."""
    now = ensure_utc(now)
    rows = session.execute(
        _queue_select()
        .where(Ticket.assignee_id == user_id, Ticket.closed_at.is_(None))
        .order_by(*_by_due())
        .limit(_limit(limit))
        .offset(offset)
    ).all()
    return [_item(r, now) for r in rows]


def unit_queue(
    session: Session,
    *,
    unit_id: int,
    now: datetime,
    states: list[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> list[QueueItem]:
    """Open tickets of unit ``unit_id`` (optionally only ``states``), soonest due first."""
    now = ensure_utc(now)
    stmt = _queue_select().where(Ticket.unit_id == unit_id, Ticket.closed_at.is_(None))
    if states:
        stmt = stmt.where(Ticket.state.in_(states))
    rows = session.execute(stmt.order_by(*_by_due()).limit(_limit(limit)).offset(offset)).all()
    return [_item(r, now) for r in rows]


def state_queue(
    session: Session,
    *,
    states: Sequence[str],
    now: datetime,
    campaign_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> list[QueueItem]:
    """Tickets in ``states`` (a workflow's declared queue, e.g. the clerk's intake), oldest
    received first."""
    now = ensure_utc(now)
    if not states:
        return []
    stmt = _queue_select().where(
        Ticket.state == states[0] if len(states) == 1 else Ticket.state.in_(states)
    )
    if campaign_id is not None:
        stmt = stmt.where(Ticket.campaign_id == campaign_id)
    rows = session.execute(
        stmt.order_by(Ticket.received_at, Ticket.id).limit(_limit(limit)).offset(offset)
    ).all()
    return [_item(r, now) for r in rows]


@dataclass(frozen=True)
class BoardCount:
    unit_id: int | None
    unit_code: str | None
    unit_name: str | None
    escalation_level: int
    count: int


@dataclass(frozen=True)
class OverdueBoard:
    """The supervisor's board: counts per unit and escalation level, and the filtered list."""

    counts: list[BoardCount]
    total: int
    items: list[QueueItem]


def _overdue_filter(now: datetime) -> Any:
    # Matches the partial index ix_tickets_open_due (due_at, unit_id, escalation_level).
    return and_(Ticket.closed_at.is_(None), Ticket.due_at < now)


def _sqlite_overdue_counts(now: datetime, campaign_id: int | None) -> Any:
    """The board's counts on SQLite, pinned to the partial covering index ix_tickets_open_due.

    With ANALYZE statistics SQLite prefers a skip-scan of ix_tickets_unit_open_due and
    then reads every overdue ticket row from the table (1M tickets, 40k overdue: 190 ms);
    ``INDEXED BY`` keeps the counts inside the index (25-45 ms). SQLAlchemy renders no
    table hints for SQLite, hence the spelled-out FROM.
    """
    col = literal_column
    query: Any = (
        select(
            col("unit_id").label("unit_id"),
            col("escalation_level").label("escalation_level"),
            func.count().label("n"),
        )
        .select_from(table(quoted_name("tickets INDEXED BY ix_tickets_open_due", quote=False)))
        .where(
            col("closed_at").is_(None),
            col("due_at") < bindparam("board_now", now, type_=UTCDateTime),
        )
        .group_by(col("unit_id"), col("escalation_level"))
    )
    if campaign_id is not None:
        query = query.where(col("campaign_id") == bindparam("board_campaign", campaign_id))
    return query.subquery()


def overdue_board(
    session: Session,
    *,
    now: datetime,
    unit_id: int | None = None,
    min_level: int | None = None,
    campaign_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> OverdueBoard:
    """Open tickets past their due time across units: counts by unit and level (all of
    them, unfiltered), and the list filtered by ``unit_id``/``min_level``, most overdue first."""
    now = ensure_utc(now)
    where = _overdue_filter(now)
    if campaign_id is not None:
        where = and_(where, Ticket.campaign_id == campaign_id)
    if session.get_bind().dialect.name == "sqlite":
        grouped = _sqlite_overdue_counts(now, campaign_id)
    else:
        grouped = (
            select(
                Ticket.unit_id,
                Ticket.escalation_level,
                func.count().label("n"),
            )
            .where(where)
            .group_by(Ticket.unit_id, Ticket.escalation_level)
            .subquery()
        )
    count_rows = session.execute(
        select(grouped, Unit.code, Unit.name)
        .outerjoin(Unit, Unit.id == grouped.c.unit_id)
        .order_by(Unit.code, grouped.c.escalation_level)
    ).all()
    counts = [BoardCount(r.unit_id, r.code, r.name, r.escalation_level, r.n) for r in count_rows]
    stmt = _queue_select().where(where)
    if unit_id is not None:
        stmt = stmt.where(Ticket.unit_id == unit_id)
    if min_level is not None:
        stmt = stmt.where(Ticket.escalation_level >= min_level)
    rows = session.execute(
        stmt.order_by(Ticket.due_at, Ticket.id).limit(_limit(limit)).offset(offset)
    ).all()
    return OverdueBoard(
        counts=counts, total=sum(c.count for c in counts), items=[_item(r, now) for r in rows]
    )


@dataclass(frozen=True)
class LogEntry:
    id: int
    ticket_number: str
    seq: int
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    at: datetime
    reason: str | None
    data: str
    hash: str


@dataclass(frozen=True)
class Record:
    """A feedback record, a government escalation, an extension or a reopen request."""

    kind: str
    at: datetime
    fields: dict[str, Any]


@dataclass(frozen=True)
class TicketDetail:
    id: int
    number: str
    campaign_code: str
    campaign_timezone: str
    rectification_deadline: datetime | None
    state: str
    version: int
    workflow_name: str
    workflow_version: int
    kind: str | None
    category: str | None
    text: str
    citizen_name: str | None
    citizen_contact: str | None
    area: str | None
    address: str | None
    unit_id: int | None
    unit_code: str | None
    unit_name: str | None
    assignee_id: int | None
    assignee: str | None
    escalation_level: int
    received_at: datetime
    due_at: datetime | None
    due_rule: str | None
    closed_at: datetime | None
    satisfied: bool | None
    source: str
    history: list[LogEntry] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def time_left(self, now: datetime) -> timedelta | None:
        return None if self.due_at is None else self.due_at - ensure_utc(now)

    def overdue(self, now: datetime) -> bool:
        left = self.time_left(now)
        return left is not None and left.total_seconds() < 0 and self.closed_at is None


HISTORY_LIMIT = 200


def ticket_detail(session: Session, *, number: str, with_history: bool = True) -> TicketDetail:
    """Ticket ``number`` with its unit, assignee, campaign, log (up to 200 rows, in order)
    and its records (feedback, escalations, extensions, reopen requests). ``NotFound`` if none."""
    row = session.execute(
        select(
            Ticket,
            Campaign.code,
            Campaign.timezone,
            case((Campaign.continuous, None), else_=Campaign.rectification_deadline),
            Unit.code,
            Unit.name,
            _AssigneeUser.username,
        )
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .outerjoin(_AssigneeUser, _AssigneeUser.id == Ticket.assignee_id)
        .where(Ticket.number == number)
    ).first()
    if row is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    t: Ticket = row[0]
    detail = TicketDetail(
        id=t.id,
        number=t.number,
        campaign_code=row[1],
        campaign_timezone=row[2],
        rectification_deadline=row[3],
        state=t.state,
        version=t.version,
        workflow_name=t.workflow_name,
        workflow_version=t.workflow_version,
        kind=t.kind,
        category=t.category,
        text=t.text,
        citizen_name=t.citizen_name,
        citizen_contact=t.citizen_contact,
        area=t.area,
        address=t.address,
        unit_id=t.unit_id,
        unit_code=row[4],
        unit_name=row[5],
        assignee_id=t.assignee_id,
        assignee=row[6],
        escalation_level=t.escalation_level,
        received_at=t.received_at,
        due_at=t.due_at,
        due_rule=t.due_rule,
        closed_at=t.closed_at,
        satisfied=t.satisfied,
        source=t.source,
    )
    if with_history:
        detail.history.extend(
            log_entry(r, t.number)
            for r in session.execute(
                select(TransitionLog)
                .where(TransitionLog.ticket_id == t.id)
                .order_by(TransitionLog.seq)
                .limit(HISTORY_LIMIT)
            ).scalars()
        )
        detail.records.extend(_records(session, t.id))
    return detail


def log_entry(r: Any, number: str) -> LogEntry:
    """A log row (ORM object or selected row with the same names) as a LogEntry."""
    return LogEntry(
        id=r.id,
        ticket_number=number,
        seq=r.seq,
        trigger=r.trigger,
        from_state=r.from_state,
        to_state=r.to_state,
        actor=r.actor,
        role=r.role,
        at=r.at,
        reason=r.reason,
        data=r.data,
        hash=r.hash,
    )


def _records(session: Session, ticket_id: int) -> list[Record]:
    out: list[Record] = []
    for fb in session.scalars(select(FeedbackRecord).where(FeedbackRecord.ticket_id == ticket_id)):
        out.append(
            Record("feedback", fb.at, {"method": fb.method, "text": fb.text, "date": fb.given_on})
        )
    for ge in session.scalars(
        select(GovernmentEscalation).where(GovernmentEscalation.ticket_id == ticket_id)
    ):
        out.append(
            Record(
                "government escalation",
                ge.at,
                {
                    "receiving body": ge.receiving_body,
                    "reference": ge.reference,
                    "reason": ge.reason,
                },
            )
        )
    for ex in session.scalars(select(Extension).where(Extension.ticket_id == ticket_id)):
        out.append(
            Record(
                "extension",
                ex.created_at,
                {
                    "id": ex.id,
                    "requested due": ex.requested_due_at,
                    "reason": ex.reason,
                    "status": ex.status,
                    "note": ex.decision_note,
                },
            )
        )
    for rr in session.scalars(select(ReopenRequest).where(ReopenRequest.ticket_id == ticket_id)):
        out.append(
            Record(
                "reopen request",
                rr.created_at,
                {"id": rr.id, "reason": rr.reason, "status": rr.status},
            )
        )
    out.sort(key=lambda r: r.at)
    return out


def search_log(
    session: Session,
    *,
    ticket: str | None = None,
    actor: str | None = None,
    trigger: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[LogEntry]:
    """Transition-log rows matching every given filter, newest first (by time, then id);
    page on with ``before_id`` (the id of the last row of the previous page). ``until`` is
    exclusive."""
    stmt = select(TransitionLog, Ticket.number).join(Ticket, Ticket.id == TransitionLog.ticket_id)
    if ticket:
        ticket_id = session.execute(select(Ticket.id).where(Ticket.number == ticket)).scalar()
        if ticket_id is None:
            return []
        stmt = stmt.where(TransitionLog.ticket_id == ticket_id)
    if actor:
        stmt = stmt.where(TransitionLog.actor == actor)
    if trigger:
        stmt = stmt.where(TransitionLog.trigger == trigger)
    if since is not None:
        stmt = stmt.where(TransitionLog.at >= ensure_utc(since))
    if until is not None:
        stmt = stmt.where(TransitionLog.at < ensure_utc(until))
    if before_id is not None:
        # Keyset on (at, id): rows after the given one in the newest-first order.
        before_at = session.execute(
            select(TransitionLog.at).where(TransitionLog.id == before_id)
        ).scalar()
        if before_at is None:
            stmt = stmt.where(TransitionLog.id < before_id)
        else:
            stmt = stmt.where(
                TransitionLog.at <= before_at,
                or_(TransitionLog.at < before_at, TransitionLog.id < before_id),
            )
    # Newest first by time, so a time range walks the index on ``at`` (or ``actor, at``)
    # instead of every later row by id.
    rows = session.execute(
        stmt.order_by(TransitionLog.at.desc(), TransitionLog.id.desc()).limit(_limit(limit))
    ).all()
    return [log_entry(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class SampledTicket:
    number: str
    kind: str | None
    category: str | None
    unit_code: str | None
    closed_at: datetime
    satisfied: bool | None


def sample_closed(
    session: Session, *, size: int = 20, seed: int | None = None, campaign_id: int | None = None
) -> list[SampledTicket]:
    """A random sample of closed tickets for an inspector to check, reproducible by ``seed``.

    Draws random ids between the smallest and largest ticket id and takes the
    first closed ticket at or after each (one primary-key probe per draw), so it
    never scans the table. Tickets after long open stretches are a little more
    likely to be drawn; for spot checks that bias is acceptable.
    """
    size = _limit(size)
    rng = random.Random(seed)
    lo, hi = session.execute(select(func.min(Ticket.id), func.max(Ticket.id))).one()
    if lo is None:
        return []
    base = select(Ticket.id).where(Ticket.closed_at.is_not(None))
    if campaign_id is not None:
        base = base.where(Ticket.campaign_id == campaign_id)
    chosen: set[int] = set()
    for _ in range(size * 3):
        if len(chosen) >= size:
            break
        start = rng.randint(lo, hi)
        found = session.execute(
            base.where(Ticket.id >= start, Ticket.id.not_in(chosen) if chosen else true())
            .order_by(Ticket.id)
            .limit(1)
        ).scalar()
        if found is None:
            found = session.execute(
                base.where(Ticket.id < start, Ticket.id.not_in(chosen) if chosen else true())
                .order_by(Ticket.id.desc())
                .limit(1)
            ).scalar()
        if found is None:
            break
        chosen.add(found)
    if not chosen:
        return []
    rows = session.execute(
        select(
            Ticket.number,
            Ticket.kind,
            Ticket.category,
            Unit.code,
            Ticket.closed_at,
            Ticket.satisfied,
        )
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .where(Ticket.id.in_(chosen))
        .order_by(Ticket.id)
    ).all()
    return [SampledTicket(*r) for r in rows]  # type: ignore[arg-type]


@dataclass(frozen=True)
class PendingReopen:
    id: int
    ticket_number: str
    ticket_state: str
    reason: str
    created_at: datetime


def pending_reopen_requests(session: Session, *, limit: int = DEFAULT_LIMIT) -> list[PendingReopen]:
    """Citizens' reopen requests (unsatisfied with the feedback) waiting for a supervisor."""
    rows = session.execute(
        select(
            ReopenRequest.id,
            Ticket.number,
            Ticket.state,
            ReopenRequest.reason,
            ReopenRequest.created_at,
        )
        .join(Ticket, Ticket.id == ReopenRequest.ticket_id)
        .where(ReopenRequest.status == "pending")
        .order_by(ReopenRequest.created_at, ReopenRequest.id)
        .limit(_limit(limit))
    ).all()
    return [PendingReopen(*r) for r in rows]


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    group: str | None = None


def unit_choices(session: Session) -> list[Choice]:
    """Every unit as (code, name), by code."""
    return [
        Choice(code, f"{name} ({code})")
        for code, name in session.execute(select(Unit.code, Unit.name).order_by(Unit.code))
    ]


def officer_choices(session: Session, *, unit_id: int | None = None) -> list[Choice]:
    """Active officers and unit leaders (optionally of one unit), grouped by unit code."""
    stmt = (
        select(User.username, User.display_name, Unit.code)
        .join(Unit, Unit.id == User.unit_id)
        .where(User.active.is_(True), User.role.in_(("officer", "unit_leader")))
    )
    if unit_id is not None:
        stmt = stmt.where(User.unit_id == unit_id)
    return [
        Choice(u, f"{d} ({u})", code)
        for u, d, code in session.execute(stmt.order_by(Unit.code, User.username))
    ]


def category_choices(session: Session, *, campaign_id: int) -> list[Choice]:
    """The campaign's categories in their configured order."""
    from engine.models import Category

    return [
        Choice(code, name)
        for code, name in session.execute(
            select(Category.code, Category.name)
            .where(Category.campaign_id == campaign_id)
            .order_by(Category.position, Category.id)
        )
    ]


def campaign_of(session: Session, *, number: str) -> tuple[int, str]:
    """(campaign id, campaign timezone) of ticket ``number``."""
    row = session.execute(
        select(Campaign.id, Campaign.timezone)
        .join(Ticket, Ticket.campaign_id == Campaign.id)
        .where(Ticket.number == number)
    ).first()
    if row is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    return row[0], row[1]


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    code: str
    name: str
    timezone: str
    workflow_name: str = ""
    workflow_version: int = 0
    continuous: bool = False


_CAMPAIGN_INFO = (
    Campaign.id,
    Campaign.code,
    Campaign.name,
    Campaign.timezone,
    Campaign.workflow_name,
    Campaign.workflow_version,
    Campaign.continuous,
)


def active_campaign(
    session: Session, *, now: datetime, code: str | None = None
) -> CampaignInfo | None:
    """The programme ``code`` if given (None when there is none), else the campaign running on
    ``now``'s date or a continuous programme (the latest started one otherwise), or None."""
    if code:
        found = session.execute(select(*_CAMPAIGN_INFO).where(Campaign.code == code)).first()
        return CampaignInfo(*found) if found else None
    today = ensure_utc(now).date()
    row = session.execute(
        select(*_CAMPAIGN_INFO)
        .where(
            Campaign.starts_on <= today + timedelta(days=1),
            or_(Campaign.ends_on.is_(None), Campaign.ends_on >= today),
        )
        .order_by(Campaign.starts_on.desc())
        .limit(1)
    ).first()
    if row is None:
        row = session.execute(
            select(*_CAMPAIGN_INFO).order_by(Campaign.starts_on.desc()).limit(1)
        ).first()
    return CampaignInfo(*row) if row else None


def programmes(session: Session) -> list[CampaignInfo]:
    """Every campaign and continuous programme, newest first (the pages' programme choice)."""
    rows = session.execute(
        select(*_CAMPAIGN_INFO).order_by(Campaign.starts_on.desc(), Campaign.code)
    ).all()
    return [CampaignInfo(*r) for r in rows]


def ticket_exists(session: Session, *, number: str) -> bool:
    """Whether a ticket numbered ``number`` exists (unique index on the number)."""
    return session.execute(select(Ticket.id).where(Ticket.number == number)).first() is not None
