"""The replay of the report's campaign: every opinion recorded and worked by firing real triggers.

The 2005 report (shared/seed/consultation-situation-report.txt) gives the
figures this replay reproduces: 268 opinions sorted into five areas
(76 team building, 31 service economy, 28 law enforcement, 81 public security
management, 46 traffic management) and 6 outside the bureau's duties; 42
specific problems, 39 of them solved before March 18 and 3 reported to the
government; feedback on the other 226 comments and suggestions by the end of
March; theme shares such as 36% theft, 28% gambling, 42% slow police
response.

The clock is simulated: events are sorted by their time and each one is fired
with ``now`` set to it (Feb 25 – Mar 7 visits, Mar 8 sorting, then assignment,
rectification and feedback). When the deadlines engineer's
``engine.timers.fire_due_timers`` exists, it runs as the clock moves (in the
replay's transaction), so timers fire as they would have.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.context import UnitOfWork
from engine.models import Campaign, Ticket, Unit, User
from engine.tickets import Actor, create_ticket, fire, get_actor

log = logging.getLogger(__name__)

REPORT_CATEGORIES: dict[str, int] = {
    "team_building": 76,
    "service_economy": 31,
    "law_enforcement": 28,
    "public_security_management": 81,
    "traffic_management": 46,
    "outside_duties": 6,
}
SPECIFIC_PROBLEMS = 42
SOLVED_BY_DEADLINE = 39
ESCALATED_TO_GOVERNMENT = 3
# Tag → number of the 268 opinions carrying it (the report's shares, rounded to a whole opinion).
THEMES: dict[str, int] = {
    "slow_police_response": 113,  # 42%
    "theft": 96,  # 36%
    "gambling": 75,  # 28%
    "hard_to_see_police": 70,  # 26%
    "poor_joint_defence_team": 67,  # 25%
    "poor_law_enforcement_quality": 155,  # 58%
}
AREAS = ("Luohe", "Liubao", "Yanjiang", "Xiaji", "County town")
TEXTS: dict[str, tuple[str, ...]] = {
    "team_building": (
        "The 110 desk answers slowly; officers arrive late to calls at night.",
        "It is hard to see a police officer in the countryside.",
        "Some officers are rude at the service window.",
        "The joint defence team members are of poor quality.",
    ),
    "service_economy": (
        "Enterprises need faster help with permits during restructuring.",
        "Please station an officer near the industrial park at shift change.",
        "Security advice for our warehouse would be welcome.",
    ),
    "law_enforcement": (
        "Case handling took too long and nobody told us the result.",
        "The fine at the checkpoint was not explained.",
        "Law enforcement quality in the county is generally poor.",
    ),
    "public_security_management": (
        "Theft of electric bikes near the market is frequent.",
        "Gambling in the back room of the tea house every night.",
        "The internet cafes around the school are chaotic at night.",
        "The game room near the campus lets minors in.",
    ),
    "traffic_management": (
        "Three-wheeled cars block the crossing at the town centre.",
        "Traffic order in the town is confused on market days.",
        "Trucks speed through the village without lights.",
    ),
    "outside_duties": (
        "The road to the village needs repairing.",
        "Street lights on the river road have been out for months.",
    ),
}
SWEEP_STEP = timedelta(hours=1)
COMMENT_KINDS: tuple[str, ...] = ("criticism", "suggestion", "praise")
COMMENT_WEIGHTS: tuple[int, ...] = (50, 40, 10)


@dataclass(frozen=True)
class Opinion:
    """One of the report's opinions, as the replay will record and work it."""

    index: int
    category: str
    kind: str
    area: str
    text: str
    themes: tuple[str, ...]
    path: str  # solved | escalated | praise | comment


@dataclass
class ReplaySummary:
    made: int = 0
    transitions: int = 0
    timers_fired: int = 0
    finished_at: datetime | None = None


