"""A unit of work hands its connection to the next one (engine.connections): the same
connection, no pool checkout in between; a connection still in a transaction, broken, or one
too many goes back to the pool; ``dispose()`` closes the shelf; on PostgreSQL a connection that
lay on the shelf past the ping bound is pinged, and replaced when the server dropped it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from engine import connections, db
from engine.context import build_context
from tests.conftest import PG_ADMIN_URL
from tests.integration.conftest import terminate_backend


@pytest.fixture
def sqlite_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'shelf.db'}")
    yield engine
    engine.dispose()


def test_the_next_unit_of_work_gets_the_connection_the_last_one_gave_back(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    shelf = connections.shelf_of(sqlite_engine)
    assert shelf is not None and shelf.size == sqlite_engine.pool.size()
    first = connections.take(sqlite_engine)
    first.execute(text("SELECT 1"))
    first.rollback()
    connections.give_back(sqlite_engine, first)
    assert len(shelf) == 1 and sqlite_engine.pool.checkedout() == 1  # kept, not checked in
    again = connections.take(sqlite_engine)
    assert again is first and len(shelf) == 0
    connections.give_back(sqlite_engine, again)


def test_a_connection_still_in_a_transaction_or_broken_goes_back_to_the_pool(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    shelf = connections.shelf_of(sqlite_engine)
    busy = connections.take(sqlite_engine)
    busy.execute(text("SELECT 1"))  # a transaction begun and never ended
    connections.give_back(sqlite_engine, busy)
    assert busy.closed and len(shelf) == 0
    broken = connections.take(sqlite_engine)
    broken.invalidate()
    connections.give_back(sqlite_engine, broken)
    assert broken.closed and len(shelf) == 0
    assert sqlite_engine.pool.checkedout() == 0


def test_the_shelf_keeps_no_more_than_the_pool_holds(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    shelf = connections.shelf_of(sqlite_engine)
    taken = [connections.take(sqlite_engine) for _ in range(shelf.size + 3)]
    for conn in taken:
        connections.give_back(sqlite_engine, conn)
    assert len(shelf) == shelf.size
    assert sum(conn.closed for conn in taken) == 3
    assert sqlite_engine.pool.checkedout() == shelf.size


def test_dispose_closes_what_is_on_the_shelf(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    conn = connections.take(sqlite_engine)
    driver = conn.connection.driver_connection
    conn.rollback()
    connections.give_back(sqlite_engine, conn)
    sqlite_engine.dispose()
    assert len(connections.shelf_of(sqlite_engine)) == 0
    assert conn.closed
    with pytest.raises(Exception, match="closed"):
        driver.execute("SELECT 1")  # the driver's connection itself is closed


def test_units_of_work_share_one_connection_and_a_failed_one_leaves_none_behind(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ctx.db'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE hits (n INTEGER NOT NULL)"))
    ctx = build_context(engine=engine)
    seen = []
    for _ in range(3):
        uow = ctx.connect()
        seen.append(uow.conn)
        uow.conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
        uow.commit()
        uow.close()
    assert seen[0] is seen[1] is seen[2]
    with pytest.raises(RuntimeError), ctx.unit_of_work() as uow:
        uow.conn.execute(text("INSERT INTO hits (n) VALUES (2)"))
        raise RuntimeError("refused")
    with ctx.unit_of_work() as uow:  # the refused write left nothing, and no lock behind
        assert uow.conn.execute(text("SELECT count(*), sum(n) FROM hits")).one() == (3, 3)
    engine.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_use_its_parents_shelved_connections(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    conn = connections.take(sqlite_engine)
    conn.rollback()
    connections.give_back(sqlite_engine, conn)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the shelf is empty, the parent's connection untouched
        os._exit(0 if len(connections.shelf_of(sqlite_engine)) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert connections.take(sqlite_engine) is conn  # still the parent's, still usable
    conn.execute(text("SELECT 1"))
    conn.rollback()
    connections.give_back(sqlite_engine, conn)


@pytest.mark.postgres
def test_pg_shelved_connection_idle_past_the_bound_is_pinged_and_replaced_when_dead(
    pg_engine,
) -> None:  # type: ignore[no-untyped-def]
    engine, pings = pg_engine(ping_after_idle=0)
    try:
        conn = connections.take(engine)
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.rollback()
        connections.give_back(engine, conn)
        terminate_backend(pid)  # the server drops the shelved connection
        fresh = connections.take(engine)  # found dead by the ping: no error here
        assert fresh is not conn and len(pings) >= 1
        assert fresh.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        fresh.rollback()
        connections.give_back(engine, fresh)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_shelved_connection_used_just_now_is_not_pinged(pg_engine) -> None:  # type: ignore[no-untyped-def]
    engine, pings = pg_engine(ping_after_idle=3600)
    try:
        for _ in range(3):
            conn = connections.take(engine)
            assert conn.execute(text("SELECT 1")).scalar() == 1
            conn.rollback()
            connections.give_back(engine, conn)
        assert pings == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_dispose_leaves_no_session_on_the_server(pg_engine) -> None:  # type: ignore[no-untyped-def]
    """The database can be dropped right after ``dispose()``: nothing shelved stays open."""
    engine, _pings = pg_engine(ping_after_idle=1.0)
    conn = connections.take(engine)
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    conn.rollback()
    connections.give_back(engine, conn)
    engine.dispose()
    admin = db.make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as check:
            alive = check.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
    finally:
        admin.dispose()
    assert alive == 0
