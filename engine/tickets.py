"""Creating tickets and firing triggers on them: the only writer of ticket state and the log.

``fire`` is the hot path. It reads the ticket row, checks role, unit, data,
guard and workflow, moves the state on the shared compiled machine, and writes
the ticket (with an optimistic version check) and its hash-chained log row
through SQLAlchemy Core on the session's connection. The caller commits once;
on any error the caller rolls back and nothing is half-written.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import ensure_utc
from engine.errors import Conflict, InvalidTransition, NotFound, NotPermitted, ValidationError
from engine.fields import check_data
from engine.guards import GUARDS
from engine.models import (
    Campaign,
    FeedbackRecord,
    GovernmentEscalation,
    Ticket,
    TicketTheme,
    TransitionLog,
    User,
)
from engine.roles import SYSTEM, UNIT_BOUND_ROLES
from engine.routing import suggest_unit
from engine.workflow import TriggerSpec, Workflow, WorkflowRegistry, default_registry

log = logging.getLogger(__name__)

TEXT_MAX = 10_000
KINDS = ("praise", "criticism", "suggestion", "request")
tickets_t = cast(Table, Ticket.__table__)
log_t = cast(Table, TransitionLog.__table__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (or the system), with the role and unit the checks use."""

    username: str
    role: str
    unit_id: int | None = None
    id: int | None = None


SYSTEM_ACTOR = Actor(username="system", role=SYSTEM)


def get_actor(session: Session, username: str) -> Actor:
    """The active user ``username`` as an Actor; ``NotFound`` if there is none."""
    row = session.execute(
        select(User.id, User.username, User.role, User.unit_id, User.active).where(
            User.username == username
        )
    ).first()
    if row is None or not row.active:
        raise NotFound(f"no active user {username!r}")
    return Actor(username=row.username, role=row.role, unit_id=row.unit_id, id=row.id)


@dataclass(frozen=True)
class Created:
    id: int
    number: str
    secret: str
    state: str
    version: int


@dataclass(frozen=True)
class Fired:
    number: str
    trigger: str
    from_state: str
    to_state: str
    version: int
    log_seq: int
    effects: dict[str, Any] = field(default_factory=dict)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# create_ticket's statements, built once (building Core constructs per call costs more
# than the SQL itself: bench/transitions.py, bench/import_bench.py).
_CAMPAIGN_BY_CODE = select(
    Campaign.id,
    Campaign.code,
    Campaign.workflow_name,
    Campaign.workflow_version,
    Campaign.number_prefix,
    Campaign.starts_on,
    Campaign.ends_on,
).where(Campaign.code == bindparam("code"))
_NEXT_NUMBER = (
    update(Campaign)
    .where(Campaign.id == bindparam("campaign_id"))
    .values(ticket_seq=Campaign.ticket_seq + 1)
    .returning(Campaign.ticket_seq)
)
_INSERT_TICKET = insert(tickets_t).returning(tickets_t.c.id)
_INSERT_THEME = insert(cast(Table, TicketTheme.__table__))
_SET_DUE = (
    update(tickets_t)
    .where(tickets_t.c.id == bindparam("w_id"))
    .values(due_at=bindparam("v_due_at"), due_rule=bindparam("v_due_rule"))
)


def _campaign(conn: Connection, code: str) -> Any:
    row = conn.execute(_CAMPAIGN_BY_CODE, {"code": code}).first()
    if row is None:
        known = ", ".join(conn.execute(select(Campaign.code).order_by(Campaign.code)).scalars())
        raise NotFound(f"no campaign {code!r}; known campaigns: {known or 'none'}")
    return row


