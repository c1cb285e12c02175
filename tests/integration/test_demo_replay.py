"""The replay of the report's campaign reproduces the report's figures from the data."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from demo.consultation_2005 import replay_campaign
from engine import db
from engine.audit import verify
from engine.context import build_context
from engine.models import TransitionLog
from engine.report import campaign_report, render_text

CAMPAIGN = "consultation-2005"


# SQLite only: the replay is ~2,500 engine writes (a minute or more on PostgreSQL on a busy
# machine); the report's SQL is covered on both databases by test_report.py.
@pytest.mark.slow
def test_replay_reproduces_the_report(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    try:
        ctx = build_context(engine=engine)
        with ctx.unit_of_work() as uow:
            summary = replay_campaign(uow, CAMPAIGN)
            uow.commit()
            assert summary.made == 268
            assert replay_campaign(uow, CAMPAIGN).made == 0  # a second run makes nothing

        with ctx.unit_of_work() as uow:
            report = campaign_report(uow, CAMPAIGN, as_of="2005-03-31")
            assert report["total"] == 268
            assert report["by_category"] == {
                "team_building": 76,
                "service_economy": 31,
                "law_enforcement": 28,
                "public_security_management": 81,
                "traffic_management": 46,
                "outside_duties": 6,
            }
            assert report["outside_duties"] == 6
            assert report["specific_problems"] == {
                "total": 42,
                "solved_by_deadline": 39,
                "solved_after_deadline": 0,
                "escalated_to_government": 3,
                "fed_back": 42,
            }
            assert report["solved_by_deadline"] == 39
            assert report["escalated_to_government"] == 3
            assert report["fed_back"] == 268
            assert report["fed_back"] - report["specific_problems"]["total"] == 226
            assert report["overdue"]["total"] == 0
            shares = {tag: round(100 * t["share"]) for tag, t in report["themes"].items()}
            assert shares["theft"] == 36
            assert shares["gambling"] == 28
            assert shares["slow_police_response"] == 42

            # As of March 17 (before the deadline): 39 solved, 3 escalated, comments still open.
            before = campaign_report(uow, CAMPAIGN, as_of="2005-03-17")
            assert before["specific_problems"]["solved_by_deadline"] == 39
            assert before["escalated_to_government"] == 3
            assert before["solved_after_deadline"] == 0
            assert before["fed_back"] < 268
            # As of the visits' first day only the first opinions exist, none sorted yet.
            first_day = campaign_report(uow, CAMPAIGN, as_of="2005-02-25")
            assert 0 < first_day["total"] < 268
            assert first_day["by_state"]["received"] == first_day["total"]

            text = render_text(report)
            assert "Opinions recorded: 268" in text
            assert "solved before the deadline 39" in text
            json.dumps(report)
            assert verify(uow.session) == []
            rows = uow.session.scalar(select(func.count()).select_from(TransitionLog))
            assert rows and rows > 268 * 3
    finally:
        engine.dispose()
