"""The sweep: fire the timers that fell due, in due-time order, exactly once.

``fire_due_timers`` claims one batch in the caller's transaction — on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several workers share the load
without firing a timer twice; on SQLite the connection already holds the write
lock (``BEGIN IMMEDIATE``), one sweeper per database. Each firing writes its log
row through ``engine.tickets.record_event`` as the system actor, raises the
ticket's escalation level and writes the notices, in the same transaction. A
guard (``UPDATE ... WHERE fired_at IS NULL``) makes a replayed firing a no-op.
``sweep`` runs batches until nothing is due, committing each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import ensure_utc
from engine.deadlines import BREACH, WARNING
from engine.models import Campaign, Ticket, Timer, Unit
from engine.notifications import Recipients, notify
from engine.tickets import SYSTEM_ACTOR, record_event
from engine.workflow import WorkflowRegistry, default_registry

log = logging.getLogger(__name__)
timers_t = cast(Table, Timer.__table__)
tickets_t = cast(Table, Ticket.__table__)

NOTICE_KIND = {
    "assignee": "reminder",
    "unit_leader": "chase",
    "supervisor": "board",
    "leadership": "leadership",
}


@dataclass(frozen=True)
class Firing:
    """One timer fired: what, on which ticket, for which unit, due when, fired when."""

    timer_id: int
    ticket: str
    kind: str
    level: int
    due_at: datetime
    fired_at: datetime
    unit_id: int | None
    unit_code: str | None
    campaign_id: int
    notified: tuple[int, ...] = ()


@dataclass
class SweepResult:
    firings: list[Firing] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    skipped: int = 0

    def extend(self, other: SweepResult) -> None:
        self.firings += other.firings
        self.notification_ids += other.notification_ids
        self.skipped += other.skipped


def _claim(session: Session, now: datetime, limit: int) -> list[Any]:
    query = (
        select(
            timers_t.c.id,
            timers_t.c.ticket_id,
            timers_t.c.kind,
            timers_t.c.level,
            timers_t.c.due_at,
        )
        .where(
            timers_t.c.fired_at.is_(None),
            timers_t.c.cancelled_at.is_(None),
            timers_t.c.due_at <= now,
        )
        .order_by(timers_t.c.due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query))


def due_count(session: Session, *, now: datetime) -> int:
    """How many timers are due and not yet fired at ``now``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(timers_t)
            .where(
                timers_t.c.fired_at.is_(None),
                timers_t.c.cancelled_at.is_(None),
                timers_t.c.due_at <= ensure_utc(now),
            )
        )
        or 0
    )


def next_due(session: Session) -> datetime | None:
    """The earliest pending due time (an index lookup), or None."""
    return session.scalar(
        select(timers_t.c.due_at)
        .where(timers_t.c.fired_at.is_(None), timers_t.c.cancelled_at.is_(None))
        .order_by(timers_t.c.due_at)
        .limit(1)
    )


