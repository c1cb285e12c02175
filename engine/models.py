"""The storage model: SQLAlchemy 2.x typed ORM, one module.

Every time is stored in UTC (``UTCDateTime``) and shown in a campaign's
timezone at the edge. The transition log is append-only; the database refuses
UPDATE and DELETE on it (see the migrations).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name in Chinese (``name`` is the English one); pages show the reader's language.
    name_zh: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # bureau, department, station, brigade, office
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    # The language the user chose for pages and notices (zh_CN, en); None: the browser's.
    locale: Mapped[str | None] = mapped_column(String(16))
    # Set when an administrator creates the account or resets its password (migration 0013):
    # the next sign-in leads to the change-password page before anything else.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )

    unit: Mapped[Unit | None] = relationship()


# What a continuous programme stores for "no end" and "no deadline" (readers see None).
OPEN_END = date(9999, 1, 1)
NO_DEADLINE = datetime(9999, 1, 1, tzinfo=UTC)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    name_zh: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_on: Mapped[date] = mapped_column(Date)
    # A continuous service (a hotline) has no end and no deadline capping its tickets: it is
    # stored open-ended (OPEN_END, NO_DEADLINE) and every reader goes by ``continuous``.
    ends_on: Mapped[date] = mapped_column(Date)
    rectification_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    continuous: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )
    number_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    ticket_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    workflow_name: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(64), default="CN", server_default="CN")
    # Days after a ticket closes that the citizen's contact data is kept; None = kept (migration 0007).
    personal_data_retention_days: Mapped[int | None] = mapped_column(Integer)
    # From this time on no new opinion is recorded (migration 0013); None: intake open.
    intake_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    categories: Mapped[list[Category]] = relationship(
        back_populates="campaign", order_by="Category.position"
    )


class CampaignPhase(Base):
    """A phase of a campaign (collection, sorting, rectification...), declared in its file.

    ``governs`` lists the workflow states whose time limit starts no earlier than the
    phase's first day (comma-separated state names; empty when it governs none).
    """

    __tablename__ = "campaign_phases"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str | None] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    governs: Mapped[str] = mapped_column(String(500), default="", server_default="")


class ReportSnapshot(Base):
    """The campaign report as of the end of one day, kept so a past day reads in a moment.

    ``log_high_water`` is the highest transition-log id when it was computed: a log row
    added later but dated before the day's end (a back-dated replay) makes it stale.
    """

    __tablename__ = "report_snapshots"
    __table_args__ = (UniqueConstraint("campaign_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    day: Mapped[date] = mapped_column(Date)
    log_high_water: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    report: Mapped[str] = mapped_column(Text)


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str | None] = mapped_column(String(200))
    outside_duties: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))

    campaign: Mapped[Campaign] = relationship(back_populates="categories")


class RoutingRule(Base):
    """Category → department, town/area → police station; the most specific match wins."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    category: Mapped[str | None] = mapped_column(String(64))
    area: Mapped[str | None] = mapped_column(String(100))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))

    unit: Mapped[Unit] = relationship()


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "external_key"),
        Index("ix_tickets_campaign_state", "campaign_id", "state"),
        # Open311's request list, newest first in a time window (migration 0004).
        Index("ix_tickets_campaign_received", "campaign_id", "received_at", "id"),
        Index("ix_tickets_unit_state_due", "unit_id", "state", "due_at"),
        Index("ix_tickets_assignee_state_due", "assignee_id", "state", "due_at"),
        Index("ix_tickets_overdue", "escalation_level", "unit_id"),
        # The campaign report reads these from the index alone (migration 0005).
        Index(
            "ix_tickets_report",
            "campaign_id",
            "state",
            "category",
            "kind",
            "unit_id",
            "escalation_level",
            "due_at",
            "rectified_at",
        ),
        Index("ix_tickets_id_campaign", "id", "campaign_id", "kind"),
        # Version migration walks a workflow version's tickets by state (migration 0012).
        Index("ix_tickets_workflow", "workflow_name", "workflow_version", "state", "id"),
        Index(
            "ix_tickets_open_due",
            "due_at",
            "unit_id",
            "escalation_level",
            sqlite_where=sql_text("closed_at IS NULL"),
            postgresql_where=sql_text("closed_at IS NULL"),
        ),
        # Open queues in their own order (migration 0003): a first page reads 50 entries.
        Index(
            "ix_tickets_assignee_open_due",
            "assignee_id",
            sql_text("(due_at IS NULL)"),
            "due_at",
            "id",
            sqlite_where=sql_text("closed_at IS NULL"),
            postgresql_where=sql_text("closed_at IS NULL"),
        ),
        Index(
            "ix_tickets_unit_open_due",
            "unit_id",
            sql_text("(due_at IS NULL)"),
            "due_at",
            "id",
            sqlite_where=sql_text("closed_at IS NULL"),
            postgresql_where=sql_text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    citizen_name: Mapped[str | None] = mapped_column(String(200))
    citizen_contact: Mapped[str | None] = mapped_column(String(200))
    area: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    long: Mapped[float | None] = mapped_column(Float)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    workflow_name: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_rule: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rectified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32), default="web", server_default="web")
    external_key: Mapped[str | None] = mapped_column(String(128))
    duplicate_group: Mapped[int | None] = mapped_column(Integer, index=True)
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    last_hash: Mapped[str] = mapped_column(String(64))
    # The random salt of the contact commitment in the create log row; erased with the
    # contact data, which leaves the commitment unlinkable (migration 0007).
    contact_salt: Mapped[str | None] = mapped_column(String(64))
    personal_data_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship()
    unit: Mapped[Unit | None] = relationship()
    assignee: Mapped[User | None] = relationship()


