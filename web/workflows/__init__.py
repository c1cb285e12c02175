"""Workflow versions and their migration's dry run, for administrators (admin.workflows)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("workflows", __name__)

from web.workflows import routes  # noqa: E402,F401
