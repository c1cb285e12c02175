"""The notifications inbox of the signed-in user."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inbox", __name__)

from web.inbox import routes  # noqa: E402,F401
