"""The in-app inbox: notices to users (warnings, reminders, chase notices, digests).

Notices are rows written in the same transaction as what caused them; e-mail
(engine.mailer) goes out only after that transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.audit import canonical_json
from engine.clock import ensure_utc
from engine.errors import NotFound, ValidationError
from engine.models import Campaign, Notification, Ticket, Unit, User

if TYPE_CHECKING:
    from engine.context import UnitOfWork

notifications_t = cast(Table, Notification.__table__)
users_t = cast(Table, User.__table__)
units_t = cast(Table, Unit.__table__)

KINDS = (
    "warning",
    "reminder",
    "chase",
    "board",
    "leadership",
    "extension",
    "escalation",
    "digest",
    "assignment",  # the ticket was given to the people who must now act on it
    "returned",  # it came back to them: sent back, a reply returned, a redo
    "reopen",  # it was reopened
)
BUREAU_UNIT = "bureau"
# Ladder recipients that are not roles of the policy: the ticket's officer, the bureau leadership.
LADDER_RECIPIENTS = frozenset({"assignee", "leadership"})


def notify(
    conn: Connection | Session,
    *,
    user_ids: Iterable[int],
    kind: str,
    subject: str,
    now: datetime,
    body: str = "",
    ticket_id: int | None = None,
    message_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> list[int]:
    """Put one notice in each user's inbox (duplicates in ``user_ids`` count once); their ids.

    ``message_id`` and ``params`` let the pages write the notice in the reader's language;
    ``subject`` and ``body`` are the English text (e-mail, the API)."""
    if kind not in KINDS:
        raise ValidationError(f"unknown notice kind {kind!r}; kinds are {', '.join(KINDS)}")
    now = ensure_utc(now)
    connection = conn.connection() if isinstance(conn, Session) else conn
    unique = sorted(set(user_ids))
    if not unique:
        return []
    rows = [
        {
            "user_id": uid,
            "kind": kind,
            "ticket_id": ticket_id,
            "subject": subject[:300],
            "body": body,
            "created_at": now,
            "message_id": message_id,
            "params": canonical_json(params) if params is not None else None,
        }
        for uid in unique
    ]
    result = connection.execute(insert(notifications_t).returning(notifications_t.c.id), rows)
    return [r[0] for r in result]


# Recipients' look-ups, built once (a sweep asks them in every transaction).
_ACTIVE_WITH_ROLE = select(users_t.c.id, users_t.c.unit_id).where(
    users_t.c.role == bindparam("role"), users_t.c.active.is_(True)
)
_UNIT_LEADERS = select(users_t.c.id).where(
    users_t.c.unit_id == bindparam("unit_id"),
    users_t.c.role == "unit_leader",
    users_t.c.active.is_(True),
)
_SUPERVISORS = (
    select(users_t.c.id, units_t.c.code)
    .select_from(users_t.outerjoin(units_t, units_t.c.id == users_t.c.unit_id))
    .where(users_t.c.role == "supervisor", users_t.c.active.is_(True))
    .order_by(users_t.c.id)
)


class Recipients:
    """Who a ladder step's ``notify`` names mean, cached for one sweep.

    ``assignee``: the ticket's officer (the unit leaders when none is assigned);
    ``unit_leader``: the leaders of the ticket's unit; ``supervisor``: the
    bureau's supervisors outside the bureau leadership (all supervisors when there
    are none); ``leadership``: the supervisors of the bureau unit. Any other name is a role
    of the policy: its active users in the ticket's unit, or all of them when the unit has none
    (a hotline centre's supervisor for a ticket dispatched to a township).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._leaders: dict[int, list[int]] = {}
        self._supervisors: list[int] | None = None
        self._leadership: list[int] | None = None
        self._by_role: dict[str, list[tuple[int, int | None]]] = {}

    def with_role(self, role: str, unit_id: int | None) -> list[int]:
        if role not in self._by_role:
            self._by_role[role] = [
                (r.id, r.unit_id) for r in self.conn.execute(_ACTIVE_WITH_ROLE, {"role": role})
            ]
        everyone = self._by_role[role]
        in_unit = [uid for uid, unit in everyone if unit_id is not None and unit == unit_id]
        return in_unit or [uid for uid, _ in everyone]

    def unit_leaders(self, unit_id: int | None) -> list[int]:
        if unit_id is None:
            return []
        if unit_id not in self._leaders:
            self._leaders[unit_id] = list(
                self.conn.execute(_UNIT_LEADERS, {"unit_id": unit_id}).scalars()
            )
        return self._leaders[unit_id]

    def _load_supervisors(self) -> None:
        rows = self.conn.execute(_SUPERVISORS).all()
        leadership = [r.id for r in rows if r.code == BUREAU_UNIT]
        board = [r.id for r in rows if r.code != BUREAU_UNIT]
        self._leadership = leadership or [r.id for r in rows]
        self._supervisors = board or [r.id for r in rows]

    def supervisors(self) -> list[int]:
        if self._supervisors is None:
            self._load_supervisors()
        return list(self._supervisors or [])

    def leadership(self) -> list[int]:
        if self._leadership is None:
            self._load_supervisors()
        return list(self._leadership or [])

    def resolve(
        self, names: Sequence[str], *, assignee_id: int | None, unit_id: int | None
    ) -> list[int]:
        out: list[int] = []
        for name in names:
            if name == "assignee":
                out.extend([assignee_id] if assignee_id is not None else self.unit_leaders(unit_id))
            elif name == "unit_leader":
                out.extend(self.unit_leaders(unit_id))
            elif name == "supervisor":
                out.extend(self.supervisors())
            elif name == "leadership":
                out.extend(self.leadership())
            else:
                out.extend(self.with_role(name, unit_id))
        return sorted(set(out))


@dataclass(frozen=True)
class InboxItem:
    id: int
    kind: str
    subject: str
    body: str
    ticket_id: int | None
    ticket_number: str | None
    created_at: datetime
    read_at: datetime | None
    message_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


_INBOX_COLUMNS = (
    Notification.id,
    Notification.kind,
    Notification.subject,
    Notification.body,
    Notification.ticket_id,
    Ticket.number,
    Notification.created_at,
    Notification.read_at,
    Notification.message_id,
    Notification.params,
)


def _item(row: Any) -> InboxItem:
    return InboxItem(
        id=row.id,
        kind=row.kind,
        subject=row.subject,
        body=row.body,
        ticket_id=row.ticket_id,
        ticket_number=row.number,
        created_at=row.created_at,
        read_at=row.read_at,
        message_id=row.message_id,
        params=json.loads(row.params) if row.params else {},
    )


def list_inbox(
    session: Session,
    user_id: int,
    *,
    unread_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[InboxItem]:
    """A user's notices, newest first (current or not; the inbox page uses ``inbox``)."""
    query = (
        select(*_INBOX_COLUMNS)
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return [_item(row) for row in session.execute(query)]


def unread_count(session: Session, user_id: int) -> int:
    """How many notices the user has not read (current or not; see ``current_unread_count``)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


@dataclass
class Inbox:
    """A user's notices split in two: ``current`` (about tickets the user can still act on,
    and the newest notice of each kind that concerns no ticket, such as the digest) and
    ``older`` (tickets closed or moved out of the user's reach since, superseded digests),
    each newest first; ``unread`` counts the current unread ones."""

    current: list[InboxItem]
    older: list[InboxItem]
    unread: int


_TICKET_KEY = (
    Ticket.id,
    Ticket.number,
    Ticket.workflow_name,
    Ticket.workflow_version,
    Ticket.state,
    Ticket.unit_id,
    Ticket.assignee_id,
)


class _Currency:
    """Whether a notice is current for its reader, decided once per ticket state."""

    def __init__(self, uow: UnitOfWork, user_id: int) -> None:
        # engine.acting builds on engine.firing, which writes notices through this module.
        from engine import acting

        self.user_id = user_id
        self.view = acting.TicketView
        self.people = acting.People(uow.conn, uow.policy, uow.registry, cache=uow.ctx.cache)
        self.newest_without_ticket = set(
            uow.session.scalars(
                select(func.max(Notification.id))
                .where(Notification.user_id == user_id, Notification.ticket_id.is_(None))
                .group_by(Notification.kind)
            )
        )

    def ticket_is_current(self, row: Any) -> bool:
        """``row`` has the ticket's ``tid``, ``number`` and the columns of ``_TICKET_KEY``."""
        if row.tid is None:
            return False
        view = self.view(
            id=row.tid,
            number=row.number,
            workflow_name=row.workflow_name,
            workflow_version=row.workflow_version,
            state=row.state,
            unit_id=row.unit_id,
            assignee_id=row.assignee_id,
        )
        return self.people.can_act(self.user_id, view)


def inbox(uow: UnitOfWork, user_id: int, *, unread_only: bool = False, limit: int = 100) -> Inbox:
    """The user's inbox as the page shows it: current notices first (see ``Inbox``)."""
    currency = _Currency(uow, user_id)
    query = (
        select(*_INBOX_COLUMNS, *_TICKET_KEY[2:], Ticket.id.label("tid"))
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .execution_options(yield_per=500)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    current: list[InboxItem] = []
    older: list[InboxItem] = []
    result = uow.session.execute(query)
    try:
        for row in result:
            item = _item(row)
            if item.ticket_id is None:
                is_current = item.id in currency.newest_without_ticket
            else:
                is_current = currency.ticket_is_current(row)
            (current if is_current else older).append(item)
            if len(current) >= limit and len(older) >= limit:
                break
    finally:
        result.close()
    return Inbox(current[:limit], older[:limit], current_unread_count(uow, user_id, currency))


def current_unread_count(uow: UnitOfWork, user_id: int, currency: _Currency | None = None) -> int:
    """How many unread notices are current for the user (the number beside "Inbox"): one
    grouped read per ticket state, whatever the number of notices."""
    currency = currency or _Currency(uow, user_id)
    rows = uow.session.execute(
        select(
            *_TICKET_KEY[2:],
            func.count().label("notices"),
            func.min(Ticket.id).label("tid"),
            func.min(Ticket.number).label("number"),
        )
        .select_from(Notification)
        .join(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .group_by(*_TICKET_KEY[2:])
    ).all()
    count = 0
    for row in rows:
        # Whether the user can act depends on these columns only (the ticket's id and
        # number name it in refusals), so one answer serves the whole group.
        if currency.ticket_is_current(row):
            count += int(row.notices)
    if currency.newest_without_ticket:
        count += int(
            uow.session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.id.in_(sorted(currency.newest_without_ticket)),
                    Notification.read_at.is_(None),
                )
            )
            or 0
        )
    return count


def mark_read(
    session: Session, user_id: int, *, now: datetime, ids: Iterable[int] | None = None
) -> int:
    """Mark the user's notices ``ids`` (all unread when None) read; how many changed.

    A notice id that is not the user's is ``NotFound`` (nothing is marked).
    """
    now = ensure_utc(now)
    query = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        wanted = sorted(set(ids))
        mine = set(
            session.scalars(
                select(Notification.id).where(
                    Notification.id.in_(wanted), Notification.user_id == user_id
                )
            )
        )
        missing = [i for i in wanted if i not in mine]
        if missing:
            raise NotFound(f"no notice {missing[0]} in this user's inbox")
        query = query.where(Notification.id.in_(wanted))
    result = session.execute(query.values(read_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class OverdueTicket:
    number: str
    state: str
    due_at: datetime
    escalation_level: int
    assignee: str | None


@dataclass(frozen=True)
class UnitOverdue:
    unit_id: int | None
    unit_code: str | None
    unit_name: str | None
    tickets: list[OverdueTicket]


def overdue_by_unit(session: Session, *, campaign: str, now: datetime) -> list[UnitOverdue]:
    """What is overdue at ``now`` in the campaign, per unit (units with most overdue first)."""
    now = ensure_utc(now)
    camp_id = session.scalar(select(Campaign.id).where(Campaign.code == campaign))
    if camp_id is None:
        raise NotFound(f"no campaign {campaign!r}")
    rows = session.execute(
        select(
            Ticket.unit_id,
            Unit.code,
            Unit.name,
            Ticket.number,
            Ticket.state,
            Ticket.due_at,
            Ticket.escalation_level,
            User.username,
        )
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(
            Ticket.campaign_id == camp_id,
            Ticket.due_at.is_not(None),
            Ticket.due_at <= now,
            Ticket.closed_at.is_(None),
        )
        .order_by(Ticket.due_at, Ticket.number)
    ).all()
    units: dict[int | None, UnitOverdue] = {}
    for r in rows:
        entry = units.setdefault(r.unit_id, UnitOverdue(r.unit_id, r.code, r.name, []))
        entry.tickets.append(
            OverdueTicket(r.number, r.state, r.due_at, r.escalation_level, r.username)
        )
    return sorted(units.values(), key=lambda u: (-len(u.tickets), u.unit_code or ""))


def _digest_text(units: list[UnitOverdue], tz: ZoneInfo) -> str:
    lines = []
    for u in units:
        lines.append(f"{u.unit_name or 'unassigned'}: {len(u.tickets)} overdue")
        for t in u.tickets:
            due = t.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"  {t.number} ({t.state}, due {due}, level {t.escalation_level}, "
                f"{t.assignee or 'no officer'})"
            )
    return "\n".join(lines)


def send_daily_digest(session: Session, *, campaign: str, now: datetime) -> list[int]:
    """The daily digest of overdue tickets: each unit leader gets their unit's, supervisors all.

    Idempotent per local day: a user who already has today's digest for the
    campaign gets none again. Returns the notice ids written (the caller commits).
    """
    now = ensure_utc(now)
    camp = session.execute(
        select(Campaign.code, Campaign.name, Campaign.timezone).where(Campaign.code == campaign)
    ).first()
    if camp is None:
        raise NotFound(f"no campaign {campaign!r}")
    tz = ZoneInfo(camp.timezone)
    local_day = now.astimezone(tz).date()
    day_start = datetime.combine(local_day, time(0), tzinfo=tz)
    subject_prefix = f"Overdue digest {camp.code} {local_day.isoformat()}"
    already = set(
        session.scalars(
            select(Notification.user_id).where(
                and_(
                    Notification.kind == "digest",
                    Notification.created_at >= day_start,
                    Notification.created_at < day_start + timedelta(days=1),
                    Notification.subject.startswith(subject_prefix),
                )
            )
        )
    )
    units = overdue_by_unit(session, campaign=campaign, now=now)
    if not units:
        return []
    conn = session.connection()
    recipients = Recipients(conn)
    ids: list[int] = []
    total = sum(len(u.tickets) for u in units)
    for u in units:
        leaders = [uid for uid in recipients.unit_leaders(u.unit_id) if uid not in already]
        ids += notify(
            conn,
            user_ids=leaders,
            kind="digest",
            subject=f"{subject_prefix}: {len(u.tickets)} overdue in {u.unit_name}",
            body=_digest_text([u], tz),
            now=now,
        )
    board = [
        uid for uid in recipients.supervisors() + recipients.leadership() if uid not in already
    ]
    ids += notify(
        conn,
        user_ids=board,
        kind="digest",
        subject=f"{subject_prefix}: {total} overdue in {len(units)} units",
        body=_digest_text(units, tz),
        now=now,
    )
    return ids


def as_dict(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "subject": item.subject,
        "body": item.body,
        "ticket": item.ticket_number,
        "created_at": item.created_at.isoformat(),
        "read_at": item.read_at.isoformat() if item.read_at else None,
        "message_id": item.message_id,
        "params": item.params,
    }