def fire_due_timers(
    session: Session,
    *,
    now: datetime,
    limit: int = 500,
    registry: WorkflowRegistry | None = None,
    audit_key: bytes | None = None,
) -> SweepResult:
    """Claim up to ``limit`` due timers and fire them, in due-time order; the caller commits."""
    now = ensure_utc(now)
    registry = registry or default_registry()
    conn = session.connection()
    claimed = _claim(session, now, limit)
    result = SweepResult()
    if not claimed:
        return result
    ticket_ids = sorted({t.ticket_id for t in claimed})
    # Lock the batch's tickets in id order (no deadlock between sweepers) and read them fresh.
    ticket_query = (
        select(
            tickets_t.c.id,
            tickets_t.c.number,
            tickets_t.c.campaign_id,
            tickets_t.c.unit_id,
            tickets_t.c.assignee_id,
            tickets_t.c.workflow_name,
            tickets_t.c.workflow_version,
            tickets_t.c.escalation_level,
            tickets_t.c.due_at,
            tickets_t.c.state,
            Unit.code.label("unit_code"),
        )
        .outerjoin(Unit, Unit.id == tickets_t.c.unit_id)
        .where(tickets_t.c.id.in_(ticket_ids))
        .order_by(tickets_t.c.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        ticket_query = ticket_query.with_for_update(of=tickets_t)
    tickets = {row.id: row for row in conn.execute(ticket_query)}
    levels = {tid: row.escalation_level for tid, row in tickets.items()}
    timezones: dict[int, ZoneInfo] = {}
    recipients = Recipients(conn)
    for timer in claimed:
        guard = conn.execute(
            update(timers_t)
            .where(
                timers_t.c.id == timer.id,
                timers_t.c.fired_at.is_(None),
                timers_t.c.cancelled_at.is_(None),
            )
            .values(fired_at=now)
        )
        if guard.rowcount != 1:  # fired or cancelled meanwhile: a replay is a no-op
            result.skipped += 1
            continue
        ticket = tickets[timer.ticket_id]
        if ticket.campaign_id not in timezones:
            tz_name = conn.execute(
                select(Campaign.timezone).where(Campaign.id == ticket.campaign_id)
            ).scalar_one()
            timezones[ticket.campaign_id] = ZoneInfo(tz_name)
        tz = timezones[ticket.campaign_id]
        workflow = registry.get(ticket.workflow_name, ticket.workflow_version)
        due_local = (ticket.due_at or timer.due_at).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        notified: list[int] = []
        if timer.kind == WARNING:
            event = "deadline_warning"
            values: dict[str, Any] = {}
            data = {"timer": timer.id, "due_at": due_local}
            users = recipients.resolve(
                ["assignee"], assignee_id=ticket.assignee_id, unit_id=ticket.unit_id
            )
            hours = workflow.ladder.warning_before_hours
            notified += notify(
                conn,
                user_ids=users,
                kind="warning",
                subject=f"{ticket.number} is due within {hours} hours (by {due_local})",
                body=f"{ticket.number} ({ticket.state}) must be done by {due_local}.",
                ticket_id=ticket.id,
                now=now,
            )
        else:
            level = timer.level
            new_level = max(levels[ticket.id], level)
            levels[ticket.id] = new_level
            event = "overdue" if timer.kind == BREACH else "escalated"
            values = {"escalation_level": new_level}
            data = {"timer": timer.id, "level": level, "due_at": due_local}
            step = next((s for s in workflow.ladder.steps if s.level == level), None)
            names = step.notify if step else ()
            for name in names:
                users = recipients.resolve(
                    [name], assignee_id=ticket.assignee_id, unit_id=ticket.unit_id
                )
                what = "overdue" if level == 1 else f"escalated to level {level}"
                notified += notify(
                    conn,
                    user_ids=users,
                    kind=NOTICE_KIND.get(name, "escalation"),
                    subject=f"{ticket.number} is {what} (was due {due_local})",
                    body=(
                        f"{ticket.number} ({ticket.state}, unit {ticket.unit_code or 'none'}) "
                        f"passed its due time {due_local}; escalation level {level}."
                    ),
                    ticket_id=ticket.id,
                    now=now,
                )
        record_event(
            session,
            ticket.number,
            event,
            actor=SYSTEM_ACTOR,
            now=now,
            data=data,
            values=values,
            audit_key=audit_key,
        )
        result.notification_ids += notified
        result.firings.append(
            Firing(
                timer_id=timer.id,
                ticket=ticket.number,
                kind=timer.kind,
                level=timer.level,
                due_at=timer.due_at,
                fired_at=now,
                unit_id=ticket.unit_id,
                unit_code=ticket.unit_code,
                campaign_id=ticket.campaign_id,
                notified=tuple(notified),
            )
        )
    return result


def sweep(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    batch: int = 500,
    registry: WorkflowRegistry | None = None,
    audit_key: bytes | None = None,
    after_commit: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Fire everything due at ``now`` in batches of ``batch``, one transaction per batch.

    The runner owns its transactions (each batch commits, a failed batch rolls
    back and stops the sweep); ``after_commit`` runs after each committed batch
    (e-mail delivery). Returns every firing in due-time order.
    """
    total = SweepResult()
    while True:
        with sessions() as session:
            try:
                part = fire_due_timers(
                    session, now=now, limit=batch, registry=registry, audit_key=audit_key
                )
                session.commit()
            except BaseException:
                session.rollback()
                raise
        total.extend(part)
        if part.firings and after_commit is not None:
            try:
                after_commit(part)
            except Exception:  # noqa: BLE001 - delivery must not undo or stop the sweep
                log.exception("after-commit delivery failed; the firings stand")
        if len(part.firings) + part.skipped < batch:
            return total
