"""The in-app inbox: notices to users (warnings, reminders, chase notices, digests).

Notices are rows written in the same transaction as what caused them; e-mail
(engine.mailer) goes out only after that transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.clock import ensure_utc
from engine.errors import NotFound, ValidationError
from engine.models import Campaign, Notification, Ticket, Unit, User

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
) -> list[int]:
    """Put one notice in each user's inbox (duplicates in ``user_ids`` count once); their ids."""
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


def list_inbox(
    session: Session,
    user_id: int,
    *,
    unread_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[InboxItem]:
    """A user's notices, newest first."""
    query = (
        select(
            Notification.id,
            Notification.kind,
            Notification.subject,
            Notification.body,
            Notification.ticket_id,
            Ticket.number,
            Notification.created_at,
            Notification.read_at,
        )
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return [InboxItem(*row) for row in session.execute(query)]


def unread_count(session: Session, user_id: int) -> int:
    """How many notices the user has not read."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


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
    }
