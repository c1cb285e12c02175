"""A supervisor sets a new, defined deadline on an overdue ticket: the breach stays on the record,
the ladder starts again from the new time; every refusal writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli import main
from engine import timers
from engine.errors import NotPermitted, ValidationError
from engine.models import TransitionLog
from engine.redeadline import set_deadline
from engine.tickets import get_actor
from tests.conftest import ctx_of
from tests.integration.deadline_support import assigned_ticket, local, pending_timers, ticket


def _log(session: Session, number: str) -> list[str]:
    t = ticket(session, number)
    return list(
        session.scalars(
            select(TransitionLog.trigger)
            .where(TransitionLog.ticket_id == t.id)
            .order_by(TransitionLog.seq)
        )
    )


def test_overdue_ticket_gets_a_new_deadline_and_the_breach_stays(session: Session, uow) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))  # due 2005-03-15 00:00
    session.commit()
    from engine import db

    sessions = db.session_factory(session.get_bind())
    timers.sweep(
        ctx_of(sessions), now=local(2005, 3, 17, 12)
    )  # overdue, level 2 by then? at least 1
    session.expire_all()
    before = ticket(session, number)
    assert before.escalation_level >= 1
    version = set_deadline(
        uow,
        number,
        actor=get_actor(session, "supervisor"),
        due_at=local(2005, 3, 25),
        reason="Parts ordered from the city; fitted by the 25th",
        now=local(2005, 3, 17, 14),
    )
    session.commit()
    session.expire_all()
    after = ticket(session, number)
    assert after.version == version and after.escalation_level == 0
    assert after.due_at == local(2005, 3, 25)
    assert "deadline set by supervisor" in (after.due_rule or "")
    triggers = _log(session, number)
    assert "overdue" in triggers and triggers[-1] == "deadline_set"  # the breach stays logged
    pending = pending_timers(session, number)
    assert pending and all(at > local(2005, 3, 17, 14) for _, _, at in pending)


@pytest.mark.parametrize(
    ("who", "due", "reason", "at", "error", "fragment"),
    [
        ("traffic.officer", (2005, 3, 25), "x", (2005, 3, 17, 14), NotPermitted, "needs the role"),
        ("supervisor", (2005, 3, 25), "", (2005, 3, 17, 14), ValidationError, "reason"),
        ("supervisor", (2005, 3, 16), "x", (2005, 3, 17, 14), ValidationError, "later than now"),
        ("supervisor", (2005, 5, 1), "x", (2005, 3, 17, 14), ValidationError, "campaign's end"),
        ("supervisor", (2005, 3, 25), "x", (2005, 3, 10, 9), ValidationError, "not overdue"),
    ],
)
def test_refusals_write_nothing(  # type: ignore[no-untyped-def]
    session: Session, uow, who, due, reason, at, error, fragment
) -> None:
    number = assigned_ticket(session, local(2005, 2, 28, 10))
    session.commit()
    logged = session.scalar(select(func.count()).select_from(TransitionLog))
    with pytest.raises(error, match=fragment):
        set_deadline(
            uow,
            number,
            actor=get_actor(session, who),
            due_at=local(*due),
            reason=reason,
            now=local(*at),
        )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TransitionLog)) == logged


def test_cli_sets_a_deadline_as_a_supervisor_and_refuses_an_officer(
    sqlite_url: str, tmp_path: Path
) -> None:
    from engine.context import build_context

    ctx = build_context({"database_url": sqlite_url})
    with ctx.unit_of_work() as uow:
        number = assigned_ticket(uow, local(2005, 2, 28, 10))
    ctx.dispose()
    run = CliRunner()
    args = ["--database-url", sqlite_url, "--now", "2005-03-17T14:00+08:00", "ticket", "deadline"]
    refused = run.invoke(
        main, [*args, number, "--to", "2005-03-25", "--reason", "x", "--as", "traffic.officer"]
    )
    assert refused.exit_code == 2 and "needs the role" in refused.output
    done = run.invoke(
        main, [*args, number, "--to", "2005-03-25", "--reason", "parts", "--as", "supervisor"]
    )
    assert done.exit_code == 0, done.output
    assert number in done.output
