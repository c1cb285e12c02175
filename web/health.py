"""Liveness and readiness: ``/healthz`` (process up) and ``/readyz`` (database answers)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from web.database import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    get_session().execute(text("SELECT 1"))
    return jsonify({"status": "ready"})
