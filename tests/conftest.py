"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

Each database is copied from a template that is migrated and loaded with the
sample organisation and the report's campaign once per test session, so a
fresh database costs a file copy (SQLite) or CREATE DATABASE ... TEMPLATE
(PostgreSQL). In CI (CI=true) PostgreSQL must answer; elsewhere its tests skip
with the reason when no server answers.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine import db
from engine.clock import FixedClock
from engine.context import EngineContext, UnitOfWork, build_context
from engine.organisation import load_organisation_file, read_toml, upsert_campaign
from engine.settings import PROJECT_ROOT
from engine.tickets import Actor, get_actor

PG_ADMIN_URL = os.environ.get(
    "RECTIFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CAMPAIGN = "consultation-2005"
# A moment inside the report's campaign: Monday 2005-02-28, 10:00 in Shanghai.
CAMPAIGN_NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)


def campaign_file() -> Path:
    return PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml"


def campaign_without_phases() -> dict[str, object]:
    """The report's campaign without its phases. Most tests work deadlines from Feb 28 with
    each clock starting on entry; the phases (which hold the first clocks until the March 8
    meeting) are loaded by the tests about them: ``load_phases(session)``."""
    data = read_toml(campaign_file())
    data.pop("phases", None)
    return data


def load_phases(session_or_uow: Session | UnitOfWork) -> None:
    """Load the campaign file as it is, phases included (an upsert of the seeded campaign)."""
    upsert_campaign(as_uow(session_or_uow), read_toml(campaign_file()), source=str(campaign_file()))


def _seed(engine: Engine) -> None:
    db.upgrade(engine)
    ctx = build_context(engine=engine)
    with ctx.unit_of_work() as uow:
        load_organisation_file(uow, PROJECT_ROOT / "config" / "organisation.toml")
        upsert_campaign(uow, campaign_without_phases(), source="tests/conftest.py")


@pytest.fixture(scope="session", autouse=True)
def _cli_output_in_english() -> Iterator[None]:
    """Tests read the CLI's English sentences unless they choose a language themselves
    (tests/integration/test_cli_i18n.py); the sample bureau's default is Chinese."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECTIFLOW_LANG", "en")
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    _seed(engine)
    engine.dispose()
    with sqlite3.connect(path) as raw:  # fold the WAL into the file so a plain copy is complete
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _pg_admin() -> Engine | None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            return engine
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        engine.dispose()
        if IN_CI:
            raise RuntimeError(
                f"CI=true but PostgreSQL does not answer at {PG_ADMIN_URL}: {exc}"
            ) from exc
        return None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    admin = _pg_admin()
    if admin is None:
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL} (set CI=true to require one)")
    name = f"rectiflow_tpl_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = db.make_engine(url)
    _seed(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_pg_database(template: str) -> tuple[str, object]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"rectiflow_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, seeded database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "rectiflow.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
    else:
        template_name: str = request.getfixturevalue("pg_template")
        url, drop = fresh_pg_database(template_name)
        yield url
        drop()  # type: ignore[operator]


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, seeded SQLite database only (for tests that need no PostgreSQL run)."""
    path = tmp_path / "rectiflow.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    factory = db.session_factory(engine)
    with factory() as session:
        yield session
        session.rollback()


@pytest.fixture
def now() -> datetime:
    return CAMPAIGN_NOW


@pytest.fixture
def ctx(engine: Engine, now: datetime) -> EngineContext:
    """The engine context on the test's database, its clock standing at ``now``."""
    return build_context(engine=engine, clock=FixedClock(now))


def as_uow(session_or_uow: Session | UnitOfWork) -> UnitOfWork:
    """Test helpers take either: a bare session is bound to a context on its own engine."""
    if isinstance(session_or_uow, UnitOfWork):
        return session_or_uow
    bind = session_or_uow.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return build_context(engine=engine).bind(session_or_uow)


def ctx_of(sessions: sessionmaker[Session]) -> EngineContext:
    """The engine context on the engine a session factory is bound to."""
    return build_context(engine=sessions.kw["bind"])


@pytest.fixture
def uow(ctx: EngineContext, session: Session) -> UnitOfWork:
    """A unit of work on the test's ``session`` (the test commits or rolls back)."""
    return ctx.bind(session)


@pytest.fixture
def actor(session: Session):  # type: ignore[no-untyped-def]
    """``actor('clerk')`` → the Actor of a sample user."""

    def _actor(username: str) -> Actor:
        return get_actor(session, username)

    return _actor
