"""One unit of work per request on the process's engine context; views commit once through it,
anything else is rolled back."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from engine.context import EngineContext, UnitOfWork


def init_app(app: Flask, ctx: EngineContext) -> None:
    app.extensions["rectiflow.ctx"] = ctx
    app.extensions["rectiflow.engine"] = ctx.engine
    app.extensions["rectiflow.sessions"] = ctx.sessions
    app.teardown_appcontext(_close)


def get_ctx() -> EngineContext:
    """The process's engine context (built once by the app factory)."""
    return current_app.extensions["rectiflow.ctx"]  # type: ignore[no-any-return]


def get_uow() -> UnitOfWork:
    """The request's unit of work: its session, the context; ``uow.commit()`` once."""
    if "uow" not in g:
        g.uow = get_ctx().bind(get_session())
    return g.uow  # type: ignore[no-any-return]


def get_session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["rectiflow.sessions"]()
    return g.db_session  # type: ignore[no-any-return]


def _close(_exc: BaseException | None) -> None:
    g.pop("uow", None)
    session: Any = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
