"""The demo campaign: the report's opinions generated and categorized by firing real triggers.

Categories follow the report: 76 team building, 31 service economy, 28 law
enforcement, 81 public security management, 46 traffic management, and the
remaining 6 of 268 outside the bureau's duties.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Campaign, Ticket
from engine.tickets import Actor, create_ticket, fire, get_actor

REPORT_CATEGORIES: dict[str, int] = {
    "team_building": 76,
    "service_economy": 31,
    "law_enforcement": 28,
    "public_security_management": 81,
    "traffic_management": 46,
    "outside_duties": 6,
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
KIND_WEIGHTS = (("criticism", 45), ("suggestion", 40), ("praise", 10), ("request", 5))


def build_demo_campaign(
    session: Session,
    campaign_code: str,
    *,
    clerk: str = "clerk",
    seed: int = 2005,
) -> int:
    """Record and categorize the report's 268 opinions in ``campaign_code``; return how many were made.

    Times are spread over the visit period (Feb 25 – Mar 7, local time);
    running it again on a campaign that already has tickets makes nothing.
    """
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).one()
    existing = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.campaign_id == campaign.id)
    )
    if existing:
        return 0
    rng = random.Random(seed)
    zone = ZoneInfo(campaign.timezone)
    start = datetime(
        campaign.starts_on.year, campaign.starts_on.month, campaign.starts_on.day, 9, tzinfo=zone
    )
    visit_days = 11  # Feb 25 – Mar 7
    clerk_actor: Actor = get_actor(session, clerk)
    categories = [c for c, n in REPORT_CATEGORIES.items() for _ in range(n)]
    rng.shuffle(categories)
    kinds, weights = zip(*KIND_WEIGHTS, strict=True)
    made = 0
    for index, category in enumerate(categories):
        received = start + timedelta(
            days=index * visit_days / len(categories), minutes=rng.randint(0, 400)
        )
        kind = rng.choices(kinds, weights)[0]
        created = create_ticket(
            session,
            campaign=campaign_code,
            text=rng.choice(TEXTS[category]),
            kind=kind,
            citizen_name=f"Resident {index + 1}",
            area=rng.choice(AREAS),
            received_at=received,
            actor=clerk_actor,
            now=received,
            source="demo",
        )
        fire(
            session,
            created.number,
            "categorize",
            actor=clerk_actor,
            data={"category": category, "kind": kind},
            expected_version=1,
            now=received + timedelta(hours=2),
        )
        made += 1
    return made
