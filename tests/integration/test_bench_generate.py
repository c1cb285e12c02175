"""The benchmark generator writes what the engine would: chains that verify, versions equal to
log lengths, and nothing due at the generated "now"."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bench.generate import ACTIVE_CAMPAIGN, BENCH_NOW, generate, prepare_database
from engine import audit
from engine.models import Campaign, Ticket
from engine.timers import due_count

pytestmark = pytest.mark.slow


def test_generated_province_verifies_and_has_nothing_due(tmp_path: Path) -> None:
    engine = prepare_database(f"sqlite:///{tmp_path / 'province.db'}", fresh=True)
    result = generate(engine, tickets=600, campaigns=3, counties=2, progress=False)
    assert result["rows"]["tickets"] == 600
    assert result["rows"]["transition_log"] > 2 * 600
    with Session(engine) as session:
        assert audit.verify(session) == []
        mismatched = session.execute(
            text(
                "SELECT count(*) FROM tickets t WHERE t.version <> "
                "(SELECT count(*) FROM transition_log l WHERE l.ticket_id = t.id)"
            )
        ).scalar()
        assert mismatched == 0
        assert due_count(session, now=BENCH_NOW) == 0
        states = set(session.scalars(select(Ticket.state).distinct()))
        assert {"fed_back", "assigned"} <= states
        active = session.scalars(select(Campaign).where(Campaign.code == ACTIVE_CAMPAIGN)).one()
        in_active = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.campaign_id == active.id)
        )
        assert active.ticket_seq == in_active
    engine.dispose()
