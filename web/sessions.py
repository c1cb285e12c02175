"""Signed-in sessions on the server (``engine.web_sessions``), and the cookie's flags.

Flask's signed cookie carries only the session's random id (``sid``), the CSRF token and
flash messages; who is signed in, and whether that still holds, is the server's row. The
cookie is Secure whenever the request came over HTTPS (``request.is_secure``, which honours
``X-Forwarded-Proto`` from the ``proxies`` trusted reverse proxies) or the ``https`` setting
says the site is only served over HTTPS.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Request, current_app, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.context import UnitOfWork
from engine.web_sessions import SessionPolicy, end_session, resume_session, start_session
from web.context import current_user, now
from web.database import get_ctx

SESSION_KEY = "sid"
TOKEN_PREFIXES = ("/api/", "/open311/")  # token-authenticated: cookies play no part
API_PREFIX = "/api/"


class CookieInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure per request when it came over HTTPS. The
    JSON API gets no session at all (nothing read, signed or sent back): its requests are
    token-authenticated and render no page."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(API_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)


def policy() -> SessionPolicy:
    return current_app.extensions["rectiflow.session_policy"]  # type: ignore[no-any-return]


def begin(uow: UnitOfWork, user_id: int) -> None:
    """Sign ``user_id`` in: a fresh server row and a fresh cookie (no fixation); the caller
    commits ``uow``."""
    token = start_session(uow, user_id, now=now(), remote_addr=request.remote_addr)
    session.clear()
    session[SESSION_KEY] = token


def signed_in_user_id() -> int | None:
    """The user of the cookie's session if it still holds (one short transaction of its own,
    so an expiry is recorded whatever the request then does)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    with get_ctx().unit_of_work() as uow:
        active = resume_session(uow, token, now=now(), policy=policy())
    if active is None:
        session.clear()
        return None
    return active.user_id


def end(uow: UnitOfWork) -> bool:
    """End the cookie's session on the server and clear the cookie; the caller commits."""
    token = session.get(SESSION_KEY)
    ended = isinstance(token, str) and end_session(uow, token, now=now())
    session.clear()
    return bool(ended)


def init_app(app: Flask, settings: dict[str, Any]) -> None:
    limits = settings.get("sessions") or {}
    app.extensions["rectiflow.session_policy"] = SessionPolicy(
        idle=timedelta(minutes=int(limits.get("idle_minutes", 30))),
        absolute=timedelta(hours=int(limits.get("absolute_hours", 12))),
    )
    app.session_interface = CookieInterface()

    @app.before_request
    def _resolve_early() -> None:
        # Resolve the session (its own short transaction) before the view opens the
        # request's: on SQLite a second transaction in the same request would wait on it.
        if SESSION_KEY in session and not request.path.startswith(TOKEN_PREFIXES):
            current_user()

    app.config.setdefault("SESSION_COOKIE_SECURE", bool(settings.get("https", False)))
    proxies = int(settings.get("proxies", 0) or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
