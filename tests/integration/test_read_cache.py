"""The campaign clock is read once per process and a few seconds (engine.readcache); an
administrator's change through engine.organisation takes effect at the next transition."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, event, select

from engine.context import build_context
from engine.models import Ticket
from engine.organisation import read_toml, upsert_campaign
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, get_actor

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 3, 10, 2, 0, tzinfo=UTC)  # a Thursday: due Monday, before the cap


def test_campaign_clock_cached_and_invalidated_by_a_change(engine: Engine) -> None:
    ctx = build_context(engine=engine)
    reads: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        # the clock's own read (the administrator's upsert reads the whole row, ticket_seq too)
        if (
            statement.startswith("SELECT")
            and "rectification_deadline" in statement
            and ("ticket_seq" not in statement)
        ):
            reads.append(statement)

    def new_ticket() -> Ticket:
        with ctx.unit_of_work() as uow:
            clerk = get_actor(uow.session, "clerk")
            number = create_ticket(uow, campaign=CAMPAIGN, text="x", actor=clerk, now=NOW).number
        with ctx.sessions() as s:
            return s.scalars(select(Ticket).where(Ticket.number == number)).one()

    first, second = new_ticket(), new_ticket()
    assert len(reads) == 1  # the second transition used the cached clock
    assert first.due_rule == second.due_rule == "state received: 2 working days"

    data = read_toml(PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml")
    data["rectification_deadline"] = datetime(2005, 3, 11, 0, 0, tzinfo=UTC)  # an earlier cap
    with ctx.unit_of_work() as uow:
        upsert_campaign(uow, data)
    third = new_ticket()
    assert len(reads) == 2  # read again after the change
    assert third.due_rule == "campaign deadline 2005-03-11"
    event.remove(engine, "before_cursor_execute", _count)


def test_no_timer_statement_when_the_ticket_has_no_clock(engine: Engine) -> None:
    """Issue 15 item 2: a ticket without a due time has no pending timers, so leaving its
    state cancels nothing and runs no statement; a clocked ticket still cancels its own."""
    from engine.tickets import fire
    from tests.integration.deadline_support import assigned_ticket, local

    ctx = build_context(engine=engine)
    at = local(2005, 3, 1, 10)
    with ctx.unit_of_work() as uow:
        number = assigned_ticket(uow, at)
    cancels: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE timers SET cancelled_at"):
            cancels.append(statement)

    def step(trigger: str, user: str, data: dict[str, str]) -> int:
        before = len(cancels)
        with ctx.unit_of_work() as uow:
            fire(uow, number, trigger, actor=get_actor(uow.session, user), data=data, now=at)
        return len(cancels) - before

    officer = "traffic.officer"
    assert step("rectify", officer, {"measures": "m"}) == 1  # assigned had a clock
    feedback = {"method": "phone", "text": "t", "date": "2005-03-01"}
    assert step("feed_back", officer, feedback) == 1  # so had rectified
    assert step("reopen", "supervisor", {"reason": "not satisfied"}) == 0  # fed_back: none
    with ctx.sessions() as s:
        reopened = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert reopened.state == "assigned" and reopened.due_at is not None  # a new clock
    event.remove(engine, "before_cursor_execute", _count)
