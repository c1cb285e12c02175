"""Connecting to SQLite or PostgreSQL, and creating or upgrading the schema.

SQLite is the embedded default: WAL journal, durable commits
(``synchronous=FULL`` unless configured), foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so two writers queue (in the
process, then on the write lock, ``_SqliteWriters``) instead of failing
half-way. PostgreSQL is used by URL (psycopg 3); a pooled connection is pinged
only after lying idle (``PING_AFTER_IDLE_SECONDS``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine import connections

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    echo: bool = False,
    ping_after_idle: float | None = None,
    **kw: Any,
) -> Engine:
    """An Engine for ``url`` with the project's connection settings applied (PostgreSQL: a
    pooled connection idle more than ``ping_after_idle`` seconds, default
    ``PING_AFTER_IDLE_SECONDS``, is pinged before use)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        mode = sqlite_synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            from engine.errors import ConfigError

            raise ConfigError(
                f"sqlite synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {mode!r}"
            )
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30, "factory": _WriterConnection}, **kw
        )
        _configure_sqlite(engine, mode)
        connections.install(engine, ping_after=None)  # a file: nothing to lose while idle
        return engine
    engine = create_engine(url, echo=echo, **kw)
    seconds = PING_AFTER_IDLE_SECONDS if ping_after_idle is None else ping_after_idle
    if kw.get("pool_pre_ping"):
        seconds = 0.0  # every checkout pinged: a shelved connection too
    else:
        _ping_after_idle(engine, seconds)
    connections.install(engine, ping_after=seconds)
    return engine


AUTOVACUUM_OFF = (
    "PostgreSQL's autovacuum is off: the transition log's insert guard plans its look-ups from "
    "the table's statistics, and a log that grows without being analysed is scanned whole on "
    "every insert. Turn autovacuum on (PostgreSQL's default), or run ANALYZE after large loads."
)


def server_setting_warnings(engine: Engine) -> list[str]:
    """What the database server's settings put at risk, one sentence each (none on SQLite).

    PostgreSQL with ``autovacuum = off``: the log's BEFORE INSERT guard
    (``transition_log_no_reuse``) keeps a generic plan per connection; when the statistics
    it was planned from say the log is small, each later insert scans the whole log until
    someone runs ANALYZE (measured: 500 inserts 0.83 s instead of 0.06 s after 20,000).
    """
    if engine.dialect.name != "postgresql":
        return []
    try:
        with engine.connect() as conn:
            autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar()
            conn.rollback()
    except DBAPIError:  # a server not up yet: the process's own connecting says so
        log.info("could not read the server's settings", exc_info=True)
        return []
    return [AUTOVACUUM_OFF] if str(autovacuum).lower() in {"off", "false"} else []


# A pooled PostgreSQL connection is pinged before use only when it lay idle longer than this.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping (one round trip) a pooled connection at checkout only when it has been idle more
    than ``idle_seconds``: a server restart, a failover or a dropped link while the pool
    slept is found before a request uses the connection (a fresh one is made), as SQLAlchemy's
    ``pool_pre_ping`` would, without a round trip on every checkout under load. A connection
    that dies within ``idle_seconds`` of its last use fails that one request; SQLAlchemy
    then replaces the pool's connections."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since <= idle_seconds:
            return
        # A DisconnectionError: the pool drops this connection and hands out a new one.
        connections.ping(engine, dbapi_connection)
        record.info[_IDLE_SINCE] = time.monotonic()


_IDLE_SINCE = "rectiflow.idle_since"


BUSY_TIMEOUT_SECONDS = 30.0
# Not faster: processes that all write would then take the lock from each other between
# every two transactions (each on caches the other made stale) instead of handing it on within
# the process; two processes of two threads firing transitions, tries every 0.3 ms: 1.0-1.1 ms
# CPU a transition, p50 4.8 ms; every 1 ms: 0.72-0.76 ms, p50 1.7 ms (three processes: 1.54
# against 0.82 ms at 2 ms).
BUSY_POLL_SECONDS = 0.001
# Past this long a wait (another process's long transaction: a sweep, an import batch) the
# tries space out, up to BUSY_POLL_MAX_SECONDS apart, so a waiting process burns little CPU.
BUSY_POLL_FAST_SECONDS = 0.02
BUSY_POLL_MAX_SECONDS = 0.002


