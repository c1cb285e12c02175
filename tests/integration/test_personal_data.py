"""Citizen contact data: a commitment in the log, erased on request or after retention."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cli import main
from engine import audit, personal_data
from engine.errors import NotPermitted, ValidationError
from engine.models import Ticket, TransitionLog
from engine.read.pages import sample_closed
from engine.report import campaign_report
from engine.tickets import SYSTEM_ACTOR, create_ticket, fire, get_actor
from tests.conftest import as_uow

CAMPAIGN = "consultation-2005"


def _closed_ticket(engine: Engine, now) -> str:  # type: ignore[no-untyped-def]
    """A ticket with the citizen's contact data, taken to fed_back (closed)."""
    with Session(engine) as s:
        clerk = get_actor(s, "clerk")
        officer = get_actor(s, "political.officer")
        number = create_ticket(
            as_uow(s),
            campaign=CAMPAIGN,
            text="The station answers the phone too slowly",
            actor=clerk,
            now=now,
            kind="criticism",
            citizen_name="Wang Fang",
            citizen_contact="13800000000",
            address="3 Station Road, Luohe",
            area="Luohe",
        ).number
        fire(
            as_uow(s),
            number,
            "categorize",
            actor=clerk,
            data={"category": "team_building", "kind": "criticism"},
            now=now + timedelta(minutes=1),
        )
        fire(
            as_uow(s),
            number,
            "assign",
            actor=get_actor(s, "supervisor"),
            data={"unit": "political", "officer": "political.officer"},
            now=now + timedelta(minutes=2),
        )
        fire(
            as_uow(s),
            number,
            "rectify",
            actor=officer,
            data={"measures": "a second line"},
            now=now + timedelta(hours=1),
        )
        fire(
            as_uow(s),
            number,
            "feed_back",
            actor=officer,
            data={"method": "phone", "text": "called back", "date": "2005-02-28"},
            now=now + timedelta(hours=2),
        )
        s.commit()
    return number


def _row(engine: Engine, number: str):  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return s.execute(select(Ticket).where(Ticket.number == number)).scalar_one()


def _log(engine: Engine, number: str) -> list[TransitionLog]:
    with Session(engine) as s:
        return list(
            s.scalars(
                select(TransitionLog)
                .join(Ticket, Ticket.id == TransitionLog.ticket_id)
                .where(Ticket.number == number)
                .order_by(TransitionLog.seq)
            )
        )