def plan_opinions(seed: int = 2005) -> list[Opinion]:
    """The 268 opinions with category, kind, themes and the path each will take."""
    rng = random.Random(seed)
    categories = [c for c, n in REPORT_CATEGORIES.items() for _ in range(n)]
    rng.shuffle(categories)
    outside = [i for i, c in enumerate(categories) if c == "outside_duties"]
    inside = [i for i, c in enumerate(categories) if c != "outside_duties"]
    escalated = set(outside[:ESCALATED_TO_GOVERNMENT])
    solved = set(rng.sample(inside, SOLVED_BY_DEADLINE))
    tags: dict[int, list[str]] = {i: [] for i in range(len(categories))}
    for tag, count in THEMES.items():
        for i in rng.sample(range(len(categories)), count):
            tags[i].append(tag)
    plan = []
    for i, category in enumerate(categories):
        if i in escalated or i in solved:
            kind = "request"
            path = "escalated" if i in escalated else "solved"
        else:
            kind = (
                "suggestion"
                if category == "outside_duties"
                else rng.choices(COMMENT_KINDS, COMMENT_WEIGHTS)[0]
            )
            path = "praise" if kind == "praise" else "comment"
        plan.append(
            Opinion(
                index=i,
                category=category,
                kind=kind,
                area=rng.choice(AREAS),
                text=rng.choice(TEXTS[category]),
                themes=tuple(sorted(tags[i])),
                path=path,
            )
        )
    return plan


def _officers_by_unit(session: Session) -> dict[int, str]:
    """A responsible person per unit: an officer, else the unit leader."""
    rows = session.execute(
        select(User.unit_id, User.username, User.role)
        .where(User.active.is_(True), User.role.in_(("officer", "unit_leader")))
        .order_by(User.role, User.username)  # "officer" sorts before "unit_leader"
    ).all()
    out: dict[int, str] = {}
    for row in rows:
        if row.unit_id is not None and row.unit_id not in out:
            out[row.unit_id] = row.username
    return out


def _default_sweep() -> Callable[..., Any] | None:
    """The deadlines' timer firing, in the replay's own transaction, when it exists.

    The clock stops at the first pending due time before ``now`` (an index
    lookup) and fires what falls due within the following ``SWEEP_STEP``, so a
    timer fires at most that late, and always before the next replay event
    could cancel it: the same timers fire as under a worker sweeping every few
    seconds.
    """
    try:
        from engine import timers
    except ImportError:
        return None
    fire_due = getattr(timers, "fire_due_timers", None)
    next_due = getattr(timers, "next_due", None)
    if fire_due is None or next_due is None:
        return None

    def sweep_in_session(uow: UnitOfWork, *, now: datetime) -> int:
        fired = 0
        while True:
            due = next_due(uow.session)
            if due is None or due > now:
                return fired
            part = fire_due(uow, now=min(now, due + SWEEP_STEP), limit=1000)
            fired += len(part.firings)
            if not part.firings and not part.skipped:
                return fired

    return sweep_in_session


