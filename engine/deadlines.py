"""Deadlines: the due time a state sets on a ticket, and the timers that enforce it.

``on_transition`` is called by ``tickets.create_ticket`` and ``tickets.fire``
inside the transition's transaction; it returns the ticket columns to change
(``due_at``, ``due_rule``, ``escalation_level``) and writes timer rows itself.

Rules (decided here, documented in README):

- Entering a state with a ``time_limit`` starts a new clock: the pending timers
  of the ticket are cancelled, the escalation level goes back to 0, the due time
  is the state's limit in working days on the campaign's calendar and timezone
  (or calendar hours), and timers are armed: a warning ``warning_before_hours``
  before the due time and the ladder's first step (level 1, the breach). Each
  step, when the sweep fires it, arms the step above it (same ``created_at``, so
  the steps of one clock stay together); a step that fell due while the worker
  was down is armed by the firing of the step below and fires in the same sweep.
- The campaign's rectification deadline caps the due time of every state that
  does not say ``campaign_cap = false`` (the consultation workflow exempts
  ``escalated``: the government's answer is not bound by the bureau's campaign).
  A ticket that enters a state after the campaign deadline has passed gets the
  state's own limit: the cap would already be in the past.
- A self-loop (``reassign``) keeps the clock, the timers and the level.
- Entering a clocked state whose due time is the ticket's current one, at level 0 with
  every new timer still ahead, keeps the running clock's timers (``keeps_clock``): they
  are the ones a new clock would arm.
- Leaving the clocked states for a state without a limit (``fed_back``) stops
  the clock: pending timers are cancelled, ``due_at`` and the level cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection

from engine.calendar import WorkingCalendar
from engine.context import UnitOfWork
from engine.models import Campaign, CampaignPhase, Timer
from engine.rawsql import BulkInsert, PreparedWrite
from engine.workflow import Ladder, LadderStep, StateSpec, TimeLimit, Workflow

timers_t = cast(Table, Timer.__table__)
campaigns_t = cast(Table, Campaign.__table__)
phases_t = cast(Table, CampaignPhase.__table__)

# Built once: these run inside every transition (bench/transitions.py).
_CAMPAIGN_CLOCK = select(
    campaigns_t.c.id,
    campaigns_t.c.code,
    campaigns_t.c.timezone,
    campaigns_t.c.calendar,
    campaigns_t.c.rectification_deadline,
    campaigns_t.c.ends_on,
    campaigns_t.c.continuous,
).where(campaigns_t.c.id == bindparam("campaign_id"))
_GOVERNING_PHASES = select(phases_t.c.code, phases_t.c.starts_on, phases_t.c.governs).where(
    phases_t.c.campaign_id == bindparam("campaign_id"), phases_t.c.governs != ""
)
_CANCEL_PENDING = (
    update(timers_t)
    .where(
        timers_t.c.ticket_id == bindparam("w_ticket_id"),
        timers_t.c.fired_at.is_(None),
        timers_t.c.cancelled_at.is_(None),
    )
    .values(cancelled_at=bindparam("v_now"))
)
# The transition's own statements run through the driver, compiled once (engine.rawsql).
_PREPARED_CANCEL = PreparedWrite(_CANCEL_PENDING)
_BULK_INSERT_TIMERS = BulkInsert(timers_t, ("ticket_id", "kind", "level", "due_at", "created_at"))

WARNING = "warning"
BREACH = "breach"  # ladder level 1: the due time passed
LADDER = "ladder"  # ladder levels 2 and up


@dataclass(frozen=True)
class CampaignClock:
    """What a campaign contributes to deadlines: timezone, calendar, cap, end."""

    id: int
    code: str
    timezone: ZoneInfo
    calendar: WorkingCalendar
    # None for a continuous programme: no deadline caps its tickets, it has no end.
    rectification_deadline: datetime | None
    ends_on: Any
    # state → (phase code, the phase's first instant in UTC): the state's clock starts then
    governing: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.timezone)

    def end_instant(self) -> datetime | None:
        """The first instant after the campaign's last day, local midnight, in UTC (None: no end)."""
        if self.ends_on is None:
            return None
        end = datetime.combine(self.ends_on + timedelta(days=1), time(0), tzinfo=self.timezone)
        return end.astimezone(UTC)


