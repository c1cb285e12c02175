"""Web fixtures: ``app`` on a fresh seeded SQLite database with a fixed clock, ``client``,
``login_as(role_or_username)``, ``csrf(client)``, ``make_ticket(...)`` to put tickets in a state.

CSRF stays on in these tests (it is part of what they check): helpers read the
token from a rendered page and send it like a browser would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import db
from engine.clock import FixedClock
from engine.tickets import create_ticket, fire, get_actor
from engine.web_sessions import start_session
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW, as_uow
from web import create_app

ROLE_USERS = {
    "clerk": "clerk",
    "officer": "luohe.officer",
    "unit_leader": "luohe.leader",
    "supervisor": "supervisor",
    "inspector": "inspector",
    "admin": "admin",
}
TOKEN = re.compile(
    r'name="(?:[\w-]*-)?csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


def build_app(url: str, clock: FixedClock, default_locale: str = "en") -> Flask:
    """The app as configured for a bureau. These tests read English pages unless they ask for
    another language (the sample bureau's default, zh_CN, is checked in test_i18n.py)."""
    return create_app(
        {
            "database_url": url,
            "default_locale": default_locale,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "CLOCK": clock,
        }
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(CAMPAIGN_NOW)


@pytest.fixture
def app(sqlite_url: str, clock: FixedClock) -> Iterator[Flask]:
    app = build_app(sqlite_url, clock)
    app.config["DB_URL"] = sqlite_url
    yield app
    app.extensions["rectiflow.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf(client: FlaskClient, path: str = "/signin") -> str:
    """The CSRF token of ``client``'s session, read from a rendered form."""
    html = client.get(path).get_data(as_text=True)
    match = TOKEN.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, username: str, password: str = "demo") -> Any:
    token = csrf(client)
    return client.post(
        "/signin", data={"username": username, "password": password, "csrf_token": token}
    )


@pytest.fixture
def login_as(client: FlaskClient, db_session: Session) -> Callable[[str], FlaskClient]:
    """``login_as('officer')`` or ``login_as('legal.officer')``: ``client`` signed in as that user.

    Opens a server-side session and puts its id in the cookie as the sign-in page does,
    without the password hash check (scrypt is slow on purpose); tests of the sign-in page itself use ``sign_in``.
    """
    from sqlalchemy import select

    from engine.models import User

    def _login(who: str) -> FlaskClient:
        uid = db_session.execute(
            select(User.id).where(User.username == ROLE_USERS.get(who, who))
        ).scalar_one()
        db_session.rollback()
        # Signed in "now" on the app's clock, which a test may have moved.
        sid = start_session(as_uow(db_session), uid, now=client.application.config["CLOCK"]())
        db_session.commit()
        with client.session_transaction() as session:
            session.clear()
            session["sid"] = sid
        return client

    return _login


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    factory = db.session_factory(app.extensions["rectiflow.engine"])
    with factory() as session:
        yield session


PATH = {
    "received": [],
    "categorized": [("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"})],
    "assigned": [
        ("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"}),
        ("supervisor", "assign", {"unit": "{unit}", "officer": "{officer}"}),
    ],
    "rectified": [
        ("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"}),
        ("supervisor", "assign", {"unit": "{unit}", "officer": "{officer}"}),
        ("{officer}", "rectify", {"measures": "Patrols doubled at night."}),
    ],
    "escalated": [
        ("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"}),
        ("supervisor", "assign", {"unit": "{unit}", "officer": "{officer}"}),
        (
            "supervisor",
            "escalate_to_government",
            {"receiving_body": "County government", "reason": "Needs the county's budget."},
        ),
    ],
    "fed_back": [
        ("clerk", "categorize", {"category": "law_enforcement", "kind": "criticism"}),
        ("supervisor", "assign", {"unit": "{unit}", "officer": "{officer}"}),
        ("{officer}", "rectify", {"measures": "Patrols doubled at night."}),
        (
            "{officer}",
            "feed_back",
            {"method": "visit", "text": "We visited.", "date": "2005-02-28"},
        ),
    ],
}


@pytest.fixture
def make_ticket(db_session: Session) -> Callable[..., Any]:
    """``make_ticket(state='assigned', unit='luohe-station', officer='luohe.officer')`` →
    ``(number, secret)``; moved there through the engine like any user would."""

    def _make(
        state: str = "received",
        *,
        unit: str = "luohe-station",
        officer: str = "luohe.officer",
        text: str = "The street lamps near the market are out and thefts are up.",
        area: str | None = "Luohe",
        now: datetime = CAMPAIGN_NOW,
    ) -> tuple[str, str]:
        created = create_ticket(
            as_uow(db_session),
            campaign=CAMPAIGN,
            text=text,
            area=area,
            actor=get_actor(db_session, "clerk"),
            now=now,
        )
        for who, trigger, data in PATH[state]:
            who = who.format(officer=officer)
            filled = {k: v.format(unit=unit, officer=officer) for k, v in data.items()}
            fire(
                as_uow(db_session),
                created.number,
                trigger,
                actor=get_actor(db_session, who),
                data=filled,
                now=now,
            )
        db_session.commit()
        return created.number, created.secret

    return _make


def post_action(
    client: FlaskClient, number: str, trigger: str, data: dict[str, Any], *, version: int | None
) -> Any:
    """Post the trigger's form as the ticket page renders it (field names prefixed)."""
    token = csrf(client, f"/tickets/{number}")
    form = {f"{trigger}-{k}": v for k, v in data.items()}
    form[f"{trigger}-csrf_token"] = token
    if version is not None:
        form[f"{trigger}-expected_version"] = str(version)
    return client.post(f"/tickets/{number}/fire/{trigger}", data=form)


@pytest.fixture
def ticket_version(db_session: Session) -> Callable[[str], tuple[int, str]]:
    """``ticket_version(number)`` → (version, state), read in a transaction closed at once
    (SQLite begins IMMEDIATE, so an open read would block the app's writes)."""
    from sqlalchemy import select

    from engine.models import Ticket

    def _read(number: str) -> tuple[int, str]:
        row = db_session.execute(
            select(Ticket.version, Ticket.state).where(Ticket.number == number)
        ).one()
        db_session.rollback()
        return row.version, row.state

    return _read
