"""One policy, one answer: role x permission x (own unit / other unit / no unit) asked of the web
pages, the JSON API and the command line, each compared with ``policy.can``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from cli import main
from engine.actors import get_actor
from engine.read import reference
from engine.tokens import create_token
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW
from tests.web.conftest import ROLE_USERS, csrf

ROLES = ("clerk", "officer", "unit_leader", "supervisor", "inspector", "admin")


def _web(client: FlaskClient, permission: str, number: str) -> bool:
    if permission == "ticket.view":
        status = client.get(f"/tickets/{number}").status_code
    elif permission == "report.view":
        status = client.get(f"/reports/{CAMPAIGN}").status_code
    else:  # log.verify
        token = csrf(client, "/")
        status = client.post("/inspector/verify", data={"csrf_token": token}).status_code
    assert status in (200, 403), status
    return status == 200


def _api(client: FlaskClient, headers: dict[str, str], permission: str, number: str) -> bool:
    path = {
        "ticket.view": f"/api/v1/tickets/{number}",
        "report.view": f"/api/v1/campaigns/{CAMPAIGN}/report",
        "log.verify": "/api/v1/audit/verify",
    }[permission]
    status = client.get(path, headers=headers).status_code
    assert status in (200, 403), status
    return status == 200


def _cli(url: str, username: str, permission: str, number: str) -> bool:
    args = {
        "ticket.view": ["ticket", "show", number, "--as", username],
        "report.view": ["report", "--campaign", CAMPAIGN, "--format", "json", "--as", username],
        "log.verify": ["audit", "verify", "--as", username],
    }[permission]
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert "needs the role" in result.output or "belongs to" in result.output, result.output
    return result.exit_code == 0


@pytest.mark.slow
def test_web_api_and_cli_give_the_policy_answer_for_every_case(
    app: Flask,
    login_as: Callable[[str], FlaskClient],
    db_session: Session,
    make_ticket: Callable[..., Any],
) -> None:
    own, _ = make_ticket("assigned", unit="luohe-station", officer="luohe.officer")
    other, _ = make_ticket("assigned", unit="traffic-brigade", officer="traffic.officer")
    unassigned, _ = make_ticket("received")
    tickets = {"own unit": own, "other unit": other, "no unit": unassigned}
    policy = app.extensions["rectiflow.ctx"].policy
    url = app.config["DB_URL"]
    api = app.test_client()
    checked = 0
    for role in ROLES:
        username = ROLE_USERS[role]
        actor = get_actor(db_session, username)
        token = create_token(db_session, username, now=CAMPAIGN_NOW, name="matrix").token
        db_session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        web = login_as(role)
        for permission in ("ticket.view", "report.view", "log.verify"):
            cases = tickets if permission == "ticket.view" else {"-": own}
            for where, number in cases.items():
                ticket = reference.ticket_model(db_session, number)
                expected = policy.can(actor, permission, ticket)
                db_session.rollback()
                answers = {
                    "web": _web(web, permission, number),
                    "api": _api(api, headers, permission, number),
                    "cli": _cli(url, username, permission, number),
                }
                assert set(answers.values()) == {expected}, (role, permission, where, answers)
                checked += 1
    assert checked == len(ROLES) * 5
    # The decisions written in the README, seen through every adapter above:
    assert not policy.can(get_actor(db_session, "luohe.officer"), "report.view")
    assert policy.can(get_actor(db_session, "supervisor"), "log.verify")
