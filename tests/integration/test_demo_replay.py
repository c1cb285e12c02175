"""The replay of the report's campaign: planned to the report's figures, then the report is
computed from what it wrote. A perturbed plan moves the figures; "as of" any day they are
what the log and the timers said that day."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from demo.consultation_2005 import (
    EXTENDED,
    MEASURES_IMPLEMENTED,
    Opinion,
    plan_opinions,
    replay_campaign,
)
from engine import db
from engine.audit import verify
from engine.context import EngineContext, UnitOfWork, build_context
from engine.draft import docx_text, write_draft
from engine.errors import ValidationError
from engine.models import Extension, Ticket, TransitionLog
from engine.report import campaign_report, render_text
from engine.workflow import default_registry
from tests.conftest import load_phases

CAMPAIGN = "consultation-2005"
ZONE = ZoneInfo("Asia/Shanghai")
LADDER_EVENTS = ("overdue", "escalated")
CLOCK_EVENTS = ("extension_approved",)


def _replay(
    sqlite_url: str, plan: list[Opinion] | None = None, lang: str = "zh_CN"
) -> EngineContext:
    ctx = build_context(engine=db.make_engine(sqlite_url))
    with ctx.unit_of_work() as uow:
        load_phases(uow)
        summary = replay_campaign(uow, CAMPAIGN, plan=plan, lang=lang)
        assert summary.made == 268
    return ctx


def _ladder_rows(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Ticket.number, func.count())
        .join(TransitionLog, TransitionLog.ticket_id == Ticket.id)
        .where(TransitionLog.trigger.in_(LADDER_EVENTS))
        .group_by(Ticket.number)
    )
    return {number: int(n) for number, n in rows}


# SQLite only: the replay is ~1,500 engine writes (a minute or more on PostgreSQL on a busy
# machine); the report's SQL is covered on both databases by test_report.py.
@pytest.mark.slow
def test_replay_reproduces_the_report(sqlite_url: str) -> None:
    ctx = _replay(sqlite_url)
    try:
        with ctx.unit_of_work() as uow:
            session = uow.session
            assert replay_campaign(uow, CAMPAIGN).made == 0  # a second run makes nothing
            # The plan marks nothing late: not one ladder step fired.
            assert _ladder_rows(session) == {}
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(Extension)
                    .where(Extension.status == "approved")
                )
                == EXTENDED
            )
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
                "overdue": 0,
                "statement": "39 of 42 solved before March 18; "
                "3 reported to the Party committee and government",
            }
            # Every rectified item was rectified before March 18, except the extended ones.
            rectified = [
                op for op in plan_opinions() if op.path in ("solved", "comment", "extended")
            ]
            assert report["solved_by_deadline"] == len(rectified) - EXTENDED
            assert report["solved_after_deadline"] == EXTENDED
            assert report["escalated_to_government"] == 3
            assert report["fed_back"] == 268
            assert report["measures_implemented"] == MEASURES_IMPLEMENTED == 226
            assert report["extended"] == EXTENDED
            assert report["late"] == 0
            assert report["overdue"]["total"] == 0
            assert report["satisfaction"]["satisfied"] == 3
            shares = {tag: round(100 * t["share"]) for tag, t in report["themes"].items()}
            assert shares["theft"] == 36
            assert shares["gambling"] == 28
            assert shares["slow_police_response"] == 42

            # Nothing is overdue on any day of the campaign, visits included (the sorting
            # phase holds the "received" clock until March 8).
            for day in ("2005-03-05", "2005-03-09", "2005-03-17", "2005-03-20", "2005-03-28"):
                assert campaign_report(uow, CAMPAIGN, as_of=day)["overdue"]["total"] == 0
            before = campaign_report(uow, CAMPAIGN, as_of="2005-03-17")
            assert before["specific_problems"]["solved_by_deadline"] == 39
            assert before["escalated_to_government"] == 3
            assert before["solved_after_deadline"] == 0
            assert before["phase"]["code"] == "rectification"
            assert before["fed_back"] == 268 - EXTENDED
            first_day = campaign_report(uow, CAMPAIGN, as_of="2005-02-25")
            assert 0 < first_day["total"] < 268
            assert first_day["by_state"]["received"] == first_day["total"]
            assert first_day["phase"]["code"] == "collection"

            # Chinese is the bureau's language: the texts are stored in Chinese.
            texts = session.scalars(select(Ticket.text).limit(5)).all()
            assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts)

            text = render_text(report)
            assert "Opinions recorded: 268" in text
            assert "39 of 42 solved before March 18" in text
            json.dumps(report)

            # The situation report drafted from the replay carries the report's figures.
            buffer = io.BytesIO()
            write_draft(uow, CAMPAIGN, buffer, as_of="2005-03-31")
            draft = docx_text(buffer.getvalue())
            for figure in (
                "共梳理意见建议268条",
                "队伍建设76条，服务经济31条，执法执勤28条，治安管理81条，交通管理46条",
                "不属公安职责范围的6条",
                "群众要求解决的具体问题或案件42件",
                "截至2005年3月18日，已解决群众要求解决的具体问题或案件39件（共42件）",
                "3个具体问题及时报告党委、政府",
                "226条意见建议的整改措施全部落实",
                "36%的群众反映盗窃",
                "28%的群众反映赌博",
                "42%的群众反映110接处警弱化、出警慢",
                "2005年2月25日至2005年3月7日",  # the visits
                "梳理分解，落实责任（3月8日会议）：2005年3月8日。",
                "意见建议已全部反馈，无逾期事项",
            ):
                assert figure in draft, figure
            # The cases are the ones a supervisor marked exemplary, with their measures.
            assert "身份证已专程送到南京交徐启泉本人" in draft
            assert "帮助英朗集团、国土所等单位安装红外线报警装置" in draft
            assert "这是第一次有公安机关回来反馈" in draft  # a satisfied citizen's words
            english = io.BytesIO()
            write_draft(uow, CAMPAIGN, english, as_of="2005-03-31", lang="en")
            assert "39 of the 42 specific problems" in docx_text(english.getvalue())
            with pytest.raises(ValidationError, match="no draft in language 'de'"):
                write_draft(uow, CAMPAIGN, io.BytesIO(), as_of="2005-03-31", lang="de")
            assert verify(session, key=ctx.audit_key) == []
    finally:
        ctx.dispose()


def _perturbed() -> tuple[list[Opinion], int, int]:
    """One specific problem fed back on March 19; one extension refused (and the item not
    fed back within the campaign). Both marked late in the plan."""
    plan = plan_opinions()
    problem = next(op for op in plan if op.path == "solved" and not op.exemplary)
    hard = next(op for op in plan if op.path == "extended")
    march_19 = datetime(2005, 3, 19, 9, tzinfo=ZONE)
    plan[problem.index] = replace(
        problem, rectify_at=march_19, feed_back_at=march_19 + timedelta(hours=6), late=True
    )
    plan[hard.index] = replace(
        hard, extension_refused=True, rectify_at=None, feed_back_at=None, late=True
    )
    return plan, problem.index, hard.index


def _expected_from_log(session: Session, cutoff: datetime) -> dict[str, object]:
    """The figures as of ``cutoff`` worked out by hand from the log alone: each ticket's
    last row before it gives the state; a ticket is overdue when its latest ``overdue``
    event came after the last change of its clock (a state change or an approved
    extension), and its level is the highest ladder level logged since that change."""
    finals = default_registry().get("consultation", 1).final_states
    rows = session.execute(
        select(
            TransitionLog.ticket_id,
            TransitionLog.trigger,
            TransitionLog.from_state,
            TransitionLog.to_state,
            TransitionLog.data,
        )
        .where(TransitionLog.at < cutoff)
        .order_by(TransitionLog.ticket_id, TransitionLog.seq)
    )
    state: dict[int, str] = {}
    level: dict[int, int] = defaultdict(int)
    overdue: dict[int, bool] = defaultdict(bool)
    for r in rows:
        state[r.ticket_id] = r.to_state
        if (r.from_state != r.to_state) or r.trigger in CLOCK_EVENTS:
            overdue[r.ticket_id], level[r.ticket_id] = False, 0
        if r.trigger in LADDER_EVENTS:
            overdue[r.ticket_id] = True
            level[r.ticket_id] = max(level[r.ticket_id], json.loads(r.data)["level"])
    open_overdue = [t for t, s in state.items() if s not in finals and overdue[t]]
    by_level: dict[str, int] = defaultdict(int)
    for t in open_overdue:
        by_level[str(level[t])] += 1
    by_state: dict[str, int] = defaultdict(int)
    for s in state.values():
        by_state[s] += 1
    return {
        "total": len(state),
        "fed_back": sum(1 for s in state.values() if s in finals),
        "overdue": len(open_overdue),
        "by_level": dict(sorted(by_level.items())),
        "by_state": {k: v for k, v in by_state.items() if v},
    }


@pytest.mark.slow
def test_a_perturbed_plan_moves_the_figures_and_as_of_follows_the_log(sqlite_url: str) -> None:
    plan, problem, hard = _perturbed()
    ctx = _replay(sqlite_url, plan)
    try:
        with ctx.unit_of_work() as uow:
            session = uow.session
            numbers = {
                r.external_key: r.number
                for r in session.execute(select(Ticket.external_key, Ticket.number))
            }
            late_numbers = {numbers[f"demo-{i + 1:04d}"] for i in (problem, hard)}
            # Ladder steps fired for the two items the plan marks late, and for no other.
            ladder = _ladder_rows(session)
            assert set(ladder) == late_numbers
            assert ladder[numbers[f"demo-{hard + 1:04d}"]] == 3  # overdue, supervisor, leadership

            report = campaign_report(uow, CAMPAIGN, as_of="2005-03-31")
            sp = report["specific_problems"]
            assert (sp["solved_by_deadline"], sp["total"]) == (38, 42)
            assert sp["solved_after_deadline"] == 1
            assert sp["statement"].startswith("38 of 42 solved before March 18")
            assert report["overdue"]["total"] == 1
            assert report["overdue"]["by_level"] == {"3": 1}
            assert report["measures_implemented"] == 225
            assert report["extended"] == EXTENDED - 1
            assert report["late"] == 1  # the problem fed back on March 19

            # As of several days, every figure is what the log said that day.
            for day in (3, 8, 17, 18, 19, 21, 24, 31):
                cutoff = datetime.combine(
                    datetime(2005, 3, day).date() + timedelta(days=1), time(0), tzinfo=ZONE
                ).astimezone(UTC)
                got = campaign_report(uow, CAMPAIGN, as_of=f"2005-03-{day:02d}")
                want = _expected_from_log(session, cutoff)
                assert got["total"] == want["total"], day
                assert got["fed_back"] == want["fed_back"], day
                assert got["overdue"]["total"] == want["overdue"], day
                assert got["overdue"]["by_level"] == want["by_level"], day
                assert {k: v for k, v in got["by_state"].items() if v} == want["by_state"], day
            buffer = io.BytesIO()
            write_draft(uow, CAMPAIGN, buffer, as_of="2005-03-31")
            draft = docx_text(buffer.getvalue())
            assert "已解决群众要求解决的具体问题或案件38件（共42件）" in draft
            assert "225条意见建议的整改措施全部落实" in draft
            assert "尚有1条意见建议未反馈，其中逾期1条" in draft
            assert "逾期后办结的1条" in draft
            # March 18: both late items are overdue; March 20: only the refused one.
            assert campaign_report(uow, CAMPAIGN, as_of="2005-03-18")["overdue"]["total"] == 2
            assert campaign_report(uow, CAMPAIGN, as_of="2005-03-20")["overdue"]["total"] == 1
    finally:
        ctx.dispose()


@pytest.mark.slow
def test_the_english_demo_writes_the_english_rendering(sqlite_url: str) -> None:
    ctx = _replay(sqlite_url, lang="en")
    try:
        with ctx.unit_of_work() as uow:
            session = uow.session
            texts = session.scalars(select(Ticket.text)).all()
            assert all(t.isascii() for t in texts)
            assert any("Xu Qiquan" in t for t in texts)
    finally:
        ctx.dispose()


def test_an_unknown_demo_language_is_refused(uow: UnitOfWork) -> None:
    with pytest.raises(ValueError, match="unknown language 'fr'; use one of zh_CN, en"):
        replay_campaign(uow, CAMPAIGN, lang="fr")
