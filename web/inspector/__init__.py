"""The inspector: log search, verification, CSV export and a random sample of closed tickets."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inspector", __name__)

from web.inspector import routes  # noqa: E402,F401
