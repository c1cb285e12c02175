"""API fixtures: an app on a fresh seeded database with a fixed clock, and Bearer tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.clock import FixedClock
from engine.tokens import create_token
from tests.conftest import CAMPAIGN_NOW
from web import create_app


def make_app(url: str) -> Flask:
    app = create_app({"database_url": url, "secret_key": "test", "TESTING": True})
    app.config["CLOCK"] = FixedClock(CAMPAIGN_NOW)
    return app


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    app = make_app(db_url)
    yield app
    app.extensions["rectiflow.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(app: Flask) -> Callable[[str], str]:
    """``token('clerk')`` → a fresh plain API token acting as that user."""

    def _token(username: str) -> str:
        with app.extensions["rectiflow.sessions"]() as session:
            issued = create_token(session, username, now=CAMPAIGN_NOW, name="test")
            session.commit()
            return issued.token

    return _token


@pytest.fixture
def auth(token: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    """``auth('clerk')`` → the Authorization header of a fresh token for that user."""

    def _auth(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(username)}"}

    return _auth


@pytest.fixture
def new_ticket(client: FlaskClient, auth: Callable[[str], dict[str, str]]) -> Callable[..., Any]:
    """``new_ticket(**fields)`` → the JSON of a ticket the clerk recorded through the API."""
    headers = auth("clerk")

    def _new(**fields: Any) -> dict[str, Any]:
        body = {"campaign": "consultation-2005", "text": "The road by the school is dark."}
        body.update(fields)
        response = client.post("/api/v1/tickets", json=body, headers=headers)
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[no-any-return]

    return _new


def fire_as(
    client: FlaskClient,
    headers: dict[str, str],
    number: str,
    trigger: str,
    version: int,
    **data: Any,
) -> Any:
    return client.post(
        f"/api/v1/tickets/{number}/transitions",
        json={"trigger": trigger, "expected_version": version, "data": data},
        headers=headers,
    )
