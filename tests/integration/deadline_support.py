"""Helpers for the deadline tests: tickets brought to a state at a given local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import timers
from engine.context import EngineContext
from engine.models import Ticket, Timer, TransitionLog
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow

CAMPAIGN = "consultation-2005"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=SHANGHAI).astimezone(UTC)


def categorized_ticket(uow, at: datetime) -> Any:  # type: ignore[no-untyped-def]
    """A ticket created and categorized (routed to the traffic brigade) at ``at``; its receipt."""
    uow = as_uow(uow)
    clerk = get_actor(uow.session, "clerk")
    created = create_ticket(
        uow, campaign=CAMPAIGN, text="Traffic lights broken", actor=clerk, now=at
    )
    fire(
        uow,
        created.number,
        "categorize",
        actor=clerk,
        data={"category": "traffic_management", "kind": "criticism"},
        now=at,
    )
    return created


def assigned_ticket(
    uow,
    at: datetime,
    *,
    unit: str = "traffic-brigade",
    officer: str = "traffic.officer",
) -> str:
    """A ticket created, categorized and assigned at ``at``; returns its number."""
    created = categorized_ticket(uow, at)
    assign(uow, created.number, at, unit=unit, officer=officer)
    return created.number


def assign(
    uow,  # type: ignore[no-untyped-def]
    number: str,
    at: datetime,
    *,
    unit: str = "traffic-brigade",
    officer: str = "traffic.officer",
) -> None:
    """The supervisor assigns ticket ``number`` to ``unit`` and ``officer`` at ``at``."""
    uow = as_uow(uow)
    fire(
        uow,
        number,
        "assign",
        actor=get_actor(uow.session, "supervisor"),
        data={"unit": unit, "officer": officer},
        now=at,
    )


def ticket(session: Session, number: str) -> Ticket:
    session.expire_all()
    return session.scalars(select(Ticket).where(Ticket.number == number)).one()


def pending_timers(session: Session, number: str) -> list[tuple[str, int, datetime]]:
    t = ticket(session, number)
    rows = session.execute(
        select(Timer.kind, Timer.level, Timer.due_at)
        .where(Timer.ticket_id == t.id, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
        .order_by(Timer.due_at, Timer.level)
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def log_triggers(session: Session, number: str) -> list[tuple[str, str]]:
    t = ticket(session, number)
    return [
        (r.trigger, r.actor)
        for r in session.execute(
            select(TransitionLog.trigger, TransitionLog.actor)
            .where(TransitionLog.ticket_id == t.id)
            .order_by(TransitionLog.seq)
        )
    ]


class Reader:
    """Short read transactions (SQLite's BEGIN IMMEDIATE must not be held across a sweep)."""

    def __init__(self, sessions) -> None:  # type: ignore[no-untyped-def]
        self.sessions = sessions

    def ticket(self, number: str) -> Ticket:
        with self.sessions() as s:
            obj = ticket(s, number)
            s.expunge(obj)
            s.rollback()
            return obj

    def pending(self, number: str) -> list[tuple[str, int, datetime]]:
        with self.sessions() as s:
            out = pending_timers(s, number)
            s.rollback()
            return out

    def log(self, number: str) -> list[tuple[str, str]]:
        with self.sessions() as s:
            out = log_triggers(s, number)
            s.rollback()
            return out


@dataclass
class Swept:
    """A sweep's totals plus every firing and notice id, gathered batch by batch (tests only:
    the sweep itself keeps counts, so its memory does not grow with the backlog)."""

    totals: timers.SweepTotals
    firings: list[timers.Firing]
    notification_ids: list[int]

    @property
    def deferred(self) -> int:
        return self.totals.deferred


def swept(ctx: EngineContext, **kw: Any) -> Swept:
    """``timers.sweep`` with an ``after_commit`` that keeps what each batch fired."""
    firings: list[timers.Firing] = []
    ids: list[int] = []
    outer = kw.pop("after_commit", None)

    def keep(part: timers.SweepResult) -> None:
        firings.extend(part.firings)
        ids.extend(part.notification_ids)
        if outer is not None:
            outer(part)

    totals = timers.sweep(ctx, after_commit=keep, **kw)
    return Swept(totals, firings, ids)