class TicketTheme(Base):
    """Theme tags on a ticket (theft, gambling, slow police response...), for the report's shares."""

    __tablename__ = "ticket_themes"
    # The ticket's campaign, copied so a campaign's shares are one index range (migration 0006).
    __table_args__ = (Index("ix_ticket_themes_campaign_tag", "campaign_id", "tag"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))


class TransitionLog(Base):
    """One row per change of a ticket, hash-chained per ticket; never updated or deleted."""

    __tablename__ = "transition_log"
    __table_args__ = (
        UniqueConstraint("ticket_id", "seq"),
        Index("ix_transition_log_actor_at", "actor", "at"),
        Index("ix_transition_log_at", "at"),
        Index("ix_transition_log_trigger", "trigger", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    seq: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly what was hashed
    workflow_version: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The ticket columns this row leaves behind (canonical JSON of engine.audit.HEAD_COLUMNS),
    # covered by the hash, so verify proves the ticket row by its log (migration 0007).
    head: Mapped[str | None] = mapped_column(Text)


class AdminLog(Base):
    """One row per administrative change (users, units, campaigns, routing, tokens), in one
    hash chain by ``seq``; never updated or deleted (the database refuses, migration 0013)."""

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly what was hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Timer(Base):
    """A deadline as a row: warning, breach or a ladder step, due at a UTC time."""

    __tablename__ = "timers"
    __table_args__ = (
        Index(
            "ix_timers_pending_due",
            "due_at",
            sqlite_where=sql_text("fired_at IS NULL AND cancelled_at IS NULL"),
            postgresql_where=sql_text("fired_at IS NULL AND cancelled_at IS NULL"),
        ),
        Index("ix_timers_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))  # warning, breach, ladder
    level: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FeedbackRecord(Base):
    __tablename__ = "feedback_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    given_on: Mapped[date] = mapped_column(Date)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class GovernmentEscalation(Base):
    __tablename__ = "government_escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    receiving_body: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    citizen_told: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql_text("false")
    )
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Extension(Base):
    """A request for a later due time, with a reason; a supervisor decides it."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReopenRequest(Base):
    """A citizen said the feedback did not satisfy them; a supervisor acts on it."""

    __tablename__ = "reopen_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """An in-app inbox entry: warning, reminder, chase notice, digest."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A notice the pages render in the reader's language: a message id and its parameters
    # (JSON); ``subject`` and ``body`` keep the English text for e-mail and the API.
    message_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SignInFailure(Base):
    """A failed sign-in; recent ones slow the next attempt down, in every process alike."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """Background work started by a person (an import), run by the worker; kept as a row so every
    web process can show it and a restart loses nothing."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    username: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON
    phase: Mapped[str] = mapped_column(String(16), default="")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    percent: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text)  # JSON
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser session. The cookie carries a random id; this row, keyed by that
    id's SHA-256, says whose session it is and whether it still holds, so signing out (or an
    expiry, a password change, a deactivation) ends it on the server for every copy of the
    cookie. ``credential`` is a digest of the password hash at sign-in: a new password ends
    every session made with the old one, however it was changed."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    credential: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class RateLimitWindow(Base):
    """One fixed-window counter per limited key (``signin-address:10.0.0.7``): the window's
    number (seconds since the epoch divided by the limit's period) and the hits in it. Every
    process counts here, in one UPSERT per hit."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
