"""The campaign report: what the bureau sends its superiors, computed from the data as of a time.

Every figure comes from aggregate SQL (GROUP BY over the campaign's tickets,
with conditional sums); Python only folds the few hundred groups that come
back, never the ticket rows, so a million tickets cost a handful of scans.

"As of" a time T: the tickets the system held at T (their first log row is at
or before T), each in the state of its last log row at or before T; solved
means rectified at or before T (``rectified_at``), escalated means a
government escalation recorded at or before T; citizens' answers and
reopenings are counted from the log rows before T. Category, kind and unit are
the ones the ticket had at T: the ``head`` its last log row before T leaves behind
(migration 0007); a row written before 0007 has no head, and for it the ticket's
current values stand in. The escalation level at T is the ladder step its clock had
reached (timers fired by then). A ticket still ``received`` at T counts as
uncategorized.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Integer, String, and_, case, func, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Subquery
from sqlalchemy.types import TypeEngine

from engine.audit import safe_cell
from engine.context import UnitOfWork
from engine.deadlines import BREACH, WARNING
from engine.errors import NotFound, ValidationError
from engine.models import (
    Campaign,
    CampaignPhase,
    Category,
    Extension,
    GovernmentEscalation,
    Ticket,
    TicketTheme,
    Timer,
    TransitionLog,
    Unit,
)
from engine.workflow import Workflow

FORMATS = ("text", "json", "csv", "xlsx")
SPECIFIC_PROBLEM_KIND = "request"
UNCATEGORIZED = "(uncategorized)"
UNASSIGNED = "(no unit)"
NO_KIND = "(no kind)"


def resolve_as_of(value: date | datetime | str | None, timezone: str) -> datetime | None:
    """The cut-off instant (exclusive) for ``value``: a date means the end of that day in
    the campaign's timezone; a datetime is taken as given (naive = campaign time)."""
    if value is None:
        return None
    zone = ZoneInfo(timezone)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"as-of {text!r} is not a date; write it as YYYY-MM-DD or an ISO-8601 time",
                fields={"as_of": "write it as YYYY-MM-DD or 2005-03-18T09:00:00+08:00"},
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    end = datetime.combine(value + timedelta(days=1), time(0), tzinfo=zone)
    return end.astimezone(UTC)


def _settled_states(workflow: Workflow) -> list[str]:
    """States in which a rectified ticket counts as solved: the states a rectification
    (a trigger carrying ``measures``) leads to, and the final ones. A reopened ticket is
    back in a working state, so it is not solved while it is open again."""
    rectifying = {t.dest for t in workflow.triggers if "measures" in t.requires}
    return sorted(rectifying | set(workflow.final_states))


def _head_value(
    head: ColumnElement[Any], name: str, type_: TypeEngine[Any], dialect: str
) -> ColumnElement[Any]:
    """One column of a log row's ``head`` (canonical JSON text, ``engine.audit.HEAD_COLUMNS``)
    read in SQL: ``json_extract`` on SQLite, ``json_extract_path_text`` on PostgreSQL."""
    if dialect == "postgresql":
        return sql_cast(func.json_extract_path_text(sql_cast(head, JSON), name), type_)
    return func.json_extract(head, f"$.{name}", type_=type_)


def _ticket_view(
    campaign_id: int, cutoff: datetime | None, workflow: Workflow, dialect: str = "sqlite"
) -> tuple[Subquery, Any]:
    """One row per ticket the system held at ``cutoff``: its state, category, kind, unit,
    rectification and closing times then, and the columns counted; plus the current row of
    each ticket's overdue clock at ``cutoff`` (None for the current report, which reads the
    ticket). ``dialect`` says how the log's ``head`` JSON is read."""
    t = Ticket.__table__
    if cutoff is None:
        view = (
            select(
                t.c.id,
                t.c.category,
                t.c.kind,
                t.c.unit_id,
                t.c.escalation_level,
                t.c.due_at,
                t.c.rectified_at,
                t.c.closed_at,
                t.c.state,
            )
            .where(t.c.campaign_id == campaign_id)
            .subquery("v")
        )
        return view, None
    log = TransitionLog.__table__
    finals = sorted(workflow.final_states)
    rectifying = sorted({t_.name for t_ in workflow.triggers if "measures" in t_.requires})
    entered_final = and_(log.c.to_state.in_(finals), log.c.from_state.not_in(finals))
    last = (
        select(
            log.c.ticket_id,
            func.max(log.c.seq).label("seq"),
            func.max(case((log.c.trigger.in_(rectifying), log.c.at))).label("rectified_at"),
            func.max(case((entered_final, log.c.at))).label("closed_at"),
        )
        .join(t, t.c.id == log.c.ticket_id)
        .where(t.c.campaign_id == campaign_id, log.c.at < cutoff)
        .group_by(log.c.ticket_id)
        .subquery("last")
    )
    clock = _clock_at(campaign_id, cutoff)
    # What the ticket was then: the head its last row before the cutoff left behind; a row
    # from before migration 0007 has none, and the ticket's current values stand in.
    headless = log.c.head.is_(None)
    then = [
        case(
            (headless, current),
            else_=_head_value(log.c.head, current.name, type_, dialect),
        ).label(current.name)
        for current, type_ in (
            (t.c.category, String()),
            (t.c.kind, String()),
            (t.c.unit_id, Integer()),
        )
    ]
    view = (
        select(
            t.c.id,
            *then,
            func.coalesce(clock.c.level, 0).label("escalation_level"),
            clock.c.due_at,
            last.c.rectified_at,
            last.c.closed_at,
            log.c.to_state.label("state"),
        )
        .select_from(t)
        .join(last, last.c.ticket_id == t.c.id)
        .join(log, and_(log.c.ticket_id == last.c.ticket_id, log.c.seq == last.c.seq))
        .outerjoin(clock, clock.c.ticket_id == t.c.id)
        .subquery("v")
    )
    return view, clock


