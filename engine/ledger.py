"""The chained log writer: the only code that writes a ticket's state and its log rows.

Every change is one UPDATE of the ticket (with an optimistic version check) and
one INSERT of a log row whose hash chains to the ticket's head. Transitions
(``engine.firing``), creation (``engine.creating``) and events that do not move
the state (a timer firing, an extension decided, a citizen's answer) all go
through here.

Events are declared: ``EVENTS`` names every log-only event and the ticket
columns it may change. ``record_event`` refuses an undeclared event or a column
the event does not declare, so no adapter can set a ticket column without a
trigger (a category is set by ``categorize``, not by an event).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine import audit
from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.errors import Conflict, NotFound, ValidationError
from engine.models import Ticket, TransitionLog
from engine.rawsql import BulkInsert, BulkUpdate, PreparedQuery, PreparedWrite

tickets_t = cast(Table, Ticket.__table__)
log_t = cast(Table, TransitionLog.__table__)

# Log-only events and the ticket columns each may change.
EVENTS: dict[str, frozenset[str]] = {}


def declare_event(name: str, *columns: str) -> None:
    """Declare the log-only event ``name`` and the ticket columns it may change."""
    known = set(tickets_t.c.keys())
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(f"event {name!r}: no ticket column(s) {unknown}")
    if name in EVENTS and EVENTS[name] != frozenset(columns):
        raise ValueError(f"event {name!r} is declared twice with different columns")
    EVENTS[name] = frozenset(columns)


# The engine's own events (services declare theirs beside them).
declare_event("deadline_warning", "escalation_level")
declare_event("overdue", "escalation_level")
declare_event("escalated", "escalation_level")


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
    tickets_t.c.priority,
    tickets_t.c.category,
    tickets_t.c.area,
    tickets_t.c.last_hash,
    tickets_t.c.escalation_level,
    tickets_t.c.due_at,
    tickets_t.c.updated_at,
)

# Built once: building Core constructs per call costs more than the SQL itself
# (bench/transitions.py).
_LOAD_TICKET = PreparedQuery(
    select(*_TICKET_COLUMNS).where(tickets_t.c.number == bindparam("number"))
)
INSERT_LOG = insert(log_t)
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


# The change's columns and the rest of what the API answers with (``fire(view=True)``):
# the answer is built from the row as read and what the change wrote, not re-read.
_LOAD_TICKET_VIEW = PreparedQuery(
    select(
        *_TICKET_COLUMNS,
        tickets_t.c.text,
        tickets_t.c.citizen_name,
        tickets_t.c.citizen_contact,
        tickets_t.c.address,
        tickets_t.c.lat,
        tickets_t.c.long,
        tickets_t.c.due_rule,
        tickets_t.c.received_at,
        tickets_t.c.created_at,
        tickets_t.c.closed_at,
        tickets_t.c.satisfied,
        tickets_t.c.source,
    ).where(tickets_t.c.number == bindparam("number"))
)


_LOAD_TICKET_LOCKED = PreparedQuery(_LOAD_TICKET.statement.with_for_update(of=tickets_t))
_LOAD_TICKET_VIEW_LOCKED = PreparedQuery(_LOAD_TICKET_VIEW.statement.with_for_update(of=tickets_t))


def load_ticket_row(
    conn: Connection, number: str, *, view: bool = False, lock: bool = False
) -> Any:
    """The columns a change needs, by ticket number (``view``: and every column the API
    shows); ``NotFound`` if there is no such ticket. ``lock`` (PostgreSQL): the row is
    locked for this transaction (``FOR UPDATE``), so no one else can change it before it
    commits: a writer that came first is waited for and its version read."""
    if lock:
        query = _LOAD_TICKET_VIEW_LOCKED if view else _LOAD_TICKET_LOCKED
    else:
        query = _LOAD_TICKET_VIEW if view else _LOAD_TICKET
    row = query.first(conn, {"number": number})
    if row is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    return row


def check_version(ticket: Any, expected_version: int | None) -> None:
    """``Conflict`` unless the caller read the version the ticket is at (None: no check)."""
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(
            f"{ticket.number} changed since you read it: it is at version {ticket.version} "
            f"(state {ticket.state!r}), you had version {expected_version}; reload and try again",
            ticket=ticket.number,
            state=ticket.state,
            details={"current_version": ticket.version},
        )


def log_row(
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
    head: str,
    audit_key: bytes | None,
) -> dict[str, Any]:
    """The parameters of one log row, its hash chained to ``prev_hash``; ``head`` is
    ``audit.head_json`` of the ticket as the row leaves it."""
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
        head=head,
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
        "head": head,
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
    """The ticket UPDATE's parameters (see ``_update_ticket``) and the log row of one change.

    ``ticket`` must carry ``updated_at`` (the time of its last log row) and the
    ``audit.HEAD_COLUMNS``; the row records those columns as ``values`` leaves them.
    """
    check_time_moves_forward(ticket, now)
    row = log_row(
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
        head=audit.head_json(
            {name: values.get(name, getattr(ticket, name)) for name in audit.HEAD_COLUMNS}
        ),
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


def check_time_moves_forward(ticket: Any, now: datetime) -> None:
    """Refuse a change dated before the ticket's last log row (``ticket.updated_at``).

    A log whose times run backwards cannot be read as a history; a clock set back
    (``rectiflow --now``, a drill) must not write one.
    """
    last = ticket.updated_at
    if last is not None and now < last:
        raise ValidationError(
            f"{ticket.number}: a change dated {audit.format_instant(now)} would come before "
            f"the ticket's last log row ({audit.format_instant(last)}); times in the log only "
            "move forward — check the clock (--now)",
            ticket=ticket.number,
            state=ticket.state,
            details={"last_logged_at": audit.format_instant(last)},
            message_id="log.time_backwards",
            params={"at": audit.format_instant(now), "last": audit.format_instant(last)},
        )


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
    audit_key: bytes | None,
    locked: bool = False,
) -> int:
    """Write one change: UPDATE the ticket (version check) and INSERT its chained log row.

    ``ticket`` is a row from ``load_ticket_row`` (or any object with ``id``,
    ``number``, ``state``, ``version``, ``last_hash``). Returns the new version;
    raises ``Conflict`` when someone else wrote the ticket in between. ``locked``: the
    ticket was read with ``lock=True``, so nobody can have written it in between; the
    UPDATE's row count may then be unknown yet (-1: the statement is in a pipeline).
    """
    changed = changed_values(ticket, values)
    params, row = _prepare(
        ticket,
        ticket.version,
        ticket.last_hash,
        trigger=trigger,
        dest=dest,
        actor=actor,
        data=logged,
        reason=reason,
        values=changed,
        now=now,
        workflow_version=workflow_version,
        audit_key=audit_key,
    )
    # The hot path: both statements through the driver, compiled once (engine.rawsql).
    count = _prepared_update(frozenset(changed)).execute(conn, params)
    if count != 1 and not (locked and count == -1):
        # The other writer has committed (our UPDATE waited for its lock): say where the
        # ticket is now, so a client that retried a request whose answer it lost can tell
        # whether its own first attempt is the one that got there.
        now_at = _LOAD_TICKET.first(conn, {"number": ticket.number})
        state = now_at.state if now_at is not None else ticket.state
        details = {"current_version": now_at.version} if now_at is not None else {}
        raise Conflict(
            f"{ticket.number} was changed by someone else at the same moment: it is now in "
            f"state {state!r}; reload and try again",
            ticket=ticket.number,
            state=state,
            details=details,
        )
    _PREPARED_INSERT_LOG.execute(conn, row)
    new_version: int = row["seq"]
    return new_version


_UNREAD = object()


def changed_values(ticket: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the columns the ticket row already holds with the same value.

    SQLite moves every index entry of a column named in an UPDATE's SET, changed or not: a
    transition that set ``escalation_level = 0`` on a ticket at level 0 rewrote a page of
    three indexes for nothing. A column the row was not read with is kept; equal means the
    same type and value, so the log's head (``audit.head_json``) is the same either way.
    """
    out = {}
    for name, value in values.items():
        old = getattr(ticket, name, _UNREAD)
        if old is _UNREAD or type(old) is not type(value) or old != value:
            out[name] = value
    return out


