"""A replay of three weeks of made-up calls to the county's 12345 hotline (a continuous programme).

Every call is recorded with ``create_ticket`` and worked by firing the hotline workflow's real
triggers with ``now`` set to the simulated time: dispatched by an operator, signed for by the
unit (a few sent back once, a few signed for late), handled and replied to, reviewed by the
centre (a few replies returned), and visited: most citizens are satisfied or basically
satisfied, some unsatisfied ones are reopened once and, unsatisfied again, go to the hotline
supervisor. The last days' calls are left in progress so the queues have work. The figures
are made up; the generator is seeded, so every run gives the same tickets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.context import UnitOfWork
from engine.models import Campaign
from engine.tickets import Actor, create_ticket, fire, get_actor

PROGRAMME = "hotline-12345"
START = date(2026, 1, 5)  # a Monday
DAYS = 21
CALLS = 150
SEED = 12345
ZONE = ZoneInfo("Asia/Shanghai")

# Category -> (unit code, the officer who signs for it there).
ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "public_security": (("luohe-station", "luohe.officer"), ("liubao-station", "liubao.officer")),
    "traffic": (("traffic-brigade", "traffic.officer"),),
    "household_registration": (("household", "household.officer"),),
    "noise": (("security-brigade", "security.officer"),),
    "other": (("office", "office.officer"),),
}
TEXTS: dict[str, tuple[str, ...]] = {
    "public_security": (
        "Electric bikes stolen twice this month outside the Luohe market.",
        "Gambling in the back room of the tea house on Liubao street every night.",
        "Nobody came when I called 110 about a fight at the bus station.",
    ),
    "traffic": (
        "Trucks park on the school crossing every morning.",
        "The traffic light at the county hospital junction has been dark for a week.",
    ),
    "household_registration": (
        "How long does a replacement ID card take, and can my son collect it?",
        "My newborn's household registration was refused; what papers are missing?",
    ),
    "noise": (
        "Square dancing with loudspeakers until 11 pm behind building 4.",
        "A workshop runs a saw all night next to the primary school.",
    ),
    "other": ("The street lamp on Yanjiang road is broken.",),
}
KINDS = ("complaint", "request", "enquiry", "suggestion", "report")


@dataclass
class Summary:
    made: int = 0
    transitions: int = 0


def _at(day: int, minutes: int) -> datetime:
    local = datetime.combine(START + timedelta(days=day), time(8, 30), tzinfo=ZONE)
    return local + timedelta(minutes=minutes)


def replay_hotline(uow: UnitOfWork, programme: str = PROGRAMME) -> Summary:
    """Record and work the made-up calls in ``programme`` (nothing when it already has tickets)."""
    session = uow.session
    seq = session.scalar(select(Campaign.ticket_seq).where(Campaign.code == programme))
    summary = Summary()
    if seq:
        return summary
    rng = random.Random(SEED)
    operators = [get_actor(session, "hotline.operator"), get_actor(session, "hotline.operator2")]
    supervisor = get_actor(session, "hotline.supervisor")
    officers: dict[str, Actor] = {}

    def officer(username: str) -> Actor:
        if username not in officers:
            officers[username] = get_actor(session, username)
        return officers[username]

    def step(number: str, trigger: str, actor: Actor, at: datetime, **data: str) -> None:
        fire(uow, number, trigger, actor=actor, data=data, now=at)
        summary.transitions += 1

    for index in range(CALLS):
        day = index * DAYS // CALLS
        if (START + timedelta(days=day)).weekday() >= 5 and rng.random() < 0.5:
            day = max(0, day - 1)  # fewer calls at weekends
        t = _at(day, rng.randint(0, 9 * 60))
        category = rng.choices(list(ROUTES), (30, 20, 15, 25, 10))[0]
        urgent = category == "public_security" and rng.random() < 0.3
        channel = rng.choices(("phone", "web", "wechat"), (70, 20, 10))[0]
        kind = "enquiry" if category == "household_registration" else rng.choice(KINDS)
        operator = operators[index % 2]
        created = create_ticket(
            uow,
            campaign=programme,
            text=rng.choice(TEXTS[category]),
            kind=kind,
            priority="urgent" if urgent else "ordinary",
            area=rng.choice(("Luohe", "Liubao", "Yanjiang", "Xiaji", "County town")),
            actor=operator,
            now=t,
            source=channel,
        )
        summary.made += 1
        number = created.number
        if kind == "enquiry" and rng.random() < 0.6:
            step(
                number,
                "answer_directly",
                operator,
                t + timedelta(minutes=6),
                reply="Explained the documents needed and the office hours.",
            )
            continue
        in_progress = day >= DAYS - 3  # the last days' calls are still being worked
        routes = ROUTES[category]
        unit, signer = routes[rng.randrange(len(routes))]
        t += timedelta(minutes=rng.randint(5, 40) if urgent else rng.randint(20, 150))
        step(number, "dispatch", operator, t, category=category, unit=unit)
        if rng.random() < 0.07:
            # Not ours: sent back once within the sign-for limit, dispatched elsewhere.
            t += timedelta(minutes=rng.randint(20, 50))
            step(
                number,
                "send_back",
                officer(signer),
                t,
                reason="This belongs to another unit's duties.",
            )
            unit, signer = ROUTES["other"][0]
            t += timedelta(minutes=rng.randint(10, 40))
            step(number, "dispatch", operator, t, category="other", unit=unit)
        if in_progress and rng.random() < 0.5:
            continue
        late_sign = rng.random() < 0.12
        if urgent:
            t += timedelta(minutes=rng.randint(150, 300) if late_sign else rng.randint(10, 90))
        else:
            t += timedelta(days=3) if late_sign else timedelta(hours=rng.randint(1, 6))
        step(number, "sign_for", officer(signer), t, officer=signer)
        if in_progress:
            continue
        rounds = 0
        while True:
            late_reply = rng.random() < 0.12
            if urgent:
                t += timedelta(hours=rng.randint(30, 40) if late_reply else rng.randint(2, 20))
            else:
                t += timedelta(days=rng.randint(8, 10) if late_reply else rng.randint(1, 4))
            step(
                number,
                "reply",
                officer(signer),
                t,
                method="phone",
                text="Checked on site and dealt with it; the caller was told by phone.",
                date=t.astimezone(ZONE).date().isoformat(),
            )
            t += timedelta(hours=rng.randint(1, 5))
            if rounds == 0 and rng.random() < 0.1:
                step(
                    number,
                    "return_reply",
                    operator,
                    t,
                    reason="The reply does not say what was done; give the measures taken.",
                )
                rounds += 1
                continue
            step(number, "accept_reply", operator, t)
            t += timedelta(hours=rng.randint(3, 30))
            r = rng.random()
            if r < 0.72:
                step(number, "close", operator, t, rating="satisfied")
            elif r < 0.9:
                step(number, "close", operator, t, rating="basically_satisfied")
            elif rounds < 2:
                rounds = 2  # reopened: a second unsatisfied answer goes to the supervisor
                step(
                    number,
                    "reopen",
                    operator,
                    t,
                    rating="unsatisfied",
                    reason="The noise went on the next night.",
                )
                t += timedelta(hours=2)
                continue
            else:
                step(
                    number,
                    "refer_to_supervisor",
                    operator,
                    t,
                    rating="unsatisfied",
                    reason="Unsatisfied again after the unit handled it twice.",
                )
                t += timedelta(days=1)
                step(
                    number,
                    "conclude",
                    supervisor,
                    t,
                    conclusion="Met the caller and the unit on site; the matter is settled.",
                )
            break
    return summary
