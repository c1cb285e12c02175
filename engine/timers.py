"""The sweep: fire the timers that fell due, in due-time order, exactly once.

``fire_due_timers`` claims one chunk in the caller's transaction — on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several workers share the load
without firing a timer twice; on SQLite the connection already holds the write
lock (``BEGIN IMMEDIATE``), one sweeper per database. Each firing writes its log
row through ``engine.ledger.record_events`` (record_event for a batch) as the
system actor, raises the ticket's escalation level, writes the notices and arms
the ladder's next step (a transition arms only the first), in the same
transaction; the bulk writes go through the driver's executemany
(``engine.rawsql``). A guard (``UPDATE ... WHERE fired_at IS NULL``) makes a
replayed firing a no-op. ``sweep`` fires chunks until nothing is due and commits
after ``batch`` firings or ``budget_seconds``, whichever comes first, so no
writer waits long behind a backlog; it returns counts, not every firing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Table, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine import acting, deadlines
from engine.acting import acting_key
from engine.actors import SYSTEM_ACTOR
from engine.audit import canonical_json
from engine.clock import ensure_utc
from engine.context import EngineContext, UnitOfWork
from engine.deadlines import BREACH, LADDER, WARNING
from engine.ledger import Event, record_events
from engine.models import Campaign, Notification, Ticket, Timer, Unit
from engine.notices import ladder_audience
from engine.notifications import Recipients
from engine.rawsql import BulkInsert, PreparedInQuery

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


class Firing(NamedTuple):
    """One timer fired: what, on which ticket, for which unit, due when, fired when, and the
    notices it wrote (a named tuple: a sweep makes one per firing)."""

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
    # ladder steps the firings armed that are due already (the worker was down): this sweep
    # fires them too
    armed_due: int = 0

    def extend(self, other: SweepResult) -> None:
        self.firings += other.firings
        self.notification_ids += other.notification_ids
        self.skipped += other.skipped
        self.deferred += other.deferred
        self.armed_due += other.armed_due


# The sweep's statements, built once (a sweep runs them for every chunk).
_CLAIM = (
    select(
        timers_t.c.id,
        timers_t.c.ticket_id,
        timers_t.c.kind,
        timers_t.c.level,
        timers_t.c.due_at,
        timers_t.c.created_at,
    )
    .where(
        timers_t.c.fired_at.is_(None),
        timers_t.c.cancelled_at.is_(None),
        timers_t.c.due_at <= bindparam("now"),
    )
    .order_by(timers_t.c.due_at)
    .limit(bindparam("limit", type_=Integer))
)
_CLAIM_SKIP_LOCKED = PreparedInQuery(_CLAIM.with_for_update(skip_locked=True))
_SWEEP_TICKETS = (
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
        tickets_t.c.priority,
        # what the log row records (audit.HEAD_COLUMNS) and the time it must not precede
        tickets_t.c.category,
        tickets_t.c.kind,
        tickets_t.c.updated_at,
        Unit.code.label("unit_code"),
    )
    .outerjoin(Unit, Unit.id == tickets_t.c.unit_id)
    .where(tickets_t.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(tickets_t.c.id)
)
_SWEEP_TICKETS_SKIP_LOCKED = PreparedInQuery(
    _SWEEP_TICKETS.with_for_update(of=tickets_t, skip_locked=True)
)
_MARK_FIRED = (
    update(timers_t)
    .where(
        timers_t.c.id.in_(bindparam("ids", expanding=True)),
        timers_t.c.fired_at.is_(None),
        timers_t.c.cancelled_at.is_(None),
    )
    .values(fired_at=bindparam("now"))
    .returning(timers_t.c.id)
)
# Run through the driver (engine.rawsql): every chunk runs these three.
_PREPARED_CLAIM = PreparedInQuery(_CLAIM)
_PREPARED_SWEEP_TICKETS = PreparedInQuery(_SWEEP_TICKETS)
_PREPARED_MARK_FIRED = PreparedInQuery(_MARK_FIRED)
_CAMPAIGN_TIMEZONE = select(Campaign.timezone).where(Campaign.id == bindparam("campaign_id"))
_INSERT_NOTICES = BulkInsert(
    notifications_t, ("user_id", "kind", "ticket_id", "subject", "body", "created_at")
)


def _claim(conn: Connection, now: datetime, limit: int) -> list[Any]:
    pg = conn.dialect.name == "postgresql"
    query = _CLAIM_SKIP_LOCKED if pg else _PREPARED_CLAIM
    return query.all(conn, {"now": now, "limit": limit})


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


@dataclass
class SweepLookups:
    """What the chunks of one sweep transaction read once and share: who a ladder step
    notifies, each campaign's time zone, and what they decide: what a kind of timer does to
    a kind of ticket (``_Plan``) and its texts for a due time (``_Texts``). Valid for one
    transaction (its connection)."""

    recipients: Recipients
    # Who can act on a ticket in its state: ladder notices go only to them (engine.acting).
    people: acting.People
    timezones: dict[int, ZoneInfo] = field(default_factory=dict)
    plans: dict[tuple[Any, ...], _Plan] = field(default_factory=dict)
    # a firing's plan and texts by what decides them and its due time (``fire_due_timers``)
    decided: dict[tuple[Any, ...], tuple[_Plan, _Texts]] = field(default_factory=dict)
    # the ladder step a fired step arms, by workflow, level, due time, campaign and priority
    next_steps: dict[tuple[Any, ...], tuple[int, datetime] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    """What firing one kind of timer does to the tickets that are alike in all that decides
    it (workflow, state, unit, officer): the event logged, the level it raises the ticket
    to (None: a warning leaves it), and the notices in the order they are written (kind,
    recipient). Worked out once per transaction, whatever the number of such tickets."""

    event: str
    level: int | None
    notices: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _Texts:
    """A plan's texts for one due time: each notice's subject and body follow the ticket's
    number, and the logged data precedes the timer's id (its key sorts last)."""

    subject: str
    body: str
    data: str


