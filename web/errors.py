"""Engine errors rendered as JSON or HTML with the status the engine gives them; 500s roll back."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, render_template_string, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError
from web import database

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


_PAGE = """<!doctype html><html lang="{{ lang }}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ status }} {{ title }}</title></head><body><main><h1>{{ title }}</h1><p>{{ message }}</p>
<p><a href="/">{{ back }}</a></p></main></body></html>"""


def render_error(status: int, title: str, message: str) -> tuple[str, int]:
    """The HTML error page inside the site's layout (navigation kept); a bare page if that fails."""
    try:
        return render_template("error.html", status=status, title=title, message=message), status
    except Exception:  # noqa: BLE001 - the layout needs the database; the bare page does not
        log.exception("error page layout failed")
        return _bare_page(status, title, message), status


def _bare_page(status: int, title: str, message: str) -> str:
    try:
        from web.i18n import HTML_LANG, locale_code

        lang, back = HTML_LANG.get(locale_code(), "zh-CN"), _("Back to the start page")
    except Exception:  # noqa: BLE001 - the bare page must render whatever failed
        lang, back = "en", "Back to the start page"
    return render_template_string(
        _PAGE, status=status, title=title, message=message, lang=lang, back=back
    )


def error_title(error: EngineError) -> str:
    """The heading of an engine error's page, in the reader's language."""
    titles = {
        "invalid_data": _("Invalid data"),
        "invalid_transition": _("Not possible in this state"),
        "not_permitted": _("Not permitted"),
        "conflict": _("Changed meanwhile"),
        "not_found": _("Not found"),
        "bad_workflow": _("Workflow definition error"),
        "bad_config": _("Configuration error"),
    }
    return titles.get(error.code, error.code.replace("_", " ").capitalize())


def http_title(status: int, name: str) -> str:
    titles = {
        400: _("Bad request"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Method not allowed"),
        413: _("File too large"),
        429: _("Too many requests"),
    }
    return titles.get(status, name)


def http_message(status: int, description: str) -> str:
    messages = {
        404: _("There is no page at this address. Check the link, or go back to your start page."),
        405: _("This address does not take that kind of request."),
        413: _("The file is larger than the site accepts (64 MB)."),
    }
    return messages.get(status, description)


def _rollback() -> None:
    database.rollback()


def init_app(app: Flask) -> None:
    @app.errorhandler(EngineError)
    def _engine_error(error: EngineError) -> tuple[Response | str, int]:
        _rollback()
        status = status_for(error)
        if wants_json():
            return jsonify({"error": error.to_dict()}), status
        from web.messages import engine_message

        return render_error(status, error_title(error), engine_message(error))

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
        return render_error(
            status, http_title(status, error.name), http_message(status, error.description or "")
        )

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
        try:
            title, message = _("Server error"), _("Something went wrong; it was logged.")
        except Exception:  # noqa: BLE001
            title, message = "Server error", "Something went wrong; it was logged."
        return _bare_page(500, title, message), 500
