"""Build a province-sized rectiflow database: a million tickets with their history, in minutes.

    python -m bench.generate --url sqlite:///instance/bench-1m.db --tickets 1000000 --fresh
    python -m bench.generate --url postgresql://postgres@127.0.0.1/rectiflow_bench \
        --tickets 1000000 --fresh

What it makes (deterministic for a given ``--seed``):

* the sample organisation and the report's campaign (config/), plus ``--counties``
  more counties, each a bureau with eight working units, a leader and four
  officers per unit and a clerk (every password is "demo");
* ``--campaigns`` yearly campaigns ending with the report's ``consultation-2005``,
  which is the active one at ``BENCH_NOW`` (2005-03-14 10:00 Shanghai) and takes
  ``--active-share`` of the tickets; older campaigns are mostly closed, with a
  few long-overdue stragglers at escalation level 3;
* every ticket's history as it would have been written by the engine: the
  ``create`` row, categorize, assign, sometimes reassign, rectify, feed back
  (or thank-you letters from ``categorized``, or escalation to government),
  and a ``system`` row for each deadline timer that fired — each row hash-chained
  with ``engine.audit.row_hash`` so ``rectiflow audit verify`` passes; the ticket's
  ``version`` equals its log length and ``last_hash`` is its chain head;
* every path checked against the ``consultation`` workflow definition (a step
  the workflow does not allow stops the generator); due times, due rules and
  timers (warning, breach, and each ladder step the one below armed when it fired:
  ``deadlines.timers_by``) from ``engine.deadlines`` on the
  campaign's working calendar (``engine.calendar``, holidays included) for the
  state each open ticket stands in; every timer due before ``BENCH_NOW`` has
  fired and is logged as ``engine.timers`` logs it (``deadline_warning``,
  ``overdue``, ``escalated``), so a sweep at ``BENCH_NOW`` finds nothing;
* feedback records, government escalations, theme tags.

Rows go in through the driver's bulk paths (``executemany`` on SQLite, ``COPY``
on PostgreSQL), never the service API one by one: the engine's own write path is
measured elsewhere. Secondary indexes are dropped during the load and rebuilt
from their stored definitions afterwards, then the planner statistics refreshed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.engine_context import as_uow
from demo.consultation_2005 import TEXTS
from engine import audit, db, deadlines
from engine.calendar import CalendarBook
from engine.models import Campaign, Category, Unit, User
from engine.organisation import load_campaign_file, load_organisation_file
from engine.security import hash_password
from engine.settings import PROJECT_ROOT, audit_key, load_settings, project_path
from engine.workflow import default_registry

log = logging.getLogger("bench.generate")

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The instant the generated province is "now": mid-campaign, four days before the cap.
BENCH_NOW = datetime(2005, 3, 14, 2, 0, tzinfo=UTC)
ACTIVE_CAMPAIGN = "consultation-2005"
WORKFLOW = ("consultation", 1)
CATEGORY_WEIGHTS = {
    "team_building": 76,
    "service_economy": 31,
    "law_enforcement": 28,
    "public_security_management": 81,
    "traffic_management": 46,
    "outside_duties": 6,
}
# category -> which of a county's working units handles it (stations take public security by area)
CATEGORY_UNIT = {
    "team_building": "political",
    "service_economy": "wenbao-brigade",
    "law_enforcement": "legal",
    "public_security_management": "security-brigade",
    "traffic_management": "traffic-brigade",
    "outside_duties": "office",
}
COUNTY_UNITS = (
    ("office", "Bureau Office", "department"),
    ("political", "Political Department", "department"),
    ("legal", "Legal Affairs Department", "department"),
    ("security-brigade", "Public Security Brigade", "brigade"),
    ("traffic-brigade", "Traffic Police Brigade", "brigade"),
    ("wenbao-brigade", "Economic and Cultural Security Brigade", "brigade"),
    ("north-station", "North Police Station", "station"),
    ("south-station", "South Police Station", "station"),
)
OFFICERS_PER_UNIT = 4
THEMES = (
    "slow_police_response",
    "theft",
    "gambling",
    "hard_to_see_police",
    "poor_joint_defence_team",
    "poor_law_enforcement_quality",
)
KIND_WEIGHTS = (("criticism", 45), ("suggestion", 40), ("praise", 10), ("request", 5))
# Time limits, the ladder and the calendar are the engine's: the workflow definition's states
# and ladder, and the campaign's working calendar (engine.calendar), through engine.deadlines.
FEEDBACK_METHODS = ("letter", "visit", "phone", "sms", "meeting")
# Where a ticket's story stops if nothing else stops it first (the clock does too).
ENDINGS_OLD = (
    ("closed", 90.0),
    ("closed_praise", 5.5),
    ("closed_escalated", 2.5),
    ("stall_assigned", 1.2),
    ("stall_rectified", 0.3),
    ("open_escalated", 0.5),
)
ENDINGS_ACTIVE = (
    ("closed", 70.0),
    ("closed_praise", 8.0),
    ("closed_escalated", 3.0),
    ("stall_received", 1.0),
    ("stall_categorized", 2.0),
    ("stall_assigned", 11.0),
    ("stall_rectified", 3.0),
    ("open_escalated", 2.0),
)
CHUNK = 20_000

# --- the organisation and campaigns -------------------------------------------------------------


@dataclass
class UnitStaff:
    id: int
    code: str
    leader: tuple[int, str, str]  # (user id, username, role)
    officers: list[tuple[int, str]]


@dataclass
class County:
    code: str
    clerk: str
    units: dict[str, UnitStaff]
    areas: tuple[str, ...]
    weight: float


@dataclass
class CampaignInfo:
    id: int
    code: str
    prefix: str
    starts: datetime
    ends: datetime
    deadline: datetime
    active: bool
    tickets: int
    categories: list[str] = field(default_factory=list)
    # state -> (phase, first instant): the phases that hold a state's clock, as the engine reads them
    governing: dict[str, tuple[str, datetime]] = field(default_factory=dict)


def _user(session: Session, username: str, name: str, role: str, unit: Unit, pw: str) -> User:
    user = User(username=username, display_name=name, role=role, unit=unit, password_hash=pw)
    session.add(user)
    return user


def build_organisation(session: Session, counties: int, rng: random.Random) -> list[County]:
    """The sample county (config/organisation.toml) plus ``counties`` generated ones."""
    load_organisation_file(as_uow(session), PROJECT_ROOT / "config" / "organisation.toml")
    session.flush()
    units = {u.code: u for u in session.scalars(select(Unit))}
    users = list(session.scalars(select(User)))
    sample_units: dict[str, UnitStaff] = {}
    sample_map = {
        "office": "office",
        "political": "political",
        "legal": "legal",
        "security-brigade": "security-brigade",
        "traffic-brigade": "traffic-brigade",
        "wenbao-brigade": "wenbao-brigade",
        "north-station": "luohe-station",
        "south-station": "liubao-station",
    }
    supervisor = next(u for u in users if u.username == "supervisor")
    for local, code in sample_map.items():
        unit = units[code]
        staff = [u for u in users if u.unit_id == unit.id]
        leaders = [u for u in staff if u.role == "unit_leader"]
        officers = [(u.id, u.username) for u in staff if u.role == "officer"]
        lead = leaders[0] if leaders else supervisor
        sample_units[local] = UnitStaff(
            unit.id, code, (lead.id, lead.username, lead.role), officers
        )
    result = [
        County(
            "sample",
            "clerk",
            sample_units,
            ("Luohe", "Liubao", "Yanjiang", "Xiaji", "County town"),
            3.0,
        )
    ]
    password = hash_password("demo")
    root = units["bureau"]
    for n in range(1, counties + 1):
        prefix = f"c{n:02d}"
        bureau = Unit(
            code=f"{prefix}-bureau", name=f"County {n} Bureau", kind="bureau", parent=root
        )
        session.add(bureau)
        clerk = _user(session, f"{prefix}.clerk", f"County {n} clerk", "clerk", bureau, password)
        made: dict[str, tuple[Unit, User, list[User]]] = {}
        for local, name, kind in COUNTY_UNITS:
            unit = Unit(
                code=f"{prefix}-{local}", name=f"County {n} {name}", kind=kind, parent=bureau
            )
            session.add(unit)
            leader = _user(
                session, f"{prefix}.{local}.leader", f"{name} leader", "unit_leader", unit, password
            )
            officers = [
                _user(
                    session,
                    f"{prefix}.{local}.officer{i}",
                    f"{name} officer {i}",
                    "officer",
                    unit,
                    password,
                )
                for i in range(1, OFFICERS_PER_UNIT + 1)
            ]
            made[local] = (unit, leader, officers)
        session.flush()
        staff_units = {
            local: UnitStaff(
                unit.id,
                unit.code,
                (leader.id, leader.username, leader.role),
                [(o.id, o.username) for o in officers],
            )
            for local, (unit, leader, officers) in made.items()
        }
        # Zipf-like sizes: a few big counties, a long tail of small ones.
        weight = 1.0 / (n**0.6)
        areas = tuple(f"County {n} town {k}" for k in range(1, 7))
        result.append(County(prefix, clerk.username, staff_units, areas, weight))
    session.flush()
    return result


def build_campaigns(
    session: Session, campaigns: int, tickets: int, active_share: float
) -> list[CampaignInfo]:
    """``campaigns`` yearly campaigns ending with the report's (the active one)."""
    active = load_campaign_file(
        as_uow(session), PROJECT_ROOT / "config" / "campaigns" / f"{ACTIVE_CAMPAIGN}.toml"
    )
    session.flush()
    categories = [c.code for c in active.categories]
    infos: list[CampaignInfo] = []
    older = campaigns - 1
    active_tickets = tickets if older == 0 else round(tickets * active_share)
    rest = tickets - active_tickets
    for k in range(older, 0, -1):
        year = 2005 - k
        share = rest // older + (1 if (older - k) < rest % older else 0)
        camp = Campaign(
            code=f"province-{year}",
            name=f"Province visit and consultation activity {year}",
            timezone="Asia/Shanghai",
            starts_on=date(year, 2, 25),
            ends_on=date(year, 3, 31),
            rectification_deadline=datetime(year, 3, 18, tzinfo=SHANGHAI).astimezone(UTC),
            number_prefix=f"P{year}",
            ticket_seq=0,
            workflow_name=WORKFLOW[0],
            workflow_version=WORKFLOW[1],
            calendar="CN",
        )
        session.add(camp)
        session.flush()
        for position, code in enumerate(categories, start=1):
            src = next(c for c in active.categories if c.code == code)
            session.add(
                Category(
                    campaign_id=camp.id,
                    code=code,
                    name=src.name,
                    outside_duties=src.outside_duties,
                    position=position,
                )
            )
        infos.append(_info(camp, share, active=False, categories=categories))
    infos.append(_info(active, active_tickets, active=True, categories=categories))
    session.flush()
    infos[-1].governing = dict(deadlines.campaign_clock(as_uow(session), active.id).governing)
    return infos


