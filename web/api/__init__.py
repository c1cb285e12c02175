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
    _add_links(api.spec._paths)  # noqa: SLF001 - apispec keeps the built paths there
    app.register_blueprint(assets, url_prefix=PREFIX)
    # flask-smorest's page starts Swagger UI from an inline script, which the CSP blocks.
    app.view_functions["api-v1-api-docs.openapi_swagger_ui"] = docs_page
    app.extensions["rectiflow.api"] = api
    app.after_request(_allow_header)


def _op(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


# OpenAPI links: how a response's values feed the next request (clients and schemathesis'
# stateful run follow them: create a ticket, read it, fire a trigger with its version, ...).
TICKET = PREFIX + "/tickets/{number}"
LINKS: dict[tuple[str, str, str], dict[str, dict[str, object]]] = {
    (PREFIX + "/tickets", "post", "201"): {
        "GetTicket": {
            "operationRef": _op(TICKET, "get"),
            "parameters": {"number": "$response.body#/number"},
        },
        "GetHistory": {
            "operationRef": _op(TICKET + "/history", "get"),
            "parameters": {"number": "$response.body#/number"},
        },
        "Fire": {
            "operationRef": _op(TICKET + "/transitions", "post"),
            "parameters": {"number": "$response.body#/number"},
            "requestBody": {
                "trigger": "categorize",
                "expected_version": "$response.body#/version",
                "data": {"category": "traffic_management", "kind": "criticism"},
            },
        },
    },
    (TICKET, "get", "200"): {
        "GetHistory": {
            "operationRef": _op(TICKET + "/history", "get"),
            "parameters": {"number": "$response.body#/number"},
        },
    },
    (TICKET + "/transitions", "post", "200"): {
        "GetTicket": {
            "operationRef": _op(TICKET, "get"),
            "parameters": {"number": "$response.body#/number"},
        },
        "AskExtension": {
            "operationRef": _op(TICKET + "/extensions", "post"),
            "parameters": {"number": "$response.body#/number"},
        },
    },
    (TICKET + "/extensions", "post", "201"): {
        "Decide": {
            "operationRef": _op(PREFIX + "/extensions/{extension_id}/decision", "post"),
            "parameters": {"extension_id": "$response.body#/id"},
        },
    },
    (PREFIX + "/campaigns", "get", "200"): {
        "Report": {
            "operationRef": _op(PREFIX + "/campaigns/{code}/report", "get"),
            "parameters": {"code": "$response.body#/0/code"},
        },
    },
    (PREFIX + "/workflows", "get", "200"): {
        "Workflow": {
            "operationRef": _op(PREFIX + "/workflows/{name}/{version}", "get"),
            "parameters": {
                "name": "$response.body#/0/name",
                "version": "$response.body#/0/version",
            },
        },
    },
}


def _add_links(paths: dict[str, dict[str, dict[str, object]]]) -> None:
    for (path, method, status), links in LINKS.items():
        responses = paths[path][method]["responses"]
        responses[status]["links"] = links  # type: ignore[index]


def _allow_header(response: Response) -> Response:
    """A 405 names the methods the URL does take (RFC 9110), whichever handler rendered it."""
    routing = request.routing_exception
    if isinstance(routing, MethodNotAllowed) and routing.valid_methods:
        response.headers.setdefault("Allow", ", ".join(sorted(routing.valid_methods)))
    return response
