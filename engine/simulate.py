"""Replay: move a simulated clock forward, sweeping as it goes, and say what happened each day.

``simulate`` jumps the clock from one pending due time to the next (so every
timer fires at the instant it fell due, in due-time order) until ``until``,
in the caller's session; the caller commits (or rolls back for a dry run).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.clock import FixedClock, ensure_utc
from engine.context import UnitOfWork
from engine.deadlines import BREACH, WARNING
from engine.errors import NotFound, ValidationError
from engine.models import Campaign
from engine.timers import fire_due_timers, next_due


@dataclass
class DayReport:
    """One local day of the replay: counts per unit (unit code, or "none")."""

    day: date
    warnings: Counter[str] = field(default_factory=Counter)
    breaches: Counter[str] = field(default_factory=Counter)
    escalations: Counter[tuple[str, int]] = field(default_factory=Counter)
    fired: int = 0  # of this campaign's timers; counts only, whatever the backlog

    @property
    def quiet(self) -> bool:
        return not self.fired


def simulate(
    uow: UnitOfWork,
    *,
    campaign: str,
    start: datetime,
    until: datetime,
    batch: int = 1000,
) -> list[DayReport]:
    """Fire every timer due from ``start`` to ``until`` at its own due time; one report per day.

    The days are the campaign's local days from ``start`` to ``until``. Timers
    of every campaign in the database fire (the clock is the database's); the
    report counts those of ``campaign``.
    """
    session = uow.session
    start, until = ensure_utc(start), ensure_utc(until)
    if until < start:
        raise ValidationError(
            f"--until {until.isoformat()} is before the start {start.isoformat()}",
            fields={"until": "must be after the start"},
        )
    camp = session.execute(
        select(Campaign.id, Campaign.timezone).where(Campaign.code == campaign)
    ).first()
    if camp is None:
        raise NotFound(f"no campaign {campaign!r}")
    tz = ZoneInfo(camp.timezone)
    days: dict[date, DayReport] = {}
    day = start.astimezone(tz).date()
    while day <= until.astimezone(tz).date():
        days[day] = DayReport(day)
        day += timedelta(days=1)
    clock = FixedClock(start)
    while True:
        due = next_due(session)
        if due is None or due > until:
            break
        clock.set(max(due, clock.now))
        fired_here = 0
        while True:
            part = fire_due_timers(uow, now=clock(), limit=batch)
            for firing in part.firings:
                if firing.campaign_id != camp.id:
                    continue
                report = days.setdefault(
                    firing.fired_at.astimezone(tz).date(),
                    DayReport(firing.fired_at.astimezone(tz).date()),
                )
                unit = firing.unit_code or "none"
                report.fired += 1
                if firing.kind == WARNING:
                    report.warnings[unit] += 1
                elif firing.kind == BREACH:
                    report.breaches[unit] += 1
                else:
                    report.escalations[(unit, firing.level)] += 1
            fired_here += len(part.firings)
            if not part.firings or len(part.firings) + part.skipped + part.deferred < batch:
                break
        if not fired_here:  # what is due is held by another transaction; stop, do not spin
            break
    return [days[d] for d in sorted(days)]
