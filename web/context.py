"""What every page needs: the clock, the signed-in user, role checks, time formatting.

The signed-in user is reloaded from the database on every request (one indexed
query), so a deactivated account or a changed role takes effect at once; the session itself
is the server's row (``web.sessions``), so signing out ends it for every copy of the cookie.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _

from engine.actors import Actor
from engine.errors import NotPermitted
from engine.notifications import current_unread_count
from engine.policy import TicketScope
from engine.read import reference
from web.database import get_ctx, get_session, get_uow

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TZ = "Asia/Shanghai"


def now() -> datetime:
    """The context's clock (``CLOCK`` in the Flask config when tests or drills set one)."""
    return get_ctx().now()


def can(permission: str, ticket: TicketScope | None = None) -> bool:
    """The policy's answer for the signed-in user (False when nobody is signed in)."""
    user = current_user()
    return user is not None and get_ctx().policy.can(user.actor, permission, ticket)


class CurrentUser:
    def __init__(self, row: Any) -> None:
        self.id: int = row.id
        self.username: str = row.username
        self.display_name: str = row.display_name
        self.role: str = row.role
        self.unit_id: int | None = row.unit_id
        self.unit_code: str | None = row.unit_code
        self.unit_name: str | None = row.unit_name
        self.locale: str | None = row.locale

    @property
    def actor(self) -> Actor:
        return Actor(username=self.username, role=self.role, unit_id=self.unit_id, id=self.id)


def current_user() -> CurrentUser | None:
    if "current_user" not in g:
        g.current_user = None
        from web.sessions import signed_in_user_id

        uid = signed_in_user_id()
        if uid is not None:
            row = reference.signed_in_user(get_session(), uid)
            if (
                row is not None
                and row.active
                and get_ctx().policy.can(_actor_of(row), "web.signin")
            ):
                g.current_user = CurrentUser(row)
            else:
                session.clear()
    return g.current_user  # type: ignore[no-any-return]


def require_user() -> CurrentUser:
    user = current_user()
    if user is None:
        raise NotPermitted(
            _("Sign in first.")
        )  # the login_required decorator redirects before this
    return user


def _actor_of(row: Any) -> Actor:
    return Actor(username=row.username, role=row.role, unit_id=row.unit_id, id=row.id)


def login_required(permission: str | None = None) -> Callable[[F], F]:
    """Redirect to the sign-in page when nobody is signed in; refuse (403, saying which roles
    may) when the policy does not grant ``permission`` (any signed-in staff when None)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                flash(_("Sign in to continue."), "info")
                return redirect(url_for("auth.signin", next=request.full_path))
            if permission is not None:
                get_ctx().policy.require(user.actor, permission)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def local(value: datetime | None, tz: str = DEFAULT_TZ) -> str:
    """A UTC time shown in the campaign's timezone, written the reader's way (Babel)."""
    from web.i18n import local_datetime

    return local_datetime(value, tz)


def duration(value: timedelta | None) -> str:
    """'3 d 4 h left' or '2 d 1 h overdue'."""
    if value is None:
        return _("no due time")
    seconds = int(value.total_seconds())
    late = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = _("%(days)s d %(hours)s h", days=days, hours=hours)
    elif hours:
        text = _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    else:
        text = _("%(minutes)s min", minutes=minutes)
    return _("%(time)s overdue", time=text) if late else _("%(time)s left", time=text)


def home_for(user: CurrentUser | None) -> str:
    if user is None:
        return url_for("public.index")
    return {
        "clerk": url_for("desk.categorize_queue"),
        "officer": url_for("unit.my_queue"),
        "unit_leader": url_for("unit.unit_queue"),
        "supervisor": url_for("supervisor.board"),
        "inspector": url_for("inspector.log_search"),
        "admin": url_for("supervisor.board"),
    }.get(user.role, url_for("public.index"))


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local"] = local
    app.jinja_env.filters["duration"] = duration

    @app.context_processor
    def _inject() -> dict[str, Any]:
        user = current_user()
        unread = current_unread_count(get_uow(), user.id) if user is not None else 0
        return {
            "current_user": user,
            "home_for": home_for,
            "unread_notices": unread,
            "has_page": lambda endpoint: endpoint in app.view_functions,
            "can": can,
        }

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; form-action 'self'; frame-ancestors 'none'",
            )
            if current_user() is not None or request.endpoint in (
                "public.submit",
                "public.status",
                "public.answer",
            ):
                response.headers["Cache-Control"] = "no-store"
        return response
