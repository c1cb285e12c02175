"""A transition's writes on PostgreSQL go out together, in one pipeline (``rawsql.pipeline``):
reads inside still see the writes queued before them, a server error is raised at the end and
refuses the whole change, and ``fire()`` sends its writes as one batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import db, rawsql
from engine.context import build_context
from engine.ledger import LOG_COLUMNS
from engine.models import Notification, Ticket, TransitionLog, User
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW, fresh_pg_database

pytestmark = pytest.mark.postgres

_INSERT_NOTICE = rawsql.BulkInsert(
    Notification.__table__, ("user_id", "kind", "ticket_id", "subject", "body", "created_at")
)
_INSERT_LOG = rawsql.BulkInsert(TransitionLog.__table__, LOG_COLUMNS)
_COUNT_NOTICES = rawsql.PreparedQuery(select(func.count().label("n")).select_from(Notification))


@pytest.fixture
def pg(pg_template: str) -> Iterator[Engine]:
    url, drop = fresh_pg_database(pg_template)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
    drop()  # type: ignore[operator]


def _notice(user_id: int, ticket_id: int | None = None) -> list[tuple[Any, ...]]:
    return [(user_id, "test", ticket_id, "s", "b", CAMPAIGN_NOW)]


def _queued(conn: Any) -> int:
    return len(conn.info[rawsql._QUEUED])


def test_reads_inside_see_the_writes_queued_before_them(pg: Engine) -> None:
    with pg.connect() as conn:
        uid = conn.scalar(select(User.id).where(User.username == "clerk"))
        assert uid is not None
        with rawsql.pipeline(conn) as queued:
            assert queued
            _INSERT_NOTICE.execute_few(conn, _notice(uid))
            assert _queued(conn) == 1  # not sent yet
            # A read through the prepared path, and one through SQLAlchemy, send it first.
            assert _COUNT_NOTICES.first(conn, {}).n == 1
            assert _queued(conn) == 0
            _INSERT_NOTICE.execute_few(conn, _notice(uid))
            assert conn.scalar(select(func.count()).select_from(Notification)) == 2
            _INSERT_NOTICE.execute_few(conn, _notice(uid))
            assert _queued(conn) == 1
        # the block's end sent the last one
        assert conn.scalar(select(func.count()).select_from(Notification)) == 3
        conn.rollback()


def test_a_server_error_in_the_pipeline_refuses_the_whole_change(pg: Engine) -> None:
    ctx = build_context(engine=pg)
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        number = create_ticket(
            uow, campaign=CAMPAIGN, text="x", actor=clerk, now=CAMPAIGN_NOW, area="Luohe"
        ).number
    with Session(pg) as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.number == number))
        uid = s.scalar(select(User.id).where(User.username == "clerk"))
        before = s.scalar(select(func.count()).select_from(TransitionLog))
    uow = ctx.bind(Session(pg))
    with pytest.raises(DBAPIError, match="append-only"), uow.writing(number):
        conn = uow.conn
        with rawsql.pipeline(conn):
            _INSERT_NOTICE.execute_few(conn, _notice(uid, ticket_id))
            # the log is append-only: seq 1 is the create row (its guard refuses at the end)
            row = (ticket_id, 1, "x", None, "received", "t", "t", CAMPAIGN_NOW, None, "{}", 1)
            _INSERT_LOG.execute_few(conn, [(*row, "0" * 64, "1" * 64, None)])
    uow.session.close()
    with Session(pg) as s:
        assert s.scalar(select(func.count()).select_from(TransitionLog)) == before
        assert s.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_pipeline_error_is_sqlalchemys_dbapi_error(pg: Engine) -> None:
    with pg.connect() as conn:
        with pytest.raises(DBAPIError), rawsql.pipeline(conn):
            _INSERT_NOTICE.execute_few(conn, _notice(-5))  # no such user: a foreign key
        conn.rollback()


def test_fire_sends_its_writes_in_one_batch(pg: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = build_context(engine=pg)
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        first, second = (
            create_ticket(
                uow, campaign=CAMPAIGN, text=t, actor=clerk, now=CAMPAIGN_NOW, area="Luohe"
            ).number
            for t in ("x", "y")
        )
    sent: list[int] = []
    real = rawsql.send_queued

    def counting(conn: Any) -> None:
        if conn.info.get(rawsql._QUEUED):
            sent.append(len(conn.info[rawsql._QUEUED]))
        real(conn)

    monkeypatch.setattr(rawsql, "send_queued", counting)
    categorize = {"category": "team_building", "kind": "criticism"}
    for number in (first, second):
        sent.clear()  # the first fills the context's read cache (its reads send what is queued)
        with ctx.unit_of_work() as uow:
            done = fire(
                uow,
                number,
                "categorize",
                actor=get_actor(uow.session, "clerk"),
                data=categorize,
                expected_version=1,
                now=CAMPAIGN_NOW,
            )
    # Cancel the clock's timers, arm the next ones, the ticket, its log row, the notice: one go.
    assert len(sent) == 1 and sent[0] >= 4, sent
    with Session(pg) as s:
        row = s.execute(select(Ticket.state, Ticket.version).where(Ticket.number == second)).one()
    assert (row.state, row.version) == ("categorized", done.version)
