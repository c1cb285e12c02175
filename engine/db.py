"""Connecting to SQLite or PostgreSQL, and creating or upgrading the schema.

SQLite is the embedded default: WAL journal, durable commits
(``synchronous=FULL`` unless configured), foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of failing half-way. PostgreSQL is used by URL (psycopg 3).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

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
    url: str, *, sqlite_synchronous: str = "FULL", echo: bool = False, **kw: Any
) -> Engine:
    """An Engine for ``url`` with the project's connection settings applied."""
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
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30}, **kw)
        _configure_sqlite(engine, mode)
        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=echo, **kw)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is lazy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read snapshot (read_snapshot below) must not take the write lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


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
