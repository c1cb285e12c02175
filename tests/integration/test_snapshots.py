"""Daily snapshots of the report: a past day reads from its snapshot with the same figures; a
back-dated write makes the days it touches stale, and they are computed from the log again."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import ReportSnapshot
from engine.report import campaign_report
from engine.snapshots import take_snapshots
from engine.tickets import create_ticket, get_actor
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
