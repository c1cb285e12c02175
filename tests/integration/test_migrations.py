"""The migrations build exactly the schema engine/models.py declares, and go down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from engine import db
from engine.models import Base

# SQLite reflection cannot read the expression indexes of migration 0003 back; they are
# compared on PostgreSQL.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index"),
    pytest.mark.filterwarnings(
        "ignore:autogenerate skipping metadata-specified expression-based index"
    ),
]


def _differences(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        conn.rollback()
    return diffs


def test_models_match_the_migrated_database(engine: Engine) -> None:
    assert _differences(engine) == []


def test_downgrade_to_the_first_revision_and_back(engine: Engine) -> None:
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    db.upgrade(engine)
    assert db.current_revision(engine) is not None
    assert _differences(engine) == []