def _plan(
    uow: UnitOfWork,
    lookups: SweepLookups,
    ticket: Any,
    kind: str,
    level: int,
    overdue: bool,
) -> _Plan:
    """Who a ``kind`` timer (``level``) on ``ticket`` notifies, and what it logs: the step's
    ``notify`` names resolved (``Recipients``), kept to those who can act on the ticket in its
    state (``ladder_audience``). ``overdue``: a warning found after its due time passed."""
    workflow = uow.registry.get(ticket.workflow_name, ticket.workflow_version)
    if kind == WARNING:
        event, raises_to, step_level = "deadline_warning", None, 0
        # After downtime: the ticket is already overdue and its overdue notice fires in
        # this sweep; a warning beside it would tell of a due time still to come.
        wanted = [] if overdue else [("warning", "assignee")]
    else:
        event = "overdue" if kind == BREACH else "escalated"
        raises_to = step_level = level
        step = next((s for s in workflow.ladder.steps if s.level == level), None)
        names = step.notify if step else ()
        wanted = [(NOTICE_KIND.get(name, "escalation"), name) for name in names]
    if not wanted:
        return _Plan(event, raises_to, ())
    recipients = lookups.recipients
    named = [
        recipients.resolve([name], assignee_id=ticket.assignee_id, unit_id=ticket.unit_id)
        for _, name in wanted
    ]
    kept, instead = ladder_audience(
        lookups.people,
        recipients,
        workflow,
        acting.TicketView.of(ticket),
        level=step_level,
        named=named,
    )
    if instead:
        audience = [(wanted[0][0], instead)]
    else:
        audience = [
            (notice_kind, users) for (notice_kind, _), users in zip(wanted, kept, strict=True)
        ]
    return _Plan(
        event,
        raises_to,
        tuple((notice_kind, uid) for notice_kind, users in audience for uid in users),
    )


