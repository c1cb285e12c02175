"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine import db
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def pg_engine(pg_template: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``pg_engine(ping_after_idle)`` → an engine on a fresh database, and the pings it sends."""
    from tests.conftest import fresh_pg_database

    url, drop = fresh_pg_database(pg_template)
    engines = []

    def make(ping_after_idle: float):  # type: ignore[no-untyped-def]
        engine = db.make_engine(url, ping_after_idle=ping_after_idle)
        engines.append(engine)
        pings: list[int] = []
        real = engine.dialect.do_ping

        def counted(dbapi_connection):  # type: ignore[no-untyped-def]
            pings.append(1)
            return real(dbapi_connection)

        monkeypatch.setattr(engine.dialect, "do_ping", counted)
        return engine, pings

    yield make
    for engine in engines:
        engine.dispose()
    drop()  # type: ignore[operator]


def terminate_backend(pid: int) -> None:
    """Have the PostgreSQL server drop the connection of backend ``pid``."""
    admin = db.make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()
