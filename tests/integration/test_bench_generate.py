"""The benchmark generator writes what the engine would: chains that verify, versions equal to
log lengths, and nothing due at the generated "now"."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bench.generate import ACTIVE_CAMPAIGN, BENCH_NOW, generate, prepare_database
from engine import audit, deadlines
from engine.models import Campaign, Ticket, Timer, TransitionLog
from engine.timers import due_count
from engine.workflow import default_registry
from tests.conftest import as_uow

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
        # what the engine writes: the sweep's event names, the deadlines' rules and timers
        system_events = set(
            session.scalars(
                text("SELECT DISTINCT trigger FROM transition_log WHERE actor = 'system'")
            )
        )
        assert system_events and system_events <= {"deadline_warning", "overdue", "escalated"}
        workflow = default_registry().get("consultation", 1)
        clock = deadlines.campaign_clock(as_uow(session), active.id)
        checked = kept = 0
        for t in session.execute(
            select(Ticket.id, Ticket.state, Ticket.due_at, Ticket.due_rule).where(
                Ticket.campaign_id == active.id, Ticket.due_at.is_not(None)
            )
        ).all()[:50]:
            entered_at = session.scalar(  # the clock started when the ticket entered its state
                select(TransitionLog.at)
                .where(
                    TransitionLog.ticket_id == t.id,
                    TransitionLog.from_state.is_distinct_from(TransitionLog.to_state),
                )
                .order_by(TransitionLog.seq.desc())
                .limit(1)
            )
            due = deadlines.state_due(workflow.states[t.state], clock, entered_at)
            assert due is not None and (due.at, due.rule) == (t.due_at, t.due_rule)
            timers = session.execute(
                select(Timer.kind, Timer.level, Timer.due_at, Timer.created_at)
                .where(Timer.ticket_id == t.id)
                .order_by(Timer.due_at, Timer.level)
            ).all()
            assert [tuple(x[:3]) for x in timers] == deadlines.timers_by(
                due.at, workflow.ladder, clock, entered_at, BENCH_NOW
            )
            # Dated when the clock started: the entry into this state, or an earlier entry
            # whose clock this one kept (the same due time: engine.deadlines.keeps_clock).
            (since,) = {x.created_at for x in timers}
            assert since <= entered_at
            if since < entered_at:
                earlier = session.scalar(
                    select(TransitionLog.to_state).where(
                        TransitionLog.ticket_id == t.id, TransitionLog.at == since
                    )
                )
                assert earlier is not None
                kept_due = deadlines.state_due(workflow.states[earlier], clock, since)
                assert kept_due is not None and kept_due.at == t.due_at
                kept += 1
            checked += 1
        assert checked and kept
    engine.dispose()
