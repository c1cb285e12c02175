"""Notices rendered in the reader's language: a message id and its parameters.

The notices to whoever must act (assignment, reassignment, a reopen, a returned item)
store what the pages need to write them in zh_CN or en; ``subject`` and ``body`` keep
the English text that e-mail and the API use. Older notices have neither and are
translated from their English sentence as before.

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("message_id", sa.String(length=64), nullable=True))
    op.add_column("notifications", sa.Column("params", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "params")
    op.drop_column("notifications", "message_id")