def _info(camp: Campaign, tickets: int, *, active: bool, categories: list[str]) -> CampaignInfo:
    starts = datetime(
        camp.starts_on.year, camp.starts_on.month, camp.starts_on.day, 8, tzinfo=SHANGHAI
    )
    ends = datetime(camp.ends_on.year, camp.ends_on.month, camp.ends_on.day, 20, tzinfo=SHANGHAI)
    deadline = camp.rectification_deadline
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return CampaignInfo(
        camp.id,
        camp.code,
        camp.number_prefix,
        starts.astimezone(UTC),
        ends.astimezone(UTC),
        deadline,
        active,
        tickets,
        categories,
    )


# --- one ticket's story ------------------------------------------------------------------------


@dataclass
class Rows:
    """One chunk of rows per table, as tuples in the column order of ``COLUMNS``."""

    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    transition_log: list[tuple[Any, ...]] = field(default_factory=list)
    timers: list[tuple[Any, ...]] = field(default_factory=list)
    ticket_themes: list[tuple[Any, ...]] = field(default_factory=list)
    feedback_records: list[tuple[Any, ...]] = field(default_factory=list)
    government_escalations: list[tuple[Any, ...]] = field(default_factory=list)


COLUMNS: dict[str, tuple[str, ...]] = {
    "tickets": (
        "id",
        "number",
        "campaign_id",
        "kind",
        "category",
        "text",
        "citizen_name",
        "citizen_contact",
        "area",
        "unit_id",
        "assignee_id",
        "state",
        "version",
        "workflow_name",
        "workflow_version",
        "escalation_level",
        "due_at",
        "due_rule",
        "received_at",
        "created_at",
        "updated_at",
        "rectified_at",
        "closed_at",
        "satisfied",
        "source",
        "secret_hash",
        "last_hash",
    ),
    "transition_log": (
        "id",
        "ticket_id",
        "seq",
        "trigger",
        "from_state",
        "to_state",
        "actor",
        "role",
        "at",
        "reason",
        "data",
        "workflow_version",
        "prev_hash",
        "hash",
        "head",
    ),
    "timers": ("id", "ticket_id", "kind", "level", "due_at", "created_at", "fired_at"),
    "ticket_themes": ("ticket_id", "tag", "campaign_id"),
    "feedback_records": ("id", "ticket_id", "method", "text", "given_on", "by_user_id", "at"),
    "government_escalations": (
        "id",
        "ticket_id",
        "receiving_body",
        "reference",
        "reason",
        "citizen_told",
        "by_user_id",
        "at",
    ),
}


