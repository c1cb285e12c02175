"""Staff sign-in and sign-out, and CSRF protection for every HTML form."""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

# Machine clients (JSON API, Open311) authenticate with tokens, not cookies: no CSRF there.
CSRF_EXEMPT_PREFIXES = ("/api/", "/open311/")


def init_app(app: Flask) -> None:
    """Check the CSRF token on every unsafe request outside the token-authenticated APIs."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    csrf.init_app(app)

    @app.before_request
    def _check_csrf() -> None:
        if not app.config.get("WTF_CSRF_ENABLED", True):
            return
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if request.path.startswith(CSRF_EXEMPT_PREFIXES):
            return
        csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        from flask_babel import gettext as _

        from web.errors import render_error

        if request.endpoint == "auth.signout":
            return render_error(
                400,
                _("Not signed out"),
                _(
                    "You are still signed in: the sign-out form's security token is missing or "
                    "expired. Use the Sign out button on a page of this site to sign out."
                ),
            )
        return render_error(
            400,
            _("Form check failed"),
            _(
                "This form was not accepted: its security token is missing, expired or not from "
                "this site. Nothing was changed. Reload the page and try again."
            ),
        )


from web.auth import routes  # noqa: E402,F401