def _texts(uow: UnitOfWork, ticket: Any, plan: _Plan, due_local: str) -> _Texts:
    """``plan``'s texts for ``ticket`` due at ``due_local`` (see ``_Texts``)."""
    if plan.level is None:
        ladder = uow.registry.get(ticket.workflow_name, ticket.workflow_version).ladder
        return _Texts(
            subject=f" is due within {ladder.warning_before_hours} hours (by {due_local})",
            body=f" ({ticket.state}) must be done by {due_local}.",
            data=canonical_json({"due_at": due_local})[:-1] + ',"timer":',
        )
    level = plan.level
    what = "overdue" if level == 1 else f"escalated to level {level}"
    return _Texts(
        subject=f" is {what} (was due {due_local})",
        body=(
            f" ({ticket.state}, unit {ticket.unit_code or 'none'}) "
            f"passed its due time {due_local}; escalation level {level}."
        ),
        data=canonical_json({"due_at": due_local, "level": level})[:-1] + ',"timer":',
    )


def _decide(
    uow: UnitOfWork, lookups: SweepLookups, key: tuple[Any, ...], ticket: Any
) -> tuple[_Plan, _Texts]:
    """The plan and texts for a firing whose ``key`` (see ``fire_due_timers``) has not come
    up yet in this transaction: the campaign's time zone read once, a plan shared by every
    due time."""
    *plan_key, due, campaign_id = key
    kind, level, overdue = plan_key[-3:]
    tz = lookups.timezones.get(campaign_id)
    if tz is None:
        tz_name = uow.conn.execute(_CAMPAIGN_TIMEZONE, {"campaign_id": campaign_id}).scalar_one()
        tz = lookups.timezones[campaign_id] = ZoneInfo(tz_name)
    plan = lookups.plans.get(tuple(plan_key))
    if plan is None:
        plan = lookups.plans[tuple(plan_key)] = _plan(uow, lookups, ticket, kind, level, overdue)
    return plan, _texts(uow, ticket, plan, due.astimezone(tz).strftime("%Y-%m-%d %H:%M"))


