"""``rectiflow demo`` also loads a campaign running today: right afterwards the overdue board,
the extension requests, the reopen requests and the inbox have something to act on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cli import main
from engine import db
from engine.clock import FixedClock
from engine.models import User
from engine.web_sessions import start_session
from tests.conftest import as_uow
from web import create_app

# A Monday morning in Shanghai, as if `rectiflow demo` ran then.
TODAY = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("live") / "demo.db"
    url = f"sqlite:///{path}"
    out = CliRunner().invoke(
        main, ["--now", TODAY.isoformat(), "--database-url", url, "demo", "--no-report"]
    )
    assert out.exit_code == 0, out.output
    assert "campaign live (running today, Nov 30, 2026): 14 tickets" in out.output, out.output
    assert "at level 1" in out.output and "at level 2" in out.output
    assert "at level 3" in out.output
    return url


@pytest.fixture(scope="module")
def app(demo_url: str) -> Iterator[Flask]:
    app = create_app(
        {"database_url": demo_url, "TESTING": True, "SECRET_KEY": "t", "CLOCK": FixedClock(TODAY)}
    )
    yield app
    app.extensions["rectiflow.engine"].dispose()


def _as(app: Flask, username: str) -> FlaskClient:
    engine = app.extensions["rectiflow.engine"]
    with db.session_factory(engine)() as session:
        uid = session.scalar(select(User.id).where(User.username == username))
        session.rollback()
        sid = start_session(as_uow(session), uid, now=TODAY)
        session.commit()
    client = app.test_client()
    with client.session_transaction() as s:
        s["sid"] = sid
    return client


LIVE_NUMBER = re.compile(r"L2026-\d{4}")


def test_the_board_shows_live_tickets_at_every_ladder_level(app: Flask) -> None:
    page = _as(app, "supervisor").get("/supervisor/board").get_data(as_text=True)
    assert LIVE_NUMBER.search(page), page[:2000]


def test_an_extension_and_a_reopen_request_are_waiting(app: Flask) -> None:
    client = _as(app, "supervisor")
    extensions = client.get("/supervisor/extensions").get_data(as_text=True)
    assert LIVE_NUMBER.search(extensions)
    reopen = client.get("/supervisor/reopen-requests").get_data(as_text=True)
    assert LIVE_NUMBER.search(reopen), reopen[-1500:]


@pytest.mark.parametrize("username", ["supervisor", "luohe.officer"])
def test_the_inbox_has_live_notices(app: Flask, username: str) -> None:
    page = _as(app, username).get("/inbox").get_data(as_text=True)
    assert LIVE_NUMBER.search(page), (username, page[-1500:])


def test_new_opinions_are_numbered_in_the_live_campaign(app: Flask) -> None:
    client = _as(app, "luohe.officer")
    queue = client.get("/my/queue").get_data(as_text=True)
    assert LIVE_NUMBER.search(queue)


def test_the_live_tickets_can_be_planned_at_any_hour_of_any_day(ctx) -> None:  # type: ignore[no-untyped-def]
    """`rectiflow demo` runs at whatever time it is: a local midnight (16:00 UTC) once found no
    due time within the next 20 hours, and a weekend none within the warning's 24, so the demo
    failed then. Every hour of two weeks, holidays' weekends included, gets a plan."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from demo.live import ASSIGNED_LIMIT_DAYS, _assigned_at

    cal, tz = ctx.calendar("CN"), ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 9, 26, 0, 10, tzinfo=UTC)  # a Saturday, then National Day's week
    for hour in range(24 * 14):
        now = start + timedelta(hours=hour)
        soon = cal.add_working_days(_assigned_at(cal, tz, now, 0), ASSIGNED_LIMIT_DAYS, tz)
        assert now < soon
        for days in (1, 3, 6):
            due = cal.add_working_days(_assigned_at(cal, tz, now, days), ASSIGNED_LIMIT_DAYS, tz)
            assert due < now
