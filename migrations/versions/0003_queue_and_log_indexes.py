"""indexes a province needs: open queues in due order, log rows by trigger

Measured at 1,000,000 tickets (bench/queries.py, BENCHMARKS.md): an officer's
first page read every ticket the officer ever had and sorted them (1 s on SQLite
for an officer with 12k open tickets); with a partial index over open tickets in
the queue's own order, ``(due_at IS NULL), due_at, id``, it reads 50 index
entries. The unit queue has the same shape. The campaign report counts reopened
tickets by trigger; (trigger, ticket_id) makes that a lookup of the few rows.

On a large PostgreSQL database an operator may prefer to create these by hand
with CREATE INDEX CONCURRENTLY before running ``rectiflow init``; the names match.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN = "closed_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_tickets_assignee_open_due",
        "tickets",
        ["assignee_id", sa.text("(due_at IS NULL)"), "due_at", "id"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
        if_not_exists=True,
    )
    op.create_index(
        "ix_tickets_unit_open_due",
        "tickets",
        ["unit_id", sa.text("(due_at IS NULL)"), "due_at", "id"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
        if_not_exists=True,
    )
    op.create_index(
        "ix_transition_log_trigger",
        "transition_log",
        ["trigger", "ticket_id"],
        unique=False,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_transition_log_trigger", table_name="transition_log")
    op.drop_index("ix_tickets_unit_open_due", table_name="tickets")
    op.drop_index("ix_tickets_assignee_open_due", table_name="tickets")