def replay_campaign(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    clerk: str = "clerk",
    supervisor: str = "supervisor",
    seed: int = 2005,
    sweep: Callable[..., Any] | None | bool = True,
) -> ReplaySummary:
    """Replay the report's campaign in ``campaign_code`` on a simulated clock; the caller commits.

    Records the 268 opinions over the visit period and works each through the
    workflow with ``fire`` at its own simulated time. A campaign that already
    has tickets is left alone (``made == 0``). ``sweep``: True uses
    ``engine.timers.fire_due_timers`` when it exists, a callable is used as given
    (``sweep(uow, now=...)``), False/None sweeps nothing.
    """
    summary = ReplaySummary()
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).one()
    existing = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.campaign_id == campaign.id)
    )
    if existing:
        return summary
    sweeper = _default_sweep() if sweep is True else (sweep or None)
    zone = ZoneInfo(campaign.timezone)
    rng = random.Random(seed + 1)
    plan = plan_opinions(seed)
    clerk_actor = get_actor(session, clerk)
    super_actor = get_actor(session, supervisor)
    officers = _officers_by_unit(session)
    office_unit = session.scalar(select(Unit.id).where(Unit.code == "office"))

    def local(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
        return datetime(campaign.starts_on.year, month, day, hour, minute, tzinfo=zone)

    start = datetime(
        campaign.starts_on.year, campaign.starts_on.month, campaign.starts_on.day, 9, tzinfo=zone
    )
    visit_days = 11  # Feb 25 – Mar 7
    # (time, order, index, step): sorting gives the one global simulated timeline.
    events: list[tuple[datetime, int, int, str]] = []
    solved_slots = iter(range(SOLVED_BY_DEADLINE))
    escalated_slots = iter(range(ESCALATED_TO_GOVERNMENT))
    for op in plan:
        received = start + timedelta(
            days=op.index * visit_days / len(plan), minutes=rng.randint(0, 400)
        )
        events.append((received, 0, op.index, "create"))
        sorted_at = local(3, 8, 14) + timedelta(minutes=op.index)  # the March 8 meeting
        events.append((sorted_at, 1, op.index, "categorize"))
        if op.path == "praise":
            events.append(
                (local(3, 9, 10) + timedelta(hours=rng.randint(0, 24 * 10)), 2, op.index, "thank")
            )
            continue
        if op.path == "escalated":
            slot = next(escalated_slots)
            events.append((local(3, 10 + 2 * slot, 10), 2, op.index, "escalate"))
            events.append((local(3, 11 + 2 * slot, 15), 3, op.index, "explain"))
            continue
        events.append((local(3, 9, 9) + timedelta(minutes=op.index), 2, op.index, "assign"))
        if op.path == "solved":
            slot = next(solved_slots)
            fix_day = 10 + slot * 8 // SOLVED_BY_DEADLINE  # Mar 10 – Mar 17
            fixed = local(3, fix_day, 9) + timedelta(minutes=rng.randint(0, 480))
        else:
            fixed = local(3, 18, 9) + timedelta(hours=rng.randint(0, 24 * 12))  # Mar 18 – 30
        events.append((fixed, 3, op.index, "rectify"))
        events.append((fixed + timedelta(hours=rng.randint(1, 20)), 4, op.index, "feed_back"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    numbers: dict[int, str] = {}
    units: dict[int, int | None] = {}

    def unit_of(index: int) -> int:
        unit_id = units.get(index) or office_unit
        assert unit_id is not None, "the sample organisation has an 'office' unit"
        return unit_id

    def responsible(index: int) -> str:
        return officers[unit_of(index)]

    for at, _, index, step in events:
        op = plan[index]
        if sweeper is not None:
            summary.timers_fired += sweeper(uow, now=at) or 0
        day = at.astimezone(zone).date().isoformat()
        if step == "create":
            created = create_ticket(
                uow,
                campaign=campaign_code,
                text=op.text,
                kind=op.kind,
                citizen_name=f"Resident {index + 1}",
                area=op.area,
                received_at=at,
                actor=clerk_actor,
                now=at + timedelta(minutes=30),
                source="demo",
                external_key=f"demo-{index + 1:04d}",
                themes=op.themes,
            )
            numbers[index] = created.number
            summary.made += 1
            continue
        number = numbers[index]
        actor: Actor = super_actor
        data: dict[str, Any]
        trigger = step
        if step == "categorize":
            actor, data = clerk_actor, {"category": op.category, "kind": op.kind}
        elif step == "thank":
            actor, trigger = clerk_actor, "feed_back"
            data = {"method": "letter", "text": "Thank-you letter sent.", "date": day}
        elif step == "escalate":
            trigger = "escalate_to_government"
            data = {
                "receiving_body": "County Party Committee and Government",
                "reason": "Outside the scope of public security duties.",
                "reference": f"GOV-2005-{index + 1:03d}",
            }
        elif step == "explain":
            trigger = "feed_back"
            data = {
                "method": "visit",
                "text": "Reported to the county government; the situation was explained.",
                "date": day,
            }
        elif step == "assign":
            unit_code = session.scalar(select(Unit.code).where(Unit.id == unit_of(index)))
            data = {"unit": unit_code, "officer": responsible(index)}
        elif step == "rectify":
            actor = get_actor(session, responsible(index))
            data = {"measures": "Measures taken and recorded in the supervision file."}
        else:  # feed_back
            actor = get_actor(session, responsible(index))
            data = {"method": "visit", "text": "Answered at the door.", "date": day}
        result = fire(uow, number, trigger, actor=actor, data=data, now=at)
        if "unit_id" in result.effects:
            units[index] = result.effects["unit_id"]
        summary.transitions += 1
        summary.finished_at = at
    if sweeper is not None:
        end = local(campaign.ends_on.month, campaign.ends_on.day, 23, 59)
        summary.timers_fired += sweeper(uow, now=end) or 0
    return summary


def build_demo_campaign(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    clerk: str = "clerk",
    seed: int = 2005,
) -> int:
    """Replay the report's campaign (see ``replay_campaign``); return how many opinions were made."""
    return replay_campaign(uow, campaign_code, clerk=clerk, seed=seed).made