def create_ticket(
    session: Session,
    *,
    campaign: str,
    text: str,
    actor: Actor,
    now: datetime,
    kind: str | None = None,
    citizen_name: str | None = None,
    citizen_contact: str | None = None,
    area: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    long: float | None = None,
    received_at: datetime | None = None,
    source: str = "web",
    external_key: str | None = None,
    themes: tuple[str, ...] | list[str] = (),
    registry: WorkflowRegistry | None = None,
    audit_key: bytes | None = None,
) -> Created:
    """Record one opinion as a ticket in the campaign's workflow, with its first log row.

    Returns the human number (``2005-0001``) and the receipt secret, shown once
    to the citizen and stored only as a hash.
    """
    now = ensure_utc(now)
    conn = session.connection()
    camp = _campaign(conn, campaign)
    errors: dict[str, str] = {}
    body = (text or "").strip()
    if not body:
        errors["text"] = "is required: what did the person say?"
    elif len(body) > TEXT_MAX:
        errors["text"] = f"is too long ({len(body)} characters; at most {TEXT_MAX})"
    if kind is not None and kind not in KINDS:
        errors["kind"] = f"{kind!r} is not one of {', '.join(KINDS)}"
    for name, value, limit in (
        ("citizen_name", citizen_name, 200),
        ("citizen_contact", citizen_contact, 200),
        ("area", area, 100),
        ("address", address, 300),
    ):
        if value is not None and len(value) > limit:
            errors[name] = f"is too long ({len(value)} characters; at most {limit})"
    if lat is not None and not -90 <= lat <= 90:
        errors["lat"] = "must be between -90 and 90"
    if long is not None and not -180 <= long <= 180:
        errors["long"] = "must be between -180 and 180"
    received = ensure_utc(received_at) if received_at is not None else now
    if received > now + timedelta(minutes=5):
        errors["received_at"] = "is in the future; give the time the opinion was received"
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(f"the opinion cannot be recorded: {listed}", fields=errors)

    workflow = (registry or default_registry()).get(camp.workflow_name, camp.workflow_version)
    seq = conn.execute(_NEXT_NUMBER, {"campaign_id": camp.id}).scalar_one()
    number = f"{camp.number_prefix}-{seq:04d}"
    secret = secrets.token_urlsafe(9)
    logged = {
        "text": body,
        "kind": kind,
        "area": area,
        "source": source,
        "received_at": audit.format_instant(received),
    }
    first = _log_row(
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
        audit_key=audit_key,
    )
    ticket_id = conn.execute(
        _INSERT_TICKET,
        {
            "number": number,
            "campaign_id": camp.id,
            "kind": kind,
            "text": body,
            "citizen_name": (citizen_name or "").strip() or None,
            "citizen_contact": (citizen_contact or "").strip() or None,
            "area": (area or "").strip() or None,
            "address": address,
            "lat": lat,
            "long": long,
            "state": workflow.initial,
            "version": 1,
            "workflow_name": workflow.name,
            "workflow_version": workflow.version,
            "escalation_level": 0,
            "received_at": received,
            "created_at": now,
            "updated_at": now,
            "source": source,
            "external_key": external_key,
            "secret_hash": hash_secret(secret),
            "last_hash": first["hash"],
        },
    ).scalar_one()
    first["ticket_id"] = ticket_id
    conn.execute(_INSERT_LOG, first)
    tags = sorted({t.strip().lower() for t in themes if t and t.strip()})
    if tags:
        conn.execute(
            _INSERT_THEME,
            [{"ticket_id": ticket_id, "tag": t, "campaign_id": camp.id} for t in tags],
        )
    from engine import deadlines

    due_values = deadlines.on_transition(
        conn,
        workflow=workflow,
        ticket_id=ticket_id,
        number=number,
        campaign_id=camp.id,
        from_state=None,
        to_state=workflow.initial,
        trigger="create",
        now=now,
        version=1,
    )
    if due_values:
        # due_at/due_rule only: neither the state nor the log is touched here.
        conn.execute(
            _SET_DUE,
            {
                "w_id": ticket_id,
                "v_due_at": due_values.get("due_at"),
                "v_due_rule": due_values.get("due_rule"),
            },
        )
    return Created(id=ticket_id, number=number, secret=secret, state=workflow.initial, version=1)