@dataclass
class Ids:
    ticket: int
    log: int
    timer: int
    feedback: int
    escalation: int


class Generator:
    """Turns (campaign, index) into one ticket's rows, deterministically from the seed."""

    def __init__(
        self,
        counties: list[County],
        now: datetime,
        key: bytes | None,
        seed: int,
    ) -> None:
        self.counties = counties
        self.county_weights = [c.weight for c in counties]
        self.now = now
        self.key = key
        self.rng = random.Random(seed)
        self.workflow = default_registry().get(*WORKFLOW)
        self._clocks: dict[int, deadlines.CampaignClock] = {}
        # the calendars the engine's context reads (settings' ``calendar`` file)
        self.calendars = CalendarBook.from_file(
            project_path(load_settings().get("calendar", "config/calendar-cn.toml"))
        )
        self.kinds = [k for k, _ in KIND_WEIGHTS]
        self.kind_weights = [w for _, w in KIND_WEIGHTS]
        self.categories = list(CATEGORY_WEIGHTS)
        self.category_weights = list(CATEGORY_WEIGHTS.values())

    def clock(self, camp: CampaignInfo) -> deadlines.CampaignClock:
        """The campaign's clock as the engine builds it: timezone, calendar, cap."""
        if camp.id not in self._clocks:
            self._clocks[camp.id] = deadlines.CampaignClock(
                id=camp.id,
                code=camp.code,
                timezone=SHANGHAI,
                calendar=self.calendars.get("CN"),
                rectification_deadline=camp.deadline,
                ends_on=camp.ends.astimezone(SHANGHAI).date(),
                governing=camp.governing,
            )
        return self._clocks[camp.id]

    def ticket(self, camp: CampaignInfo, seq: int, received: datetime, ids: Ids, out: Rows) -> None:
        rng = self.rng
        now = self.now
        number = f"{camp.prefix}-{seq:04d}"
        ticket_id = ids.ticket
        ids.ticket += 1
        county = rng.choices(self.counties, self.county_weights)[0]
        category = rng.choices(self.categories, self.category_weights)[0]
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        area = rng.choice(county.areas)
        local = CATEGORY_UNIT[category]
        if category == "public_security_management" and rng.random() < 0.5:
            local = rng.choice(("north-station", "south-station"))
        unit = county.units[local]
        endings = ENDINGS_ACTIVE if camp.active else ENDINGS_OLD
        ending = rng.choices([e for e, _ in endings], [w for _, w in endings])[0]
        if kind == "praise" and ending == "closed":
            ending = "closed_praise"
        elif ending == "closed_praise" and kind != "praise":
            kind = "praise"
        body = rng.choice(TEXTS[category])[0]  # (Chinese, English): the bureau writes Chinese

        chain = Chain(self, number, ticket_id, ids, out, self.clock(camp))
        state = "received"
        data = {
            "text": body,
            "kind": kind,
            "area": area,
            "source": "bench",
            "received_at": audit.format_instant(received),
        }
        chain.add("create", None, state, county.clerk, "clerk", received, None, data, kind=kind)
        t = received
        unit_id: int | None = None
        assignee: tuple[int, str] | None = None
        rectified_at = closed_at = None
        satisfied = None

        def step(hours_lo: float, hours_hi: float) -> datetime | None:
            nonlocal t
            nxt = t + timedelta(hours=rng.uniform(hours_lo, hours_hi))
            if nxt > now:
                return None
            t = nxt
            return t

        path_done = False
        if ending != "stall_received" and step(1, 40):
            routed = county.units[local]
            data = {"category": category, "kind": kind, "routed_to": routed.code}
            chain.add(
                "categorize",
                state,
                "categorized",
                county.clerk,
                "clerk",
                t,
                None,
                data,
                category=category,
                kind=kind,
                unit_id=routed.id,
            )
            state, unit_id = "categorized", routed.id
            if ending == "closed_praise":
                if step(4, 72):
                    chain.add(
                        "feed_back",
                        state,
                        "fed_back",
                        county.clerk,
                        "clerk",
                        t,
                        None,
                        self._feedback(t, out, ids, ticket_id, None),
                    )
                    state, closed_at = "fed_back", t
                path_done = True
            elif ending in ("closed_escalated", "open_escalated"):
                if step(8, 96):
                    reason = "Outside public security duties; referred to the county government"
                    data = {"receiving_body": "County People's Government", "reason": reason}
                    chain.add(
                        "escalate_to_government",
                        state,
                        "escalated",
                        "supervisor",
                        "supervisor",
                        t,
                        reason,
                        data,
                    )
                    out.government_escalations.append(
                        (
                            ids.escalation,
                            ticket_id,
                            data["receiving_body"],
                            None,
                            reason,
                            rng.random() < 0.8,
                            None,
                            t,
                        )
                    )
                    ids.escalation += 1
                    state = "escalated"
                    if ending == "closed_escalated" and step(24, 200):
                        chain.add(
                            "feed_back",
                            state,
                            "fed_back",
                            "supervisor",
                            "supervisor",
                            t,
                            None,
                            self._feedback(t, out, ids, ticket_id, None),
                        )
                        state, closed_at = "fed_back", t
                path_done = True
        if (
            not path_done
            and state == "categorized"
            and ending != "stall_categorized"
            and step(2, 48)
        ):
            officer = rng.choice(unit.officers) if unit.officers else None
            if officer is not None:
                lead_id, lead_name, lead_role = unit.leader
                data = {"unit": unit.code, "officer": officer[1]}
                chain.add(
                    "assign",
                    state,
                    "assigned",
                    lead_name,
                    lead_role,
                    t,
                    None,
                    data,
                    unit_id=unit.id,
                    assignee_id=officer[0],
                )
                state, unit_id, assignee = "assigned", unit.id, officer
                if rng.random() < 0.05 and len(unit.officers) > 1 and step(4, 72):
                    other = rng.choice([o for o in unit.officers if o != officer])
                    reason = "Officer on leave; handed to a colleague"
                    data = {"unit": unit.code, "officer": other[1], "reason": reason}
                    chain.add(
                        "reassign",
                        state,
                        state,
                        lead_name,
                        lead_role,
                        t,
                        reason,
                        data,
                        assignee_id=other[0],
                    )
                    assignee = other
        if (
            state == "assigned"
            and ending != "stall_assigned"
            and assignee is not None
            and step(12, 220)
        ):
            data = {"measures": "Patrols increased and the matter was followed up on site."}
            chain.add("rectify", state, "rectified", assignee[1], "officer", t, None, data)
            state, rectified_at = "rectified", t
            if ending != "stall_rectified" and step(2, 90):
                chain.add(
                    "feed_back",
                    state,
                    "fed_back",
                    assignee[1],
                    "officer",
                    t,
                    None,
                    self._feedback(t, out, ids, ticket_id, assignee[0]),
                )
                state, closed_at = "fed_back", t
        if closed_at is not None:
            roll = rng.random()
            satisfied = True if roll < 0.86 else (False if roll < 0.92 else None)

        # Deadlines of the state the ticket stands in, as engine.deadlines sets them when it
        # entered that state (a self-loop keeps the clock, and so does an entry that would
        # start the same clock: the timers are then dated when it started): due time and
        # rule, the armed timers; those due before "now" fired, each logged as
        # engine.timers logs it.
        due_at = due_rule = None
        level = 0
        spec = self.workflow.states[state]
        clock = self.clock(camp)
        due = deadlines.state_due(spec, clock, chain.entered_at) if not spec.final else None
        if due is not None:
            due_at, due_rule = due.at, due.rule
            due_local = clock.local(due.at).strftime("%Y-%m-%d %H:%M")
            for kind_, lv, when in deadlines.timers_by(
                due.at, self.workflow.ladder, clock, chain.clock_since, now
            ):
                timer_id = ids.timer
                ids.timer += 1
                fired = when <= now
                out.timers.append(
                    (
                        timer_id,
                        ticket_id,
                        kind_,
                        lv,
                        when,
                        chain.clock_since,
                        when if fired else None,
                    )
                )
                if not fired:
                    continue
                if kind_ == deadlines.WARNING:
                    event, data = "deadline_warning", {"timer": timer_id, "due_at": due_local}
                else:
                    event = "overdue" if kind_ == deadlines.BREACH else "escalated"
                    data = {"timer": timer_id, "level": lv, "due_at": due_local}
                    level = max(level, lv)
                chain.add(
                    event,
                    state,
                    state,
                    "system",
                    "system",
                    when,
                    None,
                    data,
                    escalation_level=level,
                )
        if rng.random() < 0.3:
            out.ticket_themes.append((ticket_id, rng.choice(THEMES), camp.id))
        out.tickets.append(
            (
                ticket_id,
                number,
                camp.id,
                kind,
                category if state != "received" else None,
                body,
                f"Resident {seq}",
                None,
                area,
                unit_id,
                assignee[0] if assignee else None,
                state,
                chain.seq,
                WORKFLOW[0],
                WORKFLOW[1],
                level,
                due_at,
                due_rule,
                received,
                received,
                chain.last_at,
                rectified_at,
                closed_at,
                satisfied,
                "bench",
                hashlib.sha256(number.encode()).hexdigest(),
                chain.prev,
            )
        )

    def _feedback(
        self, t: datetime, out: Rows, ids: Ids, ticket_id: int, by: int | None
    ) -> dict[str, Any]:
        method = self.rng.choice(FEEDBACK_METHODS)
        body = "Thank you; the measures taken were explained to you in person."
        given = t.astimezone(SHANGHAI).date()
        out.feedback_records.append((ids.feedback, ticket_id, method, body, given, by, t))
        ids.feedback += 1
        return {"method": method, "text": body, "date": given.isoformat()}


