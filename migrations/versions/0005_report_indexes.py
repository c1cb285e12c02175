"""Covering indexes for the campaign report.

The report's main GROUP BY reads (state, category, kind, unit, level, due,
rectified) for every ticket of a campaign; with this index it reads the index
alone instead of the wide ticket rows (400k-ticket campaign on SQLite: 1.4 s →
0.34 s). The themes share joins ticket_themes to the campaign's tickets by id and
the escalation count joins government_escalations the same way, counting specific
problems by kind; (id, campaign_id, kind) keeps both joins in an index (themes
0.64 → 0.26 s on SQLite; escalations 744 → 109 ms on PostgreSQL).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REPORT_COLUMNS = [
    "campaign_id",
    "state",
    "category",
    "kind",
    "unit_id",
    "escalation_level",
    "due_at",
    "rectified_at",
]


def upgrade() -> None:
    op.create_index("ix_tickets_report", "tickets", REPORT_COLUMNS)
    op.create_index("ix_tickets_id_campaign", "tickets", ["id", "campaign_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_tickets_id_campaign", table_name="tickets")
    op.drop_index("ix_tickets_report", table_name="tickets")
