"""Supervision: the overdue board, bulk reassign, extensions and reopen requests."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("supervisor", __name__)

from web.supervisor import routes  # noqa: E402,F401
