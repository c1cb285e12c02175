"""Reads for Open311: the campaign it serves, its services, and service requests. The rows
carry what staff may see; ``web.open311.routes`` decides what the caller gets (the public
never the citizen's name, contact, words, address or the feedback text)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import Campaign, Category, FeedbackRecord, Ticket, Unit

OPINION = "opinion"
MAX_RESULTS = 1000


def served_campaign(session: Session, settings: Mapping[str, Any]) -> Campaign:
    """The campaign Open311 serves: ``open311_campaign`` if set, else the most recent one."""
    code = str(settings.get("open311_campaign") or "").strip()
    query = select(Campaign)
    if code:
        campaign = session.scalars(query.where(Campaign.code == code)).first()
        if campaign is None:
            raise NotFound(f"the configured open311_campaign {code!r} does not exist")
        return campaign
    campaign = session.scalars(
        query.order_by(Campaign.starts_on.desc(), Campaign.id.desc()).limit(1)
    ).first()
    if campaign is None:
        raise NotFound("no campaign is open for requests yet")
    return campaign


def services(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    out = [
        {
            "service_code": OPINION,
            "service_name": "Opinion, criticism or suggestion",
            "description": (
                f"Anything you want to tell the organisers of {campaign.name}: praise, "
                "criticism, a suggestion or a problem to solve. Staff sort it into a category."
            ),
            "metadata": True,
            "type": "realtime",
            "keywords": "opinion, criticism, suggestion, praise",
            "group": campaign.name,
        }
    ]
    for category in session.scalars(
        select(Category).where(Category.campaign_id == campaign.id).order_by(Category.position)
    ):
        out.append(
            {
                "service_code": category.code,
                "service_name": category.name,
                "description": f"{category.name} ({campaign.name})"
                + (
                    " — outside the body's duties; it is passed on"
                    if category.outside_duties
                    else ""
                ),
                "metadata": True,
                "type": "realtime",
                "keywords": category.code.replace("_", " "),
                "group": campaign.name,
            }
        )
    return out


def category_names(session: Session, campaign_id: int) -> dict[str, str]:
    return dict(
        session.execute(
            select(Category.code, Category.name).where(Category.campaign_id == campaign_id)
        ).all()
    )


def _latest_feedback() -> Any:
    return (
        select(FeedbackRecord.text)
        .where(FeedbackRecord.ticket_id == Ticket.id)
        .order_by(FeedbackRecord.at.desc(), FeedbackRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _select() -> Any:
    return select(
        Ticket.number,
        Ticket.campaign_id,
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
    ).outerjoin(Unit, Unit.id == Ticket.unit_id)


def find_requests(
    session: Session,
    *,
    campaign_id: int,
    numbers: list[str] | None = None,
    service_codes: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: list[str] | None = None,
) -> list[Any]:
    """Requests of the campaign, newest first, at most ``MAX_RESULTS``. ``numbers``, when
    given, overrides the other filters (as the spec says of ``service_request_id``)."""
    query = _select().where(Ticket.campaign_id == campaign_id)
    if numbers:
        query = query.where(Ticket.number.in_(numbers))
    else:
        if service_codes:
            named = [c for c in service_codes if c != OPINION]
            conditions = [Ticket.category.in_(named)] if named else []
            if OPINION in service_codes:
                conditions.append(Ticket.category.is_(None))
            query = query.where(or_(*conditions))
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
