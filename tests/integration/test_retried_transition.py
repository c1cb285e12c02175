"""A client that lost an answer retries the same transition: applied once, or a 409 that says
where the ticket is now — also when the retry raced the first attempt's transaction (PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from engine import db
from engine.context import UnitOfWork, build_context
from engine.errors import Conflict
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW, fresh_pg_database

pytestmark = pytest.mark.postgres

ESCALATE = {"receiving_body": "County People's Government", "reason": "Outside our duties"}


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    url, drop = fresh_pg_database(pg_template)
    yield url
    drop()  # type: ignore[operator]


def _assigned(uow: UnitOfWork) -> tuple[str, int]:
    session = uow.session
    clerk, supervisor = get_actor(session, "clerk"), get_actor(session, "supervisor")
    created = create_ticket(
        uow,
        campaign=CAMPAIGN,
        text="Theft of electric bikes near the market",
        kind="criticism",
        area="Luohe",
        actor=clerk,
        now=CAMPAIGN_NOW,
    )
    fire(
        uow,
        created.number,
        "categorize",
        actor=clerk,
        data={"category": "public_security_management", "kind": "criticism"},
        now=CAMPAIGN_NOW,
    )
    done = fire(
        uow,
        created.number,
        "assign",
        actor=supervisor,
        data={"unit": "security-brigade", "officer": "security.officer"},
        now=CAMPAIGN_NOW,
    )
    session.commit()
    return created.number, done.version


def test_a_retry_that_waited_for_the_first_attempt_gets_a_409_with_the_current_state(
    pg_url: str,
) -> None:
    engine = db.make_engine(pg_url)
    try:
        ctx = build_context(engine=engine)
        with Session(engine) as first, Session(engine) as retry, Session(engine) as watch:
            number, version = _assigned(ctx.bind(first))
            supervisor = get_actor(first, "supervisor")
            first.commit()
            # The first attempt has written but not committed (its answer is about to be lost).
            fire(
                ctx.bind(first),
                number,
                "escalate_to_government",
                actor=supervisor,
                data=ESCALATE,
                expected_version=version,
                now=CAMPAIGN_NOW,
            )
            outcome: dict[str, BaseException] = {}

            def send_retry() -> None:
                try:
                    fire(
                        ctx.bind(retry),
                        number,
                        "escalate_to_government",
                        actor=supervisor,
                        data=ESCALATE,
                        expected_version=version,
                        now=CAMPAIGN_NOW,
                    )
                    retry.commit()
                except BaseException as exc:  # noqa: BLE001 - examined below
                    retry.rollback()
                    outcome["error"] = exc

            thread = threading.Thread(target=send_retry)
            thread.start()
            deadline = time.monotonic() + 30
            while not watch.execute(  # the retry waits on the first attempt's row lock
                text(
                    "SELECT 1 FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).first():
                watch.rollback()
                assert time.monotonic() < deadline, "the retry never waited for the row lock"
            first.commit()
            thread.join(30)
            error = outcome.get("error")
            assert isinstance(error, Conflict), error
            details = error.to_dict()["details"]
            assert details["current_version"] == version + 1
            assert details["state"] == "escalated"
            count = watch.execute(
                text(
                    "SELECT count(*) FROM transition_log l JOIN tickets t ON t.id = l.ticket_id "
                    "WHERE t.number = :n AND l.trigger = 'escalate_to_government'"
                ),
                {"n": number},
            ).scalar_one()
            assert count == 1  # applied once
    finally:
        engine.dispose()
