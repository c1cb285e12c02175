"""The campaign report: a page with SVG charts (pygal) and downloads in text, JSON, CSV, XLSX."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__)

from web.reports import routes  # noqa: E402,F401
