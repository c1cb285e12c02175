"""Ladder steps in working days, calendar days or hours (``after = { unit = N }``, per
priority where the workflow has priorities; ``after_working_days = N`` still read), on the
sweep with the injected clock, on SQLite and PostgreSQL; and validation refusing an unknown
unit or a negative amount, naming the file and the step."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from engine import timers
from engine.clock import FixedClock
from engine.context import EngineContext, build_context
from engine.errors import WorkflowDefinitionError
from engine.models import Ticket, Timer
from engine.organisation import load_campaign_file
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor
from engine.workflow import TimeLimit, parse_workflow
from tests.integration.deadline_support import assigned_ticket

HOTLINE = "hotline-12345"
# Monday 2026-03-02, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CONSULTATION_NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def _level(ctx: EngineContext, number: str) -> int:
    with ctx.sessions() as s:
        level: int = s.scalars(select(Ticket.escalation_level).where(Ticket.number == number)).one()
        return level


def _pending(ctx: EngineContext, number: str) -> dict[int, datetime]:
    """The ticket's pending ladder timers: level -> due time."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(Timer.level, Timer.due_at)
            .join(Ticket, Ticket.id == Timer.ticket_id)
            .where(
                Ticket.number == number,
                Timer.kind != "warning",
                Timer.fired_at.is_(None),
                Timer.cancelled_at.is_(None),
            )
        ).all()
        return {level: due for level, due in rows}


def _sweep_at(ctx: EngineContext, at: datetime) -> None:
    timers.sweep(ctx, now=at)


@pytest.fixture
def hctx(engine: Engine) -> EngineContext:
    ctx = build_context(engine=engine, clock=FixedClock(MONDAY))
    with ctx.unit_of_work() as uow:
        load_campaign_file(uow, PROJECT_ROOT / "config" / "campaigns" / f"{HOTLINE}.toml")
    return ctx


def _dispatched(ctx: EngineContext, priority: str) -> tuple[str, datetime]:
    """A hotline call of ``priority`` dispatched at Monday 10:30; (number, its due time)."""
    at = MONDAY + timedelta(minutes=30)
    with ctx.unit_of_work() as uow:
        operator = get_actor(uow.session, "hotline.operator")
        number = create_ticket(
            uow,
            campaign=HOTLINE,
            text="Water main burst on Station Road",
            kind="complaint",
            priority=priority,
            actor=operator,
            now=MONDAY,
            source="phone",
        ).number
        fire(
            uow,
            number,
            "dispatch",
            actor=operator,
            data={"category": "noise", "unit": "security-brigade"},
            now=at,
        )
    with ctx.sessions() as s:
        due = s.scalars(select(Ticket.due_at).where(Ticket.number == number)).one()
    assert due is not None
    return number, due


def test_an_urgent_hotline_item_climbs_the_ladder_in_hours(hctx: EngineContext) -> None:
    number, due = _dispatched(hctx, "urgent")
    assert due == MONDAY + timedelta(minutes=30, hours=2)  # sign for within 2 hours
    # The hotline's ladder: breach at the due time, the duty supervisor 2 hours later, the
    # leadership 8 hours later (urgent), whatever the calendar says. Each step is armed when
    # the one below it fires.
    assert _pending(hctx, number) == {1: due}
    _sweep_at(hctx, due - timedelta(minutes=1))
    assert _level(hctx, number) == 0
    _sweep_at(hctx, due)
    assert _level(hctx, number) == 1
    assert _pending(hctx, number) == {2: due + timedelta(hours=2)}
    _sweep_at(hctx, due + timedelta(hours=2) - timedelta(seconds=1))
    assert _level(hctx, number) == 1
    _sweep_at(hctx, due + timedelta(hours=2))
    assert _level(hctx, number) == 2
    assert _pending(hctx, number) == {3: due + timedelta(hours=8)}
    _sweep_at(hctx, due + timedelta(hours=8))
    assert _level(hctx, number) == 3
    assert _pending(hctx, number) == {}  # the top of the ladder arms nothing


def test_an_ordinary_hotline_item_climbs_the_ladder_in_working_days(
    hctx: EngineContext,
) -> None:
    number, due = _dispatched(hctx, "ordinary")
    # Signed for within one working day: the end of Tuesday, local time.
    assert due == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    end_of_wednesday = datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    end_of_friday = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert _pending(hctx, number) == {1: due}
    # Two hours after the breach is the urgent items' step 2, not this one's.
    _sweep_at(hctx, due + timedelta(hours=2))
    assert _level(hctx, number) == 1
    assert _pending(hctx, number) == {2: end_of_wednesday}
    _sweep_at(hctx, end_of_wednesday - timedelta(seconds=1))
    assert _level(hctx, number) == 1
    _sweep_at(hctx, end_of_wednesday)
    assert _level(hctx, number) == 2
    assert _pending(hctx, number) == {3: end_of_friday}
    _sweep_at(hctx, end_of_friday)
    assert _level(hctx, number) == 3


CALENDAR_LADDER = """[ladder]
warning_before_hours = 24
steps = [
  { level = 1, after_working_days = 0, notify = ["assignee", "unit_leader"] },
  { level = 2, after = { calendar_days = 5 }, notify = ["supervisor"] },
  { level = 3, after = { hours = 200 }, notify = ["leadership"] },
]
"""


