"""Recording an opinion as a ticket: its number, its first log row, its first clock.

``create_ticket`` validates what the person said, takes the next number of the
programme's counter, writes the ticket and its genesis-chained first log row,
and starts the initial state's clock, in the caller's unit of work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine import audit, deadlines, personal_data
from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.errors import NotFound, NotPermitted, ValidationError
from engine.ledger import INSERT_LOG, log_row, tickets_t
from engine.models import Campaign, TicketTheme
from engine.workflow import Workflow

TEXT_MAX = 10_000


@dataclass(frozen=True)
class Created:
    id: int
    number: str
    secret: str
    state: str
    version: int


# Receipt secrets are read aloud, copied by hand and typed on phones: no 0/O, 1/I/l, no
# lower case. 31 symbols, 15 of them ≈ 74 bits (token_urlsafe(9) gave 72).
SECRET_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SECRET_GROUPS = 3
SECRET_GROUP_SIZE = 5


# os.urandom bytes below 248 (= 8 × 31) map evenly onto the alphabet (byte % 31); the rest
# are dropped, so every symbol is equally likely. ``bytes.translate`` does it in C.
_SECRET_SYMBOLS = bytes(range(248)).translate(
    bytes(SECRET_ALPHABET.encode("ascii")[b % len(SECRET_ALPHABET)] for b in range(256))
)
_SECRET_TABLE = _SECRET_SYMBOLS + bytes(8)
_SECRET_DROPPED = bytes(range(248, 256))


def new_secrets(n: int) -> list[str]:
    """``n`` receipt secrets like ``K7QXM-3PA9R-TWZ4H``: groups of 5 from ``SECRET_ALPHABET``,
    each symbol uniform and independent (one ``os.urandom`` read for a whole batch)."""
    size = SECRET_GROUPS * SECRET_GROUP_SIZE
    need = n * size
    symbols = b""
    while len(symbols) < need:
        # 3% of the bytes are dropped; ask for a little more than is missing
        missing = need - len(symbols)
        symbols += os.urandom(missing + missing // 16 + 16).translate(
            _SECRET_TABLE, _SECRET_DROPPED
        )
    text = symbols[:need].decode("ascii")
    groups = [text[at : at + SECRET_GROUP_SIZE] for at in range(0, need, SECRET_GROUP_SIZE)]
    return [
        "-".join(groups[at : at + SECRET_GROUPS]) for at in range(0, len(groups), SECRET_GROUPS)
    ]


def new_secret() -> str:
    """A receipt secret like ``K7QXM-3PA9R-TWZ4H``: groups of 5 from ``SECRET_ALPHABET``."""
    return new_secrets(1)[0]


def normalise_secret(secret: str) -> str:
    """What a citizen typed, the way ``new_secret`` wrote it: spaces dropped, upper case,
    hyphens where the groups end (so ``k7qxm 3pa9r twz4h`` matches)."""
    compact = "".join(ch for ch in secret.upper() if ch.isalnum())
    if len(compact) != SECRET_GROUPS * SECRET_GROUP_SIZE:
        return secret.strip()
    size = SECRET_GROUP_SIZE
    return "-".join(compact[i : i + size] for i in range(0, len(compact), size))


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
    Campaign.intake_closed_at,
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


def open_campaign(conn: Connection, code: str, now: datetime) -> Any:
    """The campaign row by code; ``NotPermitted`` once its intake has closed at ``now``."""
    camp = _campaign(conn, code)
    if camp.intake_closed_at is not None and camp.intake_closed_at <= now:
        raise NotPermitted(
            f"intake of campaign {camp.code} closed on "
            f"{camp.intake_closed_at:%Y-%m-%d %H:%M} UTC; no new opinion is recorded",
            message_id="campaign.intake_closed",
            params={"campaign": camp.code},
        )
    return camp


def theme_tags(themes: Iterable[str]) -> list[str]:
    """A ticket's theme tags as stored: stripped, lower case, each once, sorted."""
    return sorted({t.strip().lower() for t in themes if t and t.strip()})


def opinion_errors(
    *,
    text: str,
    kind: str | None,
    citizen_name: str | None,
    citizen_contact: str | None,
    area: str | None,
    address: str | None,
    lat: float | None,
    long: float | None,
    received: datetime,
    now: datetime,
    workflow: Workflow,
    priority: str | None = None,
) -> dict[str, str]:
    """Why an opinion cannot be recorded, field by field (empty when it can).

    ``text`` is already stripped; ``received`` and ``now`` are UTC. Shared by
    ``create_ticket`` and the bulk path (``engine.bulk.create_tickets``).
    """
    errors: dict[str, str] = {}
    if not text:
        errors["text"] = "is required: what did the person say?"
    elif len(text) > TEXT_MAX:
        errors["text"] = f"is too long ({len(text)} characters; at most {TEXT_MAX})"
    if kind is not None and kind not in workflow.kinds:
        errors["kind"] = (
            f"{kind!r} is not one of {', '.join(workflow.kinds)}"
            if workflow.kinds
            else f"the {workflow.name} workflow declares no kinds"
        )
    if priority is not None and priority not in workflow.priorities:
        errors["priority"] = (
            f"{priority!r} is not one of {', '.join(workflow.priorities)}"
            if workflow.priorities
            else f"the {workflow.name} workflow declares no priorities"
        )
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
    if received > now + timedelta(minutes=5):
        errors["received_at"] = "is in the future; give the time the opinion was received"
    return errors