def fire_due_timers(
    uow: UnitOfWork,
    *,
    now: datetime | None = None,
    limit: int = 500,
    lookups: SweepLookups | None = None,
) -> SweepResult:
    """Claim up to ``limit`` due timers and fire them, in due-time order; the caller commits.

    Per batch: one claim, one guarded ``UPDATE ... SET fired_at`` (a timer
    fired or cancelled meanwhile drops out: a replay is a no-op), one read
    that locks the batch's tickets in id order (PostgreSQL), one insert of all
    the notices, and the tickets' changes with their chained log rows through
    ``engine.ledger.record_events`` (``record_event`` for a batch, on the rows
    already read under the lock). Who a step notifies and the texts are worked out once
    per kind of ticket and due time in the transaction (``_Plan``, ``_Texts``, kept in
    ``lookups``), not per firing.
    """
    now = uow.now(now)
    conn = uow.conn
    claimed = _claim(conn, now, limit)
    result = SweepResult()
    if not claimed:
        return result
    pg = conn.dialect.name == "postgresql"
    ticket_ids = sorted({t.ticket_id for t in claimed})
    # Lock the batch's tickets in id order and read them fresh. A ticket a user's
    # transaction holds is skipped, not waited for: that transaction may be about to
    # cancel these very timers (which we hold), and waiting would deadlock.
    ticket_query = _SWEEP_TICKETS_SKIP_LOCKED if pg else _PREPARED_SWEEP_TICKETS
    tickets: dict[int, Any] = {row.id: row for row in ticket_query.all(conn, {"ids": ticket_ids})}
    # A ticket whose last log row is dated after this sweep's clock (another host's clock
    # runs ahead) waits for the next sweep: the log's times only move forward.
    tickets = {k: t for k, t in tickets.items() if t.updated_at is None or t.updated_at <= now}
    # A ticket with two timers in the chunk (a warning and its breach) sees the level the
    # first one raised.
    levels = {row.id: row.escalation_level for row in tickets.values()}
    result.deferred = sum(1 for t in claimed if t.ticket_id not in tickets)
    claimed = [t for t in claimed if t.ticket_id in tickets]
    if not claimed:
        return result
    armed = {
        row.id
        for row in _PREPARED_MARK_FIRED.all(conn, {"ids": [t.id for t in claimed], "now": now})
    }
    result.skipped = len(claimed) - len(armed)
    claimed = [t for t in claimed if t.id in armed]
    if not claimed:
        return result
    if lookups is None:
        lookups = SweepLookups(Recipients(conn), acting.People(conn, uow.policy, uow.registry))
    decided = lookups.decided
    notices: list[tuple[Any, ...]] = []
    counts: list[int] = []  # how many notices each firing wrote, in order
    events: list[Event] = []
    for timer in claimed:
        ticket = tickets[timer.ticket_id]
        due = ticket.due_at or timer.due_at
        overdue = timer.kind == WARNING and ticket.due_at is not None and ticket.due_at <= now
        # What decides the plan (who can act, the step), then the due time as its campaign
        # reads it.
        key = (*acting_key(ticket), timer.kind, timer.level, overdue, due, ticket.campaign_id)
        found = decided.get(key)
        if found is None:
            found = decided[key] = _decide(uow, lookups, key, ticket)
        plan, said = found
        level = levels[ticket.id]
        if plan.level is not None and plan.level > level:
            level = levels[ticket.id] = plan.level
        events.append(
            Event(
                ticket,
                plan.event,
                f"{said.data}{timer.id}}}",
                {"escalation_level": level},
            )
        )
        if plan.notices:
            number = ticket.number
            subject = (number + said.subject)[:300]
            body = number + said.body
            for notice_kind, uid in plan.notices:
                notices.append((uid, notice_kind, ticket.id, subject, body, now))
        counts.append(len(plan.notices))
    record_events(uow, events, actor=SYSTEM_ACTOR, now=now)
    ids = _INSERT_NOTICES.execute_tuples_returning_ids(conn, notices)
    result.armed_due = _arm_next_steps(uow, lookups, claimed, tickets, now)
    result.notification_ids = ids
    firings = result.firings
    at = 0
    for timer, count in zip(claimed, counts, strict=True):
        ticket = tickets[timer.ticket_id]
        firings.append(
            Firing(
                timer.id,
                ticket.number,
                timer.kind,
                timer.level,
                timer.due_at,
                now,
                ticket.unit_id,
                ticket.unit_code,
                ticket.campaign_id,
                tuple(ids[at : at + count]),
            )
        )
        at += count
    return result


def _arm_next_steps(
    uow: UnitOfWork,
    lookups: SweepLookups,
    fired: list[Any],
    tickets: dict[int, Any],
    now: datetime,
) -> int:
    """Arm the ladder step above each fired step (breach or ladder timer), timed from the
    ticket's due time like the step below it and created with it (``created_at``: the as-of
    report joins one clock's steps on it); one insert for the chunk. How many of them are due
    already (after downtime: the sweep fires them next)."""
    rows: list[tuple[Any, ...]] = []
    due_now = 0
    found = lookups.next_steps
    for timer in fired:
        if timer.kind == WARNING:
            continue
        ticket = tickets[timer.ticket_id]
        if ticket.due_at is None:
            continue  # its clock stopped meanwhile: nothing to chase
        key = (
            ticket.workflow_name,
            ticket.workflow_version,
            timer.level,
            ticket.due_at,
            ticket.campaign_id,
            ticket.priority,
        )
        if key in found:
            nxt = found[key]
        else:
            ladder = uow.registry.get(ticket.workflow_name, ticket.workflow_version).ladder
            step = deadlines.next_step(ladder, timer.level)
            if step is None:
                nxt = None
            else:
                clock = deadlines.campaign_clock(uow, ticket.campaign_id)
                _, level, at = deadlines.step_time(step, ticket.due_at, clock, ticket.priority)
                nxt = (level, at)
            found[key] = nxt
        if nxt is None:
            continue
        level, at = nxt
        rows.append((ticket.id, LADDER, level, at, timer.created_at))
        if at <= now:
            due_now += 1
    if rows:
        deadlines.insert_timers(uow.conn, rows)
    return due_now