def _consultation_with(ladder: str) -> str:
    text = (PROJECT_ROOT / "workflows" / "consultation-v1.toml").read_text(encoding="utf-8")
    start = text.index("[ladder]")
    end = text.index("]\n", text.index("steps = [", start)) + 2
    return text[:start] + ladder + text[end:]


def test_calendar_day_and_hour_steps_on_the_sweep(engine: Engine, tmp_path: Path) -> None:
    wf = tmp_path / "workflows"
    wf.mkdir()
    for f in (PROJECT_ROOT / "workflows").glob("*.toml"):
        shutil.copy(f, wf)
    (wf / "consultation-v1.toml").write_text(_consultation_with(CALENDAR_LADDER), encoding="utf-8")
    ctx = build_context(
        engine=engine,
        clock=FixedClock(CONSULTATION_NOW),
        overrides={"workflows_dir": str(wf)},
    )
    with ctx.unit_of_work() as uow:
        number = assigned_ticket(uow, CONSULTATION_NOW)
    # Assigned Monday Feb 28: 10 working days -> due Tuesday March 15, 00:00 Shanghai.
    due = datetime(2005, 3, 14, 16, 0, tzinfo=UTC)
    # 5 calendar days later is Sunday March 20 (5 working days would be the end of Monday
    # March 21); 200 hours later is Wednesday March 23, 08:00 Shanghai.
    five_days = datetime(2005, 3, 19, 16, 0, tzinfo=UTC)
    assert _pending(ctx, number) == {1: due}
    _sweep_at(ctx, due)
    assert _level(ctx, number) == 1
    assert _pending(ctx, number) == {2: five_days}
    _sweep_at(ctx, five_days - timedelta(seconds=1))
    assert _level(ctx, number) == 1
    _sweep_at(ctx, five_days)  # a Sunday: a calendar day counts whether worked or not
    assert _level(ctx, number) == 2
    assert _pending(ctx, number) == {3: due + timedelta(hours=200)}
    _sweep_at(ctx, due + timedelta(hours=199))
    assert _level(ctx, number) == 2
    _sweep_at(ctx, due + timedelta(hours=200))
    assert _level(ctx, number) == 3


def test_the_old_spelling_and_the_new_are_the_same_step() -> None:
    old = parse_workflow(
        _toml(_consultation_with(CALENDAR_LADDER)), "consultation-v1.toml"
    ).ladder.steps[0]
    assert old.after == TimeLimit(0, "working_days")
    hotline = parse_workflow(
        _toml((PROJECT_ROOT / "workflows" / "hotline-v1.toml").read_text(encoding="utf-8")),
        "hotline-v1.toml",
    )
    step = hotline.ladder.steps[1]
    assert step.after_for("urgent") == TimeLimit(2, "hours")
    assert step.after_for("ordinary") == TimeLimit(1, "working_days")
    assert hotline.to_dict()["ladder"]["steps"][1]["after"] == {
        "urgent": {"hours": 2},
        "default": {"working_days": 1},
    }


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


BAD_LADDER = """[ladder]
warning_before_hours = 24
steps = [
  { level = 1, after = { fortnights = 1 }, notify = ["assignee"] },
  { level = 2, after = { hours = -3 }, notify = ["supervisor"] },
  { level = 3, after_working_days = -1, notify = ["leadership"] },
  { level = 4, after = { hours = 2 }, after_working_days = 1, notify = ["leadership"] },
  { level = 5, notify = ["leadership"] },
]
"""


def test_validate_refuses_unknown_units_and_negative_values_naming_file_and_step(
    tmp_path: Path,
) -> None:
    from cli import main

    path = tmp_path / "consultation-v9.toml"
    path.write_text(
        _consultation_with(BAD_LADDER).replace("version = 1", "version = 9"), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["workflow", "validate", str(path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"{path}: ladder step #1: after: 'fortnights' is neither a unit" in out
    assert f"{path}: ladder step #2: after.hours must be a whole number >= 0" in out
    assert f"{path}: ladder step #3: after_working_days must be a whole number >= 0" in out
    assert f"{path}: ladder step #4: give after or after_working_days, not both" in out
    assert f"{path}: ladder step #5: missing after" in out
    # Fixed, the same file is valid.
    good = BAD_LADDER
    for bad, fixed in (
        ("{ fortnights = 1 }", "{ hours = 0 }"),
        ("{ hours = -3 }", "{ hours = 3 }"),
        ("after_working_days = -1", "after_working_days = 1"),
        ("after = { hours = 2 }, after_working_days = 1", "after_working_days = 2"),
        ("{ level = 5, notify", "{ level = 5, after = { calendar_days = 9 }, notify"),
    ):
        good = good.replace(bad, fixed)
    path.write_text(
        _consultation_with(good).replace("version = 1", "version = 9"), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["workflow", "validate", str(path)])
    assert result.exit_code == 0, result.output


def test_a_step_must_not_come_before_the_one_below_it_in_the_same_unit() -> None:
    ladder = CALENDAR_LADDER.replace("{ calendar_days = 5 }", "{ hours = 300 }")
    with pytest.raises(WorkflowDefinitionError) as caught:
        parse_workflow(_toml(_consultation_with(ladder)), "c.toml")
    assert "c.toml: ladder step #3: after must not decrease along the ladder" in str(
        caught.value.message
    )
