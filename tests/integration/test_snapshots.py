"""Daily snapshots of the report: a past day reads from its snapshot with the same figures; a
back-dated write makes the days it touches stale, and they are computed from the log again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import FixedClock
from engine.context import build_context
from engine.errors import ValidationError
from engine.models import ReportSnapshot
from engine.organisation import load_campaign_file
from engine.report import campaign_report
from engine.settings import PROJECT_ROOT
from engine.snapshots import take_snapshots
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow
from tests.integration.test_report import _build

CAMPAIGN = "consultation-2005"
MARCH_21 = datetime(2005, 3, 21, 2, tzinfo=UTC)


def _strip(report: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in report.items() if k != "snapshot_computed_at"}


def test_snapshots_answer_past_days_with_the_same_figures(
    session: Session, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    _build(as_uow(session), actor, now)
    live = {
        day: campaign_report(as_uow(session), CAMPAIGN, as_of=day, use_snapshot=False)
        for day in ("2005-02-28", "2005-03-10", "2005-03-20")
    }
    days = take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21)
    session.commit()
    assert days[0] == date(2005, 2, 25) and days[-1] == date(2005, 3, 20)  # the 21st is not over
    for day, report in live.items():
        kept = campaign_report(as_uow(session), CAMPAIGN, as_of=day)
        assert "snapshot_computed_at" in kept
        assert _strip(kept) == report
    # Taking them again computes nothing new.
    assert take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21) == []
    assert session.scalar(select(func.count()).select_from(ReportSnapshot)) == len(days)
    # An instant (not a day) is always computed from the log.
    assert "snapshot_computed_at" not in campaign_report(
        as_uow(session), CAMPAIGN, as_of="2005-03-10T12:00:00+08:00"
    )


def test_a_back_dated_write_makes_the_snapshot_stale(
    session: Session, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    _build(as_uow(session), actor, now)
    take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21)
    session.commit()
    before = campaign_report(as_uow(session), CAMPAIGN, as_of="2005-03-10")
    create_ticket(
        as_uow(session),
        campaign=CAMPAIGN,
        text="recorded late, dated March 5",
        actor=get_actor(session, "clerk"),
        now=datetime(2005, 3, 5, 2, tzinfo=UTC),
    )
    session.commit()
    after = campaign_report(as_uow(session), CAMPAIGN, as_of="2005-03-10")
    assert "snapshot_computed_at" not in after  # stale: computed from the log
    assert after["total"] == before["total"] + 1
    # Days before the back-dated row stay fresh.
    assert "snapshot_computed_at" in campaign_report(as_uow(session), CAMPAIGN, as_of="2005-03-01")
    # The next run computes the stale days again.
    again = take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21)
    assert again[0] == date(2005, 3, 5)


def test_as_of_a_day_counts_the_unit_the_ticket_had_that_day(
    session: Session, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    numbers = _build(as_uow(session), actor, now)
    # "early" was assigned to Luohe station on February 28 and reopened there on March 20;
    # on March 21 it moves to the public security brigade.
    moved = MARCH_21 + timedelta(hours=1)
    fire(
        as_uow(session),
        numbers["early"],
        "reassign",
        actor=actor("supervisor"),
        data={"unit": "security-brigade", "officer": "security.officer", "reason": "Thefts"},
        now=moved,
    )
    session.commit()
    later = moved + timedelta(hours=1)
    take_snapshots(as_uow(session), CAMPAIGN, now=later, days=[date(2005, 3, 20)])
    session.commit()
    from_log = campaign_report(
        as_uow(session), CAMPAIGN, as_of="2005-03-20", now=later, use_snapshot=False
    )
    kept = campaign_report(as_uow(session), CAMPAIGN, as_of="2005-03-20", now=later)
    assert "snapshot_computed_at" in kept
    for report in (from_log, kept):
        assert report["by_unit"].get("luohe-station") == 2
        assert "security-brigade" not in report["by_unit"]
    for report in (
        campaign_report(as_uow(session), CAMPAIGN, as_of="2005-03-21", now=later),
        campaign_report(as_uow(session), CAMPAIGN, now=later),
    ):
        assert report["by_unit"]["luohe-station"] == 1
        assert report["by_unit"]["security-brigade"] == 1


def test_snapshots_of_chosen_days_only_and_refused_outside_the_campaign(
    session: Session, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    _build(as_uow(session), actor, now)
    assert take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21, days=[date(2005, 3, 10)]) == [
        date(2005, 3, 10)
    ]
    assert session.scalar(select(func.count()).select_from(ReportSnapshot)) == 1
    with pytest.raises(ValidationError, match="a day of campaign 'consultation-2005' that is over"):
        take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21, days=[date(2005, 3, 21)])
    with pytest.raises(ValidationError, match="2005-02-24"):
        take_snapshots(as_uow(session), CAMPAIGN, now=MARCH_21, days=[date(2005, 2, 24)])
    assert session.scalar(select(func.count()).select_from(ReportSnapshot)) == 1


HOTLINE = "hotline-12345"
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def test_as_of_a_day_counts_the_category_and_unit_the_ticket_had_that_day(engine) -> None:  # type: ignore[no-untyped-def]
    """A hotline ticket dispatched as noise to Luohe station on Monday, sent back and
    dispatched again as traffic to the traffic brigade on Tuesday: as of Monday (from the log
    and from Monday's snapshot) it is noise at Luohe, as of Tuesday traffic at the brigade."""
    tuesday = MONDAY + timedelta(days=1)
    ctx = build_context(engine=engine, clock=FixedClock(tuesday + timedelta(hours=2)))
    with ctx.unit_of_work() as uow:
        load_campaign_file(uow, PROJECT_ROOT / "config" / "campaigns" / f"{HOTLINE}.toml")
    with ctx.unit_of_work() as uow:
        operator = get_actor(uow.session, "hotline.operator")
        number = create_ticket(
            uow, campaign=HOTLINE, text="Loud music", kind="complaint", actor=operator, now=MONDAY
        ).number
    steps = [
        (
            MONDAY + timedelta(minutes=30),
            "dispatch",
            "hotline.operator",
            {"category": "noise", "unit": "luohe-station"},
        ),
        (tuesday, "send_back", "luohe.officer", {"reason": "Not ours: a road matter."}),
        (
            tuesday + timedelta(minutes=30),
            "dispatch",
            "hotline.operator",
            {"category": "traffic", "unit": "traffic-brigade"},
        ),
    ]
    for at, trigger, who, data in steps:
        with ctx.unit_of_work() as uow:
            fire(uow, number, trigger, actor=get_actor(uow.session, who), data=data, now=at)
    with ctx.unit_of_work() as uow:
        assert take_snapshots(uow, HOTLINE, days=[date(2026, 3, 2)]) == [date(2026, 3, 2)]
    with ctx.unit_of_work() as uow:
        from_log = campaign_report(uow, HOTLINE, as_of="2026-03-02", use_snapshot=False)
        kept = campaign_report(uow, HOTLINE, as_of="2026-03-02")
        assert "snapshot_computed_at" in kept
        for report in (from_log, kept):
            assert (report["by_category"]["noise"], report["by_category"]["traffic"]) == (1, 0)
            assert report["by_unit"] == {"luohe-station": 1}
        for report in (
            campaign_report(uow, HOTLINE, as_of="2026-03-03"),
            campaign_report(uow, HOTLINE),
        ):
            assert (report["by_category"]["noise"], report["by_category"]["traffic"]) == (0, 1)
            assert report["by_unit"] == {"traffic-brigade": 1}


def test_report_snapshots_command_keeps_the_days_named(sqlite_url: str) -> None:
    """`rectiflow report-snapshots --day D` keeps only D; a day not over is refused, nothing
    kept; without --day every day that is over."""
    from click.testing import CliRunner

    from cli import main

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(
            main, ["--database-url", sqlite_url, "--now", "2005-03-01T10:00+08:00", *args]
        )

    one = run("report-snapshots", "--campaign", "consultation-2005", "--day", "2005-02-26")
    assert one.exit_code == 0, one.output
    assert "1 day(s) computed and kept for consultation-2005" in one.output
    future = run("report-snapshots", "--campaign", "consultation-2005", "--day", "2005-03-05")
    assert future.exit_code == 2 and "2005-03-05" in future.output
    bad = run("report-snapshots", "--campaign", "consultation-2005", "--day", "26/02/2005")
    assert bad.exit_code == 2 and "--day" in bad.output
    # The rest of the days that are over (Feb 25, 27, 28), the kept one not again.
    rest = run("report-snapshots", "--campaign", "consultation-2005")
    assert rest.exit_code == 0 and "3 day(s) computed" in rest.output, rest.output
