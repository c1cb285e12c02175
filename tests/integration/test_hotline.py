"""The 12345 hotline workflow end to end, beside the consultation, on SQLite and PostgreSQL:
a continuous programme, priorities with limits in hours and working days, conditions declared
in the workflow file (send back once before the limit, unsatisfied reopens once then goes to a
supervisor), and the service report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import audit
from engine.clock import FixedClock
from engine.context import EngineContext, build_context
from engine.errors import ValidationError
from engine.models import Campaign, Ticket
from engine.organisation import load_campaign_file
from engine.service_report import service_report
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor

HOTLINE = "hotline-12345"
# Monday 2026-03-02, 10:00 in Shanghai.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def hctx(engine) -> EngineContext:  # type: ignore[no-untyped-def]
    ctx = build_context(engine=engine, clock=FixedClock(MONDAY))
    with ctx.unit_of_work() as uow:
        load_campaign_file(uow, PROJECT_ROOT / "config" / "campaigns" / f"{HOTLINE}.toml")
    return ctx


def _fire(ctx: EngineContext, number: str, trigger: str, who: str, at: datetime, **data):  # type: ignore[no-untyped-def]
    with ctx.unit_of_work() as uow:
        return fire(uow, number, trigger, actor=get_actor(uow.session, who), data=data, now=at)


def _new(ctx: EngineContext, priority: str | None = None, kind: str = "complaint") -> str:
    with ctx.unit_of_work() as uow:
        operator = get_actor(uow.session, "hotline.operator")
        return create_ticket(
            uow,
            campaign=HOTLINE,
            text="Loud music every night behind building 4",
            kind=kind,
            priority=priority,
            actor=operator,
            now=MONDAY,
            source="phone",
        ).number


def _ticket(ctx: EngineContext, number: str) -> Ticket:
    with ctx.sessions() as s:
        return s.scalars(select(Ticket).where(Ticket.number == number)).one()


def test_continuous_programme_is_loaded_without_end_or_deadline(hctx: EngineContext) -> None:
    with hctx.sessions() as s:
        camp = s.scalars(select(Campaign).where(Campaign.code == HOTLINE)).one()
        assert camp.continuous is True
        assert camp.workflow_name == "hotline"
    number = _new(hctx)
    assert number == "RX-0001"  # the programme's own counter and prefix


def test_urgent_is_due_in_hours_ordinary_in_working_days(hctx: EngineContext) -> None:
    urgent, ordinary = _new(hctx, "urgent"), _new(hctx)
    t_urgent, t_ordinary = _ticket(hctx, urgent), _ticket(hctx, ordinary)
    assert t_urgent.priority == "urgent" and t_ordinary.priority == "ordinary"
    assert t_urgent.due_at == MONDAY + timedelta(hours=1)
    assert t_ordinary.due_at == MONDAY + timedelta(hours=4)
    at = MONDAY + timedelta(minutes=30)
    _fire(
        hctx, urgent, "dispatch", "hotline.operator", at, category="noise", unit="security-brigade"
    )
    _fire(
        hctx,
        ordinary,
        "dispatch",
        "hotline.operator",
        at,
        category="noise",
        unit="security-brigade",
    )
    assert _ticket(hctx, urgent).due_at == at + timedelta(hours=2)
    # One working day from Monday is the end of Tuesday, local time (the calendar's rule; no
    # deadline caps a continuous service).
    assert _ticket(hctx, ordinary).due_at == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert "(urgent)" in (_ticket(hctx, urgent).due_rule or "")


def test_a_kind_or_priority_the_workflow_lacks_is_refused(hctx: EngineContext) -> None:
    with pytest.raises(ValidationError) as caught:
        _new(hctx, "whenever")
    assert "priority" in caught.value.fields
    with pytest.raises(ValidationError) as caught:
        _new(hctx, kind="praise-and-criticism")
    assert "kind" in caught.value.fields


def test_every_trigger_to_closed_then_the_report(hctx: EngineContext) -> None:
    n = _new(hctx, "urgent")
    t = MONDAY
    step = timedelta(minutes=20)

    def go(trigger: str, who: str, **data: str) -> None:
        nonlocal t
        t += step
        _fire(hctx, n, trigger, who, t, **data)

    go("dispatch", "hotline.operator", category="noise", unit="luohe-station")
    go("send_back", "luohe.officer", reason="Not ours: the brigade handles noise.")
    with pytest.raises(ValidationError, match="may happen 1 time"):
        go("dispatch", "hotline.operator", category="noise", unit="luohe-station")
        go("send_back", "luohe.officer", reason="again")
    # The dispatch above stood (its own transaction); sign for it now.
    go("sign_for", "luohe.officer", officer="luohe.officer")
    go("reply", "luohe.officer", method="phone", text="Spoke to the owner.", date="2026-03-02")
    go("return_reply", "hotline.operator", reason="Say what was done.")
    go("reply", "luohe.officer", method="visit", text="Speakers confiscated.", date="2026-03-02")
    go("accept_reply", "hotline.supervisor")
    with pytest.raises(ValidationError, match="rating must be satisfied or basically_satisfied"):
        go("close", "hotline.operator", rating="unsatisfied")
    with pytest.raises(ValidationError, match="comes only after reopen"):
        go("refer_to_supervisor", "hotline.operator", rating="unsatisfied", reason="x")
    go("reopen", "hotline.operator", rating="unsatisfied", reason="It started again.")
    go("reply", "luohe.officer", method="phone", text="Fined the owner.", date="2026-03-02")
    go("accept_reply", "hotline.operator")
    with pytest.raises(ValidationError, match="may happen 1 time"):
        go("reopen", "hotline.operator", rating="unsatisfied", reason="Still loud.")
    go("refer_to_supervisor", "hotline.operator", rating="unsatisfied", reason="Still loud.")
    go("conclude", "hotline.supervisor", conclusion="Met both sides; settled.")
    ticket = _ticket(hctx, n)
    assert ticket.state == "closed" and ticket.closed_at is not None and ticket.due_at is None

    with hctx.unit_of_work() as uow:
        report = service_report(uow, HOTLINE)
        assert audit.verify(uow.session, key=uow.audit_key) == []
    assert report["total"] == 1 and report["closed"] == 1
    assert report["by_channel"] == {"phone": 1}
    assert report["by_category"] == {"noise": 1}
    assert report["by_priority"] == {"urgent": 1}
    assert report["returned"] == {"return_reply": 1, "send_back": 1}
    assert report["on_time"]["signed_for"] == {"total": 1, "on_time": 1, "late": 0, "rate": 100.0}
    assert report["on_time"]["handled"]["total"] == 3
    assert report["satisfaction"]["answered"] == 2
    assert report["satisfaction"]["unsatisfied"] == 2
    assert report["per_unit"]["luohe-station"]["returned"] == 2
    assert report["programme"]["continuous"] is True and report["programme"]["ends_on"] is None


def test_send_back_only_before_the_sign_for_limit(hctx: EngineContext) -> None:
    n = _new(hctx)
    _fire(hctx, n, "dispatch", "hotline.operator", MONDAY, category="noise", unit="luohe-station")
    late = MONDAY + timedelta(days=2)
    with pytest.raises(ValidationError, match="only before the due time"):
        _fire(hctx, n, "send_back", "luohe.officer", late, reason="Not ours.")
    # Signing for it late is allowed, and the report counts it late.
    _fire(hctx, n, "sign_for", "luohe.officer", late)
    with hctx.unit_of_work() as uow:
        report = service_report(uow, HOTLINE)
    assert report["on_time"]["signed_for"]["late"] == 1


def test_both_processes_side_by_side(hctx: EngineContext) -> None:
    """A consultation ticket and a hotline ticket in one database, each on its own workflow."""
    hotline = _new(hctx)
    with hctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        consultation = create_ticket(
            uow,
            campaign="consultation-2005",
            text="Praise",
            kind="praise",
            actor=clerk,
            now=datetime(2005, 2, 28, 2, 0, tzinfo=UTC),
        ).number
    assert _ticket(hctx, hotline).workflow_name == "hotline"
    assert _ticket(hctx, consultation).workflow_name == "consultation"
    assert _ticket(hctx, consultation).state == "received"
    assert _ticket(hctx, hotline).state == "accepted"
    # A hotline kind is not a consultation kind.
    with pytest.raises(ValidationError), hctx.unit_of_work() as uow:
        create_ticket(
            uow,
            campaign="consultation-2005",
            text="x",
            kind="complaint",
            actor=get_actor(uow.session, "clerk"),
            now=datetime(2005, 2, 28, 2, tzinfo=UTC),
        )


def test_cli_report_is_the_service_report(db_url: str, hctx: EngineContext) -> None:
    import json

    from click.testing import CliRunner

    from cli import main

    _new(hctx, "urgent")
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "report", "--campaign", HOTLINE, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"] == 1 and data["by_priority"] == {"urgent": 1}
    assert data["programme"]["continuous"] is True