class _SqliteWriters:
    """How the writers of one SQLite database take its write lock (``BEGIN IMMEDIATE``).

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, so a
    writer that finds the lock taken for a 2 ms transaction often sleeps 8 ms or more while
    the lock lies free. Here the threads of a process queue on a lock of their own (woken
    the moment it is free), and the one at the head tries the database's lock every 1 ms
    (other processes' writers; further apart after a while) for up to
    ``BUSY_TIMEOUT_SECONDS``, then as before: SQLite's
    "database is locked" (which the unit of work answers as a ``Conflict``). The queue is
    left once the transaction's COMMIT or ROLLBACK has returned (``_WriterConnection``): the
    next writer of the process then finds the database's lock free, instead of trying it
    through the commit's fsync."""

    def __init__(self) -> None:
        self.queue = threading.Lock()
        self._threads = threading.local()

    def begin(self, conn: Any, mode: str) -> None:
        if mode != "IMMEDIATE":
            wait_when_busy(conn.connection.driver_connection)
            conn.exec_driver_sql(f"BEGIN {mode}")
            return
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        mine = self._threads.__dict__.setdefault("place", _Place())
        sqlite = conn.connection.dbapi_connection  # sqlite3's own (pysqlite is synchronous)
        # A thread already at the head (a second write transaction of its own) does not queue
        # behind itself: SQLite's lock decides, as it did before there was a queue.
        queued = not mine.held and self.queue.acquire(timeout=BUSY_TIMEOUT_SECONDS)
        try:
            if not _begin_immediate_polling(sqlite, deadline):
                wait_when_busy(sqlite)
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's own wait, and its error
        except BaseException:
            if queued:
                self.queue.release()
            raise
        if queued:
            mine.held = True
            sqlite.queued = (self, mine)

    def leave(self, place: _Place) -> None:
        place.held = False
        self.queue.release()


class _Place:
    """Whether a thread is at the head of the queue (holds it)."""

    held = False


class _WriterConnection(sqlite3.Connection):
    """pysqlite's connection that leaves its process's writer queue (``_SqliteWriters``) when
    its transaction has ended: after COMMIT or ROLLBACK returns, or at close. SQLAlchemy's
    commit and rollback events come before the statement; a writer let in there found the
    database still locked through the commit's fsync and polled (1.5 tries per API transition
    with four threads)."""

    queued: tuple[_SqliteWriters, _Place] | None = None
    # The busy_timeout this connection was last given here (milliseconds; None: not known).
    busy_ms: int | None = None

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_queue()

    def leave_queue(self) -> None:
        queued, self.queued = self.queued, None
        if queued is not None:
            writers, place = queued
            writers.leave(place)


def _set_busy_timeout(dbapi_connection: Any, ms: int) -> None:
    """Give the connection SQLite's ``busy_timeout`` of ``ms`` unless it already has it."""
    if getattr(dbapi_connection, "busy_ms", None) == ms:
        return
    dbapi_connection.execute(f"PRAGMA busy_timeout={ms}")
    if isinstance(dbapi_connection, _WriterConnection):
        dbapi_connection.busy_ms = ms


def wait_when_busy(dbapi_connection: Any) -> None:
    """Let SQLite wait (up to ``BUSY_TIMEOUT_SECONDS``) when it finds the database locked.

    A write transaction is begun with the wait off (``_begin_immediate_polling``) and leaves
    it off: inside a write transaction in WAL mode nothing waits (statements, COMMIT, the
    passive auto-checkpoint), and the next write transaction of the connection then begins
    in one statement instead of three. Anything else that uses the connection — a read
    snapshot's ``BEGIN DEFERRED``, the fallback ``BEGIN IMMEDIATE``, a backup — turns the wait
    back on first through this."""
    _set_busy_timeout(dbapi_connection, int(BUSY_TIMEOUT_SECONDS * 1000))


def _begin_immediate_polling(dbapi_connection: Any, deadline: float) -> bool:
    """Try ``BEGIN IMMEDIATE`` every ``BUSY_POLL_SECONDS`` (spacing out to every
    ``BUSY_POLL_MAX_SECONDS`` after ``BUSY_POLL_FAST_SECONDS``) until ``deadline``; False if
    the lock stayed taken (or the database said something other than busy). The tries do not
    wait in SQLite (``busy_timeout`` 0), and the connection keeps it so (``wait_when_busy``)."""
    slow_after = time.monotonic() + BUSY_POLL_FAST_SECONDS
    pause = BUSY_POLL_SECONDS
    _set_busy_timeout(dbapi_connection, 0)
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" not in text and "busy" not in text:
                return False
        now = time.monotonic()
        if now >= deadline:
            return False
        if now >= slow_after:
            pause = min(pause * 1.5, BUSY_POLL_MAX_SECONDS)
        time.sleep(pause)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    writers = _SqliteWriters()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is lazy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        wait_when_busy(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read snapshot (read_snapshot below) must not take the write lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        writers.begin(conn, mode)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # a connection given back without commit or rollback (no reset on return)
        if isinstance(dbapi_connection, _WriterConnection):
            dbapi_connection.leave_queue()


@contextlib.contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in one read-only transaction that sees a single consistent state.

    SQLite: a deferred BEGIN, so writers go on (WAL) while the snapshot is read;
    PostgreSQL: REPEATABLE READ, READ ONLY. Rolled back at the end.
    """
    if engine.dialect.name == "sqlite":
        options: dict[str, Any] = {"sqlite_begin": "DEFERRED"}
    else:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as conn, conn.begin() as tx:
        yield conn
        tx.rollback()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create the schema or bring it up to ``revision`` (Alembic migrations)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
