"""Programmes and priorities: a campaign may be a continuous service (no end, no deadline);
tickets carry a priority (a hotline's urgent items are due in hours); tickets are found by
workflow version (version migration).

A continuous programme keeps ``ends_on`` and ``rectification_deadline`` filled with an
open end (engine.models.OPEN_END, NO_DEADLINE) rather than NULL: making them nullable would
rebuild ``campaigns`` on SQLite, which the tickets and categories pointing at it forbid.

Revision ID: 0012
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("continuous", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column("tickets", sa.Column("priority", sa.String(32), nullable=True))
    op.create_index(
        "ix_tickets_workflow", "tickets", ["workflow_name", "workflow_version", "state", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_workflow", table_name="tickets")
    # Plain ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35+): nothing is rebuilt.
    op.execute("ALTER TABLE tickets DROP COLUMN priority")
    op.execute("ALTER TABLE campaigns DROP COLUMN continuous")
