"""What every /api/v1 view shares: the blueprint, Bearer authentication, the one error
shape, the clock, one transaction per request, visibility rules and the ticket's JSON."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from flask import Response, g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import ValidationError, missing
from marshmallow import fields as ma_fields
from sqlalchemy.engine import Connection
from werkzeug.exceptions import HTTPException

from engine import tokens as api_tokens
from engine.errors import NotPermitted
from engine.read import pages as read_model
from engine.tickets import Actor, allowed_triggers
from web import database, ratelimit
from web.api import schemas
from web.database import get_ctx, get_uow

log = logging.getLogger(__name__)


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, with each argument schema built once (given a schema class,
    webargs would build a new instance of it on every request), and a JSON body read in one
    step: the view gets the body as ``webargs.parse`` would load it, through webargs' own
    JSON loading and error handling, without the two wrappers and the location look-ups a
    request would otherwise pass through (flask-smorest's documentation is kept)."""

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(schema, type):
            schema = schema()
        documented = super().arguments(schema, *args, **kwargs)
        if kwargs.get("location", "json") != "json" or set(kwargs) - {"location", "description"}:
            return documented
        parser = self.ARGUMENTS_PARSER

        def decorate(view: Any) -> Any:
            @functools.wraps(view)
            def with_body(*f_args: Any, **f_kwargs: Any) -> Any:
                return view(*f_args, _json_body(parser, schema), **f_kwargs)

            with_body._apidoc = documented(view)._apidoc
            return with_body

        return decorate


def _json_body(parser: Any, schema: Any) -> Any:
    """The request's JSON body loaded by ``schema`` as ``webargs``' parser loads a ``json``
    location (no body: ``{}``; unknown fields: the schema's own rule); a body that is not
    JSON, or does not validate, is answered as the parser answers it (400, 422)."""
    data = parser.load_json(request, schema)
    try:
        return schema.load(
            parser.pre_load(
                {} if data is missing else data, schema=schema, req=request, location="json"
            )
        )
    except ValidationError as error:
        parser._on_validation_error(
            error, request, schema, "json", error_status_code=None, error_headers=None
        )


bp = ApiBlueprint(
    "api_v1",
    __name__,
    description="Consultation tickets, their log, campaigns and workflows",
)

