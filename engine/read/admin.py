"""What the administration pages and commands show: users, the unit tree, campaigns, routing
rules, API tokens, workflow versions and the admin log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from engine.models import AdminLog, ApiToken, Campaign, RoutingRule, Ticket, Unit, User


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    unit: str | None
    email: str | None
    active: bool
    must_change_password: bool


def users(session: Session) -> list[UserRow]:
    """Every user, active ones first, by username."""
    rows = session.execute(
        select(
            User.username,
            User.display_name,
            User.role,
            Unit.code,
            User.email,
            User.active,
            User.must_change_password,
        )
        .outerjoin(Unit, Unit.id == User.unit_id)
        .order_by(User.active.desc(), User.username)
    ).all()
    return [UserRow(*r) for r in rows]


def user(session: Session, username: str) -> UserRow | None:
    return next((u for u in users(session) if u.username == username), None)


@dataclass(frozen=True)
class UnitNode:
    code: str
    name: str
    kind: str
    parent: str | None
    depth: int
    users: int


def unit_tree(session: Session) -> list[UnitNode]:
    """Every unit in tree order (a parent before its children, siblings by code), with depth
    and the number of active users in it."""
    parent = aliased(Unit)
    staff = dict(
        session.execute(
            select(User.unit_id, func.count())
            .where(User.active.is_(True), User.unit_id.is_not(None))
            .group_by(User.unit_id)
        ).all()
    )
    rows = session.execute(
        select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.parent_id, parent.code)
        .outerjoin(parent, parent.id == Unit.parent_id)
        .order_by(Unit.code)
    ).all()
    children: dict[int | None, list[object]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    out: list[UnitNode] = []
    seen: set[int] = set()

    def walk(parent_id: int | None, depth: int) -> None:
        for row in children.get(parent_id, []):
            if row.id in seen:  # type: ignore[attr-defined]
                continue
            seen.add(row.id)  # type: ignore[attr-defined]
            out.append(
                UnitNode(row.code, row.name, row.kind, row[5], depth, staff.get(row.id, 0))  # type: ignore[attr-defined,index]
            )
            walk(row.id, depth + 1)  # type: ignore[attr-defined]

    walk(None, 0)
    return out


@dataclass(frozen=True)
class CampaignRow:
    code: str
    name: str
    timezone: str
    starts_on: date
    ends_on: date
    rectification_deadline: datetime
    number_prefix: str
    workflow: str
    calendar: str
    intake_closed_at: datetime | None
    tickets: int


def campaigns(session: Session) -> list[CampaignRow]:
    """Every campaign, newest start first, with its ticket count."""
    counts = dict(
        session.execute(select(Ticket.campaign_id, func.count()).group_by(Ticket.campaign_id)).all()
    )
    return [
        CampaignRow(
            c.code,
            c.name,
            c.timezone,
            c.starts_on,
            c.ends_on,
            c.rectification_deadline,
            c.number_prefix,
            f"{c.workflow_name} v{c.workflow_version}",
            c.calendar,
            c.intake_closed_at,
            counts.get(c.id, 0),
        )
        for c in session.scalars(
            select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.id.desc())
        )
    ]


def campaign(session: Session, code: str) -> Campaign | None:
    return session.scalars(select(Campaign).where(Campaign.code == code)).first()


@dataclass(frozen=True)
class RuleRow:
    id: int
    campaign: str | None
    category: str | None
    area: str | None
    unit: str


def routing_rules(session: Session) -> list[RuleRow]:
    rows = session.execute(
        select(RoutingRule.id, Campaign.code, RoutingRule.category, RoutingRule.area, Unit.code)
        .join(Unit, Unit.id == RoutingRule.unit_id)
        .outerjoin(Campaign, Campaign.id == RoutingRule.campaign_id)
        .order_by(Campaign.code.is_not(None), RoutingRule.category, RoutingRule.area)
    ).all()
    return [RuleRow(*r) for r in rows]


def workflow_use(session: Session) -> dict[tuple[str, int], list[str]]:
    """Which campaigns run on each workflow version."""
    used: dict[tuple[str, int], list[str]] = {}
    for name, version, code in session.execute(
        select(Campaign.workflow_name, Campaign.workflow_version, Campaign.code).order_by(
            Campaign.code
        )
    ):
        used.setdefault((name, version), []).append(code)
    return used


def active_token_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))
        )
        or 0
    )


@dataclass(frozen=True)
class AdminEntry:
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    data: str


def admin_log(session: Session, *, limit: int = 200) -> list[AdminEntry]:
    """The newest admin log rows first."""
    rows = session.execute(
        select(
            AdminLog.seq,
            AdminLog.at,
            AdminLog.actor,
            AdminLog.role,
            AdminLog.action,
            AdminLog.target,
            AdminLog.data,
        )
        .order_by(AdminLog.seq.desc())
        .limit(limit)
    ).all()
    return [AdminEntry(*r) for r in rows]


def admin_log_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AdminLog)) or 0)
