"""Engine errors rendered as JSON or HTML with the status the engine gives them; 500s roll back."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, render_template, render_template_string, request
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError

log = logging.getLogger(__name__)


def status_for(error: EngineError) -> int:
    """The engine's one table (each error class carries its status)."""
    return error.status


def wants_json() -> bool:
    path = request.path
    return (
        path.startswith("/api/")
        or path.startswith("/open311/")
        or request.accept_mimetypes.best == "application/json"
    )


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ status }} {{ title }}</title></head><body><main><h1>{{ title }}</h1><p>{{ message }}</p>
<p><a href="/">Back to the start page</a></p></main></body></html>"""


def render_error(status: int, title: str, message: str) -> tuple[str, int]:
    """The HTML error page inside the site's layout (navigation kept); a bare page if that fails."""
    try:
        return render_template("error.html", status=status, title=title, message=message), status
    except Exception:  # noqa: BLE001 - the layout needs the database; the bare page does not
        log.exception("error page layout failed")
        return render_template_string(_PAGE, status=status, title=title, message=message), status


def _rollback() -> None:
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def init_app(app: Flask) -> None:
    @app.errorhandler(EngineError)
    def _engine_error(error: EngineError) -> tuple[Response | str, int]:
        _rollback()
        status = status_for(error)
        if wants_json():
            return jsonify({"error": error.to_dict()}), status
        return render_error(status, error.code.replace("_", " ").capitalize(), error.message)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response | str, int]:
        _rollback()
        status = error.code or 500
        if request.path.startswith("/open311/"):
            # Outside the blueprint's routes (a path like /open311/x.json): still the spec's
            # error list, as every Open311 answer.
            from web.open311.formats import error as open311_error

            fmt = "xml" if request.path.endswith(".xml") else "json"
            return open311_error(status, error.description or error.name, fmt), status
        if wants_json():
            code = (error.name or "error").lower().replace(" ", "_")
            return jsonify(
                {"error": {"code": code, "message": error.description, "details": {}}}
            ), status
        return render_error(status, error.name, error.description or "")

    @app.errorhandler(Exception)
    def _server_error(error: Exception) -> tuple[Response | str, int]:
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return jsonify(
                {
                    "error": {
                        "code": "server_error",
                        "message": "internal error; it was logged",
                        "details": {},
                    }
                }
            ), 500
        return render_template_string(
            _PAGE, status=500, title="Server error", message="Something went wrong; it was logged."
        ), 500