ERROR_MEANINGS = {
    400: "malformed request (not JSON, or text that cannot be stored)",
    401: "no token, or an unknown or revoked one",
    403: "the caller's role or unit does not allow it; the message says which would",
    404: "unknown ticket, campaign, workflow or extension",
    409: "stale expected_version, a simultaneous write, or a trigger the state does not allow",
    413: "the body is larger than 1 MiB",
    429: "too many requests with this token (or unknown tokens from this address); see Retry-After",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until the limit's window turns",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def documented(*statuses: int):  # type: ignore[no-untyped-def]
    """Document the error answers an operation gives (all in the one error shape). Every
    operation may also answer 429 (token rate limit), and one that takes a body 413."""

    def decorate(view):  # type: ignore[no-untyped-def]
        extra = (413, 429) if 400 in statuses else (429,)
        documented_view = view
        for status in (*statuses, *extra):
            documented_view = bp.alt_response(
                status,
                schema=schemas.ErrorSchema,
                description=ERROR_MEANINGS[status],
                headers=RETRY_AFTER if status == 429 else None,
            )(documented_view)
        # alt_response's wrappers only carry the documentation, yet each would run on every
        # request (a call through ``ensure_sync`` apiece): keep their documentation on the view.
        view._apidoc = documented_view._apidoc
        return view

    return decorate


# ---------------------------------------------------------------- plumbing


def now() -> datetime:
    """The engine context's clock (the web pages' too)."""
    return get_ctx().now()


def actor() -> Actor:
    return g.api_actor  # type: ignore[no-any-return]


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def bad_text(value: Any) -> bool:
    """True for text a database cannot store: NUL characters or lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(bad_text(k) or bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(bad_text(v) for v in value)
    return False


def may_hold_bad_text(raw: bytes) -> bool:
    """Whether a JSON body's bytes can decode to text ``bad_text`` refuses. JSON strings hold
    no raw control characters, so a NUL comes only from a ``\\u`` escape, and a lone
    surrogate from one or from the bytes ED A0-BF (``json.loads`` decodes bytes with
    ``surrogatepass``): a body with neither needs no walk through its values."""
    return b"\\u" in raw or b"\xed" in raw or b"\x00" in raw


class _OnFirstUse:
    """The request's connection, taken when a statement is run: a token read from the cache
    runs none, so on SQLite the write lock is not taken before the view needs it."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return get_uow().conn.execute(*args, **kwargs)


@bp.before_request
def _authenticate():  # type: ignore[no-untyped-def]
    query = (
        [part for pair in request.args.items(multi=True) for part in pair]
        if request.query_string
        else []
    )
    if bad_text(query) or bad_text(request.view_args or {}):
        return error_response(
            400, "bad_request", "the URL holds characters that cannot be stored (NUL or invalid)"
        )
    if (
        request.is_json
        and request.content_length
        and may_hold_bad_text(request.get_data(cache=True))
    ):
        body = request.get_json(silent=True)
        if bad_text(body):
            return error_response(
                400,
                "bad_request",
                "the body holds text that cannot be stored (NUL characters or invalid UTF-8)",
            )
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        response = error_response(
            401,
            "unauthorized",
            "send an API token as `Authorization: Bearer <token>`; an admin makes one with "
            "`rectiflow tokens create USERNAME`",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="rectiflow"'
        return response
    # Counted before the request's transaction opens (see web.ratelimit).
    ratelimit.enforce("api_token", token.strip())
    try:
        # On the request's connection (no ORM session): the time of use it may record is
        # committed with the view's own commit, or by _commit_reads for reads.
        g.api_actor = api_tokens.authenticate(
            cast(Connection, _OnFirstUse()), token.strip(), now=now(), cache=get_ctx().cache
        )
    except NotPermitted as exc:
        database.rollback()
        ratelimit.enforce("api_bad_token_per_address", ratelimit.address())
        response = error_response(401, "unauthorized", exc.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="rectiflow", error="invalid_token"'
        return response
    return None


@bp.after_request
def _commit_reads(response):  # type: ignore[no-untyped-def]
    """Reads end here: commit what authentication recorded (the token's time of use)."""
    uow = g.get("uow")
    if uow is not None and response.status_code < 400 and uow.in_transaction():
        uow.commit()
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.update(_flatten(value, name))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[name] = " ".join(value)
            else:
                out[name] = str(value)
    elif isinstance(messages, list):
        out[prefix or "body"] = " ".join(str(m) for m in messages)
    return out


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
    database.rollback()
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    if messages:
        # webargs keys its messages by location (json, query...): drop that level.
        located = messages if isinstance(messages, dict) else {"body": messages}
        fields: dict[str, str] = {}
        for location, value in located.items():
            if isinstance(value, dict):
                fields.update(_flatten(value))
            else:
                fields.update(_flatten(value, "body" if location == "json" else location))
        if status == 400:
            return error_response(
                400, "bad_request", "the request body is not valid JSON", {"fields": fields}
            )
        listed = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return error_response(
            status,
            "invalid_data",
            f"the request has missing or invalid data: {listed}",
            {"fields": fields},
        )
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(status, code, error.description or error.name or "error")


@contextmanager
def one_transaction(number: str | None = None) -> Iterator[None]:
    """Run the block and commit through the request's unit of work: a database race becomes
    ``Conflict`` there (the engine decides), never a 500."""
    with get_uow().writing(number):
        yield


def can_see(who: Actor, row: Any) -> bool:
    return get_ctx().policy.can(who, "ticket.view", row)


def require_visible(who: Actor, row: Any) -> None:
    get_ctx().policy.require(who, "ticket.view", row, number=row.number)


def require(who: Actor, permission: str) -> None:
    get_ctx().policy.require(who, permission)


def ticket_dict(row: Any, who: Actor, at: datetime) -> dict[str, Any]:
    overdue = row.due_at is not None and row.due_at < at and row.closed_at is None
    return {
        "number": row.number,
        "campaign": row.campaign_code,
        "state": row.state,
        "version": row.version,
        "workflow": f"{row.workflow_name}/v{row.workflow_version}",
        "kind": row.kind,
        "category": row.category,
        "text": row.text,
        "citizen": {"name": row.citizen_name, "contact": row.citizen_contact}
        if can_see(who, row)
        else None,
        "area": row.area,
        "address": row.address,
        "unit": row.unit_code,
        "assignee": row.assignee_username,
        "due_at": row.due_at,
        "due_rule": row.due_rule,
        "overdue": overdue,
        "escalation_level": row.escalation_level,
        "received_at": row.received_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "closed_at": row.closed_at,
        "satisfied": row.satisfied,
        "source": row.source,
        "allowed_triggers": [
            {
                "name": spec.name,
                "dest": spec.dest,
                "requires": list(spec.requires),
                "optional": list(spec.optional),
            }
            for spec in allowed_triggers(get_uow(), row, who)
        ],
    }


# The times among a ticket's fields: all ``ticket_dict`` leaves for the schema to convert.
_TICKET_TIMES = tuple(
    name
    for name, field in schemas.TicketSchema().fields.items()
    if isinstance(field, ma_fields.DateTime)
)


def ticket_response(row: Any, who: Actor, at: datetime) -> Response:
    """The JSON answer ``@bp.response(200, TicketSchema)`` would make of ``ticket_dict``,
    without marshmallow's work per field: every other value is already what the schema
    dumps (strings, numbers, booleans, the citizen and the triggers as plain dicts), and the
    times are written as it writes them (ISO 8601). tests/api/test_tickets_api.py checks the
    answer of a transition against a read through the schema at every step."""
    out = ticket_dict(row, who, at)
    for name in _TICKET_TIMES:
        value = out[name]
        if value is not None:
            out[name] = value.isoformat()
    return jsonify(out)


def log_dict(entry: read_model.LogEntry) -> dict[str, Any]:
    try:
        data = json.loads(entry.data) if entry.data else {}
    except ValueError:
        data = {"raw": entry.data}
    return {
        "id": entry.id,
        "ticket": entry.ticket_number,
        "seq": entry.seq,
        "trigger": entry.trigger,
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "actor": entry.actor,
        "role": entry.role,
        "at": entry.at,
        "reason": entry.reason,
        "data": data if isinstance(data, dict) else {"value": data},
        "hash": entry.hash,
    }
