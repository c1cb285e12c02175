"""The clerk's desk: intake of opinions and the categorize queue with routing suggestions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("desk", __name__)

from web.desk import routes  # noqa: E402,F401
