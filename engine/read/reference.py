"""Campaigns, units, the signed-in user, and the command line's ticket list and ticket page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, case, select, text
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import Campaign, Category, Ticket, TransitionLog, Unit, User
from engine.read.pages import LogEntry, log_entry


@dataclass(frozen=True)
class CampaignClock:
    code: str
    timezone: str
    starts_on: date
    ends_on: date | None  # None: a continuous programme


def campaign_codes(session: Session, *, newest_first: bool = False) -> list[str]:
    """Every campaign's code, by code (or newest start first)."""
    order = (Campaign.starts_on.desc(), Campaign.id.desc()) if newest_first else (Campaign.code,)
    return list(session.scalars(select(Campaign.code).order_by(*order)))


def campaigns(session: Session) -> list[Campaign]:
    """Every campaign with its categories, newest first."""
    return list(
        session.scalars(select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.id.desc()))
    )


def campaign_clocks(session: Session) -> list[CampaignClock]:
    """Each campaign's code, timezone and dates (what the scheduler plans its daily jobs by)."""
    rows = session.execute(
        select(
            Campaign.code,
            Campaign.timezone,
            Campaign.starts_on,
            case((Campaign.continuous, None), else_=Campaign.ends_on),
        ).order_by(Campaign.code)
    )
    return [CampaignClock(*row) for row in rows]


def campaign_clock(session: Session, code: str) -> CampaignClock:
    for found in campaign_clocks(session):
        if found.code == code:
            return found
    raise NotFound(f"no campaign {code!r}")


def unit_id(session: Session, code: str) -> int | None:
    return session.scalar(select(Unit.id).where(Unit.code == code))


@dataclass(frozen=True)
class SignedInUser:
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int | None
    active: bool
    unit_code: str | None
    unit_name: str | None
    # The language the user chose (zh_CN, en); None: the browser's.
    locale: str | None = None


_SIGNED_IN = (
    select(
        User.id,
        User.username,
        User.display_name,
        User.role,
        User.unit_id,
        User.active,
        Unit.code,
        Unit.name,
        User.locale,
    )
    .outerjoin(Unit, Unit.id == User.unit_id)
    .where(User.id == bindparam("uid"))
)


@dataclass(frozen=True)
class DisplayNames:
    """Every unit's, category's and campaign's name in both languages, by code."""

    units: dict[str, dict[str, str]]
    categories: dict[str, dict[str, str]]
    campaigns: dict[str, dict[str, str]]


def display_names(session: Session) -> DisplayNames:
    """What pages show instead of codes: ``{code: {"en": name, "zh_CN": name}}`` per kind (a
    row loaded before the Chinese names existed shows its English name in both)."""

    def table(model: type[Unit] | type[Category] | type[Campaign]) -> dict[str, dict[str, str]]:
        return {
            code: {"en": name, "zh_CN": name_zh or name}
            for code, name, name_zh in session.execute(
                select(model.code, model.name, model.name_zh)
            )
        }

    return DisplayNames(table(Unit), table(Category), table(Campaign))


def signed_in_user(session: Session, uid: int) -> SignedInUser | None:
    """The user a session cookie names, with their unit (one indexed query per request)."""
    row = session.execute(_SIGNED_IN, {"uid": uid}).first()
    return SignedInUser(*row) if row is not None else None


@dataclass(frozen=True)
class TicketLine:
    number: str
    state: str
    version: int
    category: str | None
    unit_code: str | None
    due_at: datetime | None
    timezone: str = "UTC"  # the campaign's: times are shown in it


def ticket_lines(
    session: Session,
    *,
    campaign: str | None = None,
    state: str | None = None,
    unit: str | None = None,
    limit: int = 50,
) -> list[TicketLine]:
    """The command line's ticket list, oldest first."""
    query = (
        select(
            Ticket.number,
            Ticket.state,
            Ticket.version,
            Ticket.category,
            Unit.code,
            Ticket.due_at,
            Campaign.timezone,
        )
        .join(Campaign, Campaign.id == Ticket.campaign_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id)
        .order_by(Ticket.id)
        .limit(max(1, min(limit, 10_000)))
    )
    if campaign:
        query = query.where(Campaign.code == campaign)
    if state:
        query = query.where(Ticket.state == state)
    if unit:
        query = query.where(Unit.code == unit)
    return [TicketLine(*row) for row in session.execute(query)]


def ticket_model(session: Session, number: str) -> Ticket:
    """The ticket with its unit and assignee loaded (the command line's ticket page)."""
    found = session.scalars(select(Ticket).where(Ticket.number == number)).first()
    if found is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    return found


def ticket_history(session: Session, ticket_id: int, number: str) -> list[LogEntry]:
    rows = session.execute(
        select(TransitionLog)
        .where(TransitionLog.ticket_id == ticket_id)
        .order_by(TransitionLog.seq)
    ).scalars()
    return [log_entry(r, number) for r in rows]


def ping(session: Session) -> None:
    """Raise unless the database answers (the readiness check)."""
    session.execute(text("SELECT 1"))


def campaign_workflow(session: Session, code: str) -> tuple[str, int] | None:
    """The workflow name and version programme ``code`` runs (None: no such programme)."""
    row = session.execute(
        select(Campaign.workflow_name, Campaign.workflow_version).where(Campaign.code == code)
    ).first()
    return (row[0], row[1]) if row else None