@lru_cache(maxsize=64)
def _prepared_update(extra: frozenset[str]) -> PreparedWrite:
    return PreparedWrite(_update_ticket(extra))


def _check_event(event: str, values: dict[str, Any]) -> None:
    declared = EVENTS.get(event)
    if declared is None:
        raise ValidationError(
            f"{event!r} is not a declared event; events are {', '.join(sorted(EVENTS))} "
            "(a state change goes through a trigger)",
            details={"event": event},
        )
    undeclared = sorted(set(values) - declared)
    if undeclared:
        raise ValidationError(
            f"the event {event!r} may change {', '.join(sorted(declared)) or 'no column'}, "
            f"not {', '.join(undeclared)}; a change like that goes through a trigger",
            details={"event": event, "columns": undeclared},
        )


def record_event(
    uow: UnitOfWork,
    number: str,
    event: str,
    *,
    actor: Actor,
    now: datetime | None = None,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> int:
    """Log the declared event ``event`` on ticket ``number`` (it does not move the state),
    changing only the ticket columns the event declares. The version and the hash chain
    advance. Returns the new version.
    """
    values = dict(values or {})
    _check_event(event, values)
    conn = uow.conn
    ticket = load_ticket_row(conn, number)
    check_version(ticket, expected_version)
    return write_change(
        conn,
        ticket,
        trigger=event,
        dest=ticket.state,
        actor=actor,
        logged=dict(data or {}),
        reason=reason,
        values=values,
        now=uow.now(now),
        workflow_version=ticket.workflow_version,
        audit_key=uow.audit_key,
    )


class Event(NamedTuple):
    """One log-only event for ``record_events``: the ticket's head as read, what to log.

    ``data`` is what the row records, or its canonical JSON already rendered (the sweep
    renders each firing's from a template made once per transaction). A named tuple: a sweep
    makes one per firing."""

    ticket: Any  # id, number, state, version, last_hash, workflow_version, updated_at, HEAD_COLUMNS
    event: str
    data: dict[str, Any] | str
    values: dict[str, Any] | None = None
    reason: str | None = None


def record_events(
    uow: UnitOfWork,
    events: list[Event],
    *,
    actor: Actor,
    now: datetime,
) -> list[int]:
    """``record_event`` for many events at once (the timer sweep): two statements in all.

    The tickets must have been read under a lock the caller holds (or under
    SQLite's write lock). Events of one ticket chain in the order given; every
    event must set the same ``values`` keys. The UPDATE keeps the version check:
    a moved ticket raises ``Conflict`` and the caller rolls back. Returns the new
    versions in order.
    """
    if not events:
        return []
    now = ensure_utc(now)
    conn = uow.conn
    audit_key = uow.audit_key
    keys = frozenset(events[0].values or ())
    extra = tuple(sorted(keys))
    # The rows as tuples in the statements' column order, built straight from each event
    # (no parameter dictionaries: a sweep writes thousands); the same hash and head as
    # ``write_change`` writes, through the same functions.
    chained: dict[int, tuple[int, str]] = {}  # a ticket's head after its events so far
    updates: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    versions: list[int] = []
    checked: set[str] = set()  # every event sets the same keys: each name checked once
    username, role = actor.username, actor.role
    read_head = attrgetter(*audit.HEAD_COLUMNS)
    heads_seen: dict[tuple[Any, ...], str] = {}
    for ev in events:
        values = ev.values or {}
        if values.keys() != keys:
            raise ValueError("record_events: every event must set the same values keys")
        if ev.event not in checked:
            _check_event(ev.event, values)
            checked.add(ev.event)
        t = ev.ticket
        version, prev_hash = chained.get(t.id) or (t.version, t.last_hash)
        check_time_moves_forward(t, now)
        data_json = ev.data if isinstance(ev.data, str) else audit.canonical_json(ev.data)
        # The head as the row leaves it: the ticket's columns, the event's values over them;
        # a batch's tickets mostly share one, rendered once.
        changes = tuple([values[k] for k in extra])
        head = heads_seen.get((read_head(t), changes))
        if head is None:
            head = heads_seen[(read_head(t), changes)] = audit.head_json(
                {name: values.get(name, getattr(t, name)) for name in audit.HEAD_COLUMNS}
            )
        seq = version + 1
        new_hash = audit.row_hash(
            prev_hash=prev_hash,
            ticket_number=t.number,
            seq=seq,
            trigger=ev.event,
            from_state=t.state,
            to_state=t.state,
            actor=username,
            role=role,
            at=now,
            reason=ev.reason,
            data=data_json,
            workflow_version=t.workflow_version,
            head=head,
            key=audit_key,
        )
        updates.append((seq, new_hash, now, *changes, t.id, version))
        rows.append(
            (
                t.id,
                seq,
                ev.event,
                t.state,
                t.state,
                username,
                role,
                now,
                ev.reason,
                data_json,
                t.workflow_version,
                prev_hash,
                new_hash,
                head,
            )
        )
        chained[t.id] = (seq, new_hash)
        versions.append(seq)
    # Driver-level executemany with pre-rendered parameters (engine.rawsql): for a sweep
    # of thousands, SQLAlchemy's per-row parameter machinery costs more than the SQL.
    changed = _bulk_update_ticket(keys).execute_tuples(conn, updates)
    if changed != len(updates):
        raise Conflict(
            f"{len(updates) - changed} of {len(updates)} tickets changed while their "
            "events were written; nothing was written, try again"
        )
    BULK_INSERT_LOG.execute_tuples(conn, rows)
    return versions


LOG_COLUMNS = ("ticket_id", *audit.LOG_FIELDS)  # the keys of a log_row
BULK_INSERT_LOG = BulkInsert(log_t, LOG_COLUMNS)
_PREPARED_INSERT_LOG = PreparedWrite(insert(log_t).values({c: bindparam(c) for c in LOG_COLUMNS}))


# A log-only event leaves the state as it is: its UPDATE does not write the column, so the
# indexes on the state (five) are not rewritten for every firing of a sweep.
_LOG_ONLY_SET = ("version", "last_hash", "updated_at")


@lru_cache(maxsize=16)
def _bulk_update_ticket(extra: frozenset[str]) -> BulkUpdate:
    """The ticket's UPDATE for many log-only events through the driver: its head and
    ``extra`` (the event's columns), with the same version check as ``_update_ticket``."""
    columns = (*_LOG_ONLY_SET, *sorted(extra))
    return BulkUpdate(
        tickets_t,
        {name: f"v_{name}" for name in columns},
        {"id": "w_id", "version": "w_version"},
    )