class Chain:
    """One ticket's hash chain, appended row by row exactly as engine.tickets writes it."""

    def __init__(
        self,
        gen: Generator,
        number: str,
        ticket_id: int,
        ids: Ids,
        out: Rows,
        clock: deadlines.CampaignClock,
    ) -> None:
        self.gen, self.number, self.ticket_id, self.ids, self.out = gen, number, ticket_id, ids, out
        self.clock = clock
        self.prev = audit.genesis_hash(number, gen.key)
        self.seq = 0
        self.last_at: datetime | None = None
        # The ticket columns each row leaves behind (audit.HEAD_COLUMNS), as the engine logs them.
        self.head: dict[str, Any] = {
            "unit_id": None,
            "assignee_id": None,
            "escalation_level": 0,
            "category": None,
            "kind": None,
        }
        self.entered_at: datetime = datetime.min.replace(tzinfo=UTC)  # when the state began
        # The running clock's due time and when it started: a state entry that would start
        # the same clock keeps it, timers and all (engine.deadlines.keeps_clock).
        self.due_at: datetime | None = None
        self.clock_since: datetime = self.entered_at

    def _enter(self, from_state: str | None, to_state: str, at: datetime) -> None:
        """The clock of ``to_state`` entered at ``at``, as ``engine.deadlines.on_transition``
        starts it (or keeps the running one). Earlier states' ladders never fire here, so the
        level at an entry is 0."""
        workflow = self.gen.workflow
        spec = workflow.states[to_state]
        due = None if spec.final else deadlines.state_due(spec, self.clock, at)
        due_at = due.at if due is not None else None
        times = (
            [] if due_at is None else deadlines.armed_times(due_at, workflow.ladder, self.clock, at)
        )
        kept = from_state is not None and deadlines.keeps_clock(
            workflow.ladder, times, due_at, self.due_at, 0, at
        )
        if not kept:
            self.clock_since = at
        self.due_at, self.entered_at = due_at, at

    def add(
        self,
        trigger: str,
        from_state: str | None,
        to_state: str,
        actor: str,
        role: str,
        at: datetime,
        reason: str | None,
        data: dict[str, Any],
        **sets: Any,
    ) -> None:
        """Append one row; ``sets`` are the head columns it changes (``unit_id=...``)."""
        workflow = self.gen.workflow
        if trigger == "create":
            expected: str | None = workflow.initial
        elif trigger in workflow.trigger_names():
            spec = workflow.transition_for(trigger, from_state or "")
            expected = workflow.next_state(from_state or "", trigger) if spec else None
        else:  # a timer's event: the state stays
            expected = from_state
        if to_state != expected:
            raise RuntimeError(
                f"generator path {from_state} --{trigger}--> {to_state} is not the "
                f"{workflow.name} workflow's (it goes to {expected})"
            )
        if from_state != to_state:
            self._enter(from_state, to_state, at)
        self.seq += 1
        self.head.update(sets)
        head = audit.head_json(self.head)
        data_json = audit.canonical_json(data)
        new_hash = audit.row_hash(
            prev_hash=self.prev,
            ticket_number=self.number,
            seq=self.seq,
            trigger=trigger,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            role=role,
            at=at,
            reason=reason,
            data=data_json,
            workflow_version=WORKFLOW[1],
            head=head,
            key=self.gen.key,
        )
        self.out.transition_log.append(
            (
                self.ids.log,
                self.ticket_id,
                self.seq,
                trigger,
                from_state,
                to_state,
                actor,
                role,
                at,
                reason,
                data_json,
                WORKFLOW[1],
                self.prev,
                new_hash,
                head,
            )
        )
        self.ids.log += 1
        self.prev = new_hash
        self.last_at = at


