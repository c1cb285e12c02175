"""Creating many tickets at once (an import): what ``create_ticket`` writes, per batch.

``create_tickets`` writes exactly the rows that calling
``engine.tickets.create_ticket`` once per opinion would — the same numbers,
ticket columns, hash-chained ``create`` log rows, theme tags, due times and
timers — but with one campaign and calendar read per batch, the campaign's
counter advanced by the batch's size in one statement, and each table
written with one multi-row statement. Every opinion is checked first; if any
is bad nothing is written and every bad one is listed. The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update

from engine import deadlines, personal_data
from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.creating import (
    TICKET_COLUMNS,
    Created,
    new_secrets,
    open_campaign,
    opening,
    opinion_errors,
    theme_tags,
)
from engine.errors import ValidationError
from engine.ledger import BULK_INSERT_LOG, tickets_t
from engine.models import Campaign, TicketTheme, Timer
from engine.rawsql import BulkInsert

timers_t = cast(Table, Timer.__table__)
_ADVANCE_NUMBERS = (
    update(Campaign)
    .where(Campaign.id == bindparam("campaign_id"))
    .values(ticket_seq=Campaign.ticket_seq + bindparam("n"))
    .returning(Campaign.ticket_seq)
)
_INSERT_TICKETS = BulkInsert(tickets_t, TICKET_COLUMNS)
_INSERT_LOGS = BULK_INSERT_LOG
_INSERT_THEMES = BulkInsert(cast(Table, TicketTheme.__table__), ("ticket_id", "tag", "campaign_id"))
_INSERT_TIMERS = BulkInsert(timers_t, ("ticket_id", "kind", "level", "due_at", "created_at"))


@dataclass(slots=True)
class NewTicket:
    """One opinion to record: the arguments ``create_ticket`` takes besides campaign and actor."""

    text: str
    kind: str | None = None
    priority: str | None = None  # None: the workflow's default priority
    citizen_name: str | None = None
    citizen_contact: str | None = None
    area: str | None = None
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    received_at: datetime | None = None
    source: str = "web"
    external_key: str | None = None
    themes: tuple[str, ...] = ()


class BatchRejected(ValidationError):
    """Some opinions of a batch cannot be recorded; nothing of the batch was written."""

    code = "batch_rejected"

    def __init__(self, message: str, *, rejected: dict[int, dict[str, str]]) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.details["rejected"] = {str(i): fields for i, fields in rejected.items()}


@dataclass(slots=True)
class _Row:
    spec: NewTicket
    body: str
    received: datetime
    priority: str | None


def create_tickets(
    uow: UnitOfWork,
    *,
    campaign: str,
    tickets: Sequence[NewTicket],
    actor: Actor,
    now: datetime | None = None,
) -> list[Created]:
    """Record ``tickets`` in ``campaign``, in order, as ``create_ticket`` would one by one.

    One campaign read and one counter update for the batch, one calendar
    computation (every ticket enters the initial state at ``now``), then one
    multi-row INSERT each for tickets, log rows, theme tags and timers in the
    caller's transaction. Raises ``BatchRejected`` (a ``ValidationError``)
    listing every bad opinion by its index before writing anything.
    """
    if not tickets:
        return []
    now = uow.now(now)
    conn = uow.conn
    audit_key = uow.audit_key
    camp = open_campaign(conn, campaign, now)
    workflow = uow.registry.get(camp.workflow_name, camp.workflow_version)
    default_priority = workflow.default_priority
    rows: list[_Row] = []
    rejected: dict[int, dict[str, str]] = {}
    for index, spec in enumerate(tickets):
        body = (spec.text or "").strip()
        received = ensure_utc(spec.received_at) if spec.received_at is not None else now
        priority = spec.priority if spec.priority is not None else default_priority
        errors = opinion_errors(
            text=body,
            kind=spec.kind,
            priority=priority,
            workflow=workflow,
            citizen_name=spec.citizen_name,
            citizen_contact=spec.citizen_contact,
            area=spec.area,
            address=spec.address,
            lat=spec.lat,
            long=spec.long,
            received=received,
            now=now,
        )
        if errors:
            rejected[index] = errors
            continue
        rows.append(_Row(spec, body, received, priority))
    if rejected:
        listed = "; ".join(
            f"#{i}: " + ", ".join(f"{k} {v}" for k, v in fields.items())
            for i, fields in list(rejected.items())[:20]
        )
        more = f" (and {len(rejected) - 20} more)" if len(rejected) > 20 else ""
        raise BatchRejected(
            f"{len(rejected)} of {len(tickets)} opinions cannot be recorded, so none was: "
            f"{listed}{more}",
            rejected=rejected,
        )

    # Every ticket enters the initial state at ``now``: one calendar computation per
    # priority the batch holds.
    plans: dict[str | None, tuple[dict[str, Any], list[tuple[str, int, datetime]]]] = {}
    for priority in {row.priority for row in rows}:
        plans[priority] = deadlines.entry_plan(
            workflow,
            workflow.initial,
            lambda: deadlines.campaign_clock(uow, camp.id),
            now,
            priority,
        )
    last = conn.execute(_ADVANCE_NUMBERS, {"campaign_id": camp.id, "n": len(rows)}).scalar_one()
    first_seq = last - len(rows) + 1
    prefix = camp.number_prefix
    secrets_out = new_secrets(len(rows))
    # contact salts drawn for the batch at once, taken in order by the rows with contact data
    new_salt = iter(personal_data.new_salts(len(rows))).__next__
    log_rows: list[dict[str, Any]] = []
    ticket_rows: list[tuple[Any, ...]] = []
    for offset, (row, secret) in enumerate(zip(rows, secrets_out, strict=True)):
        spec = row.spec
        first, ticket = opening(
            number=f"{prefix}-{first_seq + offset:04d}",
            campaign_id=camp.id,
            workflow=workflow,
            actor=actor,
            now=now,
            audit_key=audit_key,
            secret=secret,
            text=row.body,
            kind=spec.kind,
            priority=row.priority,
            citizen_name=spec.citizen_name,
            citizen_contact=spec.citizen_contact,
            area=spec.area,
            address=spec.address,
            lat=spec.lat,
            long=spec.long,
            received=row.received,
            source=spec.source,
            external_key=spec.external_key,
            due=plans[row.priority][0],
            new_salt=new_salt,
        )
        log_rows.append(first)
        ticket_rows.append(ticket)
    ids = _INSERT_TICKETS.execute_tuples_returning_ids(conn, ticket_rows)
    for ticket_id, first in zip(ids, log_rows, strict=True):
        first["ticket_id"] = ticket_id
    _INSERT_LOGS.execute(conn, log_rows)
    tag_rows = [
        (ticket_id, tag, camp.id)
        for ticket_id, row in zip(ids, rows, strict=True)
        for tag in theme_tags(row.spec.themes)
    ]
    if tag_rows:
        _INSERT_THEMES.execute_tuples(conn, tag_rows)
    timer_rows = [
        (ticket_id, kind, level, at, now)
        for ticket_id, row in zip(ids, rows, strict=True)
        for kind, level, at in plans[row.priority][1]
    ]
    if timer_rows:
        _INSERT_TIMERS.execute_tuples(conn, timer_rows)
    return [
        Created(id=ticket_id, number=ticket[0], secret=secret, state=workflow.initial, version=1)
        for ticket_id, ticket, secret in zip(ids, ticket_rows, secrets_out, strict=True)
    ]
