"""Pages for the public: give an opinion, check a receipt, answer the feedback."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)

from web.public import routes  # noqa: E402,F401