# The columns a new ticket's INSERT sets, in the order ``opening`` gives its values.
TICKET_COLUMNS = (
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


@lru_cache(maxsize=64)
def _opening_head(kind: str | None) -> str:
    """The ``head`` of a create row: nothing assigned yet, only the kind (one per kind)."""
    return audit.head_json(
        {
            "unit_id": None,
            "assignee_id": None,
            "escalation_level": 0,
            "category": None,
            "kind": kind,
        }
    )


def opening(
    *,
    number: str,
    campaign_id: int,
    workflow: Workflow,
    actor: Actor,
    now: datetime,
    audit_key: bytes | None,
    secret: str,
    text: str,
    kind: str | None,
    priority: str | None,
    citizen_name: str | None,
    citizen_contact: str | None,
    area: str | None,
    address: str | None,
    lat: float | None,
    long: float | None,
    received: datetime,
    source: str,
    external_key: str | None,
    due: Mapping[str, Any] | None = None,
    new_salt: Callable[[], str] | None = None,
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A new ticket's ``create`` log row (chained to the number's genesis hash, ``ticket_id``
    still None) and its ticket row, valued in ``TICKET_COLUMNS`` order.

    ``text`` is stripped and the opinion already checked (``opinion_errors``);
    ``due`` carries ``due_at`` and ``due_rule`` when the caller knows them
    (the bulk path), else they are left empty for the deadline hook to set;
    ``new_salt`` gives the contact salt (the bulk path draws a batch's at once).
    The one place both ``create_ticket`` and ``engine.bulk`` build these.
    """
    logged = {
        "text": text,
        "kind": kind,
        "priority": priority,
        "area": area,
        "source": source,
        "received_at": audit.format_instant(received),
    }
    contact = personal_data.commit_contact(
        name=citizen_name, contact=citizen_contact, address=address, new_salt=new_salt
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
        data_json=audit.canonical_flat_json({k: v for k, v in logged.items() if v is not None}),
        workflow_version=workflow.version,
        prev_hash=audit.genesis_hash(number, audit_key),
        head=_opening_head(kind),
        audit_key=audit_key,
    )
    row = (
        number,
        campaign_id,
        kind,
        priority,
        text,
        (citizen_name or "").strip() or None,
        (citizen_contact or "").strip() or None,
        (area or "").strip() or None,
        address,
        lat,
        long,
        workflow.initial,
        1,
        workflow.name,
        workflow.version,
        0,
        received,
        now,
        now,
        source,
        external_key,
        hash_secret(secret),
        first["hash"],
        due.get("due_at") if due else None,
        due.get("due_rule") if due else None,
        contact.salt if contact is not None else None,
    )
    return first, row


def create_ticket(
    uow: UnitOfWork,
    *,
    campaign: str,
    text: str,
    actor: Actor,
    now: datetime | None = None,
    kind: str | None = None,
    priority: str | None = None,
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
) -> Created:
    """Record one opinion as a ticket in the campaign's workflow, with its first log row.

    Returns the human number (``2005-0001``) and the receipt secret, shown once
    to the citizen and stored only as a hash.
    """
    now = uow.now(now)
    conn = uow.conn
    audit_key = uow.audit_key
    camp = open_campaign(conn, campaign, now)
    workflow = uow.registry.get(camp.workflow_name, camp.workflow_version)
    body = (text or "").strip()
    if priority is None:
        priority = workflow.default_priority
    received = ensure_utc(received_at) if received_at is not None else now
    errors = opinion_errors(
        text=body,
        kind=kind,
        priority=priority,
        workflow=workflow,
        citizen_name=citizen_name,
        citizen_contact=citizen_contact,
        area=area,
        address=address,
        lat=lat,
        long=long,
        received=received,
        now=now,
    )
    if errors:
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationError(f"the opinion cannot be recorded: {listed}", fields=errors)

    seq = conn.execute(_NEXT_NUMBER, {"campaign_id": camp.id}).scalar_one()
    number = f"{camp.number_prefix}-{seq:04d}"
    secret = new_secret()
    first, row = opening(
        number=number,
        campaign_id=camp.id,
        workflow=workflow,
        actor=actor,
        now=now,
        audit_key=audit_key,
        secret=secret,
        text=body,
        kind=kind,
        priority=priority,
        citizen_name=citizen_name,
        citizen_contact=citizen_contact,
        area=area,
        address=address,
        lat=lat,
        long=long,
        received=received,
        source=source,
        external_key=external_key,
    )
    ticket_id = conn.execute(
        _INSERT_TICKET, dict(zip(TICKET_COLUMNS, row, strict=True))
    ).scalar_one()
    first["ticket_id"] = ticket_id
    conn.execute(INSERT_LOG, first)
    tags = theme_tags(themes)
    if tags:
        conn.execute(
            _INSERT_THEME,
            [{"ticket_id": ticket_id, "tag": t, "campaign_id": camp.id} for t in tags],
        )
    due_values = deadlines.on_transition(
        uow,
        workflow=workflow,
        ticket_id=ticket_id,
        number=number,
        campaign_id=camp.id,
        from_state=None,
        to_state=workflow.initial,
        trigger="create",
        now=now,
        version=1,
        priority=priority,
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