_TICKET_COLUMNS = (
    tickets_t.c.id,
    tickets_t.c.number,
    tickets_t.c.campaign_id,
    tickets_t.c.state,
    tickets_t.c.version,
    tickets_t.c.workflow_name,
    tickets_t.c.workflow_version,
    tickets_t.c.unit_id,
    tickets_t.c.assignee_id,
    tickets_t.c.kind,
    tickets_t.c.category,
    tickets_t.c.area,
    tickets_t.c.last_hash,
    tickets_t.c.escalation_level,
    tickets_t.c.due_at,
)


# The hot path's statements are built once: building Core constructs per call costs
# more than the SQL itself (bench/transitions.py).
_LOAD_TICKET = select(*_TICKET_COLUMNS).where(tickets_t.c.number == bindparam("number"))
_INSERT_LOG = insert(log_t)
_ALWAYS_SET = ("state", "version", "last_hash", "updated_at")


@lru_cache(maxsize=64)
def _update_ticket(extra: frozenset[str]) -> Any:
    """UPDATE tickets SET <state, version, hash, updated_at, extra...> WHERE id and version match."""
    columns = (*_ALWAYS_SET, *sorted(extra))
    return (
        update(tickets_t)
        .where(tickets_t.c.id == bindparam("w_id"), tickets_t.c.version == bindparam("w_version"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


def load_ticket_row(conn: Connection, number: str) -> Any:
    """The columns ``fire`` needs, by ticket number; ``NotFound`` if there is no such ticket."""
    row = conn.execute(_LOAD_TICKET, {"number": number}).first()
    if row is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    return row


def _check_version(ticket: Any, expected_version: int | None) -> None:
    """``Conflict`` unless the caller read the version the ticket is at (None: no check)."""
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(
            f"{ticket.number} changed since you read it: it is at version {ticket.version} "
            f"(state {ticket.state!r}), you had version {expected_version}; reload and try again",
            ticket=ticket.number,
            state=ticket.state,
            details={"current_version": ticket.version},
        )


def check_actor(workflow: Workflow, spec: TriggerSpec, ticket: Any, actor: Actor) -> None:
    """Raise ``NotPermitted`` unless ``actor`` may fire ``spec`` on ``ticket``: role, then unit."""
    if actor.role not in spec.roles:
        raise NotPermitted(
            f"{spec.name!r} on {ticket.number} needs the role {' or '.join(sorted(spec.roles))}; "
            f"{actor.username} is {actor.role}",
            ticket=ticket.number,
            state=ticket.state,
            details={"roles": sorted(spec.roles)},
        )
    if actor.role in UNIT_BOUND_ROLES and (
        actor.unit_id is None or ticket.unit_id != actor.unit_id
    ):
        raise NotPermitted(
            f"{ticket.number} belongs to another unit; {actor.username} ({actor.role}) may act only "
            "on tickets of their own unit — a supervisor can reassign it",
            ticket=ticket.number,
            state=ticket.state,
            details={"unit_id": ticket.unit_id},
        )


def allowed_triggers(
    conn: Connection, ticket: Any, actor: Actor, registry: WorkflowRegistry | None = None
) -> list[TriggerSpec]:
    """The triggers ``actor`` may fire on ``ticket`` now (role and unit; data comes later)."""
    workflow = (registry or default_registry()).get(ticket.workflow_name, ticket.workflow_version)
    out = []
    for spec in workflow.triggers_from(ticket.state):
        try:
            check_actor(workflow, spec, ticket, actor)
        except NotPermitted:
            continue
        out.append(spec)
    return out


def fire(
    session: Session,
    number: str,
    trigger: str,
    *,
    actor: Actor,
    data: dict[str, Any] | None = None,
    expected_version: int | None = None,
    now: datetime,
    reason: str | None = None,
    registry: WorkflowRegistry | None = None,
    audit_key: bytes | None = None,
) -> Fired:
    """Fire ``trigger`` on ticket ``number`` as ``actor`` and write the change and its log row.

    Checks, in order: the ticket exists, the version the caller saw is current,
    the workflow allows the trigger from the current state, the role, the
    actor's unit against the ticket's, the data, the guards. Then updates the
    ticket with ``WHERE version = expected`` (a concurrent writer makes it a
    ``Conflict``) and appends the hash-chained log row, in the caller's
    transaction. ``reason`` defaults to ``data['reason']``.
    """
    now = ensure_utc(now)
    conn = session.connection()
    ticket = load_ticket_row(conn, number)
    _check_version(ticket, expected_version)
    workflow = (registry or default_registry()).get(ticket.workflow_name, ticket.workflow_version)
    spec = workflow.transition_for(trigger, ticket.state)
    if spec is None:
        allowed = sorted({t.name for t in workflow.triggers_from(ticket.state)})
        known = trigger in workflow.trigger_names()
        what = (
            "is not allowed from"
            if known
            else "is not a trigger of this workflow; it cannot fire from"
        )
        raise InvalidTransition(
            f"{trigger!r} {what} state {ticket.state!r} of {number}; "
            f"allowed now: {', '.join(allowed) or 'nothing (final state)'}",
            ticket=number,
            state=ticket.state,
            details={"allowed": allowed},
        )
    check_actor(workflow, spec, ticket, actor)
    checked = check_data(
        conn,
        workflow,
        spec,
        data,
        campaign_id=ticket.campaign_id,
        ticket=number,
        state=ticket.state,
    )
    if (
        actor.role in UNIT_BOUND_ROLES
        and "unit" in checked.ids
        and checked.ids["unit"] != actor.unit_id
    ):
        raise NotPermitted(
            f"{actor.username} ({actor.role}) can assign only inside their own unit; "
            f"{checked.logged['unit']!r} is another unit — ask a supervisor",
            ticket=number,
            state=ticket.state,
        )
    guard_view = {
        "kind": ticket.kind,
        "assignee_id": ticket.assignee_id,
        "category": ticket.category,
    }
    for guard in spec.guards:
        refusal = GUARDS[guard](guard_view, checked.logged)
        if refusal:
            raise ValidationError(
                f"{trigger!r} refused on {number}: {refusal}",
                ticket=number,
                state=ticket.state,
                details={"guard": guard},
            )
    dest = workflow.next_state(ticket.state, trigger)

    values, logged = _effects(
        conn, workflow, spec, ticket, checked.logged, checked.ids, actor, now, dest
    )
    new_version = ticket.version + 1
    from engine import deadlines

    values.update(
        deadlines.on_transition(
            conn,
            workflow=workflow,
            ticket_id=ticket.id,
            number=number,
            campaign_id=ticket.campaign_id,
            from_state=ticket.state,
            to_state=dest,
            trigger=trigger,
            now=now,
            version=new_version,
        )
    )
    why = reason if reason is not None else logged.get("reason")
    write_change(
        conn,
        ticket,
        trigger=trigger,
        dest=dest,
        actor=actor,
        logged=logged,
        reason=why,
        values=values,
        now=now,
        workflow_version=workflow.version,
        audit_key=audit_key,
    )
    return Fired(number, trigger, ticket.state, dest, new_version, new_version, values)


def _log_row(
    *,
    ticket_id: int | None,
    number: str,
    seq: int,
    trigger: str,
    from_state: str | None,
    to_state: str,
    actor: Actor,
    at: datetime,
    reason: str | None,
    data_json: str,
    workflow_version: int,
    prev_hash: str,
    audit_key: bytes | None,
) -> dict[str, Any]:
    """The parameters of one log row, its hash chained to ``prev_hash``."""
    new_hash = audit.row_hash(
        prev_hash=prev_hash,
        ticket_number=number,
        seq=seq,
        trigger=trigger,
        from_state=from_state,
        to_state=to_state,
        actor=actor.username,
        role=actor.role,
        at=at,
        reason=reason,
        data=data_json,
        workflow_version=workflow_version,
        key=audit_key,
    )
    return {
        "ticket_id": ticket_id,
        "seq": seq,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor.username,
        "role": actor.role,
        "at": at,
        "reason": reason,
        "data": data_json,
        "workflow_version": workflow_version,
        "prev_hash": prev_hash,
        "hash": new_hash,
    }


def _prepare(
    ticket: Any,
    version: int,
    prev_hash: str,
    *,
    trigger: str,
    dest: str,
    actor: Actor,
    data: dict[str, Any],
    reason: str | None,
    values: dict[str, Any],
    now: datetime,
    workflow_version: int,
    audit_key: bytes | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ticket UPDATE's parameters (see ``_update_ticket``) and the log row of one change."""
    row = _log_row(
        ticket_id=ticket.id,
        number=ticket.number,
        seq=version + 1,
        trigger=trigger,
        from_state=ticket.state,
        to_state=dest,
        actor=actor,
        at=now,
        reason=reason,
        data_json=audit.canonical_json(data),
        workflow_version=workflow_version,
        prev_hash=prev_hash,
        audit_key=audit_key,
    )
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(
        v_state=dest,
        v_version=row["seq"],
        v_last_hash=row["hash"],
        v_updated_at=now,
        w_id=ticket.id,
        w_version=version,
    )
    return params, row


def write_change(
    conn: Connection,
    ticket: Any,
    *,
    trigger: str,
    dest: str,
    actor: Actor,
    logged: dict[str, Any],
    reason: str | None,
    values: dict[str, Any],
    now: datetime,
    workflow_version: int,
    audit_key: bytes | None = None,
) -> int:
    """Write one change: UPDATE the ticket (version check) and INSERT its chained log row.

    ``ticket`` is a row from ``load_ticket_row`` (or any object with ``id``,
    ``number``, ``state``, ``version``, ``last_hash``). Returns the new version;
    raises ``Conflict`` when someone else wrote the ticket in between.
    """
    params, row = _prepare(
        ticket,
        ticket.version,
        ticket.last_hash,
        trigger=trigger,
        dest=dest,
        actor=actor,
        data=logged,
        reason=reason,
        values=values,
        now=now,
        workflow_version=workflow_version,
        audit_key=audit_key,
    )
    result = conn.execute(_update_ticket(frozenset(values)), params)
    if result.rowcount != 1:
        raise Conflict(
            f"{ticket.number} was changed by someone else at the same moment; reload and try again",
            ticket=ticket.number,
            state=ticket.state,
        )
    conn.execute(_INSERT_LOG, row)
    new_version: int = row["seq"]
    return new_version


def record_event(
    session: Session,
    number: str,
    event: str,
    *,
    actor: Actor,
    now: datetime,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
    expected_version: int | None = None,
    audit_key: bytes | None = None,
) -> int:
    """Log an event that does not move the state (a timer firing, an extension asked or
    decided, an escalation level raised), changing ``values`` on the ticket in the same
    write. The state stays; the version and the hash chain advance. Returns the new version.
    """
    now = ensure_utc(now)
    conn = session.connection()
    ticket = load_ticket_row(conn, number)
    _check_version(ticket, expected_version)
    return write_change(
        conn,
        ticket,
        trigger=event,
        dest=ticket.state,
        actor=actor,
        logged=dict(data or {}),
        reason=reason,
        values=dict(values or {}),
        now=now,
        workflow_version=ticket.workflow_version,
        audit_key=audit_key,
    )


@dataclass(frozen=True)
class Event:
    """One log-only event for ``record_events``: the ticket's head as read, what to log."""

    ticket: Any  # id, number, state, version, last_hash, workflow_version
    event: str
    data: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def record_events(
    conn: Connection,
    events: list[Event],
    *,
    actor: Actor,
    now: datetime,
    audit_key: bytes | None = None,
) -> list[int]:
    """``record_event`` for many events at once (the timer sweep): two statements in all.

    The tickets must have been read under a lock the caller holds (or under
    SQLite's write lock). Events of one ticket chain in the order given; every
    event must set the same ``values`` keys. The UPDATE keeps the version check;
    when the driver reports row counts for executemany a moved ticket raises
    ``Conflict`` and the caller rolls back. Returns the new versions in order.
    """
    if not events:
        return []
    now = ensure_utc(now)
    keys = frozenset(events[0].values)
    heads: dict[int, tuple[int, str]] = {}
    updates: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    versions: list[int] = []
    for ev in events:
        if frozenset(ev.values) != keys:
            raise ValueError("record_events: every event must set the same values keys")
        t = ev.ticket
        version, prev_hash = heads.get(t.id, (t.version, t.last_hash))
        params, row = _prepare(
            t,
            version,
            prev_hash,
            trigger=ev.event,
            dest=t.state,
            actor=actor,
            data=ev.data,
            reason=ev.reason,
            values=ev.values,
            now=now,
            workflow_version=t.workflow_version,
            audit_key=audit_key,
        )
        updates.append(params)
        rows.append(row)
        new_version, new_hash = row["seq"], row["hash"]
        heads[t.id] = (new_version, new_hash)
        versions.append(new_version)
    result = conn.execute(_update_ticket(keys), updates)
    if conn.dialect.supports_sane_multi_rowcount and result.rowcount != len(updates):
        raise Conflict(
            f"{len(updates) - result.rowcount} of {len(updates)} tickets changed while their "
            "events were written; nothing was written, try again"
        )
    conn.execute(_INSERT_LOG, rows)
    return versions


def _effects(
    conn: Connection,
    workflow: Workflow,
    spec: TriggerSpec,
    ticket: Any,
    logged: dict[str, Any],
    ids: dict[str, int],
    actor: Actor,
    now: datetime,
    dest: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the trigger's data changes on the ticket, and the records it adds.

    Driven by the fields, not by trigger names, so other workflows get the same
    behaviour: ``category``/``kind`` set the ticket's; ``unit``/``officer`` set
    unit and assignee; categorizing routes to the suggested unit; ``method`` +
    ``text`` + ``date`` record feedback; ``receiving_body`` records an
    escalation to government; reaching a final state closes the ticket.
    """
    values: dict[str, Any] = {}
    logged = dict(logged)
    if "category" in logged:
        values["category"] = logged["category"]
        if "unit" not in ids and ticket.assignee_id is None:
            suggestion = suggest_unit(
                conn, campaign_id=ticket.campaign_id, category=logged["category"], area=ticket.area
            )
            if suggestion is not None:
                values["unit_id"] = suggestion.unit_id
                logged["routed_to"] = suggestion.unit_code
    if "kind" in logged:
        values["kind"] = logged["kind"]
    if "unit" in ids:
        values["unit_id"] = ids["unit"]
    if "officer" in ids:
        values["assignee_id"] = ids["officer"]
    if "measures" in logged:
        values["rectified_at"] = now
    if {"method", "text", "date"} <= logged.keys():
        conn.execute(
            insert(cast(Table, FeedbackRecord.__table__)).values(
                ticket_id=ticket.id,
                method=logged["method"],
                text=logged["text"],
                given_on=_date(logged["date"]),
                by_user_id=actor.id,
                at=now,
            )
        )
    if "receiving_body" in logged:
        conn.execute(
            insert(cast(Table, GovernmentEscalation.__table__)).values(
                ticket_id=ticket.id,
                receiving_body=logged["receiving_body"],
                reference=logged.get("reference"),
                reason=logged.get("reason", ""),
                citizen_told=False,
                by_user_id=actor.id,
                at=now,
            )
        )
    if dest in workflow.final_states:
        values["closed_at"] = now
    elif ticket.state in workflow.final_states:
        values["closed_at"] = None
        values["satisfied"] = None
    return values, logged


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
