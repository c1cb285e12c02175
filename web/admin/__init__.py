"""Administration pages at /admin (users, units, campaigns, routing, tokens, workflows, the admin
log) and each user's own password page; a user who must change their password is led there
before anything else."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, request, url_for
from flask_babel import gettext as _

bp = Blueprint("admin", __name__)

# Pages a user who must change their password may still reach.
_ALLOWED_BEFORE_CHANGE = frozenset(
    {
        "admin.own_password",
        "auth.signout",
        "auth.signin",
        "static",
        "health.healthz",
        "health.readyz",
    }
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _force_password_change() -> Any:
        if request.endpoint in _ALLOWED_BEFORE_CHANGE or request.path.startswith(
            ("/api/", "/open311/", "/static/")
        ):
            return None
        from engine.admin import must_change_password
        from web.context import current_user
        from web.database import get_uow

        # current_user() first: it checks the session in a short transaction of its own,
        # before the request's own transaction begins.
        user = current_user()
        if user is not None and must_change_password(get_uow(), user.id):
            flash(_("Choose a new password before you go on."), "info")
            return redirect(url_for("admin.own_password"))
        return None


from web.admin import routes  # noqa: E402,F401
