"""The ticket row proven by its log; an append-only guard on inserts; erasable contact data.

- ``transition_log.head``: the ticket columns a row leaves behind, covered by its hash
  (``engine.audit.HEAD_COLUMNS``); rows written before this revision have none.
- A guard that refuses any insert into the log reusing a row id or a (ticket, seq) pair.
  On SQLite ``INSERT OR REPLACE`` deletes the row it replaces without firing the DELETE
  trigger (recursive_triggers is off), so the append-only guard needs a BEFORE INSERT
  trigger too; PostgreSQL gets the same guard for the same clear message.
- ``tickets.contact_salt`` and ``tickets.personal_data_erased_at``; a campaign's
  ``personal_data_retention_days``.

Revision ID: 0007
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None

REUSE_MESSAGE = (
    "transition_log is append-only: an insert cannot reuse a row id or a (ticket, seq) pair"
)


def upgrade() -> None:
    op.add_column("transition_log", sa.Column("head", sa.Text(), nullable=True))
    op.add_column("tickets", sa.Column("contact_salt", sa.String(length=64), nullable=True))
    op.add_column(
        "tickets", sa.Column("personal_data_erased_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "campaigns", sa.Column("personal_data_retention_days", sa.Integer(), nullable=True)
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER transition_log_no_reuse BEFORE INSERT ON transition_log "
            "WHEN EXISTS (SELECT 1 FROM transition_log WHERE id = NEW.id) "
            "OR EXISTS (SELECT 1 FROM transition_log "
            "WHERE ticket_id = NEW.ticket_id AND seq = NEW.seq) "
            f"BEGIN SELECT RAISE(ABORT, '{REUSE_MESSAGE}'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION transition_log_no_reuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF EXISTS (SELECT 1 FROM transition_log WHERE id = NEW.id) "
            "OR EXISTS (SELECT 1 FROM transition_log "
            "WHERE ticket_id = NEW.ticket_id AND seq = NEW.seq) THEN "
            f"RAISE EXCEPTION '{REUSE_MESSAGE}'; "
            "END IF; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER transition_log_no_reuse BEFORE INSERT ON transition_log "
            "FOR EACH ROW EXECUTE FUNCTION transition_log_no_reuse()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS transition_log_no_reuse")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS transition_log_no_reuse ON transition_log")
        op.execute("DROP FUNCTION IF EXISTS transition_log_no_reuse()")
    # Dropped in place (SQLite 3.35+), not by batch mode's table copy: the log keeps its
    # append-only triggers and tickets its expression indexes.
    op.drop_column("campaigns", "personal_data_retention_days")
    op.drop_column("tickets", "personal_data_erased_at")
    op.drop_column("tickets", "contact_salt")
    op.drop_column("transition_log", "head")