def test_the_log_holds_a_salted_commitment_not_the_contact_data(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _closed_ticket(engine, now)
    ticket = _row(engine, number)
    rows = _log(engine, number)
    everything = " ".join(r.data + (r.reason or "") for r in rows)
    for secret in ("Wang Fang", "13800000000", "Station Road"):
        assert secret not in everything
    created = json.loads(rows[0].data)
    assert ticket.contact_salt and len(ticket.contact_salt) == 32
    assert created["contact"] == personal_data.contact_commitment(
        ticket.contact_salt, "Wang Fang", "13800000000", "3 Station Road, Luohe"
    )
    # Another salt gives another commitment: equal contact data is not linkable across tickets.
    other = personal_data.commit_contact(
        name="Wang Fang", contact="13800000000", address="3 Station Road, Luohe"
    )
    assert other is not None and other.commitment != created["contact"]


def test_a_ticket_without_contact_data_has_no_commitment(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        number = create_ticket(
            as_uow(s), campaign=CAMPAIGN, text="anonymous", actor=get_actor(s, "clerk"), now=now
        ).number
        s.commit()
    assert "contact" not in json.loads(_log(engine, number)[0].data)
    assert _row(engine, number).contact_salt is None


def test_erasure_on_request_is_logged_and_the_log_still_verifies(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _closed_ticket(engine, now)
    later = now + timedelta(days=3)
    with Session(engine) as s:
        with pytest.raises(NotPermitted):
            personal_data.erase(
                as_uow(s),
                number,
                reason="asked",
                actor=get_actor(s, "political.officer"),
                now=later,
            )
        with pytest.raises(ValidationError, match="reason"):
            personal_data.erase(
                as_uow(s), number, reason=" ", actor=get_actor(s, "supervisor"), now=later
            )
        done = personal_data.erase(
            as_uow(s),
            number,
            reason="citizen's request, letter 2005-17",
            actor=get_actor(s, "supervisor"),
            now=later,
        )
        s.commit()
        assert done.fields == ("citizen_name", "citizen_contact", "address")
        with pytest.raises(ValidationError, match="already erased"):
            personal_data.erase(
                as_uow(s), number, reason="again", actor=get_actor(s, "supervisor"), now=later
            )
    ticket = _row(engine, number)
    assert (ticket.citizen_name, ticket.citizen_contact, ticket.address, ticket.contact_salt) == (
        None,
    ) * 4
    assert ticket.personal_data_erased_at == later
    assert ticket.state == "fed_back"
    last = _log(engine, number)[-1]
    assert last.trigger == personal_data.ERASED_EVENT and last.actor == "supervisor"
    assert json.loads(last.data) == {
        "fields": ["citizen_name", "citizen_contact", "address"],
        "reason": "citizen's request, letter 2005-17",
    }
    with Session(engine) as s:
        assert audit.verify(s) == []


def test_purge_erases_after_the_campaign_retention_period(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _closed_ticket(engine, now)
    closed_at = _row(engine, number).closed_at
    with Session(engine) as s:
        open_one = create_ticket(
            as_uow(s),
            campaign=CAMPAIGN,
            text="still open",
            actor=get_actor(s, "clerk"),
            now=now,
            citizen_name="Li Lei",
        ).number
        s.commit()
    with Session(engine) as s:  # the campaign file keeps contact data 365 days after closing
        assert (
            personal_data.purge(as_uow(s), now=closed_at + timedelta(days=364), actor=SYSTEM_ACTOR)
            == []
        )
        erased = personal_data.purge(
            as_uow(s), now=closed_at + timedelta(days=366), actor=SYSTEM_ACTOR
        )
        s.commit()
    assert [e.number for e in erased] == [number]
    assert _row(engine, number).citizen_name is None
    assert _row(engine, open_one).citizen_name == "Li Lei"
    assert _log(engine, number)[-1].actor == "system"
    with Session(engine) as s:
        assert audit.verify(s) == []
        assert (
            personal_data.purge(as_uow(s), now=closed_at + timedelta(days=400), actor=SYSTEM_ACTOR)
            == []
        )


def test_report_and_inspector_sample_work_on_erased_tickets(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _closed_ticket(engine, now)
    with Session(engine) as s:
        before = campaign_report(as_uow(s), CAMPAIGN, as_of=(now + timedelta(days=30)).date())
        personal_data.erase(
            as_uow(s),
            number,
            reason="request",
            actor=get_actor(s, "admin"),
            now=now + timedelta(days=1),
        )
        s.commit()
    with Session(engine) as s:
        after = campaign_report(as_uow(s), CAMPAIGN, as_of=(now + timedelta(days=30)).date())
        assert after == before
        sampled = sample_closed(s, size=5, seed=1)
        assert [t.number for t in sampled] == [number]
        assert sampled[0].category == "team_building"


def test_the_command_line_erases_and_purges(sqlite_url: str, tmp_path: Path, now) -> None:  # type: ignore[no-untyped-def]
    from engine import db

    engine = db.make_engine(sqlite_url)
    number = _closed_ticket(engine, now)
    engine.dispose()
    runner = CliRunner()
    base = ["--database-url", sqlite_url, "--now", "2005-03-02T00:00:00Z"]
    refused = runner.invoke(
        main, [*base, "citizen", "erase", number, "--reason", "x", "--as", "clerk"]
    )
    assert refused.exit_code == 2 and "needs the role" in refused.output
    done = runner.invoke(
        main, [*base, "citizen", "erase", number, "--reason", "request 17", "--as", "supervisor"]
    )
    assert done.exit_code == 0, done.output
    assert "erased (citizen_name, citizen_contact, address)" in done.output
    purged = runner.invoke(
        main, ["--database-url", sqlite_url, "--now", "2007-01-01T00:00:00Z", "citizen", "purge"]
    )
    assert purged.exit_code == 0 and "erased on 0 ticket(s)" in purged.output
    verified = runner.invoke(main, ["--database-url", sqlite_url, "audit", "verify"])
    assert verified.exit_code == 0, verified.output
