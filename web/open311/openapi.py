"""The OpenAPI 3 description of ``/open311/v2``, served at ``/open311/v2/openapi.json``.

It follows GeoReport v2 (open311.org; the Swagger 2.0 file of open311/schema-validation) and
says what this server does: each resource at ``.json`` and ``.xml``, form-encoded POST with
``api_key``, errors as a list of ``{code, description}``. The service codes are those of the
programmes open for intake (``<programme>.<category>``; a configured ``open311_campaign``'s
plain codes), read when the document is asked for. Links let a stateful client go from a
created request to reading it back, and from the service list to a service's definition.
"""

from __future__ import annotations

from typing import Any

STATUS_NOTE = (
    "without an api_key: the state's public title (e.g. 'Assigned to an officer', 'Fed back to "
    "the citizen'); with a staff key that may see the ticket: the latest feedback text"
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "nullable": True, **extra}


def _answer(
    schema: dict[str, Any], description: str, links: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {"schema": schema},
            "text/xml": {"schema": {"description": "the same, as GeoReport v2 XML"}},
        },
    }
    if links:
        answer["links"] = links
    return answer


ERRORS = {
    400: "bad or missing data (one entry per bad field), or characters that cannot be stored",
    403: "api_key missing or not valid, or its user may not submit",
    404: "unknown service, request, resource or format",
    413: "the body is larger than 1 MiB",
    429: "too many requests from this address or with this api_key; see Retry-After",
}


