"""The engine context decides once what every adapter used to thread by hand: the audit key, each
campaign's calendar, the policy; and events cannot write columns they do not declare."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from engine.context import build_context
from engine.errors import ValidationError
from engine.models import Ticket
from engine.settings import load_settings
from engine.tickets import create_ticket, fire, get_actor, record_event
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW
from web import create_app


@pytest.mark.slow
def test_demo_then_verify_with_an_audit_key(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The replay writes HMAC chains with the configured key, so verify with that key passes."""
    monkeypatch.setenv("RECTIFLOW_AUDIT_KEY", "county-bureau-secret")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = CliRunner().invoke(main, ["--database-url", url, "demo", "--no-report"])
    assert demo.exit_code == 0, demo.output
    verify = CliRunner().invoke(main, ["--database-url", url, "audit", "verify"])
    assert verify.exit_code == 0, verify.output
    # ... and without the key the same chains do not verify: the key was really used.
    monkeypatch.delenv("RECTIFLOW_AUDIT_KEY")
    plain = CliRunner().invoke(main, ["--database-url", url, "audit", "verify"])
    assert plain.exit_code == 1


def test_web_and_worker_compute_the_same_due_time_on_a_configured_calendar(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A calendar file that closes the bureau for a week moves due times for the web process
    exactly as for the worker: both read it through their context."""
    calendar = tmp_path / "calendar.toml"
    calendar.write_text(
        '[CN]\ncountry = "CN"\nclosures = [2005-03-01, 2005-03-02, 2005-03-03, 2005-03-04]\n',
        encoding="utf-8",
    )
    settings = {"database_url": sqlite_url, "calendar": str(calendar)}
    app = create_app({**settings, "secret_key": "t", "TESTING": True})
    web_ctx = app.extensions["rectiflow.ctx"]
    worker_ctx = build_context(load_settings(settings))
    default_ctx = build_context(load_settings({"database_url": sqlite_url}))
    dues = []
    for ctx in (web_ctx, worker_ctx, default_ctx):
        with ctx.unit_of_work() as uow:
            clerk = get_actor(uow.session, "clerk")
            created = create_ticket(
                uow, campaign=CAMPAIGN, text="Lamps out", actor=clerk, now=CAMPAIGN_NOW
            )
            dues.append(
                uow.session.scalar(select(Ticket.due_at).where(Ticket.number == created.number))
            )
    assert dues[0] == dues[1]
    assert dues[0] != dues[2]  # the closures really moved it


def test_an_event_may_change_only_the_columns_it_declares(uow) -> None:  # type: ignore[no-untyped-def]
    clerk = get_actor(uow.session, "clerk")
    number = create_ticket(
        uow, campaign=CAMPAIGN, text="Lamps out", actor=clerk, now=CAMPAIGN_NOW
    ).number
    uow.session.commit()
    with pytest.raises(ValidationError, match="may change satisfied, not category"):
        record_event(
            uow, number, "citizen_satisfied", actor=clerk, values={"category": "team_building"}
        )
    with pytest.raises(ValidationError, match="not a declared event"):
        record_event(uow, number, "service_requested", actor=clerk, values={"category": "x"})
    uow.session.rollback()
    row = uow.session.execute(
        select(Ticket.category, Ticket.version).where(Ticket.number == number)
    ).one()
    assert (row.category, row.version) == (None, 1)
    # The category is set by the workflow's trigger, and logged as such.
    fire(
        uow,
        number,
        "categorize",
        actor=clerk,
        data={"category": "team_building", "kind": "request"},
    )
    assert uow.session.scalar(select(Ticket.category).where(Ticket.number == number)) == (
        "team_building"
    )
