"""The clerk's upload page: import a spreadsheet of opinions, see every bad row, follow progress."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("imports", __name__)

from web.imports import routes  # noqa: E402,F401
