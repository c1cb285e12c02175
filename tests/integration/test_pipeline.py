"""A transition's writes on PostgreSQL go out together (``rawsql.pipeline``): as one statement
of data-modifying ``WITH`` clauses where that does what running them in order does
(``rawsql.fused``), else in one psycopg pipeline. Reads inside still see the writes queued
before them, a server error is raised at the end and refuses the whole change, and ``fire()``
sends its writes as one batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import db, rawsql
from engine.context import build_context
from engine.ledger import LOG_COLUMNS
from engine.models import Notification, Ticket, Timer, TransitionLog, User
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import CAMPAIGN, CAMPAIGN_NOW, fresh_pg_database

pytestmark = pytest.mark.postgres

_INSERT_NOTICE = rawsql.BulkInsert(
    Notification.__table__, ("user_id", "kind", "ticket_id", "subject", "body", "created_at")
)
_INSERT_LOG = rawsql.BulkInsert(TransitionLog.__table__, LOG_COLUMNS)
_COUNT_NOTICES = rawsql.PreparedQuery(select(func.count().label("n")).select_from(Notification))
_INSERT_TIMER = rawsql.BulkInsert(
    Timer.__table__, ("ticket_id", "kind", "level", "due_at", "created_at")
)
_CANCEL_TIMERS = rawsql.PreparedWrite(
    update(Timer)
    .where(Timer.ticket_id == bindparam("ticket"), Timer.cancelled_at.is_(None))
    .values(cancelled_at=bindparam("at"))
)
_READ_NOTICES = rawsql.PreparedWrite(
    update(Notification)
    .where(Notification.user_id == bindparam("user"))
    .values(read_at=bindparam("at"))
)


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


def _ticket_and_clerk(pg: Engine) -> tuple[str, int, int]:
    """A new ticket (its number and id) and the clerk's user id."""
    ctx = build_context(engine=pg)
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        number = create_ticket(
            uow, campaign=CAMPAIGN, text="x", actor=clerk, now=CAMPAIGN_NOW, area="Luohe"
        ).number
    with Session(pg) as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.number == number))
        uid = s.scalar(select(User.id).where(User.username == "clerk"))
    assert ticket_id is not None and uid is not None
    return number, ticket_id, uid


def test_a_server_error_in_the_pipeline_refuses_the_whole_change(pg: Engine) -> None:
    number, ticket_id, uid = _ticket_and_clerk(pg)
    with Session(pg) as s:
        before = s.scalar(select(func.count()).select_from(TransitionLog))
    uow = build_context(engine=pg).bind(Session(pg))
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

    def step(number: str, trigger: str, user: str, data: dict[str, str], version: int) -> Any:
        with ctx.unit_of_work() as uow:
            actor = get_actor(uow.session, user)
            return fire(
                uow,
                number,
                trigger,
                actor=actor,
                data=data,
                expected_version=version,
                now=CAMPAIGN_NOW,
            )

    for number in (first, second):
        step(number, "categorize", "clerk", {"category": "team_building", "kind": "criticism"}, 1)
    monkeypatch.setattr(rawsql, "send_queued", counting)
    assign = {"unit": "political", "officer": "political.officer"}
    for number in (first, second):
        sent.clear()  # the first fills the context's read cache (its reads send what is queued)
        done = step(number, "assign", "supervisor", assign, 2)
    # Assigning moves the due time: cancel the clock's timers, arm the new ones, the ticket,
    # its log row, the notice — one go.
    assert len(sent) == 1 and sent[0] >= 5, sent
    with Session(pg) as s:
        row = s.execute(select(Ticket.state, Ticket.version).where(Ticket.number == second)).one()
    assert (row.state, row.version) == ("assigned", done.version)


def test_which_batches_are_fused() -> None:
    cancel, arm = (
        "UPDATE timers SET cancelled_at=%s WHERE ticket_id = %s",
        "INSERT INTO timers (a) VALUES (%s)",
    )
    log = 'INSERT INTO "transition_log" (a) VALUES (%s)'
    # An INSERT after an UPDATE of the same table: the same either way.
    assert rawsql.fused((cancel, arm, log)) == (f"WITH w0 AS ({cancel}), w1 AS ({arm}) {log}")
    # An UPDATE of a table written before it in the batch would not see that write.
    assert rawsql.fused((arm, cancel)) is None
    assert rawsql.fused((cancel, cancel)) is None
    assert rawsql.fused((log, "DELETE FROM transition_log WHERE a = %s")) is None
    # Nothing that answers, reads, upserts or has its own WITH.
    assert rawsql.fused((cancel, f"{log} RETURNING transition_log.id")) is None
    assert rawsql.fused((cancel, "SELECT 1")) is None
    assert rawsql.fused((arm, "INSERT INTO timers (a) SELECT a FROM timers")) is None
    assert rawsql.fused((arm, "UPDATE tickets SET n = (SELECT count(*) FROM timers)")) is None
    assert rawsql.fused((arm, f"{arm} ON CONFLICT (a) DO UPDATE SET a = 1")) is None
    assert rawsql.fused((f"WITH x AS (SELECT 1) {arm}", log)) is None


def test_a_fused_batch_writes_what_the_statements_in_order_write(pg: Engine) -> None:
    _, ticket_id, _ = _ticket_and_clerk(pg)
    later = CAMPAIGN_NOW + timedelta(days=1)
    with pg.connect() as conn:
        pending = conn.scalar(
            select(func.count()).where(Timer.ticket_id == ticket_id, Timer.cancelled_at.is_(None))
        )
        assert pending  # the ticket's clock
        with rawsql.pipeline(conn):
            # cancel the pending timers, then arm one: the new one stays pending
            _CANCEL_TIMERS.execute(conn, {"ticket": ticket_id, "at": later})
            _INSERT_TIMER.execute_few(conn, [(ticket_id, "warning", 0, later, later)])
            assert rawsql.fused(tuple(sql for sql, _ in conn.info[rawsql._QUEUED])) is not None
        rows = conn.execute(
            select(Timer.created_at, Timer.cancelled_at).where(Timer.ticket_id == ticket_id)
        ).all()
        conn.rollback()
    assert sum(1 for r in rows if r.cancelled_at == later) == pending
    assert [r.cancelled_at for r in rows if r.created_at == later] == [None]


def test_a_batch_that_cannot_be_fused_still_runs_in_order(pg: Engine) -> None:
    _, ticket_id, uid = _ticket_and_clerk(pg)
    with pg.connect() as conn:
        with rawsql.pipeline(conn):
            # the UPDATE must see the row inserted before it: not fused, pipelined in order
            _INSERT_NOTICE.execute_few(conn, _notice(uid, ticket_id))
            _READ_NOTICES.execute(conn, {"user": uid, "at": CAMPAIGN_NOW})
            assert rawsql.fused(tuple(sql for sql, _ in conn.info[rawsql._QUEUED])) is None
        read = conn.scalars(select(Notification.read_at).where(Notification.user_id == uid)).all()
        conn.rollback()
    assert read == [CAMPAIGN_NOW]
