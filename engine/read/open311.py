"""Reads for Open311: the programmes it serves, their services, and service requests. The rows
carry what staff may see; ``web.open311.routes`` decides what the caller gets (the public
never the citizen's name, contact, words, address or the feedback text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import Campaign, Category, FeedbackRecord, Ticket, Unit
from engine.titles import pick

OPINION = "opinion"
MAX_RESULTS = 1000
SEPARATOR = "."


@dataclass(frozen=True)
class Programme:
    """An intake programme as Open311 serves it: a campaign or a continuous service."""

    id: int
    code: str
    titles: dict[str, str]
    workflow_name: str
    workflow_version: int
    timezone: str
    starts_on: date
    ends_on: date | None  # None: a continuous service
    intake_closed_at: datetime | None

    def title(self, locale: str) -> str:
        return pick(self.titles, locale, self.code)

    def closed_because(self, now: datetime) -> str | None:
        """Why the programme takes no request at ``now`` (its own local date), or None."""
        if self.intake_closed_at is not None and self.intake_closed_at <= now:
            return f"its intake was closed on {self.intake_closed_at:%Y-%m-%d}"
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        if today < self.starts_on:
            return f"it opens on {self.starts_on.isoformat()}"
        if self.ends_on is not None and today > self.ends_on:
            return f"it ended on {self.ends_on.isoformat()}"
        return None


@dataclass(frozen=True)
class Service:
    """One Open311 service: a programme's category, or (``category`` None) a request the
    programme's staff categorize."""

    code: str
    programme: Programme
    category: str | None
    titles: dict[str, str]
    outside_duties: bool = False

    def name(self, locale: str, general: str) -> str:
        """Its name in ``locale``; ``general`` (the caller's translation) for the general one."""
        return pick(self.titles, locale, self.category or general)


@dataclass(frozen=True)
class Catalogue:
    """What Open311 serves at ``now``: ``listed`` are the services of the programmes open for
    intake; ``every`` holds the services of every programme (a closed one's are named in a
    refusal, and its requests can still be read). ``qualified``: codes are
    ``<programme>.<category>`` (every open programme); otherwise the one configured
    programme's plain category codes (the ``open311_campaign`` setting)."""

    listed: list[Service]
    every: dict[str, Service]
    qualified: bool
    now: datetime

    def code_of(self, campaign_code: str, category: str | None) -> str:
        plain = category or OPINION
        return f"{campaign_code}{SEPARATOR}{plain}" if self.qualified else plain

    def resolve(self, code: str) -> Service:
        """The open service ``code`` names (a plain category code too, when exactly one open
        programme has it); ``NotFound`` saying why not (unknown, closed, ambiguous)."""
        listed = {s.code: s for s in self.listed}
        if code in listed:
            return listed[code]
        known = self.every.get(code)
        if known is not None:
            why = known.programme.closed_because(self.now) or "it is not served here"
            raise NotFound(
                f"service {code!r} belongs to {known.programme.code}, which takes no requests: "
                f"{why}; the open services are listed in services.json",
                message_id="open311.programme_closed",
            )
        if self.qualified and SEPARATOR not in code:
            matches = [s for s in self.listed if (s.category or OPINION) == code]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise NotFound(
                    f"service {code!r} is offered by several programmes; use one of "
                    + ", ".join(s.code for s in matches)
                )
        raise NotFound(
            f"no service {code!r}; the services are "
            + (", ".join(sorted(listed)) or "none: no programme is open for requests")
        )

    def filter_of(self, code: str) -> list[tuple[int, str | None]]:
        """(programme id, category) pairs a ``service_code`` filter on requests means: every
        programme's code, open or closed; a plain code in every programme that has it."""
        known = self.every.get(code)
        if known is not None:
            return [(known.programme.id, known.category)]
        if self.qualified and SEPARATOR not in code:
            return [
                (s.programme.id, s.category)
                for s in self.every.values()
                if (s.category or OPINION) == code
            ]
        return []


def _programme(c: Campaign) -> Programme:
    return Programme(
        id=c.id,
        code=c.code,
        titles={"en": c.name, **({"zh_CN": c.name_zh} if c.name_zh else {})},
        workflow_name=c.workflow_name,
        workflow_version=c.workflow_version,
        timezone=c.timezone,
        starts_on=c.starts_on,
        ends_on=None if c.continuous else c.ends_on,
        intake_closed_at=c.intake_closed_at,
    )