def campaign_clock(uow: UnitOfWork, campaign_id: int) -> CampaignClock:
    """The campaign's timezone, the calendar it names, its deadline and the states its
    phases govern (kept a few seconds in the context's read cache; a change through
    ``engine.organisation`` clears it). A continuous programme has no deadline and no end."""

    def load() -> CampaignClock:
        conn = uow.conn
        row = conn.execute(_CAMPAIGN_CLOCK, {"campaign_id": campaign_id}).one()
        zone = ZoneInfo(row.timezone)
        governing: dict[str, tuple[str, datetime]] = {}
        for phase in conn.execute(_GOVERNING_PHASES, {"campaign_id": campaign_id}):
            first = datetime.combine(phase.starts_on, time(0), tzinfo=zone).astimezone(UTC)
            for state in phase.governs.split(","):
                governing[state] = (phase.code, first)
        return CampaignClock(
            governing=governing,
            id=row.id,
            code=row.code,
            timezone=zone,
            calendar=uow.ctx.calendar(row.calendar),
            rectification_deadline=None if row.continuous else row.rectification_deadline,
            ends_on=None if row.continuous else row.ends_on,
        )

    return uow.ctx.cache.get(("campaign_clock", campaign_id), load)


@dataclass(frozen=True)
class Due:
    at: datetime
    rule: str


def state_due(
    spec: StateSpec, clock: CampaignClock, now: datetime, priority: str | None = None
) -> Due | None:
    """The due time and its rule for a ticket of ``priority`` entering ``spec`` at ``now``.

    None if the state has no limit for it. Working days count on the campaign's calendar in
    its timezone, calendar days are whole local days, hours are elapsed hours. When a
    campaign phase governs the state and has not begun at ``now``, the clock starts at the
    phase's first day instead (the rule says so).
    """
    limit = spec.limit_for(priority)
    if limit is None:
        return None
    start, since = now, ""
    phase = clock.governing.get(spec.name)
    if phase is not None and phase[1] > now:
        start = phase[1]
        since = f" from phase {phase[0]} ({clock.local(start).date().isoformat()})"
    at = add_limit(clock, start, limit)
    has_own = priority is not None and any(p == priority for p, _ in spec.priority_limits)
    rule = f"state {spec.name}: {limit.describe()}" + (f" ({priority})" if has_own else "")
    rule += since
    cap = clock.rectification_deadline
    if spec.campaign_cap and cap is not None and start < cap < at:
        at = cap
        rule = f"campaign deadline {clock.local(cap).date().isoformat()}"
    return Due(at=at, rule=rule)


def add_limit(clock: CampaignClock, start: datetime, limit: TimeLimit) -> datetime:
    """``start`` plus ``limit``: working days on the campaign's calendar in its timezone
    (to local midnight after the last one), whole local calendar days, or elapsed hours."""
    n = limit.amount
    if limit.unit == "working_days":
        return clock.calendar.add_working_days(start, n, clock.timezone)
    if limit.unit == "calendar_days":
        return (clock.local(start) + timedelta(days=n)).astimezone(start.tzinfo)
    return start + timedelta(hours=n)