def _clock_at(campaign_id: int, cutoff: datetime) -> Subquery:
    """Each ticket's running clock at ``cutoff``, from the timers: the due time of its
    latest breach timer armed before ``cutoff`` (when not cancelled by then) and the highest
    ladder level that clock had reached (timers fired by then)."""
    tm = Timer.__table__
    t = Ticket.__table__
    latest = (
        select(tm.c.ticket_id, func.max(tm.c.id).label("timer_id"))
        .join(t, t.c.id == tm.c.ticket_id)
        .where(t.c.campaign_id == campaign_id, tm.c.kind == BREACH, tm.c.created_at < cutoff)
        .group_by(tm.c.ticket_id)
        .subquery("latest")
    )
    breach = tm.alias("breach")
    step = tm.alias("step")
    live = or_(breach.c.cancelled_at.is_(None), breach.c.cancelled_at >= cutoff)
    return (
        select(
            latest.c.ticket_id,
            func.max(case((live, breach.c.due_at))).label("due_at"),
            func.max(
                case(
                    (
                        and_(live, step.c.fired_at.is_not(None), step.c.fired_at < cutoff),
                        step.c.level,
                    ),
                    else_=0,
                )
            ).label("level"),
        )
        .join(breach, breach.c.id == latest.c.timer_id)
        .outerjoin(
            step,
            and_(
                step.c.ticket_id == breach.c.ticket_id,
                step.c.created_at == breach.c.created_at,
                step.c.kind != WARNING,
            ),
        )
        .group_by(latest.c.ticket_id)
        .subquery("clock")
    )


def _check_as_of(
    cutoff: datetime | None, campaign: Campaign, now: datetime, *, is_day: bool
) -> None:
    """An as-of before the campaign began, or in the future, is refused with the range. A
    day is in the future after today; an instant, after ``now``."""
    if cutoff is None:
        return
    zone = ZoneInfo(campaign.timezone)
    first = datetime.combine(campaign.starts_on, time(0), tzinfo=zone).astimezone(UTC)
    today = now.astimezone(zone).date()
    end_of_today = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    if cutoff <= first:
        raise ValidationError(
            f"as-of {cutoff.astimezone(zone).date().isoformat()} is before the campaign "
            f"{campaign.code!r} began ({campaign.starts_on.isoformat()}); there is nothing to "
            "report yet",
            fields={"as_of": f"give a date from {campaign.starts_on.isoformat()}"},
        )
    if cutoff > (end_of_today.astimezone(UTC) if is_day else now):
        raise ValidationError(
            f"as-of {cutoff.astimezone(zone).isoformat()} is in the future (today is "
            f"{today.isoformat()}); a report can only say what the data said",
            fields={"as_of": f"give a date up to {today.isoformat()}"},
        )


def current_phase(session: Session, campaign_id: int, at: datetime, timezone: str) -> Any:
    """The campaign phases and the one ``at`` falls in (None outside every phase)."""
    day = at.astimezone(ZoneInfo(timezone)).date().isoformat()
    phases: list[dict[str, Any]] = [
        {
            "code": p.code,
            "name": p.name,
            "name_zh": p.name_zh or p.name,
            "starts_on": p.starts_on.isoformat(),
            "ends_on": p.ends_on.isoformat(),
            "governs": [s for s in p.governs.split(",") if s],
        }
        for p in session.scalars(
            select(CampaignPhase)
            .where(CampaignPhase.campaign_id == campaign_id)
            .order_by(CampaignPhase.position)
        )
    ]
    now_phase = next((p for p in phases if p["starts_on"] <= day <= p["ends_on"]), None)
    return phases, now_phase


