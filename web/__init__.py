"""The Flask application factory. No module-level app: ``create_app(config)`` builds one."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

from engine.clock import SystemClock
from engine.context import build_context
from engine.settings import PROJECT_ROOT, load_settings, project_path


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from config/default.toml → RECTIFLOW_* env → ``config``.

    ``config`` may hold rectiflow settings (``database_url``...) and Flask keys
    (upper case, e.g. ``TESTING``, ``WTF_CSRF_ENABLED``).
    """
    config = dict(config or {})
    flask_keys = {k: v for k, v in config.items() if k.isupper()}
    settings = load_settings({k: v for k, v in config.items() if not k.isupper()})
    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    app.config.update(
        SECRET_KEY=settings.get("secret_key") or _instance_secret(app),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=bool(settings.get("https", False)),
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        RECTIFLOW=settings,
    )
    app.config.update(flask_keys)

    from web import database

    # The app's clock is ``CLOCK`` in the Flask config when set (tests, drills), else the
    # system's; the context asks it on every call.
    ctx = build_context(settings, clock=lambda: (app.config.get("CLOCK") or SystemClock())())
    database.init_app(app, ctx)

    from web import errors, i18n, params

    i18n.init_app(app)  # Flask-Babel: the locale of each request, the language switch
    errors.init_app(app)
    params.init_app(app)
    from engine.ratelimit import limiter_from_settings
    from web import ratelimit, sessions

    # Limits count first, then the signed-in session is resolved: both before any view opens
    # the request's transaction.
    ratelimit.init_app(app, limiter_from_settings(settings, ctx.engine))
    sessions.init_app(app, settings)  # body size and JSON depth, before any view parses the body
    _register_blueprints(app)
    if not app.debug and not app.testing and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO)
        # transitions logs each callback at INFO: several lines per request under gunicorn.
        logging.getLogger("transitions").setLevel(logging.WARNING)
    return app


def _register_blueprints(app: Flask) -> None:
    """One blueprint per audience; each package exposes ``bp``."""
    from web import health

    app.register_blueprint(health.bp)
    from web import auth, context, desk, inbox, inspector, public, supervisor, tickets, unit

    context.init_app(app)
    auth.init_app(app)  # CSRF on every HTML form (the token APIs are exempt)
    for pages in (public, auth, desk, unit, tickets, supervisor, inspector, inbox):
        app.register_blueprint(pages.bp)
    from web import imports, reports, workflows

    app.register_blueprint(reports.bp)
    app.register_blueprint(workflows.bp)
    app.register_blueprint(imports.bp)
    from web import api

    api.init_app(app)  # /api/v1 with its OpenAPI document (flask-smorest registers it)
    from web import open311

    app.register_blueprint(open311.bp)
    from web import admin

    admin.init_app(app)  # /admin and /account/password


def _instance_secret(app: Flask) -> str:
    path = project_path("instance") / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32)
        path.write_text(value)
        path.chmod(0o600)
        return value