def insert_timers(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert timers given as (ticket_id, kind, level, due_at, created_at), in one statement."""
    return _BULK_INSERT_TIMERS.execute_few(conn, rows)


def cancel_pending(conn: Connection, ticket_id: int, now: datetime) -> int:
    """Cancel every timer of the ticket that has neither fired nor been cancelled."""
    return _PREPARED_CANCEL.execute(conn, {"w_ticket_id": ticket_id, "v_now": now})


def ladder_times(
    due_at: datetime, ladder: Ladder, clock: CampaignClock, priority: str | None = None
) -> list[tuple[str, int, datetime]]:
    """(kind, level, due time) of the warning and of every ladder step of a due time, warning
    first; each step's ``after`` (for the ticket's priority) counts from the due time in its
    own unit. What the whole ladder would be; ``armed_times`` is what is armed at once."""
    out: list[tuple[str, int, datetime]] = []
    if ladder.warning_before_hours > 0:
        out.append((WARNING, 0, _warning_at(due_at, ladder)))
    for step in ladder.steps:
        out.append(step_time(step, due_at, clock, priority))
    return out


def _warning_at(due_at: datetime, ladder: Ladder) -> datetime:
    return due_at - timedelta(hours=ladder.warning_before_hours)


def step_time(
    step: LadderStep, due_at: datetime, clock: CampaignClock, priority: str | None = None
) -> tuple[str, int, datetime]:
    """(kind, level, due time) of one ladder step of ``due_at``."""
    at = add_limit(clock, due_at, step.after_for(priority))
    return (BREACH if step.level == 1 else LADDER, step.level, at)


def next_step(ladder: Ladder, level: int) -> LadderStep | None:
    """The ladder's step above ``level`` (the lowest level higher than it), or None at the top."""
    return min((s for s in ladder.steps if s.level > level), key=lambda s: s.level, default=None)


def armed_times(
    due_at: datetime,
    ladder: Ladder,
    clock: CampaignClock,
    now: datetime,
    from_level: int = 0,
    priority: str | None = None,
) -> list[tuple[str, int, datetime]]:
    """The (kind, level, due time) of the timers ``arm_timers`` writes for ``due_at``: the
    warning and the next ladder step only.

    A warning already past is skipped; the next step is the one above ``from_level`` (the
    ticket is already there). Each step, when it fires, arms the one above it
    (``engine.timers``), so a transition writes two timers, not one per rung, and cancels
    no more than two.
    """
    out: list[tuple[str, int, datetime]] = []
    if ladder.warning_before_hours > 0:
        warning = _warning_at(due_at, ladder)
        if warning > now:
            out.append((WARNING, 0, warning))
    step = next_step(ladder, from_level)
    if step is not None:
        out.append(step_time(step, due_at, clock, priority))
    return out


def timers_by(
    due_at: datetime,
    ladder: Ladder,
    clock: CampaignClock,
    armed_at: datetime,
    now: datetime,
    priority: str | None = None,
) -> list[tuple[str, int, datetime]]:
    """The timers a clock armed at ``armed_at`` has at ``now`` when the sweep fired all that
    fell due: those ``armed_times`` wrote, then each step armed by the firing of the one
    below it, up to the first not due by ``now`` (generated data writes exactly these)."""
    out = armed_times(due_at, ladder, clock, armed_at, priority=priority)
    level, at = (out[-1][1], out[-1][2]) if out and out[-1][0] != WARNING else (0, None)
    while at is not None and at <= now:
        step = next_step(ladder, level)
        if step is None:
            break
        kind, level, at = step_time(step, due_at, clock, priority)
        out.append((kind, level, at))
    return out


def arm_timers(
    conn: Connection,
    *,
    ticket_id: int,
    due_at: datetime,
    ladder: Ladder,
    clock: CampaignClock,
    now: datetime,
    from_level: int = 0,
    priority: str | None = None,
) -> int:
    """Insert the warning and the next ladder step for ``due_at`` (see ``armed_times``); how
    many."""
    return insert_timers(
        conn,
        [
            (ticket_id, kind, level, at, now)
            for kind, level, at in armed_times(due_at, ladder, clock, now, from_level, priority)
        ],
    )


