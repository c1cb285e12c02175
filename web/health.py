"""Liveness and readiness: ``/healthz`` (process up) and ``/readyz`` (database answers)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from engine.read import reference
from web.database import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    reference.ping(get_session())
    return jsonify({"status": "ready"})
