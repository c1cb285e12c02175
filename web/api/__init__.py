"""The JSON API at ``/api/v1``: Bearer-token authentication, an OpenAPI 3 document
generated from the code (flask-smorest + marshmallow) at ``/api/v1/openapi.json``,
and a Swagger UI page at ``/api/v1/docs`` served from the flask-swagger-ui package
(no CDN).

Errors have one shape, ``{"error": {"code", "message", "details"}}``: engine
refusals are mapped by ``web.errors``; the framework's own validation errors
(422) and malformed bodies (400) are reshaped here.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, Response, request, send_from_directory
from flask_smorest import Api
from werkzeug.exceptions import MethodNotAllowed

from web.api.routes import bp
from web.api.schemas import ErrorSchema

PREFIX = "/api/v1"
CONFIG_PREFIX = "API_V1"
SWAGGER_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

assets = Blueprint("api_docs_assets", __name__)


@assets.get("/docs/assets/<path:filename>")
def docs_asset(filename: str):  # type: ignore[no-untyped-def]
    return send_from_directory(SWAGGER_DIST, filename, max_age=86400)


# The site's content security policy allows scripts from this origin only (no inline script),
# so the page loads Swagger UI and starts it from files, never from a <script> block.
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rectiflow API</title>
<link rel="stylesheet" href="{prefix}/docs/assets/swagger-ui.css">
<link rel="icon" href="data:,">
</head>
<body>
<div id="swagger-ui-container" data-spec-url="{prefix}/openapi.json"></div>
<script src="{prefix}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{prefix}/docs/start.js"></script>
</body>
</html>
"""
DOCS_START = """window.addEventListener("load", function () {
  var node = document.getElementById("swagger-ui-container");
  window.ui = SwaggerUIBundle({ url: node.dataset.specUrl, dom_id: "#swagger-ui-container" });
});
"""


def docs_page() -> Response:
    return Response(DOCS_PAGE.format(prefix=PREFIX), mimetype="text/html")


@assets.get("/docs/start.js")
def docs_start() -> Response:
    return Response(DOCS_START, mimetype="text/javascript")


class RectiflowApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, leaving error handling to ``web.errors`` and the blueprint."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        pass


DESCRIPTION = """The rectiflow JSON API: consultation tickets, their transitions, deadlines,
extensions, the tamper-evident transition log, campaigns, reports and workflow definitions.

Authenticate with `Authorization: Bearer <token>`; an admin makes a token with
`rectiflow tokens create USERNAME`. The token acts as that user: the same role and unit rules as
the web pages apply (officers and unit leaders see and act on their own unit's tickets only).

Every error is `{"error": {"code": "...", "message": "...", "details": {...}}}`:
400 malformed request, 401 no or bad token, 403 not permitted (the message says which role or unit
would be), 404 unknown, 409 stale `expected_version` or a trigger the state does not allow,
422 missing or invalid data (`details.fields` names each field). Times are ISO 8601 in UTC."""


def init_app(app: Flask) -> None:
    """Attach the API (and its OpenAPI document and docs page) to ``app``."""
    p = CONFIG_PREFIX + "_"
    for key, value in {
        "API_TITLE": "rectiflow API",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": PREFIX + "/docs/assets/",
    }.items():
        app.config.setdefault(p + key, value)
    api = RectiflowApi(
        spec_kwargs={
            "info": {"description": DESCRIPTION},
            "servers": [{"url": "/", "description": "this server"}],
            "security": [{"bearerAuth": []}],
        },
        config_prefix=CONFIG_PREFIX,
    )
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "an API token"}
    )
    api.register_blueprint(bp, url_prefix=PREFIX)
    app.register_blueprint(assets, url_prefix=PREFIX)
    # flask-smorest's page starts Swagger UI from an inline script, which the CSP blocks.
    app.view_functions["api-v1-api-docs.openapi_swagger_ui"] = docs_page
    app.extensions["rectiflow.api"] = api
    app.after_request(_allow_header)


def _allow_header(response: Response) -> Response:
    """A 405 names the methods the URL does take (RFC 9110), whichever handler rendered it."""
    routing = request.routing_exception
    if isinstance(routing, MethodNotAllowed) and routing.valid_methods:
        response.headers.setdefault("Allow", ", ".join(sorted(routing.valid_methods)))
    return response
