"""How connections are handed out (engine.db): SQLite writers queue for the write lock without
SQLite's coarse busy sleeps; a pooled PostgreSQL connection is pinged only after lying idle."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from engine import db
from tests.integration.conftest import terminate_backend


def _counter_table(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE hits (n INTEGER NOT NULL)"))


def test_sqlite_writers_of_two_processes_and_many_threads_all_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    first, second = db.make_engine(url), db.make_engine(url)  # two processes' engines
    _counter_table(first)
    errors: list[BaseException] = []

    def write(engine, rollback_every: int) -> None:  # type: ignore[no-untyped-def]
        try:
            for i in range(25):
                with engine.connect() as conn:
                    conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
                    if i % rollback_every == 0:
                        conn.rollback()  # leaves the queue as a commit does
                    else:
                        conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(engine, 5))
        for engine in (first, second)
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with first.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM hits")).scalar() == 8 * 20
    finally:
        first.dispose()
        second.dispose()


def _traced_begins(engine: Engine) -> list[str]:
    """Every ``BEGIN IMMEDIATE`` (each try at the write lock) the engine's connections send
    from now on (its pool is emptied: new connections are traced)."""
    tries: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(
            lambda sql: tries.append(sql) if sql == "BEGIN IMMEDIATE" else None
        )

    engine.dispose()
    return tries


def test_sqlite_writer_let_in_by_the_queue_finds_the_lock_free(tmp_path: Path) -> None:
    """The queue is left once COMMIT or ROLLBACK has returned, not when SQLAlchemy announces
    it: the next writer of the process takes the database's lock at its first try instead of
    polling through the commit's fsync (each try is a traced BEGIN IMMEDIATE)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'handover.db'}", sqlite_synchronous="FULL")
    _counter_table(engine)
    tries = _traced_begins(engine)
    start = threading.Barrier(4)

    def write() -> None:
        start.wait()
        for i in range(20):
            with engine.connect() as conn:
                conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
                if i % 4 == 0:
                    conn.rollback()
                else:
                    conn.commit()

    threads = [threading.Thread(target=write) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(tries) == 4 * 20
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM hits")).scalar() == 4 * 15
    finally:
        engine.dispose()


def test_sqlite_writer_still_told_the_database_is_locked_past_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.05)
    path = tmp_path / "locked.db"
    engine = db.make_engine(f"sqlite:///{path}")
    _counter_table(engine)
    tries = _traced_begins(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(OperationalError, match="locked"), engine.connect() as conn:
            conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
        # Tried about every millisecond for 20 ms, then further apart (every 0.3 ms was ~80
        # tries in these 50 ms), and once more through SQLite's own wait.
        assert 5 <= len(tries) <= 45
        holder.execute("ROLLBACK")
        # The refused writer left the queue: the next one goes straight in.
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
    finally:
        holder.close()
        engine.dispose()


def test_sqlite_second_writer_in_one_thread_does_not_queue_behind_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread that opens a second write transaction while its first is open is told the
    database is locked after the busy timeout, as without the queue (it does not wait on the
    queue it holds); a transaction committed by another thread frees the queue."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.05)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'nested.db'}")
    _counter_table(engine)
    try:
        with engine.connect() as first:
            first.execute(text("INSERT INTO hits (n) VALUES (1)"))
            with pytest.raises(OperationalError, match="locked"), engine.connect() as second:
                second.execute(text("INSERT INTO hits (n) VALUES (2)"))
            done = threading.Thread(target=first.commit)
            done.start()
            done.join()
        result: list[int] = []

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO hits (n) VALUES (3)"))
            result.append(1)

        other = threading.Thread(target=write)
        other.start()
        other.join(timeout=10)
        assert result == [1]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sum(n) FROM hits")).scalar() == 4
    finally:
        engine.dispose()


def test_sqlite_write_transaction_begins_in_one_statement(tmp_path: Path) -> None:
    """A write transaction begins with SQLite's wait off and leaves it off (nothing waits inside
    a write transaction in WAL mode), so the connection's next one begins with one statement;
    a read snapshot or a backup on the same connection turns the wait back on first."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'begin.db'}")
    _counter_table(engine)
    sent: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(sent.append)

    engine.dispose()
    try:
        with engine.connect() as conn:
            for n in range(3):
                sent.clear()
                conn.execute(text("INSERT INTO hits (n) VALUES (:n)"), {"n": n})
                conn.commit()
                begun = [s for s in sent if not s.startswith("INSERT")]
                if n == 0:  # a new connection: the wait is on, turned off once
                    assert begun == ["PRAGMA busy_timeout=0", "BEGIN IMMEDIATE", "COMMIT"]
                else:
                    assert begun == ["BEGIN IMMEDIATE", "COMMIT"]
            raw = conn.connection.driver_connection
            assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 0
            conn.rollback()
        with db.read_snapshot(engine) as snapshot:
            assert snapshot.connection.driver_connection is raw  # the same pooled connection
            waits = raw.execute("PRAGMA busy_timeout")
            assert waits.fetchone()[0] == int(db.BUSY_TIMEOUT_SECONDS * 1000)
            assert snapshot.execute(text("SELECT count(*) FROM hits")).scalar() == 3
        with engine.begin() as conn:  # and off again for the next writer
            conn.execute(text("INSERT INTO hits (n) VALUES (9)"))
            raw = conn.connection.driver_connection
            assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    finally:
        engine.dispose()


def test_sqlite_read_snapshot_does_not_take_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "snap.db"
    engine = db.make_engine(f"sqlite:///{path}")
    _counter_table(engine)
    try:
        with db.read_snapshot(engine) as snapshot:
            assert snapshot.execute(text("SELECT count(*) FROM hits")).scalar() == 0
            with engine.begin() as conn:  # a writer goes on meanwhile, in this very thread
                conn.execute(text("INSERT INTO hits (n) VALUES (1)"))
            assert snapshot.execute(text("SELECT count(*) FROM hits")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_connection_used_just_now_is_not_pinged(pg_engine) -> None:  # type: ignore[no-untyped-def]
    engine, pings = pg_engine(ping_after_idle=3600)
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    assert pings == []


@pytest.mark.postgres
def test_pg_connection_idle_past_the_bound_is_pinged_and_replaced_when_dead(pg_engine) -> None:  # type: ignore[no-untyped-def]
    engine, pings = pg_engine(ping_after_idle=0)
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    terminate_backend(pid)  # the server drops the pooled connection while idle
    with engine.connect() as conn:  # found dead by the ping, replaced: no error here
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    assert len(pings) >= 1


@pytest.mark.postgres
def test_pg_autovacuum_off_is_a_warning_read_from_the_server(pg_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The server's own autovacuum setting decides the warning; SQLite has none to give."""
    pg_engine, _pings = pg_engine(1.0)
    with pg_engine.connect() as conn:
        off = str(conn.exec_driver_sql("SHOW autovacuum").scalar()) == "off"
    assert db.server_setting_warnings(pg_engine) == ([db.AUTOVACUUM_OFF] if off else [])
    sqlite = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.server_setting_warnings(sqlite) == []
    sqlite.dispose()
    # A server that does not answer (yet): no warning, and no crash at start.
    nobody = db.make_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    assert db.server_setting_warnings(nobody) == []
    nobody.dispose()
