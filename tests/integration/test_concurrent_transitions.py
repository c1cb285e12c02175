"""Many API clients firing transitions on the same few tickets at once, on PostgreSQL.

The short, automated form of bench/loadtest.py: a threaded HTTP server runs the
real app on loopback, six clients with their own tokens race on three tickets,
and afterwards nothing is lost or applied twice, every refusal is a 409 and the
log verifies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from bench.loadtest import (
    check_consistency,
    make_tokens,
    max_log_id,
    officers_by_unit,
    run_clients,
)
from engine import db
from engine.context import build_context
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW, fresh_pg_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    url, drop = fresh_pg_database(pg_template)
    yield url
    drop()  # type: ignore[operator]


def _assigned_tickets(uow, count: int) -> list[str]:
    session = uow.session
    clerk = get_actor(session, "clerk")
    supervisor = get_actor(session, "supervisor")
    numbers = []
    for i in range(count):
        now = CAMPAIGN_NOW + timedelta(minutes=i)
        created = create_ticket(
            uow,
            campaign=CAMPAIGN,
            text=f"Theft of electric bikes near the market, report {i}",
            kind="criticism",
            area="Luohe",
            actor=clerk,
            now=now,
        )
        fire(
            uow,
            created.number,
            "categorize",
            actor=clerk,
            data={"category": "public_security_management", "kind": "criticism"},
            now=now,
        )
        fire(
            uow,
            created.number,
            "assign",
            actor=supervisor,
            data={"unit": "security-brigade", "officer": "security.officer"},
            now=now,
        )
        numbers.append(created.number)
    return numbers


def test_racing_clients_lose_nothing_and_apply_nothing_twice(pg_url: str) -> None:
    from web import create_app

    engine = db.make_engine(pg_url)
    with Session(engine) as session:
        numbers = _assigned_tickets(build_context(engine=engine).bind(session), 3)
        tokens = make_tokens(session, "supervisor", 6)
        officers = officers_by_unit(session)
        session.commit()
        since = max_log_id(session)

    app = create_app({"database_url": pg_url, "secret_key": "test", "TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stats = run_clients(
            f"http://127.0.0.1:{server.server_port}",
            tokens,
            numbers,
            officers,
            duration=3.0,
            max_requests=180,
        )
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        app.extensions["rectiflow.engine"].dispose()

    result = check_consistency(engine, stats, since_log_id=since, api_user="supervisor")
    engine.dispose()
    assert result.problems == []
    assert stats.applied, "no transition was applied at all"
    assert stats.statuses[409] > 0, "the clients never collided; the test proves nothing"
    assert set(stats.statuses) <= {200, 409}
    assert result.api_rows == len(stats.applied)