def campaign_report(
    uow: UnitOfWork,
    campaign_code: str,
    as_of: date | datetime | str | None = None,
    *,
    now: datetime | None = None,
    use_snapshot: bool = True,
) -> dict[str, Any]:
    """The campaign report as a plain dict (JSON-ready), as of ``as_of`` (default: now).

    ``as_of`` is a date (figures at the end of that day, campaign time) or an
    instant; before the campaign began or after ``now`` it is refused. ``now`` is the
    moment "overdue" is judged at when ``as_of`` is not given (default: the context's clock). As of a past moment, every figure is what the data said then: states and
    rectification from the log, overdue and escalation levels from the timers armed,
    cancelled and fired by then. Keys: total, by_category, by_kind, by_unit, by_state,
    fed_back, solved_by_deadline, solved_after_deadline, measures_implemented, extended,
    late, escalated_to_government, overdue, satisfaction, themes, specific_problems,
    phases, phase. A past day is read from its daily snapshot when one is kept and fresh
    (``engine.snapshots``; the figures are the same, ``snapshot_computed_at`` says so).
    """
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).first()
    if campaign is None:
        known = ", ".join(session.scalars(select(Campaign.code).order_by(Campaign.code)))
        raise NotFound(f"no campaign {campaign_code!r}; known campaigns: {known or 'none'}")
    wall = uow.now(now)
    cutoff = resolve_as_of(as_of, campaign.timezone)
    is_day = (isinstance(as_of, date) and not isinstance(as_of, datetime)) or (
        isinstance(as_of, str) and len(as_of.strip()) == 10
    )
    _check_as_of(cutoff, campaign, wall, is_day=is_day)
    if use_snapshot and is_day and cutoff is not None:
        from engine.snapshots import kept_report

        day = (cutoff - timedelta(microseconds=1)).astimezone(ZoneInfo(campaign.timezone)).date()
        kept = kept_report(session, campaign.id, day, cutoff)
        if kept is not None:
            return cast(dict[str, Any], kept)
    judged_at = cutoff or wall
    workflow = uow.registry.get(campaign.workflow_name, campaign.workflow_version)
    final_states = sorted(workflow.closed_states)
    deadline = None if campaign.continuous else campaign.rectification_deadline
    zone = ZoneInfo(campaign.timezone)
    # A continuous programme has no end: nothing is closed after it.
    campaign_end = (
        None
        if campaign.continuous
        else datetime.combine(
            campaign.ends_on + timedelta(days=1), time(0), tzinfo=zone
        ).astimezone(UTC)
    )
    view, _ = _ticket_view(campaign.id, cutoff, workflow, session.get_bind().dialect.name)
    # A continuous programme has no deadline: everything solved is solved in time.
    # Rectified in time: before the deadline (a continuous programme has none: every
    # rectification is in time).
    in_time: ColumnElement[bool] = (
        view.c.rectified_at < deadline if deadline is not None else view.c.rectified_at.is_not(None)
    )
    # Grouped on the raw columns, in the order of the covering index ix_tickets_report, so
    # the database streams the groups without sorting (SQLite: 1.0 s → 0.3 s at 400k tickets);
    # a ticket still in the initial state counts as uncategorized below. The database sums
    # only what depends on each row's times; what depends on the state (solved only in a
    # settled state, overdue only while open, implemented only when closed) is decided per
    # group below, since the state is a group key: a condition per row cost the current-day
    # report 15% more in this query (BENCHMARKS.md, issue 14's regression).
    groups = session.execute(
        select(
            view.c.state,
            view.c.category,
            view.c.kind,
            view.c.unit_id,
            view.c.escalation_level,
            func.count().label("n"),
            func.count(view.c.rectified_at).label("rectified"),
            func.sum(case((in_time, 1), else_=0)).label("rectified_in_time"),
            func.sum(case((view.c.due_at < judged_at, 1), else_=0)).label("past_due"),
        ).group_by(
            view.c.state, view.c.category, view.c.kind, view.c.unit_id, view.c.escalation_level
        )
    ).all()

    units = {
        row.id: (row.code, row.name)
        for row in session.execute(select(Unit.id, Unit.code, Unit.name))
    }
    categories = session.execute(
        select(Category.code, Category.name, Category.name_zh, Category.outside_duties)
        .where(Category.campaign_id == campaign.id)
        .order_by(Category.position, Category.id)
    ).all()

    total = 0
    by_state: dict[str, int] = {s: 0 for s in workflow.states}
    by_category: dict[str, int] = {c.code: 0 for c in categories}
    by_kind: dict[str, int] = {}
    by_unit: dict[str, int] = {}
    overdue_by_unit: dict[str, int] = defaultdict(int)
    overdue_by_level: dict[str, int] = defaultdict(int)
    overdue_by_unit_level: dict[tuple[str, int], int] = defaultdict(int)
    sums: dict[str, int] = defaultdict(int)
    problems: dict[str, int] = defaultdict(int)
    settled_states, closed_states = set(_settled_states(workflow)), set(final_states)
    for g in groups:
        n = int(g.n)
        total += n
        by_state[g.state] = by_state.get(g.state, 0) + n
        cat = (g.category if g.state != workflow.initial else None) or UNCATEGORIZED
        by_category[cat] = by_category.get(cat, 0) + n
        kind = g.kind or NO_KIND
        by_kind[kind] = by_kind.get(kind, 0) + n
        unit = units[g.unit_id][0] if g.unit_id in units else UNASSIGNED
        by_unit[unit] = by_unit.get(unit, 0) + n
        is_closed = g.state in closed_states
        # Solved: rectified and in a settled state (a reopened ticket is not solved while open).
        solved_early = int(g.rectified_in_time or 0) if g.state in settled_states else 0
        solved_late = int(g.rectified) - solved_early if g.state in settled_states else 0
        overdue = 0 if is_closed else int(g.past_due or 0)
        sums["solved_early"] += solved_early
        sums["solved_late"] += solved_late
        sums["overdue"] += overdue
        # Closed by the campaign's end: while the end is ahead every closed opinion besides
        # the specific problems is; after it, those closed later are taken off below.
        if is_closed and g.kind != SPECIFIC_PROBLEM_KIND:
            sums["implemented"] += n
        if overdue:
            overdue_by_unit[unit] += overdue
            overdue_by_level[str(g.escalation_level)] += overdue
            overdue_by_unit_level[(unit, int(g.escalation_level))] += overdue
        if g.kind == SPECIFIC_PROBLEM_KIND:
            problems["total"] += n
            problems["solved_by_deadline"] += solved_early
            problems["solved_after_deadline"] += solved_late
            problems["overdue"] += overdue
            if is_closed:
                problems["fed_back"] += n
    if not by_category.get(UNCATEGORIZED):
        by_category.pop(UNCATEGORIZED, None)

    escalated, problems["escalated_to_government"] = _escalated(session, campaign.id, cutoff, view)
    answers = _log_counts(session, campaign.id, cutoff, workflow.use("reopen"))
    reopened = answers[REOPEN]
    themes = _themes(session, campaign.id, total, cutoff)
    extended, late = _extended_and_late(session, campaign.id, cutoff, final_states)
    if campaign_end is not None and judged_at > campaign_end:
        sums["implemented"] -= _closed_after(session, view, campaign_end, final_states)
    # The phase of the last moment counted (as of a date: that day, not the next midnight).
    last_moment = judged_at - timedelta(microseconds=1) if cutoff else judged_at
    phases, phase = current_phase(session, campaign.id, last_moment, campaign.timezone)

    fed_back = sum(by_state.get(s, 0) for s in final_states)
    answered = answers[SATISFIED] + answers[UNSATISFIED]
    deadline_day = deadline.astimezone(zone).date() if deadline is not None else None
    return {
        "campaign": {
            "code": campaign.code,
            "name": campaign.name,
            "name_zh": campaign.name_zh or campaign.name,
            "timezone": campaign.timezone,
            "starts_on": campaign.starts_on.isoformat(),
            "ends_on": None if campaign.continuous else campaign.ends_on.isoformat(),
            "rectification_deadline": (
                deadline.astimezone(zone).isoformat() if deadline is not None else None
            ),
            "deadline_label": (
                _day_label(deadline.astimezone(zone)) if deadline is not None else None
            ),
            "continuous": campaign.continuous,
        },
        "as_of": (cutoff or judged_at).astimezone(zone).isoformat(),
        "as_of_day": last_moment.astimezone(zone).date().isoformat(),
        "as_of_is_day": isinstance(as_of, date)
        and not isinstance(as_of, datetime)
        or (isinstance(as_of, str) and len(as_of.strip()) == 10),
        "phases": phases,
        "phase": phase,
        "total": total,
        "by_category": by_category,
        "category_names": {c.code: c.name for c in categories},
        "category_names_zh": {c.code: c.name_zh or c.name for c in categories},
        "outside_duties": sum(by_category.get(c.code, 0) for c in categories if c.outside_duties),
        "by_kind": dict(sorted(by_kind.items())),
        "by_unit": dict(sorted(by_unit.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unit_names": {code: name for code, name in units.values() if code in by_unit},
        "by_state": by_state,
        "fed_back": fed_back,
        "solved_by_deadline": sums["solved_early"],
        "solved_after_deadline": sums["solved_late"],
        "measures_implemented": sums["implemented"],
        "extended": extended,
        "late": late,
        "escalated_to_government": int(escalated),
        "specific_problems": {
            "total": problems["total"],
            "solved_by_deadline": problems["solved_by_deadline"],
            "solved_after_deadline": problems["solved_after_deadline"],
            "escalated_to_government": int(problems["escalated_to_government"]),
            "fed_back": problems["fed_back"],
            "overdue": problems["overdue"],
            "statement": (
                (
                    f"{problems['solved_by_deadline']} of {problems['total']} solved before "
                    f"{deadline_day:%B} {deadline_day.day}; "
                )
                if deadline_day is not None
                else f"{problems['solved_by_deadline']} of {problems['total']} solved; "
            )
            + f"{problems['escalated_to_government']} "
            "reported to the Party committee and government",
        },
        "overdue": {
            "total": sums["overdue"],
            "by_unit": dict(sorted(overdue_by_unit.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_level": dict(sorted(overdue_by_level.items())),
            "by_unit_and_level": [
                {"unit": u, "level": lvl, "count": c}
                for (u, lvl), c in sorted(overdue_by_unit_level.items())
            ],
        },
        "satisfaction": {
            "answered": answered,
            "satisfied": answers[SATISFIED],
            "unsatisfied": answers[UNSATISFIED],
            "rate": _ratio(answers[SATISFIED], answered),
            "reopened": reopened,
            "reopen_rate": _ratio(reopened, fed_back + reopened),
        },
        "themes": themes,
    }


def _day_label(instant: datetime) -> str:
    """ "March 18" for a deadline at the start of March 18 (the report's "before March 18")."""
    return f"{instant:%B} {instant.day}"


BREACH_EVENT = "overdue"  # the log row ``engine.timers`` writes when a breach timer fires


def _closed_after(session: Session, view: Subquery, end: datetime, final_states: list[str]) -> int:
    """Opinions besides the specific problems closed at or after the campaign's end."""
    query = (
        select(func.count())
        .select_from(view)
        .where(
            view.c.state.in_(final_states),
            or_(view.c.kind.is_(None), view.c.kind != SPECIFIC_PROBLEM_KIND),
            view.c.closed_at >= end,
        )
    )
    return int(session.scalar(query) or 0)


def _closed_at(ticket_ids: Any, cutoff: datetime | None, final_states: list[str]) -> Subquery:
    """For the tickets ``ticket_ids`` selects: closed at ``cutoff`` (now when None) and when.

    Reads only those tickets' log rows (by the (ticket_id, seq) key), so a report as of a
    past day does not compute the whole campaign's view again for a handful of tickets.
    """
    t = Ticket.__table__
    if cutoff is None:
        return (
            select(t.c.id, t.c.closed_at)
            .where(t.c.id.in_(ticket_ids), t.c.state.in_(final_states))
            .subquery("closed")
        )
    log = TransitionLog.__table__
    last = (
        select(
            log.c.ticket_id,
            func.max(log.c.seq).label("seq"),
            func.max(
                case(
                    (
                        and_(
                            log.c.to_state.in_(final_states), log.c.from_state.not_in(final_states)
                        ),
                        log.c.at,
                    )
                )
            ).label("closed_at"),
        )
        .where(log.c.ticket_id.in_(ticket_ids), log.c.at < cutoff)
        .group_by(log.c.ticket_id)
        .subquery("last_of_few")
    )
    return (
        select(last.c.ticket_id.label("id"), last.c.closed_at)
        .join(log, and_(log.c.ticket_id == last.c.ticket_id, log.c.seq == last.c.seq))
        .where(log.c.to_state.in_(final_states))
        .subquery("closed")
    )


def _extended_and_late(
    session: Session,
    campaign_id: int,
    cutoff: datetime | None,
    final_states: list[str],
) -> tuple[int, int]:
    """Closed tickets closed within an approved extension (``extended``: from the few
    approved extensions), and closed tickets that passed a due time of their own on the way,
    extensions included (``late``: a breach logged before the moment, read through the
    log's trigger index)."""
    ext = Extension.__table__
    t = Ticket.__table__
    log = TransitionLog.__table__
    approved = (
        select(ext.c.ticket_id, func.max(ext.c.requested_due_at).label("due"))
        .join(t, t.c.id == ext.c.ticket_id)
        .where(ext.c.status == "approved", t.c.campaign_id == campaign_id)
    )
    if cutoff is not None:
        approved = approved.where(ext.c.decided_at < cutoff)
    granted = approved.group_by(ext.c.ticket_id).subquery("granted")
    closed = _closed_at(select(granted.c.ticket_id), cutoff, final_states)
    extended = session.scalar(
        select(func.count())
        .select_from(granted)
        .join(closed, closed.c.id == granted.c.ticket_id)
        .where(closed.c.closed_at <= granted.c.due)
    )
    breaches = (
        select(log.c.ticket_id)
        .join(t, t.c.id == log.c.ticket_id)
        .where(log.c.trigger == BREACH_EVENT, t.c.campaign_id == campaign_id)
    )
    if cutoff is None:
        # Now: each breach row's ticket read once by its key, its state with it (a third of
        # the list-then-lookup form's cost: BENCHMARKS.md, issue 14's regression).
        late = session.scalar(
            breaches.where(t.c.state.in_(final_states)).with_only_columns(
                func.count(func.distinct(log.c.ticket_id))
            )
        )
    else:
        breaches = breaches.where(log.c.at < cutoff)
        late = session.scalar(
            select(func.count()).select_from(_closed_at(breaches.distinct(), cutoff, final_states))
        )
    return int(extended or 0), int(late or 0)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _escalated(
    session: Session, campaign_id: int, cutoff: datetime | None, view: Subquery
) -> tuple[int, int]:
    """Tickets escalated to government (each once), all and specific problems, in one scan.
    As of a moment, a specific problem is one whose kind was that then (``view``: the
    ticket's head at the cutoff); now, its current kind."""
    g = GovernmentEscalation.__table__
    kind = Ticket.__table__.c.kind if cutoff is None else view.c.kind
    query = select(
        func.count(func.distinct(g.c.ticket_id)),
        func.count(func.distinct(case((kind == SPECIFIC_PROBLEM_KIND, g.c.ticket_id)))),
    )
    if cutoff is None:
        query = query.join(Ticket, Ticket.id == g.c.ticket_id).where(
            Ticket.campaign_id == campaign_id
        )
    else:
        query = query.select_from(g).join(view, view.c.id == g.c.ticket_id).where(g.c.at < cutoff)
    row = session.execute(query).one()
    return int(row[0] or 0), int(row[1] or 0)


# The citizen's answers are the engine's declared events (engine/citizen.py); REOPEN is the
# key the reopened count is kept under, whatever the workflow calls its reopen trigger.
SATISFIED, UNSATISFIED, REOPEN = "citizen_satisfied", "citizen_unsatisfied", "reopened"


def _log_counts(
    session: Session, campaign_id: int, cutoff: datetime | None, reopen_trigger: str | None
) -> dict[str, int]:
    """Citizens' answers (each answer counts) and reopened tickets (each ticket once), from the
    log, so a reopened ticket's earlier answer still counts and "as of" is exact."""
    log = TransitionLog.__table__
    query = (
        select(
            log.c.trigger,
            func.count().label("n"),
            func.count(func.distinct(log.c.ticket_id)).label("tickets"),
        )
        .join(Ticket, Ticket.id == log.c.ticket_id)
        .where(
            Ticket.campaign_id == campaign_id,
            log.c.trigger.in_([t for t in (SATISFIED, UNSATISFIED, reopen_trigger) if t]),
        )
        .group_by(log.c.trigger)
    )
    if cutoff is not None:
        query = query.where(log.c.at < cutoff)
    out = {SATISFIED: 0, UNSATISFIED: 0, REOPEN: 0}
    for row in session.execute(query):
        if row.trigger == reopen_trigger:
            out[REOPEN] = int(row.tickets)
        else:
            out[row.trigger] = int(row.n)
    return out


def _themes(
    session: Session, campaign_id: int, total: int, cutoff: datetime | None
) -> dict[str, dict[str, Any]]:
    """Tickets per theme tag: one range of ix_ticket_themes_campaign_tag; as of a moment,
    only the tickets recorded before it (a ticket's ``created_at`` is its first log row's)."""
    theme = TicketTheme.__table__
    query = select(theme.c.tag, func.count().label("n")).where(theme.c.campaign_id == campaign_id)
    if cutoff is not None:
        t = Ticket.__table__
        query = query.join(t, t.c.id == theme.c.ticket_id).where(t.c.created_at < cutoff)
    rows = session.execute(
        query.group_by(theme.c.tag).order_by(func.count().desc(), theme.c.tag)
    ).all()
    return {row.tag: {"count": int(row.n), "share": _ratio(int(row.n), total)} for row in rows}


# --- rendering ---------------------------------------------------------------------------


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


# The words of a rendered report, keyed; %(name)s placeholders. English here; an adapter (the
# web pages, the CLI) passes its reader's language as a ``ReportText``.
WORDS: dict[str, str] = {
    "title": "Campaign report: %(name)s (%(code)s)",
    "as_of": "as of %(as_of)s; rectification deadline %(deadline)s",
    "recorded": "Opinions recorded: %(total)s",
    "by_category": "By category",
    "by_kind": "By kind",
    "by_unit": "By unit",
    "by_state": "By state",
    "fed_back": "Fed back",
    "solved_by_deadline": "Solved before the deadline",
    "solved_after_deadline": "Solved after the deadline",
    "escalated_to_government": "Escalated to government",
    "specific_problems_line": "Specific problems: %(total)s; solved before the deadline "
    "%(early)s, after %(late)s; escalated to government %(escalated)s; fed back %(fed_back)s",
    "overdue_line": "Overdue now: %(total)s",
    "level": "escalation level %(level)s",
    "satisfaction_line": "Satisfaction: %(satisfied)s of %(answered)s answers satisfied "
    "(%(rate)s); reopened %(reopened)s (%(reopen_rate)s)",
    "themes_line": "Themes (share of all opinions)",
    "phase_line": "Phase: %(phase)s",
    "no_phase": "none",
    "problems_statement": "Specific problems: %(early)s of %(total)s solved before "
    "%(deadline)s; %(escalated)s reported to the Party committee and government",
    "problems_statement_open": "Specific problems: %(early)s of %(total)s solved; "
    "%(escalated)s reported to the Party committee and government",
    "rectified_after": "Rectified after %(deadline)s, within the campaign:",
    "extended_line": "  of all closed: closed within an approved extension:",
    "late_line": "  of all closed: closed after their own due time (late):",
    "measures_line": "Measures implemented by the end (besides the problems):",
    "column_section": "section",
    "column_item": "item",
    "column_count": "count",
    "column_share": "share",
    "campaign": "campaign",
    "total": "total",
    "opinions": "opinions",
    "specific_problems": "specific_problems",
    "overdue": "overdue",
    "overdue_by_unit": "overdue_by_unit",
    "overdue_by_level": "overdue_by_level",
    "satisfaction": "satisfaction",
    "themes": "themes",
    "answered": "answered",
    "satisfied": "satisfied",
    "rate": "rate",
    "reopened": "reopened",
    "reopen_rate": "reopen_rate",
}


@dataclass(frozen=True)
class ReportText:
    """How a rendered report reads: ``words`` (keys of ``WORDS``) and ``item(section, key)``,
    the name shown for a category, unit, state or kind code. The default is English with the
    category names of the report and the codes as they are."""

    words: Mapping[str, str] = field(default_factory=dict)
    item: Callable[[str, str], str] | None = None
    # ``when(iso, tz)``: an ISO time as the reader writes it; ``day(iso, tz)``: its day
    # without the year ("March 18", "3月18日"). Default: the ISO text, the report's label.
    when: Callable[[str, str], str] | None = None
    day: Callable[[str, str], str] | None = None

    def __call__(self, key: str, **values: Any) -> str:
        template = self.words.get(key) or WORDS[key]
        return template % values if values else template

    def name(self, report: dict[str, Any], section: str, key: str) -> str:
        if self.item is not None:
            return self.item(section, key)
        if section == "campaign":
            return str(report["campaign"]["name"])
        if section == "by_category":
            return str(report.get("category_names", {}).get(key, key))
        return key


ENGLISH = ReportText()


def report_rows(
    report: dict[str, Any], text: ReportText = ENGLISH
) -> list[tuple[str, str, Any, Any]]:
    """The report flattened to (section, item, count, share) rows for CSV and XLSX."""
    total = report["total"]
    rows: list[tuple[str, str, Any, Any]] = [
        (text("campaign"), report["campaign"]["code"], None, None),
        ("as_of", report["as_of"], None, None),
        (text("total"), text("opinions"), total, None),
    ]
    for section in ("by_category", "by_kind", "by_unit", "by_state"):
        for item, count in report[section].items():
            rows.append(
                (text(section), text.name(report, section, item), count, _ratio(count, total))
            )
    for key in ("fed_back", "solved_by_deadline", "solved_after_deadline"):
        rows.append((text(key), text(key), report[key], _ratio(report[key], total)))
    for key in ("measures_implemented", "extended", "late"):
        rows.append(
            (text(key) if key in WORDS else key, key, report[key], _ratio(report[key], total))
        )
    rows.append(
        (
            text("escalated_to_government"),
            text("escalated_to_government"),
            report["escalated_to_government"],
            _ratio(report["escalated_to_government"], total),
        )
    )
    for key, value in report["specific_problems"].items():
        if key != "statement":
            rows.append(
                (text("specific_problems"), text(key) if key in WORDS else key, value, None)
            )
    rows.append((text("overdue"), text("total"), report["overdue"]["total"], None))
    for unit, count in report["overdue"]["by_unit"].items():
        rows.append((text("overdue_by_unit"), text.name(report, "by_unit", unit), count, None))
    for level, count in report["overdue"]["by_level"].items():
        rows.append((text("overdue_by_level"), text("level", level=level), count, None))
    for key, value in report["satisfaction"].items():
        rows.append((text("satisfaction"), text(key) if key in WORDS else key, value, None))
    for tag, theme in report["themes"].items():
        rows.append(
            (text("themes"), text.name(report, "themes", tag), theme["count"], theme["share"])
        )
    return rows


def _pad(label: str, width: int) -> str:
    """``label`` padded to ``width`` columns, a wide (CJK) character taking two."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label)
    return label + " " * max(width - used, 0)


def render_text(report: dict[str, Any], text: ReportText = ENGLISH) -> str:
    """The report as the plain text a supervisor reads or pastes into a letter."""
    total = report["total"]
    camp = report["campaign"]
    tz = camp["timezone"]
    iso_deadline = camp["rectification_deadline"]
    deadline = (
        (text.day(iso_deadline, tz) if text.day else camp.get("deadline_label"))
        if iso_deadline
        else None
    )
    phase = report.get("phase")
    when = text.when or (lambda iso, _tz: iso)
    lines = [
        text("title", name=text.name(report, "campaign", camp["code"]), code=camp["code"]),
        text(
            "as_of",
            as_of=when(report["as_of"], tz),
            deadline=when(iso_deadline, tz) if iso_deadline else "—",
        ),
        "",
        text("recorded", total=total),
    ]
    for key in ("by_category", "by_kind", "by_unit", "by_state"):
        lines += ["", text(key) + ":"]
        for item, count in report[key].items():
            name = text.name(report, key, item)
            lines.append(f"  {_pad(name, 36)} {count:>7}  {_pct(count, total):>6}")
    sp = report["specific_problems"]
    w = 58
    problems = {
        "early": sp["solved_by_deadline"],
        "total": sp["total"],
        "escalated": sp["escalated_to_government"],
    }
    lines += [
        "",
        text(
            "phase_line",
            phase=f"{phase['name']} ({phase['starts_on']} – {phase['ends_on']})"
            if phase
            else text("no_phase"),
        ),
        text("problems_statement", deadline=deadline, **problems)
        if deadline
        else text("problems_statement_open", **problems),
    ]
    if deadline:
        lines.append(
            f"{_pad(text('rectified_after', deadline=deadline), w)}"
            f"{report['solved_after_deadline']:>7}"
        )
    lines += [
        f"{_pad(text('extended_line'), w)}{report['extended']:>7}",
        f"{_pad(text('late_line'), w)}{report['late']:>7}",
        f"{_pad(text('measures_line'), w)}{report['measures_implemented']:>7}",
    ]
    lines += [
        "",
        f"{_pad(text('fed_back') + ':', 38)} {report['fed_back']:>7}  "
        f"{_pct(report['fed_back'], total):>6}",
        f"{_pad(text('solved_by_deadline') + ':', 38)} {report['solved_by_deadline']:>7}",
        f"{_pad(text('solved_after_deadline') + ':', 38)} {report['solved_after_deadline']:>7}",
        f"{_pad(text('escalated_to_government') + ':', 38)} {report['escalated_to_government']:>7}",
        "",
        text(
            "specific_problems_line",
            total=sp["total"],
            early=sp["solved_by_deadline"],
            late=sp["solved_after_deadline"],
            escalated=sp["escalated_to_government"],
            fed_back=sp["fed_back"],
        ),
        "",
        text("overdue_line", total=report["overdue"]["total"]),
    ]
    for unit, count in report["overdue"]["by_unit"].items():
        lines.append(f"  {_pad(text.name(report, 'by_unit', unit), 36)} {count:>7}")
    for level, count in report["overdue"]["by_level"].items():
        lines.append(f"  {_pad(text('level', level=level), 36)} {count:>7}")
    sat = report["satisfaction"]
    rate = f"{100 * sat['rate']:.1f}%" if sat["rate"] is not None else "-"
    reopen = f"{100 * sat['reopen_rate']:.1f}%" if sat["reopen_rate"] is not None else "-"
    lines += [
        "",
        text(
            "satisfaction_line",
            satisfied=sat["satisfied"],
            answered=sat["answered"],
            rate=rate,
            reopened=sat["reopened"],
            reopen_rate=reopen,
        ),
        "",
        text("themes_line") + ":",
    ]
    for tag, theme in report["themes"].items():
        lines.append(
            f"  {_pad(text.name(report, 'themes', tag), 36)} {theme['count']:>7}  "
            f"{_pct(theme['count'], total):>6}"
        )
    return "\n".join(lines) + "\n"


def write_report(
    report: dict[str, Any], fmt: str, out: IO[bytes], text: ReportText = ENGLISH
) -> None:
    """Write the report as ``text``, ``json``, ``csv`` or ``xlsx`` to a binary stream, its
    headings and names as ``text`` says (English by default; JSON keeps the keys).

    CSV and XLSX cells pass through ``safe_cell`` so a unit or tag named
    ``=cmd|...`` is written as text, never as a formula.
    """
    columns = tuple(text(f"column_{c}") for c in ("section", "item", "count", "share"))
    if fmt == "text":
        out.write(render_text(report, text).encode("utf-8"))
    elif fmt == "json":
        out.write(json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in report_rows(report, text):
            writer.writerow([safe_cell(v) for v in row])
        out.write(buffer.getvalue().encode("utf-8-sig"))
    elif fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("report")
        sheet.append(columns)
        for row in report_rows(report, text):
            sheet.append([_xlsx_cell(v) for v in row])
        book.save(out)
    else:
        raise ValidationError(
            f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}",
            fields={"format": f"use one of {', '.join(FORMATS)}"},
        )


def _xlsx_cell(value: Any) -> Any:
    """openpyxl stores a string starting with ``=`` as a formula; ``safe_cell`` quotes it."""
    return safe_cell(value)
