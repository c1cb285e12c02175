"""The campaign report on a small campaign built through the engine: figures, as-of, formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.citizen import answer_feedback, decide_reopen_request
from engine.errors import NotFound, ValidationError
from engine.models import Ticket, TransitionLog
from engine.report import campaign_report, render_text, resolve_as_of, write_report
from engine.tickets import create_ticket, fire

CAMPAIGN = "consultation-2005"
# The test clock stands at Feb 28; a report as of a later day is asked after it (issue 14:
# an as-of in the future is refused).
AFTER = datetime(2005, 4, 1, tzinfo=UTC)
KEYS = {
    "total",
    "by_category",
    "by_kind",
    "by_unit",
    "by_state",
    "fed_back",
    "solved_by_deadline",
    "solved_after_deadline",
    "escalated_to_government",
    "overdue",
    "satisfaction",
    "themes",
}


def _build(uow, actor, now: datetime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    session = uow.session
    clerk, boss = actor("clerk"), actor("supervisor")
    officer = actor("luohe.officer")

    def new(text: str, kind: str, themes: tuple[str, ...] = ()) -> tuple[str, str]:
        created = create_ticket(
            uow,
            campaign=CAMPAIGN,
            text=text,
            kind=kind,
            area="Luohe",
            actor=clerk,
            now=now,
            themes=themes,
        )
        return created.number, created.secret

    early, early_secret = new("Theft near the market", "request", ("theft",))
    late, _ = new("Gambling in the tea house", "criticism", ("gambling", "theft"))
    gov, _ = new("The village road needs repairing", "request")
    open_, _ = new("=cmd|' /C calc'!A0", "suggestion", ('=HYPERLINK("x")',))
    t1 = now + timedelta(hours=2)
    for number, category in (
        (early, "public_security_management"),
        (late, "public_security_management"),
        (gov, "outside_duties"),
    ):
        fire(
            uow,
            number,
            "categorize",
            actor=clerk,
            data={"category": category, "kind": "request" if number != late else "criticism"},
            now=t1,
        )
    for number in (early, late):
        fire(
            uow,
            number,
            "assign",
            actor=boss,
            data={"unit": "luohe-station", "officer": "luohe.officer"},
            now=t1 + timedelta(hours=1),
        )
    fix = datetime(2005, 3, 10, 2, tzinfo=UTC)
    fire(uow, early, "rectify", actor=officer, data={"measures": "Patrols"}, now=fix)
    fire(
        uow,
        early,
        "feed_back",
        actor=officer,
        data={"method": "visit", "text": "Visited", "date": "2005-03-10"},
        now=fix + timedelta(hours=1),
    )
    fire(
        uow,
        gov,
        "escalate_to_government",
        actor=boss,
        data={"receiving_body": "County government", "reason": "Roads"},
        now=fix,
    )
    after = datetime(2005, 3, 20, 2, tzinfo=UTC)
    fire(uow, late, "rectify", actor=officer, data={"measures": "Raided"}, now=after)
    request_id = answer_feedback(
        uow,
        number=early,
        secret=early_secret,
        satisfied=False,
        reason="Still thefts",
        now=after,
    )
    decide_reopen_request(uow, request_id, actor=boss, reopen=True, now=after + timedelta(hours=1))
    session.commit()
    return {"early": early, "late": late, "gov": gov, "open": open_}


def test_figures_and_as_of(session: Session, uow, actor, now: datetime) -> None:  # type: ignore[no-untyped-def]
    _build(uow, actor, now)
    report = campaign_report(uow, CAMPAIGN, now=datetime(2005, 3, 21, tzinfo=UTC))
    assert report.keys() >= KEYS
    assert report["total"] == 4
    assert report["by_category"]["public_security_management"] == 2
    assert report["by_category"]["outside_duties"] == 1
    assert report["by_category"]["(uncategorized)"] == 1
    assert report["by_kind"] == {"criticism": 1, "request": 2, "suggestion": 1}
    assert report["by_state"]["assigned"] == 1  # reopened
    assert report["by_state"]["rectified"] == 1
    assert report["by_state"]["escalated"] == 1
    assert report["by_unit"]["luohe-station"] == 2
    # The early one was solved on March 10 but reopened on March 20: open again, not solved
    # (this said (1, 1) before issue 14).
    assert (report["solved_by_deadline"], report["solved_after_deadline"]) == (0, 1)
    assert report["escalated_to_government"] == 1
    assert report["specific_problems"]["escalated_to_government"] == 1
    assert report["satisfaction"]["unsatisfied"] == 1
    assert report["satisfaction"]["reopened"] == 1
    assert report["themes"]["theft"] == {"count": 2, "share": 0.5}
    assert sum(report["overdue"]["by_unit"].values()) == report["overdue"]["total"]
    assert (
        sum(r["count"] for r in report["overdue"]["by_unit_and_level"])
        == report["overdue"]["total"]
    )

    # As of March 10 (end of day): the early one fed back, nothing solved late, and the
    # reopening (March 20) has not happened yet.
    march_10 = campaign_report(uow, CAMPAIGN, as_of="2005-03-10", now=AFTER)
    assert march_10["fed_back"] == 1
    assert (march_10["solved_by_deadline"], march_10["solved_after_deadline"]) == (1, 0)
    assert march_10["by_state"]["assigned"] == 1
    assert march_10["satisfaction"]["reopened"] == 0
    assert march_10["escalated_to_government"] == 1
    # Before anything was recorded there is nothing.
    assert campaign_report(uow, CAMPAIGN, as_of="2005-02-27", now=AFTER)["total"] == 0
    # On the first morning the tickets exist but none is categorized.
    first = campaign_report(uow, CAMPAIGN, as_of=now + timedelta(minutes=30), now=AFTER)
    assert first["total"] == 4 and first["by_state"]["received"] == 4
    assert first["by_category"] == {
        **{k: 0 for k in report["category_names"]},
        "(uncategorized)": 4,
    }


def test_overdue_counts_open_tickets_past_their_due_time(
    session: Session, uow, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    _build(uow, actor, now)
    later = campaign_report(uow, CAMPAIGN, now=datetime(2005, 6, 1, tzinfo=UTC))
    # Every ticket not fed back has a due time capped by the campaign deadline (March 18).
    assert later["overdue"]["total"] >= 1
    assert later["overdue"]["by_level"]


def test_formats_are_formula_safe(session: Session, uow, actor, now: datetime) -> None:  # type: ignore[no-untyped-def]
    _build(uow, actor, now)
    report = campaign_report(uow, CAMPAIGN, as_of="2005-03-31", now=AFTER)
    out = io.BytesIO()
    write_report(report, "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    themes = [r for r in rows if r[0] == "themes"]
    assert any(r[1].startswith("'=") for r in themes)
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    out = io.BytesIO()
    write_report(report, "xlsx", out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet is not None
    values = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert not any(v.startswith("=") for v in values)
    assert any(v.startswith("'=") for v in values)
    out = io.BytesIO()
    write_report(report, "json", out)
    assert json.loads(out.getvalue())["total"] == 4
    out = io.BytesIO()
    write_report(report, "text", out)
    assert "Opinions recorded: 4" in out.getvalue().decode()
    assert "Themes" in render_text(report)
    with pytest.raises(ValidationError, match="use one of"):
        write_report(report, "pdf", io.BytesIO())


def test_bad_campaign_and_bad_date(session: Session, uow) -> None:
    with pytest.raises(NotFound, match="known campaigns: consultation-2005"):
        campaign_report(uow, "nope")
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        campaign_report(uow, CAMPAIGN, as_of="yesterday")
    assert resolve_as_of("2005-03-17", "Asia/Shanghai") == datetime(2005, 3, 17, 16, tzinfo=UTC)


def test_a_reopened_ticket_is_not_solved_while_open_again(uow, actor, now: datetime) -> None:  # type: ignore[no-untyped-def]
    numbers = _build(uow, actor, now)
    # March 10: solved before the deadline. March 20 (reopened at 11:00 Shanghai): open again.
    march_10 = campaign_report(uow, CAMPAIGN, as_of="2005-03-10", now=AFTER)
    assert march_10["specific_problems"]["solved_by_deadline"] == 1
    march_20 = campaign_report(uow, CAMPAIGN, as_of="2005-03-20", now=AFTER)
    assert march_20["specific_problems"]["solved_by_deadline"] == 0
    assert march_20["specific_problems"]["fed_back"] == 0
    # Rectified again on March 22: solved, after the deadline (within the campaign).
    fire(
        uow,
        numbers["early"],
        "rectify",
        actor=actor("luohe.officer"),
        data={"measures": "Night patrols"},
        now=datetime(2005, 3, 22, 2, tzinfo=UTC),
    )
    uow.commit()
    march_22 = campaign_report(uow, CAMPAIGN, as_of="2005-03-22", now=AFTER)
    sp = march_22["specific_problems"]
    assert (sp["solved_by_deadline"], sp["solved_after_deadline"]) == (0, 1)
    # As of March 10 the later events change nothing.
    assert (
        campaign_report(uow, CAMPAIGN, as_of="2005-03-10", now=AFTER)["specific_problems"][
            "solved_by_deadline"
        ]
        == 1
    )


def test_as_of_before_the_campaign_or_in_the_future_is_refused(uow) -> None:  # type: ignore[no-untyped-def]
    today = datetime(2005, 3, 12, 4, tzinfo=UTC)  # noon in Shanghai
    with pytest.raises(ValidationError, match="is before the campaign 'consultation-2005' began"):
        campaign_report(uow, CAMPAIGN, as_of="2005-02-24", now=today)
    with pytest.raises(ValidationError, match="is in the future \\(today is 2005-03-12\\)"):
        campaign_report(uow, CAMPAIGN, as_of="2005-03-13", now=today)
    with pytest.raises(ValidationError, match="in the future"):
        campaign_report(uow, CAMPAIGN, as_of="2005-03-12T15:00:00+08:00", now=today)
    assert campaign_report(uow, CAMPAIGN, as_of="2005-03-12", now=today)["total"] == 0
    assert campaign_report(uow, CAMPAIGN, as_of="2005-02-25", now=today)["total"] == 0


def test_a_log_row_from_before_migration_0007_falls_back_to_the_ticket(
    session: Session, uow, actor, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    """Rows written before migration 0007 carry no head: as of a moment whose last row is one
    of those, the ticket's current category, kind and unit stand in (README)."""
    numbers = _build(uow, actor, now)
    ticket = session.scalars(select(Ticket).where(Ticket.number == numbers["early"])).one()
    last = session.scalars(
        select(TransitionLog)
        .where(TransitionLog.ticket_id == ticket.id)
        .order_by(TransitionLog.seq.desc())
    ).first()
    assert last is not None and last.head is not None
    session.execute(
        insert(TransitionLog).values(
            ticket_id=ticket.id,
            seq=last.seq + 1,
            trigger="reassign",
            from_state=last.to_state,
            to_state=last.to_state,
            actor="supervisor",
            role="supervisor",
            at=last.at + timedelta(hours=1),
            data="{}",
            workflow_version=last.workflow_version,
            prev_hash=last.hash,
            hash="0" * 64,
            head=None,
        )
    )
    session.commit()
    report = campaign_report(uow, CAMPAIGN, as_of="2005-03-20", now=AFTER)
    assert report["by_unit"]["luohe-station"] == 2
    assert report["by_category"]["public_security_management"] == 2
    assert report["by_kind"]["request"] == 2
