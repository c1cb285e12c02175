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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from engine import audit, deadlines, personal_data
from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.creating import Created, _campaign, hash_secret, new_secret, opinion_errors
from engine.errors import ValidationError
from engine.ledger import BULK_INSERT_LOG, log_row, tickets_t
from engine.models import Campaign, TicketTheme, Timer
from engine.rawsql import BulkInsert

timers_t = cast(Table, Timer.__table__)
_ADVANCE_NUMBERS = (
    update(Campaign)
    .where(Campaign.id == bindparam("campaign_id"))
    .values(ticket_seq=Campaign.ticket_seq + bindparam("n"))
    .returning(Campaign.ticket_seq)
)
_TICKET_COLUMNS = (
    "number",
    "campaign_id",
    "kind",
    "priority",
    "text",
    "citizen_name",
    "citizen_contact",
    "area",
    "address",
    "lat",
    "long",
    "state",
    "version",
    "workflow_name",
    "workflow_version",
    "escalation_level",
    "received_at",
    "created_at",
    "updated_at",
    "source",
    "external_key",
    "secret_hash",
    "last_hash",
    "due_at",
    "due_rule",
    "contact_salt",
)
_INSERT_TICKETS = BulkInsert(tickets_t, _TICKET_COLUMNS)
_INSERT_LOGS = BULK_INSERT_LOG
_INSERT_THEMES = BulkInsert(cast(Table, TicketTheme.__table__), ("ticket_id", "tag", "campaign_id"))
_INSERT_TIMERS = BulkInsert(timers_t, ("ticket_id", "kind", "level", "due_at", "created_at"))
# The new tickets' ids, by number (unique): the driver's executemany returns no rows.
_IDS_BY_NUMBER = select(tickets_t.c.number, tickets_t.c.id).where(
    tickets_t.c.number.in_(bindparam("numbers", expanding=True))
)
ID_LOOKUP_CHUNK = 500


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


@dataclass
class _Row:
    spec: NewTicket
    body: str
    received: datetime
    tags: list[str] = field(default_factory=list)


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
    camp = _campaign(conn, campaign)
    workflow = uow.registry.get(camp.workflow_name, camp.workflow_version)
    rows: list[_Row] = []
    rejected: dict[int, dict[str, str]] = {}
    for index, spec in enumerate(tickets):
        body = (spec.text or "").strip()
        received = ensure_utc(spec.received_at) if spec.received_at is not None else now
        errors = opinion_errors(
            text=body,
            kind=spec.kind,
            priority=spec.priority,
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
        tags = sorted({t.strip().lower() for t in spec.themes if t and t.strip()})
        rows.append(_Row(spec, body, received, tags))
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

    # One calendar computation per priority the batch holds.
    plans: dict[str | None, tuple[dict[str, Any], list[tuple[str, int, datetime]]]] = {}
    for row in rows:
        priority = _priority(row.spec, workflow.default_priority)
        if priority not in plans:
            plans[priority] = deadlines.entry_plan(
                workflow,
                workflow.initial,
                lambda: deadlines.campaign_clock(uow, camp.id),
                now,
                priority,
            )
    last = conn.execute(_ADVANCE_NUMBERS, {"campaign_id": camp.id, "n": len(rows)}).scalar_one()
    first_seq = last - len(rows) + 1
    ticket_params: list[dict[str, Any]] = []
    log_rows: list[dict[str, Any]] = []
    secrets_out: list[str] = []
    for offset, row in enumerate(rows):
        spec = row.spec
        priority = _priority(spec, workflow.default_priority)
        due_values = plans[priority][0]
        number = f"{camp.number_prefix}-{first_seq + offset:04d}"
        secret = new_secret()
        secrets_out.append(secret)
        logged = {
            "text": row.body,
            "kind": spec.kind,
            "priority": priority,
            "area": spec.area,
            "source": spec.source,
            "received_at": audit.format_instant(row.received),
        }
        contact = personal_data.commit_contact(
            name=spec.citizen_name, contact=spec.citizen_contact, address=spec.address
        )
        if contact is not None:
            logged["contact"] = contact.commitment
        first = log_row(
            ticket_id=None,
            number=number,
            seq=1,
            trigger="create",
            from_state=None,
            to_state=workflow.initial,
            actor=actor,
            at=now,
            reason=None,
            data_json=audit.canonical_json({k: v for k, v in logged.items() if v is not None}),
            workflow_version=workflow.version,
            prev_hash=audit.genesis_hash(number, audit_key),
            head=audit.head_json(
                {
                    "unit_id": None,
                    "assignee_id": None,
                    "escalation_level": 0,
                    "category": None,
                    "kind": spec.kind,
                }
            ),
            audit_key=audit_key,
        )
        log_rows.append(first)
        ticket_params.append(
            {
                "number": number,
                "campaign_id": camp.id,
                "kind": spec.kind,
                "priority": priority,
                "text": row.body,
                "citizen_name": (spec.citizen_name or "").strip() or None,
                "citizen_contact": (spec.citizen_contact or "").strip() or None,
                "area": (spec.area or "").strip() or None,
                "address": spec.address,
                "lat": spec.lat,
                "long": spec.long,
                "state": workflow.initial,
                "version": 1,
                "workflow_name": workflow.name,
                "workflow_version": workflow.version,
                "escalation_level": 0,
                "received_at": row.received,
                "created_at": now,
                "updated_at": now,
                "source": spec.source,
                "external_key": spec.external_key,
                "secret_hash": hash_secret(secret),
                "last_hash": first["hash"],
                # create_ticket sets these with a second statement; the result is the same.
                "due_at": due_values.get("due_at"),
                "due_rule": due_values.get("due_rule"),
                "contact_salt": contact.salt if contact is not None else None,
            }
        )
    _INSERT_TICKETS.execute(conn, ticket_params)
    numbers = [p["number"] for p in ticket_params]
    ids: dict[str, int] = {}
    for start in range(0, len(numbers), ID_LOOKUP_CHUNK):
        chunk = numbers[start : start + ID_LOOKUP_CHUNK]
        ids.update((n, i) for n, i in conn.execute(_IDS_BY_NUMBER, {"numbers": chunk}))
    ordered_ids = [ids[n] for n in numbers]
    for ticket_id, first in zip(ordered_ids, log_rows, strict=True):
        first["ticket_id"] = ticket_id
    _INSERT_LOGS.execute(conn, log_rows)
    tag_rows = [
        (ticket_id, tag, camp.id)
        for ticket_id, row in zip(ordered_ids, rows, strict=True)
        for tag in row.tags
    ]
    if tag_rows:
        _INSERT_THEMES.execute_tuples(conn, tag_rows)
    timer_rows = [
        (ticket_id, k, lv, at, now)
        for ticket_id, row in zip(ordered_ids, rows, strict=True)
        for k, lv, at in plans[_priority(row.spec, workflow.default_priority)][1]
    ]
    if timer_rows:
        _INSERT_TIMERS.execute_tuples(conn, timer_rows)
    return [
        Created(
            id=ticket_id,
            number=params["number"],
            secret=secret,
            state=workflow.initial,
            version=1,
        )
        for ticket_id, params, secret in zip(ordered_ids, ticket_params, secrets_out, strict=True)
    ]


def _priority(spec: NewTicket, default: str | None) -> str | None:
    return spec.priority if spec.priority is not None else default
