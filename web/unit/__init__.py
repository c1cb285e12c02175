"""Officers and unit leaders: my queue and the unit's queue, soonest due first."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("unit", __name__)

from web.unit import routes  # noqa: E402,F401
