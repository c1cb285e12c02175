"""Two languages: each user's chosen locale, and Chinese names of units, campaigns, categories.

``name`` stays the English name; ``name_zh`` is the Chinese one. Rows loaded
before this revision have no Chinese name until the organisation and campaign
files are loaded again (``rectiflow demo`` does); pages fall back to ``name``.

Revision ID: 0010
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("locale", sa.String(length=16), nullable=True))
    op.add_column("units", sa.Column("name_zh", sa.String(length=200), nullable=True))
    op.add_column("campaigns", sa.Column("name_zh", sa.String(length=300), nullable=True))
    op.add_column("categories", sa.Column("name_zh", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (no table copy, foreign keys untouched).
    op.drop_column("categories", "name_zh")
    op.drop_column("campaigns", "name_zh")
    op.drop_column("units", "name_zh")
    op.drop_column("users", "locale")
