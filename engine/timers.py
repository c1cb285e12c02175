"""The sweep: fire the timers that fell due, in due-time order, exactly once.

``fire_due_timers`` claims one batch in the caller's transaction — on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several workers share the load
without firing a timer twice; on SQLite the connection already holds the write
lock (``BEGIN IMMEDIATE``), one sweeper per database. Each firing writes its log
row through ``engine.tickets.record_events`` (record_event for a batch) as the system actor, raises the
ticket's escalation level and writes the notices, in the same transaction. A
guard (``UPDATE ... WHERE fired_at IS NULL``) makes a replayed firing a no-op.
``sweep`` runs batches until nothing is due, committing each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from engine.actors import SYSTEM_ACTOR
from engine.clock import ensure_utc
from engine.context import EngineContext, UnitOfWork
from engine.deadlines import BREACH, WARNING
from engine.ledger import Event, record_events
from engine.models import Campaign, Notification, Ticket, Timer, Unit
from engine.notifications import Recipients

log = logging.getLogger(__name__)
timers_t = cast(Table, Timer.__table__)
tickets_t = cast(Table, Ticket.__table__)
notifications_t = cast(Table, Notification.__table__)

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
    skipped: int = 0  # fired or cancelled meanwhile: a replay, a no-op
    deferred: int = 0  # their ticket was busy in a user's transaction: next sweep

    def extend(self, other: SweepResult) -> None:
        self.firings += other.firings
        self.notification_ids += other.notification_ids
        self.skipped += other.skipped
        self.deferred += other.deferred


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
    uow: UnitOfWork,
    *,
    now: datetime | None = None,
    limit: int = 500,
) -> SweepResult:
    """Claim up to ``limit`` due timers and fire them, in due-time order; the caller commits.

    Per batch: one claim, one guarded ``UPDATE ... SET fired_at`` (a timer
    fired or cancelled meanwhile drops out: a replay is a no-op), one read
    that locks the batch's tickets in id order (PostgreSQL), one insert of all
    the notices, and the tickets' changes with their chained log rows through
    ``engine.tickets.record_events`` (``record_event`` for a batch, on the rows
    already read under the lock).
    """
    now = uow.now(now)
    registry = uow.registry
    session = uow.session
    conn = uow.conn
    claimed = _claim(session, now, limit)
    result = SweepResult()
    if not claimed:
        return result
    pg = session.get_bind().dialect.name == "postgresql"
    ticket_ids = sorted({t.ticket_id for t in claimed})
    # Lock the batch's tickets in id order and read them fresh. A ticket a user's
    # transaction holds is skipped, not waited for: that transaction may be about to
    # cancel these very timers (which we hold), and waiting would deadlock.
    ticket_query = (
        select(
            tickets_t.c.id,
            tickets_t.c.number,
            tickets_t.c.campaign_id,
            tickets_t.c.state,
            tickets_t.c.version,
            tickets_t.c.last_hash,
            tickets_t.c.workflow_name,
            tickets_t.c.workflow_version,
            tickets_t.c.unit_id,
            tickets_t.c.assignee_id,
            tickets_t.c.escalation_level,
            tickets_t.c.due_at,
            # what the log row records (audit.HEAD_COLUMNS) and the time it must not precede
            tickets_t.c.category,
            tickets_t.c.kind,
            tickets_t.c.updated_at,
            Unit.code.label("unit_code"),
        )
        .outerjoin(Unit, Unit.id == tickets_t.c.unit_id)
        .where(tickets_t.c.id.in_(ticket_ids))
        .order_by(tickets_t.c.id)
    )
    if pg:
        ticket_query = ticket_query.with_for_update(of=tickets_t, skip_locked=True)
    tickets: dict[int, Any] = {
        row.id: SimpleNamespace(**row._mapping) for row in conn.execute(ticket_query)
    }
    # A ticket whose last log row is dated after this sweep's clock (another host's clock
    # runs ahead) waits for the next sweep: the log's times only move forward.
    tickets = {k: t for k, t in tickets.items() if t.updated_at is None or t.updated_at <= now}
    result.deferred = sum(1 for t in claimed if t.ticket_id not in tickets)
    claimed = [t for t in claimed if t.ticket_id in tickets]
    if not claimed:
        return result
    armed = set(
        conn.execute(
            update(timers_t)
            .where(
                timers_t.c.id.in_([t.id for t in claimed]),
                timers_t.c.fired_at.is_(None),
                timers_t.c.cancelled_at.is_(None),
            )
            .values(fired_at=now)
            .returning(timers_t.c.id)
        ).scalars()
    )
    result.skipped = len(claimed) - len(armed)
    claimed = [t for t in claimed if t.id in armed]
    if not claimed:
        return result
    timezones: dict[int, ZoneInfo] = {}
    recipients = Recipients(conn)
    notices: list[dict[str, Any]] = []
    events: list[Event] = []
    owners: list[int] = []  # index in result.firings of each notice
    for timer in claimed:
        ticket = tickets[timer.ticket_id]
        if ticket.campaign_id not in timezones:
            tz_name = conn.execute(
                select(Campaign.timezone).where(Campaign.id == ticket.campaign_id)
            ).scalar_one()
            timezones[ticket.campaign_id] = ZoneInfo(tz_name)
        tz = timezones[ticket.campaign_id]
        workflow = registry.get(ticket.workflow_name, ticket.workflow_version)
        due_local = (ticket.due_at or timer.due_at).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        wanted: list[tuple[str, list[int], str, str]] = []
        if timer.kind == WARNING:
            event = "deadline_warning"
            values: dict[str, Any] = {}
            data: dict[str, Any] = {"timer": timer.id, "due_at": due_local}
            hours = workflow.ladder.warning_before_hours
            wanted.append(
                (
                    "warning",
                    recipients.resolve(
                        ["assignee"], assignee_id=ticket.assignee_id, unit_id=ticket.unit_id
                    ),
                    f"{ticket.number} is due within {hours} hours (by {due_local})",
                    f"{ticket.number} ({ticket.state}) must be done by {due_local}.",
                )
            )
        else:
            level = timer.level
            event = "overdue" if timer.kind == BREACH else "escalated"
            values = {"escalation_level": max(ticket.escalation_level, level)}
            data = {"timer": timer.id, "level": level, "due_at": due_local}
            step = next((s for s in workflow.ladder.steps if s.level == level), None)
            what = "overdue" if level == 1 else f"escalated to level {level}"
            for name in step.notify if step else ():
                wanted.append(
                    (
                        NOTICE_KIND.get(name, "escalation"),
                        recipients.resolve(
                            [name], assignee_id=ticket.assignee_id, unit_id=ticket.unit_id
                        ),
                        f"{ticket.number} is {what} (was due {due_local})",
                        f"{ticket.number} ({ticket.state}, unit {ticket.unit_code or 'none'}) "
                        f"passed its due time {due_local}; escalation level {level}.",
                    )
                )
        values.setdefault("escalation_level", ticket.escalation_level)
        events.append(Event(ticket=ticket, event=event, data=data, values=values))
        ticket.escalation_level = values["escalation_level"]
        index = len(result.firings)
        for kind, users, subject, body in wanted:
            for uid in sorted(set(users)):
                notices.append(
                    {
                        "user_id": uid,
                        "kind": kind,
                        "ticket_id": ticket.id,
                        "subject": subject[:300],
                        "body": body,
                        "created_at": now,
                    }
                )
                owners.append(index)
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
            )
        )
    record_events(uow, events, actor=SYSTEM_ACTOR, now=now)
    if notices:
        ids = _insert_notices(conn, notices, pg=pg)
        result.notification_ids = ids
        per_firing: dict[int, list[int]] = {}
        for owner, nid in zip(owners, ids, strict=True):
            per_firing.setdefault(owner, []).append(nid)
        for owner, nids in per_firing.items():
            f = result.firings[owner]
            result.firings[owner] = replace(f, notified=tuple(nids))
    return result


def _insert_notices(conn: Any, notices: list[dict[str, Any]], *, pg: bool) -> list[int]:
    """Insert the batch's notices; their ids in the order given."""
    if pg:
        return list(
            conn.execute(
                insert(notifications_t).returning(
                    notifications_t.c.id, sort_by_parameter_order=True
                ),
                notices,
            ).scalars()
        )
    # SQLite would run an ordered RETURNING row by row. Under its write lock (BEGIN
    # IMMEDIATE) nobody else inserts, and executemany assigns rowids in order.
    before = conn.execute(select(func.max(notifications_t.c.id))).scalar() or 0
    conn.execute(insert(notifications_t), notices)
    ids = list(
        conn.execute(
            select(notifications_t.c.id)
            .where(notifications_t.c.id > before)
            .order_by(notifications_t.c.id)
        ).scalars()
    )
    if len(ids) != len(notices):  # pragma: no cover - would mean a second writer on SQLite
        raise RuntimeError("notices inserted by another writer during the sweep")
    return ids


def sweep(
    ctx: EngineContext,
    *,
    now: datetime | None = None,
    batch: int = 500,
    after_commit: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Fire everything due at ``now`` in batches of ``batch``, one transaction per batch.

    The runner owns its transactions (each batch commits, a failed batch rolls
    back and stops the sweep); ``after_commit`` runs after each committed batch
    (e-mail delivery). Returns every firing in due-time order.
    """
    now = ensure_utc(now) if now is not None else ctx.now()
    total = SweepResult()
    while True:
        with ctx.unit_of_work() as uow:
            part = fire_due_timers(uow, now=now, limit=batch)
        total.extend(part)
        if part.firings and after_commit is not None:
            try:
                after_commit(part)
            except Exception:  # noqa: BLE001 - delivery must not undo or stop the sweep
                log.exception("after-commit delivery failed; the firings stand")
        if not part.firings or len(part.firings) + part.skipped + part.deferred < batch:
            return total