def rearm(
    uow: UnitOfWork,
    *,
    workflow: Workflow,
    ticket_id: int,
    campaign_id: int,
    due_at: datetime,
    now: datetime,
    from_level: int = 0,
    priority: str | None = None,
) -> int:
    """Move a ticket's clock to ``due_at``: cancel its pending timers and arm new ones (the
    ladder's steps for the ticket's ``priority``)."""
    conn = uow.conn
    cancel_pending(conn, ticket_id, now)
    clock = campaign_clock(uow, campaign_id)
    return arm_timers(
        conn,
        ticket_id=ticket_id,
        due_at=due_at,
        ladder=workflow.ladder,
        clock=clock,
        now=now,
        from_level=from_level,
        priority=priority,
    )


def on_transition(
    uow: UnitOfWork,
    *,
    workflow: Workflow,
    ticket_id: int,
    number: str,
    campaign_id: int,
    from_state: str | None,
    to_state: str,
    trigger: str,
    now: datetime,
    version: int,
    due_at: datetime | None = None,
    level: int = 0,
    priority: str | None = None,
) -> dict[str, Any]:
    """Start, keep or stop the ticket's clock for entering ``to_state``; the columns to change.

    ``due_at`` and ``level`` are the ticket's before the move. A ticket without a due time
    has no pending timers (timers are armed only with a due time, and cleared with it):
    nothing to cancel, no statement.

    A self-loop keeps everything. Any other move cancels the pending timers;
    a state with a time limit then sets ``due_at``/``due_rule``, resets the
    escalation level and arms the warning and the ladder; a state without one
    clears them. When the new clock is the running one (``keeps_clock``), its timers
    stay as they are: no statement.
    """
    if from_state == to_state:
        return {}
    conn = uow.conn
    values, times = entry_plan(
        workflow, to_state, lambda: campaign_clock(uow, campaign_id), now, priority
    )
    if from_state is not None and due_at is not None:
        if keeps_clock(workflow.ladder, times, values["due_at"], due_at, level, now):
            return values
        cancel_pending(conn, ticket_id, now)
    if times:
        insert_timers(conn, [(ticket_id, k, lv, at, now) for k, lv, at in times])
    return values


def keeps_clock(
    ladder: Ladder,
    times: list[tuple[str, int, datetime]],
    new_due: datetime | None,
    due_at: datetime | None,
    level: int,
    now: datetime,
) -> bool:
    """Whether the clock a state entry would start is the one already running, so its
    pending timers stand instead of being cancelled and armed again.

    That is when the due time stays (``new_due`` is ``due_at``; a phase or the campaign's deadline often
    gives two states the same), the ticket is at level 0 and every timer the new clock
    would arm is still ahead: the warning (when the ladder has one) and the breach. The
    running clock armed those same timers for the same due time, ladder and priority, and
    none has fired. Only the rows' ``created_at`` differs: the time the clock started.
    """
    if level != 0 or due_at is None or new_due != due_at:
        return False
    wants_warning = ladder.warning_before_hours > 0
    armed_warning = any(kind == WARNING for kind, _, _ in times)
    return wants_warning == armed_warning and all(at > now for _, _, at in times)


def entry_plan(
    workflow: Workflow,
    to_state: str,
    clock: Callable[[], CampaignClock],
    now: datetime,
    priority: str | None = None,
) -> tuple[dict[str, Any], list[tuple[str, int, datetime]]]:
    """What entering ``to_state`` at ``now`` sets on the ticket, and the timers it arms.

    A state with a time limit: its due time, rule, level 0 and the warning and the
    ladder's first step (``armed_times``); a final state or one without a limit: the clock cleared and
    no timers. ``clock`` is called only when the state has a limit. The bulk
    create path (``engine.bulk``) computes this once per batch.
    """
    spec = workflow.states[to_state]
    if spec.final or spec.limit_for(priority) is None:
        return {"due_at": None, "due_rule": None, "escalation_level": 0}, []
    campaign = clock()
    due = state_due(spec, campaign, now, priority)
    assert due is not None
    times = armed_times(due.at, workflow.ladder, campaign, now, priority=priority)
    return {"due_at": due.at, "due_rule": due.rule, "escalation_level": 0}, times