@dataclass
class SweepTotals:
    """What a whole sweep did, as counts: memory does not grow with the backlog it fires."""

    fired: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    notices: int = 0
    skipped: int = 0
    deferred: int = 0
    transactions: int = 0
    longest_transaction_seconds: float = 0.0

    def add(self, part: SweepResult, seconds: float) -> None:
        self.fired += len(part.firings)
        for f in part.firings:
            if f.kind == WARNING:
                self.warnings += 1
            elif f.kind == BREACH:
                self.breaches += 1
            else:
                self.escalations += 1
        self.notices += len(part.notification_ids)
        self.skipped += part.skipped
        self.deferred += part.deferred
        self.transactions += 1
        self.longest_transaction_seconds = max(self.longest_transaction_seconds, seconds)


# A transaction fires timers a chunk at a time and commits when it has fired ``batch``
# or spent ``budget_seconds``, whichever comes first: the tickets it fired stay locked
# (on SQLite: the whole database) until it commits, so a writer waits at most about
# the budget plus one chunk. Several workers (PostgreSQL) each hold their own chunks.
DEFAULT_BATCH = 500
DEFAULT_BUDGET_SECONDS = 0.5
DEFAULT_CHUNK = 100


def sweep(
    ctx: EngineContext,
    *,
    now: datetime | None = None,
    batch: int = DEFAULT_BATCH,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    chunk: int = DEFAULT_CHUNK,
    after_commit: Callable[[SweepResult], None] | None = None,
    perf_counter: Callable[[], float] = time.perf_counter,
) -> SweepTotals:
    """Fire everything due at ``now``, in due-time order; one transaction per batch.

    A transaction claims and fires ``chunk`` timers at a time and commits once it
    has fired ``batch`` or run for ``budget_seconds`` (by ``perf_counter``), so
    no transaction holds its tickets' locks much longer than the budget; a chunk that
    took more than half the budget halves the chunks after it, so on a loaded machine
    the overshoot shrinks too; one that took under a quarter of it doubles them again, up to
    ``chunk``, so a passing stall does not leave the rest of a backlog in small chunks. The
    runner owns its transactions (each batch commits, a failed batch rolls back
    and stops the sweep); ``after_commit`` runs after each committed batch with
    that batch's firings (e-mail delivery, a listing). Returns counts only.
    """
    if batch < 1 or chunk < 1 or budget_seconds <= 0:
        raise ValueError("sweep: batch and chunk must be at least 1 and the budget positive")
    now = ensure_utc(now) if now is not None else ctx.now()
    total = SweepTotals()
    size = chunk  # halved after a chunk that took over half the budget (a loaded machine)
    while True:
        part = SweepResult()
        more = True
        started = perf_counter()
        elapsed_before = 0.0
        with ctx.unit_of_work() as uow:
            lookups = SweepLookups(
                Recipients(uow.conn), acting.People(uow.conn, uow.policy, uow.registry)
            )
            while True:
                limit = min(size, batch - len(part.firings))
                step = fire_due_timers(uow, now=now, limit=limit, lookups=lookups)
                part.extend(step)
                claimed = len(step.firings) + step.skipped + step.deferred
                if not step.firings or (claimed < limit and not step.armed_due):
                    more = False  # drained, or what is due is held elsewhere: stop
                    break
                if step.deferred or len(part.firings) >= batch:
                    break
                elapsed = perf_counter() - started
                took = elapsed - elapsed_before
                if took > budget_seconds / 2 and size > 1:
                    size = max(1, size // 2)  # smaller chunks hold their locks for less
                elif took < budget_seconds / 4 and size < chunk:
                    size = min(chunk, size * 2)  # the stall has passed
                elapsed_before = elapsed
                if elapsed >= budget_seconds:
                    break
        held = perf_counter() - started
        total.add(part, held)
        if part.firings and after_commit is not None:
            try:
                after_commit(part)
            except Exception:  # noqa: BLE001 - delivery must not undo or stop the sweep
                log.exception("after-commit delivery failed; the firings stand")
        if not part.firings or not more:
            return total
