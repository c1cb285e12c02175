"""index for Open311's request list: a campaign's tickets by time received

``GET /open311/v2/requests`` lists a campaign's requests received in a window of at
most 90 days, newest first, at most 1,000. With (campaign_id, received_at, id) that
is a range scan read backwards that stops after the page, whatever the campaign's size.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_campaign_received",
        "tickets",
        ["campaign_id", "received_at", "id"],
        unique=False,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_campaign_received", table_name="tickets")