def received_times(camp: CampaignInfo, now: datetime, rng: random.Random) -> Iterator[datetime]:
    """``camp.tickets`` receipt times in order, denser in the first visit week as in the report."""
    end = min(camp.ends, now) if camp.active else camp.ends
    span = (end - camp.starts).total_seconds()
    n = camp.tickets
    for i in range(n):
        # u**1.6 front-loads the receipts: most opinions come in during the visits.
        u = (i + rng.random()) / n
        yield camp.starts + timedelta(seconds=span * u**1.6)


# --- writing -----------------------------------------------------------------------------------


class Writer:
    """Bulk writes for one dialect: sqlite3 ``executemany`` or psycopg ``COPY``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection
        if self.dialect == "sqlite":
            self.conn.execute("PRAGMA synchronous=OFF")
            self.conn.execute("PRAGMA cache_size=-400000")
            self.conn.execute("PRAGMA temp_store=MEMORY")
        else:
            self.conn.execute("SET synchronous_commit = off")
            # Foreign keys are consistent by construction; checking them row by row
            # (they are triggers in PostgreSQL) would double the load time.
            self.conn.execute("SET session_replication_role = replica")
            self.conn.execute("SET maintenance_work_mem = '512MB'")

    def write(self, rows: Rows) -> None:
        if self.dialect == "sqlite":
            # The engine's connections run in autocommit (BEGIN is issued by SQLAlchemy).
            self.conn.execute("BEGIN")
        for table, columns in COLUMNS.items():
            batch = getattr(rows, table)
            if batch:
                self._write(table, columns, batch)
        self.conn.commit()

    def _write(self, table: str, columns: tuple[str, ...], batch: list[tuple[Any, ...]]) -> None:
        if self.dialect == "sqlite":
            convert = SQLITE_CONVERTERS[table]
            if convert:
                batch = [_convert(row, convert) for row in batch]
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch
            )
        else:
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in batch:
                    copy.write_row(row)

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)
        self.conn.commit()

    def finish(self) -> None:
        """Refresh the planner statistics; on SQLite also fold the WAL back into the file."""
        if self.dialect == "sqlite":
            self.execute("ANALYZE")
        else:
            # VACUUM also sets the visibility map after the bulk load, as autovacuum would
            # in time: without it no index-only scan can skip the table.
            self.conn.autocommit = True
            self.conn.execute("VACUUM (ANALYZE)")
            self.conn.autocommit = False
        if self.dialect == "sqlite":
            self.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.raw.close()


def _sqlite_instant(value: datetime | None) -> str | None:
    # The storage format of SQLAlchemy's SQLite DateTime (UTCDateTime stores naive UTC);
    # always with microseconds, so stored and bound values compare as text.
    if value is None:
        return None
    s = value.replace(tzinfo=None).isoformat(" ")
    return s if len(s) > 19 else s + ".000000"


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


DATE_COLUMNS = {"given_on"}
SQLITE_CONVERTERS: dict[str, list[tuple[int, Any]]] = {
    table: [
        (i, _sqlite_date if c in DATE_COLUMNS else _sqlite_instant)
        for i, c in enumerate(cols)
        if c in DATE_COLUMNS or c.endswith("_at") or c == "at"
    ]
    for table, cols in COLUMNS.items()
}


def _convert(row: tuple[Any, ...], convert: list[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for i, fn in convert:
        values[i] = fn(values[i])
    return tuple(values)


BULK_TABLES = tuple(COLUMNS)


def secondary_indexes(engine: Engine) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the non-unique indexes on the bulk-loaded tables."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                    "AND tbl_name IN ({}) AND sql NOT LIKE 'CREATE UNIQUE%'".format(
                        ", ".join(f"'{t}'" for t in BULK_TABLES)
                    )
                )
            )
        else:
            rows = conn.execute(
                text(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                    "WHERE i.schemaname = current_schema() AND i.tablename = ANY(:tables) "
                    "AND i.indexdef NOT LIKE 'CREATE UNIQUE%'"
                ),
                {"tables": list(BULK_TABLES)},
            )
        return [(r[0], r[1]) for r in rows]


# --- the command -------------------------------------------------------------------------------


def prepare_database(url: str, fresh: bool) -> Engine:
    """Create (or with ``fresh`` recreate) the database at ``url`` and migrate it to head."""
    url = db.normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        name = parsed.database
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists and fresh:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    engine = db.make_engine(url, sqlite_synchronous="OFF")
    db.upgrade(engine)
    return engine


def generate(
    engine: Engine,
    *,
    tickets: int,
    campaigns: int = 6,
    counties: int = 20,
    active_share: float = 0.4,
    seed: int = 7,
    now: datetime = BENCH_NOW,
    key: bytes | None = None,
    rebuild_indexes: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fill an empty migrated database; return counts and timings."""
    started = time.perf_counter()
    rng = random.Random(seed)
    with Session(engine) as session:
        if session.scalar(select(Campaign.id).where(Campaign.code == ACTIVE_CAMPAIGN)):
            raise SystemExit(
                f"{engine.url.render_as_string(hide_password=True)} already holds "
                f"{ACTIVE_CAMPAIGN}; use --fresh to rebuild it"
            )
        county_list = build_organisation(session, counties, rng)
        infos = build_campaigns(session, campaigns, tickets, active_share)
        session.commit()
    indexes = secondary_indexes(engine) if rebuild_indexes else []
    writer = Writer(engine)
    for name, _ in indexes:
        writer.execute(f"DROP INDEX {name}")
    gen = Generator(county_list, now, key, seed)
    ids = Ids(ticket=1, log=1, timer=1, feedback=1, escalation=1)
    made = 0
    counts = dict.fromkeys(COLUMNS, 0)
    rows = Rows()
    for camp in infos:
        seq = 0
        for received in received_times(camp, now, rng):
            seq += 1
            gen.ticket(camp, seq, received, ids, rows)
            made += 1
            if len(rows.tickets) >= CHUNK:
                for table in COLUMNS:
                    counts[table] += len(getattr(rows, table))
                writer.write(rows)
                rows = Rows()
                if progress and made % 100_000 == 0:
                    elapsed = time.perf_counter() - started
                    print(f"  {made:>9,} tickets  {elapsed:6.1f} s", file=sys.stderr, flush=True)
        writer.execute(f"UPDATE campaigns SET ticket_seq = {seq} WHERE id = {camp.id}")
    for table in COLUMNS:
        counts[table] += len(getattr(rows, table))
    writer.write(rows)
    loaded = time.perf_counter() - started
    for _, create in indexes:
        writer.execute(create)
    if engine.dialect.name == "postgresql":
        for table, id_col in (
            ("tickets", "id"),
            ("transition_log", "id"),
            ("timers", "id"),
            ("feedback_records", "id"),
            ("government_escalations", "id"),
        ):
            writer.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{id_col}'), "
                f"COALESCE((SELECT max({id_col}) FROM {table}), 1))"
            )
    indexed = time.perf_counter() - started
    writer.finish()
    writer.close()
    total = time.perf_counter() - started
    return {
        "rows": counts,
        "campaigns": [(c.code, c.tickets) for c in infos],
        "seconds_load": round(loaded, 1),
        "seconds_indexes": round(indexed - loaded, 1),
        "seconds_total": round(total, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", required=True, help="sqlite:///path.db or postgresql://...")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=6, help="yearly campaigns, last active")
    parser.add_argument("--counties", type=int, default=20, help="generated counties")
    parser.add_argument("--active-share", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    engine = prepare_database(args.url, args.fresh)
    key = audit_key(load_settings())
    result = generate(
        engine,
        tickets=args.tickets,
        campaigns=args.campaigns,
        counties=args.counties,
        active_share=args.active_share,
        seed=args.seed,
        key=key,
    )
    print(f"database: {engine.url.render_as_string(hide_password=True)} ({engine.dialect.name})")
    for table, n in result["rows"].items():
        print(f"  {table:<24}{n:>12,}")
    print(f"  campaigns: {', '.join(f'{c} ({n:,})' for c, n in result['campaigns'])}")
    print(
        f"load {result['seconds_load']} s, indexes {result['seconds_indexes']} s, "
        f"total with ANALYZE {result['seconds_total']} s; now = {BENCH_NOW.isoformat()}"
    )
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
