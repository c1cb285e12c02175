"""One unit of work per request on the process's engine context; views commit once through it,
anything else is rolled back.

Reads that tolerate lag (reports, inspector log searches) take ``get_read_uow()``: the
context's ``ReadSource`` picks the hot standby or the primary, and the choice is sent
back in the ``X-Rectiflow-Read-Source`` header. After a write request, the primary's
WAL position is kept in the user's session (and sent to API clients as
``X-Rectiflow-Write-Position``) so that user's next lag-tolerant read waits for
nothing it wrote: it goes to the primary until the standby has replayed that far.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request, session
from sqlalchemy.orm import Session, sessionmaker

from engine import readsource
from engine.context import EngineContext, UnitOfWork

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_KEY = "rf_wal"


def init_app(app: Flask, ctx: EngineContext) -> None:
    app.extensions["rectiflow.ctx"] = ctx
    app.extensions["rectiflow.engine"] = ctx.engine
    app.extensions["rectiflow.sessions"] = ctx.sessions
    app.teardown_appcontext(_close)
    app.after_request(_read_headers)


def get_ctx() -> EngineContext:
    """The process's engine context (built once by the app factory)."""
    return current_app.extensions["rectiflow.ctx"]  # type: ignore[no-any-return]


def get_uow() -> UnitOfWork:
    """The request's unit of work on the primary: one pooled connection, taken on first use;
    ``uow.commit()`` once. Its ORM session (``get_session()``) is made on that connection when
    a view asks for it: an API transition runs on the connection alone."""
    if "uow" not in g:
        g.uow = get_ctx().connect()
    return g.uow  # type: ignore[no-any-return]


def get_session() -> Session:
    """The request's ORM session on the primary (on the unit of work's connection)."""
    return get_uow().session


def rollback() -> None:
    """Undo what the request did so far (an error answer); nothing when it touched nothing."""
    uow: UnitOfWork | None = g.get("uow")
    if uow is not None:
        uow.rollback()


def _min_position() -> int | None:
    marks = [
        readsource.parse_position(request.headers.get(readsource.MIN_POSITION_HEADER)),
        readsource.parse_position(session.get(SESSION_KEY)),
    ]
    known = [m for m in marks if m is not None]
    return max(known) if known else None


def _choose() -> readsource.ReadChoice:
    reads = get_ctx().read_source
    choice = reads.choose(min_position=_min_position())
    if reads.has_standby:
        g.read_choice = choice
    return choice


def read_sessions() -> sessionmaker[Session]:
    """The session factory for one lag-tolerant read (the standby when close enough)."""
    return get_ctx().read_source.sessions(_choose())


def get_read_uow() -> UnitOfWork:
    """The request's unit of work for lag-tolerant reads: on the standby, or the request's
    own on the primary (one connection, and on SQLite no second writer waiting)."""
    if "read_uow" not in g:
        choice = _choose()
        if choice.source != readsource.STANDBY:
            return get_uow()
        g.db_read_session = get_ctx().read_source.sessions(choice)()
        g.read_uow = get_ctx().bind(g.db_read_session)
    return g.read_uow  # type: ignore[no-any-return]


def get_read_session() -> Session:
    """The session of ``get_read_uow()``."""
    return get_read_uow().session


def _read_headers(response: Response) -> Response:
    choice = g.get("read_choice")
    if choice is not None:
        response.headers[readsource.HEADER] = choice.header
    reads = get_ctx().read_source
    if reads.has_standby and request.method in WRITE_METHODS and response.status_code < 400:
        position = reads.write_position()
        if position is not None:
            text = readsource.format_position(position)
            response.headers[readsource.WRITE_POSITION_HEADER] = text
            if g.get("current_user") is not None:  # a signed-in user's write: their cookie
                session[SESSION_KEY] = text
    return response


def _close(_exc: BaseException | None) -> None:
    g.pop("read_uow", None)
    uow: UnitOfWork | None = g.pop("uow", None)
    if uow is not None:
        uow.rollback()
        uow.close()
    db_session: Any = g.pop("db_read_session", None)
    if db_session is not None:
        db_session.rollback()
        db_session.close()
