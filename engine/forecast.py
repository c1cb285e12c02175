"""Who will miss the deadline: a burn-down per unit and a forecast at the current pace.

What the mid-March progress meetings did by hand. For each unit, the items it holds
(tickets whose unit is that unit) still open at the end of each day, from the day the
campaign's first item was sorted to the day of the forecast; the pace is the items the
unit fed back per day over the last ``window_days`` days; at that pace, how many will
still be open at the target: the campaign's rectification deadline while it is ahead,
else the campaign's end. A unit with items left at the target will miss it, by that many.

Computed from the log (the moments tickets entered and left a final state), so a
forecast "as of" a past day sees only what was known then.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, or_, select

from engine.context import UnitOfWork
from engine.errors import NotFound
from engine.models import Campaign, Ticket, TransitionLog, Unit
from engine.report import current_phase, resolve_as_of

log_t = cast(Table, TransitionLog.__table__)
tickets_t = cast(Table, Ticket.__table__)


@dataclass(frozen=True)
class UnitForecast:
    unit: str
    name: str
    total: int  # items the unit held by the forecast's moment
    open: int
    fed_back_in_window: int
    pace_per_day: float
    left_at_target: int  # at the current pace, still open at the target
    finish_on: str | None  # the day the last item would be fed back at this pace; None: never
    burn_down: list[tuple[str, int]] = field(default_factory=list)  # (day, open at its end)

    @property
    def will_miss(self) -> bool:
        return self.left_at_target > 0


@dataclass(frozen=True)
class Forecast:
    campaign: str
    as_of: str
    target: str  # the instant the items are due, campaign time
    target_label: str  # "before March 18" / "by the end of March 31"
    days_left: float
    window_days: int
    units: list[UnitForecast]
    phase: dict[str, Any] | None = None  # the campaign phase of the forecast's moment

    @property
    def missing(self) -> list[UnitForecast]:
        """The units that will not have their items fed back by the target, worst first."""
        late = [u for u in self.units if u.will_miss]
        return sorted(late, key=lambda u: (-u.left_at_target, u.unit))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for unit, data in zip(self.units, out["units"], strict=True):
            data["will_miss"] = unit.will_miss
        out["missing"] = [{"unit": u.unit, "by": u.left_at_target} for u in self.missing]
        return out


def unit_forecast(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    as_of: date | datetime | str | None = None,
    now: datetime | None = None,
    window_days: int = 3,
) -> Forecast:
    """The burn-down of every unit of the campaign and its forecast at the current pace.

    ``as_of`` as in the campaign report (a date is the end of that day); default ``now``
    (default the context's clock). ``window_days`` (≥ 1): the days the pace is measured over.
    """
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).first()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_code!r}")
    zone = ZoneInfo(campaign.timezone)
    # Now: what happened up to this very instant counts (a cut-off is exclusive).
    at = resolve_as_of(as_of, campaign.timezone) or (uow.now(now) + timedelta(microseconds=1))
    workflow = uow.registry.get(campaign.workflow_name, campaign.workflow_version)
    finals = sorted(workflow.final_states)
    deadline = campaign.rectification_deadline
    end = datetime.combine(campaign.ends_on + timedelta(days=1), time(0), tzinfo=zone)
    if at < deadline:
        local_deadline = deadline.astimezone(zone)
        target, label = deadline, f"before {local_deadline:%B} {local_deadline.day}"
    else:
        target = end.astimezone(UTC)
        label = f"by the end of {campaign.ends_on:%B} {campaign.ends_on.day}"
    days_left = max(0.0, (target - at).total_seconds() / 86400)

    # Per ticket: its unit, when it was first held, and when it entered / left a final state.
    rows = session.execute(
        select(
            log_t.c.ticket_id,
            log_t.c.at,
            log_t.c.from_state,
            log_t.c.to_state,
            tickets_t.c.unit_id,
            tickets_t.c.created_at,
        )
        .join(tickets_t, tickets_t.c.id == log_t.c.ticket_id)
        .where(
            tickets_t.c.campaign_id == campaign.id,
            tickets_t.c.unit_id.is_not(None),
            log_t.c.at < at,
            or_(
                log_t.c.from_state.is_(None),
                and_(log_t.c.to_state.in_(finals), log_t.c.from_state.not_in(finals)),
                and_(log_t.c.from_state.in_(finals), log_t.c.to_state.not_in(finals)),
            ),
        )
        .order_by(log_t.c.ticket_id, log_t.c.seq)
    ).all()
    unit_of: dict[int, int] = {}
    created: dict[int, datetime] = {}
    changes: dict[int, list[tuple[datetime, int]]] = defaultdict(list)  # +1 closed, -1 reopened
    for r in rows:
        unit_of[r.ticket_id] = r.unit_id
        created.setdefault(r.ticket_id, r.at if r.from_state is None else r.created_at)
        if r.from_state is None:
            continue
        changes[r.ticket_id].append((r.at, 1 if r.to_state in finals else -1))

    today = (at - timedelta(microseconds=1)).astimezone(zone).date()
    first = min((c.astimezone(zone).date() for c in created.values()), default=today)
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    day_ends = [
        datetime.combine(d + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC) for d in days
    ]
    day_ends[-1] = min(day_ends[-1], at)
    window_start = at - timedelta(days=window_days)

    per_unit_open: dict[int, list[int]] = defaultdict(lambda: [0] * len(days))
    totals: dict[int, int] = defaultdict(int)
    open_now: dict[int, int] = defaultdict(int)
    fed_back_window: dict[int, int] = defaultdict(int)
    for ticket_id, unit_id in unit_of.items():
        totals[unit_id] += 1
        events = changes.get(ticket_id, [])
        closed_at_end = _is_closed(events, at)
        if not closed_at_end:
            open_now[unit_id] += 1
        fed_back_window[unit_id] += sum(
            1 for moment, step in events if step > 0 and window_start <= moment < at
        )
        series = per_unit_open[unit_id]
        for i, end_of_day in enumerate(day_ends):
            if created[ticket_id] < end_of_day and not _is_closed(events, end_of_day):
                series[i] += 1

    units = {
        row.id: (row.code, row.name)
        for row in session.execute(select(Unit.id, Unit.code, Unit.name))
    }
    out: list[UnitForecast] = []
    for unit_id in sorted(totals, key=lambda u: units[u][0]):
        open_items = open_now[unit_id]
        pace = fed_back_window[unit_id] / window_days
        left = max(0, math.ceil(open_items - pace * days_left - 1e-9))
        if open_items == 0:
            finish: str | None = today.isoformat()
        elif pace == 0:
            finish = None
        else:
            done = at + timedelta(days=open_items / pace) - timedelta(microseconds=1)
            finish = done.astimezone(zone).date().isoformat()
        out.append(
            UnitForecast(
                unit=units[unit_id][0],
                name=units[unit_id][1],
                total=totals[unit_id],
                open=open_items,
                fed_back_in_window=fed_back_window[unit_id],
                pace_per_day=round(pace, 2),
                left_at_target=left,
                finish_on=finish,
                burn_down=[
                    (d.isoformat(), n) for d, n in zip(days, per_unit_open[unit_id], strict=True)
                ],
            )
        )
    _, phase = current_phase(
        session, campaign.id, at - timedelta(microseconds=1), campaign.timezone
    )
    return Forecast(
        phase=phase,
        campaign=campaign.code,
        as_of=at.astimezone(zone).isoformat(),
        target=target.astimezone(zone).isoformat(),
        target_label=label,
        days_left=round(days_left, 2),
        window_days=window_days,
        units=out,
    )


def _is_closed(events: list[tuple[datetime, int]], moment: datetime) -> bool:
    """Closed at ``moment``: the last close/reopen event before it was a close."""
    state = False
    for at, step in events:
        if at >= moment:
            break
        state = step > 0
    return state