def catalogue(session: Session, settings: Mapping[str, Any], now: datetime) -> Catalogue:
    """The services Open311 offers at ``now``: the categories of every programme open for
    intake, coded ``<programme>.<category>`` (and ``<programme>.opinion`` for a request its
    staff categorize); with the setting ``open311_campaign``, that programme alone with its
    plain codes, as before programmes (a client written for one campaign keeps working)."""
    code = str(settings.get("open311_campaign") or "").strip()
    query = select(Campaign)
    if code:
        campaigns = list(session.scalars(query.where(Campaign.code == code)))
        if not campaigns:
            raise NotFound(f"the configured open311_campaign {code!r} does not exist")
    else:
        campaigns = list(session.scalars(query.order_by(Campaign.starts_on.desc(), Campaign.id)))
    programmes = {c.id: _programme(c) for c in campaigns}
    categories: dict[int, list[Category]] = {pid: [] for pid in programmes}
    for category in session.scalars(
        select(Category)
        .where(Category.campaign_id.in_(programmes))
        .order_by(Category.campaign_id, Category.position, Category.id)
    ):
        categories[category.campaign_id].append(category)
    cat = Catalogue(listed=[], every={}, qualified=not code, now=now)
    for pid, programme in programmes.items():
        services = [
            Service(
                code=cat.code_of(programme.code, None),
                programme=programme,
                category=None,
                titles={},
            )
        ] + [
            Service(
                code=cat.code_of(programme.code, c.code),
                programme=programme,
                category=c.code,
                titles={"en": c.name, **({"zh_CN": c.name_zh} if c.name_zh else {})},
                outside_duties=c.outside_duties,
            )
            for c in categories[pid]
        ]
        for service in services:
            cat.every[service.code] = service
        if programme.closed_because(now) is None:
            cat.listed.extend(services)
    return cat


def services(cat: Catalogue, locale: str, general: str) -> list[dict[str, Any]]:
    """GeoReport v2's service list: ``group`` is the programme's title in ``locale``;
    ``general`` names each programme's general service (translated by the caller)."""
    out = []
    for s in cat.listed:
        group = s.programme.title(locale)
        name = s.name(locale, general)
        if s.category is None:
            description = f"{name}: {group}"
        else:
            description = f"{name} ({group})" + (
                " — outside the body's duties; it is passed on" if s.outside_duties else ""
            )
        out.append(
            {
                "service_code": s.code,
                "service_name": name,
                "description": description,
                "metadata": True,
                "type": "realtime",
                "keywords": (s.category or OPINION).replace("_", " "),
                "group": group,
            }
        )
    return out


def _latest_feedback() -> Any:
    return (
        select(FeedbackRecord.text)
        .where(FeedbackRecord.ticket_id == Ticket.id)
        .order_by(FeedbackRecord.at.desc(), FeedbackRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _select() -> Any:
    return (
        select(
            Ticket.number,
            Ticket.campaign_id,
            Campaign.code.label("campaign_code"),
            Ticket.category,
            Ticket.text,
            Ticket.address,
            Ticket.lat,
            Ticket.long,
            Ticket.due_at,
            Ticket.received_at,
            Ticket.updated_at,
            Ticket.closed_at,
            Ticket.state,
            Ticket.workflow_name,
            Ticket.workflow_version,
            Ticket.unit_id,
            Ticket.assignee_id,
            Unit.name.label("unit_name"),
            _latest_feedback().label("feedback_text"),
        )
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
    )


def find_requests(
    session: Session,
    cat: Catalogue,
    *,
    numbers: list[str] | None = None,
    service_codes: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: list[str] | None = None,
) -> list[Any]:
    """Requests of the catalogue's programmes, newest first, at most ``MAX_RESULTS``.
    ``numbers``, when given, overrides the other filters (as the spec says of
    ``service_request_id``)."""
    programme_ids = sorted({s.programme.id for s in cat.every.values()})
    query = _select().where(Ticket.campaign_id.in_(programme_ids))
    if numbers:
        query = query.where(Ticket.number.in_(numbers))
    else:
        if service_codes:
            pairs = [pair for code in service_codes for pair in cat.filter_of(code)]
            query = query.where(
                or_(
                    false(),
                    *(
                        and_(
                            Ticket.campaign_id == pid,
                            Ticket.category.is_(None)
                            if category is None
                            else Ticket.category == category,
                        )
                        for pid, category in pairs
                    ),
                )
            )
        if start is not None:
            query = query.where(Ticket.received_at >= start)
        if end is not None:
            query = query.where(Ticket.received_at <= end)
        if statuses and set(statuses) != {"open", "closed"}:
            query = query.where(
                Ticket.closed_at.is_(None)
                if statuses[0] == "open"
                else Ticket.closed_at.isnot(None)
            )
    return list(
        session.execute(
            query.order_by(Ticket.received_at.desc(), Ticket.id.desc()).limit(MAX_RESULTS)
        ).all()
    )


def find_request(session: Session, number: str) -> Any:
    row = session.execute(_select().where(Ticket.number == number)).first()
    if row is None:
        raise NotFound(f"no service request {number!r}")
    return row