def _errors(*statuses: int) -> dict[str, Any]:
    """The error answers: ``statuses`` and, on every resource, 400 (a parameter with
    characters that cannot be stored), 404 (a format other than json or xml) and 429."""
    out: dict[str, Any] = {}
    for status in sorted({*statuses, 400, 404, 429}):
        answer = _answer({"$ref": "#/components/schemas/Errors"}, ERRORS[status])
        if status == 429:
            answer["headers"] = {
                "Retry-After": {
                    "description": "seconds until the limit's window turns",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        out[str(status)] = answer
    return out


FORMAT = {
    "name": "format",
    "in": "path",
    "required": True,
    "description": "the response format",
    "schema": {"type": "string", "enum": ["json", "xml"]},
}
JURISDICTION = {
    "name": "jurisdiction_id",
    "in": "query",
    "required": False,
    "description": "accepted and ignored: this endpoint serves one jurisdiction",
    "schema": {"type": "string"},
}
OPTIONAL_KEY: list[dict[str, Any]] = [{}, {"api_key": []}]


def _path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def document(base: str, service_codes: list[str], kinds: list[str]) -> dict[str, Any]:
    """The document for this server at ``base`` (``/open311/v2``), with its service codes and
    the kinds their programmes' workflows take."""
    # An empty enum is not valid JSON Schema: with no programme open, any string (then 400).
    code_schema: dict[str, Any] = {"type": "string"}
    if service_codes:
        code_schema["enum"] = service_codes
    request_id = {"type": "string", "maxLength": 40, "pattern": r"^[^\s,]+$"}
    read_request_link = {
        "operationId": "getServiceRequest",
        "parameters": {
            "service_request_id": "$response.body#/0/service_request_id",
            "format": "json",
        },
    }
    paths: dict[str, Any] = {
        "/discovery.{format}": {
            "get": {
                "operationId": "getDiscovery",
                "summary": "the endpoint, its formats and how to get an API key",
                "parameters": [FORMAT],
                "responses": {"200": _answer(_ref("Discovery"), "discovery"), **_errors(429)},
            }
        },
        "/services.{format}": {
            "get": {
                "operationId": "getServiceList",
                "summary": (
                    "the services of every programme open for intake: each programme's "
                    "categories and its general service, coded <programme>.<category> "
                    "(<programme>.opinion), grouped by the programme's title in the reader's "
                    "language (Accept-Language)"
                ),
                "parameters": [FORMAT, JURISDICTION],
                "responses": {
                    "200": _answer(
                        {"type": "array", "items": _ref("Service")},
                        "the services",
                        {
                            "ServiceDefinition": {
                                "operationId": "getServiceDefinition",
                                "parameters": {
                                    "service_code": "$response.body#/0/service_code",
                                    "format": "json",
                                },
                            }
                        },
                    ),
                    **_errors(404, 429),
                },
            }
        },
        "/services/{service_code}.{format}": {
            "get": {
                "operationId": "getServiceDefinition",
                "summary": "a service's attributes: kind and area",
                "parameters": [
                    _path_param(
                        "service_code", "a service_code from the service list", code_schema
                    ),
                    FORMAT,
                    JURISDICTION,
                ],
                "responses": {
                    "200": _answer(_ref("ServiceDefinition"), "the definition"),
                    **_errors(404, 429),
                },
            }
        },
        "/requests.{format}": {
            "get": {
                "operationId": "getServiceRequests",
                "summary": "requests, newest first (at most 1,000; by default the last 90 days)",
                "security": OPTIONAL_KEY,
                "parameters": [
                    FORMAT,
                    JURISDICTION,
                    {
                        "name": "service_request_id",
                        "in": "query",
                        "description": "comma-separated ids; overrides the other filters",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "service_code",
                        "in": "query",
                        "description": (
                            "comma-separated service codes (a closed programme's too; a plain "
                            "category code matches it in every programme)"
                        ),
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "start_date",
                        "in": "query",
                        "description": (
                            "a W3C date-time (2005-03-01T00:00:00Z); with end_date at most 90 "
                            "days apart; years 1900–2999"
                        ),
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "end_date",
                        "in": "query",
                        "description": "a W3C date-time, not before start_date; years 1900–2999",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "description": "open or closed (comma-separated for both)",
                        "schema": {
                            "type": "string",
                            "pattern": r"^(\s*(open|closed)?\s*)(,\s*(open|closed)?\s*)*$",
                        },
                    },
                ],
                "responses": {
                    "200": _answer({"type": "array", "items": _ref("Request")}, "the requests"),
                    **_errors(400, 403, 404, 429),
                },
            },
            "post": {
                "operationId": "postServiceRequest",
                "summary": "submit a request (form-encoded); a location is required",
                "description": (
                    "Give lat and long together, or address_string, or address_id (GeoReport "
                    "v2); a jurisdiction whose setting open311_location_required is false takes "
                    "requests without one. The person's name and contact are kept for staff "
                    "and never shown on Open311. api_key may also be a form field, as GeoReport "
                    "v2 clients send it; the form's then counts."
                ),
                "security": [{"api_key": []}],
                "parameters": [FORMAT],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _ref("NewRequest")}
                    },
                },
                "responses": {
                    "201": _answer(
                        {"type": "array", "items": _ref("Created"), "minItems": 1, "maxItems": 1},
                        "created; the notice carries the person's receipt code",
                        {"ServiceRequest": read_request_link},
                    ),
                    **_errors(400, 403, 404, 413, 429),
                },
            },
        },
        "/requests/{service_request_id}.{format}": {
            "get": {
                "operationId": "getServiceRequest",
                "summary": "one request, as a one-item list",
                "security": OPTIONAL_KEY,
                "parameters": [
                    _path_param("service_request_id", "the ticket number", request_id),
                    FORMAT,
                    JURISDICTION,
                ],
                "responses": {
                    "200": _answer(
                        {"type": "array", "items": _ref("Request"), "minItems": 1, "maxItems": 1},
                        "the request",
                    ),
                    **_errors(403, 404, 429),
                },
            }
        },
        "/tokens/{token}.{format}": {
            "get": {
                "operationId": "getServiceRequestIdFromToken",
                "summary": "a request's id from its token (requests get their id at once: the same)",
                "parameters": [_path_param("token", "the token", request_id), FORMAT, JURISDICTION],
                "responses": {
                    "200": _answer({"type": "array", "items": _ref("Token")}, "the id"),
                    **_errors(404, 429),
                },
            }
        },
    }
    paths["/requests.{format}"]["post"]["responses"]["201"]["links"]["Token"] = {
        "operationId": "getServiceRequestIdFromToken",
        "parameters": {"token": "$response.body#/0/service_request_id", "format": "json"},
    }
    text = {"type": "string"}
    schemas: dict[str, Any] = {
        "Discovery": {
            "type": "object",
            "required": ["changeset", "contact", "key_service", "endpoints"],
            "properties": {
                "changeset": {**text, "format": "date-time"},
                "contact": text,
                "key_service": text,
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["specification", "url", "changeset", "type", "formats"],
                        "properties": {
                            "specification": text,
                            "url": text,
                            "changeset": {**text, "format": "date-time"},
                            "type": {"type": "string", "enum": ["production", "test"]},
                            "formats": {"type": "array", "items": text},
                        },
                    },
                },
            },
        },
        "Service": {
            "type": "object",
            "required": ["service_code", "service_name", "metadata", "type"],
            "properties": {
                "service_code": code_schema,
                "service_name": text,
                "description": _nullable("string"),
                "metadata": {"type": "boolean"},
                "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
                "keywords": _nullable("string"),
                "group": _nullable("string"),
            },
        },
        "ServiceDefinition": {
            "type": "object",
            "required": ["service_code", "attributes"],
            "properties": {
                "service_code": code_schema,
                "attributes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "variable",
                            "code",
                            "datatype",
                            "required",
                            "order",
                            "description",
                        ],
                        "properties": {
                            "variable": {"type": "boolean"},
                            "code": text,
                            "datatype": {
                                "type": "string",
                                "enum": [
                                    "string",
                                    "number",
                                    "datetime",
                                    "text",
                                    "singlevaluelist",
                                    "multivaluelist",
                                ],
                            },
                            "required": {"type": "boolean"},
                            "datatype_description": _nullable("string"),
                            "order": {"type": "integer", "minimum": 1},
                            "description": text,
                            "values": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["key", "name"],
                                    "properties": {"key": text, "name": text},
                                },
                            },
                        },
                    },
                },
            },
        },
        "Request": {
            "type": "object",
            "description": (
                "A ticket. Without a key that may see it, description, address, lat and long are "
                "null and status_notes is the state's public title: nothing that identifies "
                "anyone."
            ),
            "required": ["service_request_id", "status", "service_code", "requested_datetime"],
            "properties": {
                "service_request_id": text,
                "status": {"type": "string", "enum": ["open", "closed"]},
                "status_notes": {**_nullable("string"), "description": STATUS_NOTE},
                "service_name": _nullable("string"),
                "service_code": text,
                "description": _nullable("string", maxLength=4000),
                "agency_responsible": _nullable("string"),
                "service_notice": _nullable("string"),
                "requested_datetime": {**text, "format": "date-time"},
                "updated_datetime": _nullable("string", format="date-time"),
                "expected_datetime": _nullable("string", format="date-time"),
                "address": _nullable("string"),
                "address_id": _nullable("string"),
                "zipcode": _nullable("string"),
                "lat": _nullable("number"),
                "long": _nullable("number"),
                "media_url": _nullable("string"),
            },
        },
        "NewRequest": {
            "type": "object",
            "required": ["service_code", "description"],
            "properties": {
                "jurisdiction_id": {"type": "string"},
                "service_code": code_schema,
                "description": {"type": "string", "minLength": 1, "maxLength": 10000},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "long": {"type": "number", "minimum": -180, "maximum": 180},
                "address_string": {"type": "string", "maxLength": 300},
                "address_id": {"type": "string", "maxLength": 100},
                "first_name": {"type": "string", "maxLength": 100},
                "last_name": {"type": "string", "maxLength": 100},
                "email": {"type": "string", "maxLength": 200},
                "phone": {"type": "string", "maxLength": 50},
                "attribute[kind]": {
                    "type": "string",
                    "description": (
                        "one of the kinds the service's definition lists (its programme's "
                        "workflow); another programme's kind is refused with 400"
                    ),
                    **({"enum": kinds} if kinds else {}),
                },
                "attribute[area]": {"type": "string", "maxLength": 100},
            },
        },
        "Created": {
            "type": "object",
            "required": ["service_request_id", "service_notice"],
            "properties": {
                "service_request_id": text,
                "service_notice": text,
                "account_id": _nullable("string"),
            },
        },
        "Token": {
            "type": "object",
            "required": ["service_request_id", "token"],
            "properties": {"service_request_id": text, "token": text},
        },
        "Errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {"code": {"type": "integer"}, "description": text},
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "rectiflow Open311 GeoReport v2",
            "version": "2",
            "description": (
                "GeoReport v2 (http://wiki.open311.org/GeoReport_v2). Each resource answers "
                "in JSON (.json) and XML (.xml). A service request is a ticket; reading is "
                "public and shows no personal data; submitting needs an api_key (an API token: "
                "`rectiflow tokens create USERNAME`)."
            ),
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"api_key": {"type": "apiKey", "in": "query", "name": "api_key"}},
        },
    }
