"""One SQLAlchemy session per request; views commit once, anything else is rolled back."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine import db as engine_db


def init_app(app: Flask, engine: Engine) -> None:
    app.extensions["rectiflow.engine"] = engine
    app.extensions["rectiflow.sessions"] = engine_db.session_factory(engine)
    app.teardown_appcontext(_close)


def get_session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["rectiflow.sessions"]()
    return g.db_session  # type: ignore[no-any-return]


def _close(_exc: BaseException | None) -> None:
    session: Any = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
