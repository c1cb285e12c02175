"""The ticket page (detail, history, due time and rule, the allowed actions) and the workflow diagram."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tickets", __name__)

from web.tickets import routes  # noqa: E402,F401
