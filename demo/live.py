"""A live demo campaign running at today's date (the context's clock), beside the 2005 replay.

``load_live_campaign`` makes a campaign that started weeks ago and ends weeks from now, and
puts tickets in every state through the real triggers, each at its own moment in the past:
opinions just received and one left uncategorized too long, tickets near their due time,
overdue at each level of the ladder, an extension request waiting, a citizen's reopen
request, a government escalation, feedback given. The timers then fire up to now as the
worker's sweep would, so the overdue board, the inbox, the extension and reopen pages all have
something to act on the moment ``rectiflow serve`` starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from engine.calendar import WorkingCalendar
from engine.citizen import answer_feedback
from engine.context import EngineContext, UnitOfWork
from engine.extensions import request_extension
from engine.models import Campaign, Ticket
from engine.organisation import read_toml, upsert_campaign
from engine.settings import project_path
from engine.tickets import create_ticket, fire, get_actor
from engine.timers import sweep

log = logging.getLogger(__name__)

CODE = "live"
ASSIGNED_LIMIT_DAYS = 10  # the consultation workflow's time limit in "assigned"
# (unit, officer) pairs of the sample organisation.
TEAMS = [
    ("luohe-station", "luohe.officer"),
    ("liubao-station", "liubao.officer"),
    ("traffic-brigade", "traffic.officer"),
    ("security-brigade", "security.officer"),
    ("legal", "legal.officer"),
]


@dataclass
class LiveSummary:
    code: str = CODE
    made: int = 0
    states: dict[str, int] = field(default_factory=dict)
    levels: dict[int, int] = field(default_factory=dict)
    extensions_pending: int = 0
    reopen_requests: int = 0
    timers_fired: int = 0


def _assigned_at(cal: WorkingCalendar, tz: ZoneInfo, now: datetime, overdue_days: int) -> datetime:
    """A time to assign at so that the ticket is ``overdue_days`` working days past its due
    time now (0: the soonest due time still ahead, which is within the warning's 24 hours
    unless a weekend or holiday lies between; due times are local midnights, so the search
    cannot ask for a narrower window at every hour of the day)."""
    soonest: tuple[datetime, datetime] | None = None
    for hours in range(6, 24 * 90, 3):
        at = now - timedelta(hours=hours)
        due = cal.add_working_days(at, ASSIGNED_LIMIT_DAYS, tz)
        if overdue_days == 0:
            if now < due and (soonest is None or due < soonest[0]):
                soonest = (due, at)
        elif (
            due < now
            and cal.working_days_between(
                due.astimezone(tz).date(), (now.astimezone(tz) - timedelta(days=1)).date()
            )
            >= overdue_days
        ):
            return at
    if soonest is not None:
        return soonest[1]
    raise RuntimeError(f"no assignment time gives {overdue_days} working days overdue")


def live_campaign_data(today: date) -> dict[str, Any]:
    return {
        "code": CODE,
        "name": {
            "zh_CN": f"{today.year}年走访征求意见活动（演示）",
            "en": f"Visit and consultation activity {today.year} (live demo)",
        },
        "timezone": "Asia/Shanghai",
        "starts_on": today - timedelta(days=60),
        "ends_on": today + timedelta(days=45),
        "rectification_deadline": today + timedelta(days=30),
        "number_prefix": f"L{today:%Y}",
        "workflow": "consultation",
        "calendar": "CN",
        # The report's six categories, in both languages.
        "categories": read_toml(project_path("config/campaigns/consultation-2005.toml"))[
            "categories"
        ],
    }


def load_live_campaign(ctx: EngineContext) -> LiveSummary:
    """Create the live campaign and its tickets (once: a live campaign with tickets is left
    alone), then fire the timers due up to now. Commits in its own transactions."""
    now = ctx.now()
    summary = LiveSummary()
    with ctx.unit_of_work() as uow:
        existing = uow.session.scalars(select(Campaign).where(Campaign.code == CODE)).first()
        if existing is not None and uow.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.campaign_id == existing.id)
        ):
            return summary
        tz = ZoneInfo("Asia/Shanghai")
        campaign = upsert_campaign(uow, live_campaign_data(now.astimezone(tz).date()))
        secrets = _make_tickets(uow, campaign, now, summary)
    # As the worker would: sweep until nothing more is due (a sweep stops at its time budget).
    while True:
        fired = sweep(ctx, now=now).fired
        summary.timers_fired += fired
        if not fired:
            break
    with ctx.unit_of_work() as uow:
        _after_the_sweep(uow, now, secrets, summary)
    with ctx.unit_of_work() as uow:
        rows = uow.session.execute(
            select(Ticket.state, Ticket.escalation_level)
            .join(Campaign, Campaign.id == Ticket.campaign_id)
            .where(Campaign.code == CODE)
        ).all()
    for state, level in rows:
        summary.states[state] = summary.states.get(state, 0) + 1
        if level:
            summary.levels[level] = summary.levels.get(level, 0) + 1
    summary.made = len(rows)
    return summary


def _make_tickets(
    uow: UnitOfWork, campaign: Campaign, now: datetime, summary: LiveSummary
) -> dict[str, str]:
    session = uow.session
    tz = ZoneInfo(campaign.timezone)
    cal = uow.ctx.calendar(campaign.calendar)
    clerk = get_actor(session, "clerk")
    supervisor = get_actor(session, "supervisor")
    secrets: dict[str, str] = {}
    count = 0

    def opinion(at: datetime, text: str, area: str = "Luohe town") -> str:
        nonlocal count
        count += 1
        made = create_ticket(
            uow,
            campaign=CODE,
            text=text,
            actor=clerk,
            now=at,
            citizen_name=f"Resident {count}",
            citizen_contact=f"1390000{count:04d}",
            area=area,
            source="visit",
        )
        secrets[made.number] = made.secret
        return made.number

    def categorize(number: str, at: datetime, category: str, kind: str = "criticism") -> None:
        fire(uow, number, "categorize", actor=clerk, now=at,
             data={"category": category, "kind": kind})  # fmt: skip

    def assign(number: str, at: datetime, team: int) -> None:
        unit, officer = TEAMS[team % len(TEAMS)]
        fire(uow, number, "assign", actor=supervisor, now=at,
             data={"unit": unit, "officer": officer})  # fmt: skip

    def worked(text: str, assigned_at: datetime, team: int, category: str) -> str:
        number = opinion(assigned_at - timedelta(days=2), text)
        categorize(number, assigned_at - timedelta(days=1), category)
        assign(number, assigned_at, team)
        return number

    # Just received, and one nobody categorized in time (the clerks are chased).
    opinion(now - timedelta(hours=2), "Street lights on Riverside Road are out since last week.")
    opinion(now - timedelta(minutes=40), "Please patrol the night market more often.")
    opinion(now - timedelta(days=6), "The household registration window closes too early.")
    # Categorized, waiting for a unit.
    number = opinion(now - timedelta(days=1), "Motorbikes race on the county road at night.")
    categorize(number, now - timedelta(hours=20), "traffic_management")
    # Assigned: fresh, near the due time, and overdue at each level of the ladder.
    worked("Gambling in the back room of the tea house on Station Street.",
           now - timedelta(days=1), 0, "public_security_management")  # fmt: skip
    worked("Slow police response to a burglary report in Liubao.",
           now - timedelta(days=2), 1, "law_enforcement")  # fmt: skip
    worked("Trucks park on the pavement outside the school.",
           _assigned_at(cal, tz, now, 0), 2, "traffic_management")  # fmt: skip
    worked("Theft of electric bicycles near the market is not followed up.",
           _assigned_at(cal, tz, now, 1), 0, "law_enforcement")  # fmt: skip
    worked("An officer was rude at the checkpoint.",
           _assigned_at(cal, tz, now, 3), 3, "team_building")  # fmt: skip
    worked("Fraud calls to the elderly are not investigated.",
           _assigned_at(cal, tz, now, 6), 4, "law_enforcement")  # fmt: skip
    # Rectified, feedback pending.
    number = worked("Noise from the karaoke bar after midnight.",
                    now - timedelta(days=5), 0, "public_security_management")  # fmt: skip
    officer = get_actor(session, TEAMS[0][1])
    fire(uow, number, "rectify", actor=officer, now=now - timedelta(days=1),
         data={"measures": "Closing time checked nightly; owner warned in writing."})  # fmt: skip
    # Fed back; the citizen's answer comes after the sweep.
    for text, team in (
        ("Thanks to the station for recovering my stolen motorbike.", 1),
        ("The bus stop by the hospital has no crossing guard.", 2),
    ):
        number = worked(text, now - timedelta(days=9), team, "traffic_management")
        actor = get_actor(session, TEAMS[team][1])
        fire(uow, number, "rectify", actor=actor, now=now - timedelta(days=6),
             data={"measures": "Handled as asked."})  # fmt: skip
        fire(uow, number, "feed_back", actor=actor, now=now - timedelta(days=4),
             data={"method": "visit", "text": "We visited and explained what was done.",
                   "date": (now - timedelta(days=4)).astimezone(tz).date().isoformat()})  # fmt: skip
    # Escalated to the county government (outside the bureau's duties).
    number = opinion(now - timedelta(days=3), "The village road to Xiaji is unpaved and floods.")
    categorize(number, now - timedelta(days=3) + timedelta(hours=3), "outside_duties", "request")
    fire(uow, number, "escalate_to_government", actor=supervisor, now=now - timedelta(days=2),
         data={"receiving_body": "County Transport Bureau",
               "reason": "Road building is the government's duty."})  # fmt: skip
    return secrets


def _after_the_sweep(
    uow: UnitOfWork, now: datetime, secrets: dict[str, str], summary: LiveSummary
) -> None:
    """What people did this morning: an officer asks for more time, a citizen is not satisfied."""
    session = uow.session
    rows = session.execute(
        select(Ticket.number, Ticket.state, Ticket.due_at, Ticket.assignee_id, Ticket.text)
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .where(Campaign.code == CODE)
        .order_by(Ticket.id)
    ).all()
    fed_back = [r for r in rows if r.state == "fed_back"]
    if fed_back:
        first = fed_back[-1]
        answer_feedback(
            uow,
            number=first.number,
            secret=secrets[first.number],
            satisfied=False,
            now=now - timedelta(hours=3),
            reason="Nothing changed: there is still no crossing guard in the mornings.",
        )
        summary.reopen_requests += 1
    for r in rows:
        if r.state == "assigned" and r.due_at is not None and r.due_at > now + timedelta(days=3):
            officer = get_actor(session, "liubao.officer")
            if r.assignee_id != officer.id:
                continue
            request_extension(
                uow,
                r.number,
                actor=officer,
                due_at=r.due_at + timedelta(days=7),
                reason="The burglary suspect's trail leads to the next county; we wait for "
                "their police's reply.",
                now=now - timedelta(hours=1),
            )
            summary.extensions_pending += 1
            break
