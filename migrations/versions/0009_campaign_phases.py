"""Campaign phases: collection, sorting, rectification... each with its dates and the
workflow states whose time limits it governs (their clock starts no earlier than the
phase's first day). Phases carry a Chinese name (``name_zh``) beside the
English one, as campaigns and categories do (migration 0010). ``report_snapshots`` keeps the campaign
report as of the end of each day, so a past day reads in a moment at a million tickets.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("governs", sa.String(length=500), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_phases_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_phases")),
        sa.UniqueConstraint("campaign_id", "code", name=op.f("uq_campaign_phases_campaign_id")),
    )
    op.create_table(
        "report_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("log_high_water", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_report_snapshots_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_snapshots")),
        sa.UniqueConstraint("campaign_id", "day", name=op.f("uq_report_snapshots_campaign_id")),
    )


def downgrade() -> None:
    op.drop_table("report_snapshots")
    op.drop_table("campaign_phases")
