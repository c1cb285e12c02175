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
