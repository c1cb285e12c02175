"""Administration: the append-only, hash-chained admin log; a forced password change; closing intake.

Revision ID: 0013
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None

# Like transition_log (0001): the database itself refuses UPDATE and DELETE on the admin log.
APPEND_ONLY_MESSAGE = "admin_log is append-only: rows cannot be updated or deleted"


def upgrade() -> None:
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_log"),
        sa.UniqueConstraint("seq", name="uq_admin_log_seq"),
    )
    # Plain ADD/DROP COLUMN (SQLite has both since 3.35): a batch copy of users would trip the
    # foreign keys that point at it.
    op.add_column(
        "users",
        sa.Column(
            "must_change_password", sa.Boolean(), nullable=False, server_default=sa.text("false")
        ),
    )
    op.add_column("campaigns", sa.Column("intake_closed_at", sa.DateTime(timezone=True)))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER admin_log_no_{action.lower()} BEFORE {action} ON admin_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION admin_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER admin_log_no_change BEFORE UPDATE OR DELETE ON admin_log "
            "FOR EACH ROW EXECUTE FUNCTION admin_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER admin_log_no_truncate BEFORE TRUNCATE ON admin_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION admin_log_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS admin_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS admin_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS admin_log_no_change ON admin_log")
        op.execute("DROP TRIGGER IF EXISTS admin_log_no_truncate ON admin_log")
        op.execute("DROP FUNCTION IF EXISTS admin_log_append_only()")
    op.drop_column("campaigns", "intake_closed_at")
    op.drop_column("users", "must_change_password")
    op.drop_table("admin_log")
