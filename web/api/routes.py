"""The /api/v1 endpoints. Each view: check the caller (role, unit), call one engine
function with the request's session and ``now``, commit once, return the schema's shape."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import current_app, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from engine import audit as audit_log
from engine import queries as read_model
from engine import tokens as api_tokens
from engine.clock import utcnow
from engine.errors import Conflict, NotFound, NotPermitted
from engine.models import Campaign
from engine.roles import (
    ADMIN,
    CITIZEN,
    CLERK,
    INSPECTOR,
    SUPERVISOR,
    SYSTEM,
    UNIT_BOUND_ROLES,
)
from engine.tickets import Actor, allowed_triggers, create_ticket, fire
from engine.workflow import WorkflowRegistry
from web.api import queries, schemas
from web.database import get_session

log = logging.getLogger(__name__)

bp = Blueprint(
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
}


def documented(*statuses: int):  # type: ignore[no-untyped-def]
    """Document the error answers an operation gives (all in the one error shape)."""

    def decorate(view):  # type: ignore[no-untyped-def]
        for status in statuses:
            view = bp.alt_response(
                status, schema=schemas.ErrorSchema, description=ERROR_MEANINGS[status]
            )(view)
        return view

    return decorate


CREATE_ROLES = frozenset({CLERK, SUPERVISOR, ADMIN, CITIZEN, SYSTEM})
AUDIT_ROLES = frozenset({INSPECTOR, SUPERVISOR, ADMIN})
SQLSTATE_RACES = frozenset({"40001", "40P01", "55P03", "23505"})


# ---------------------------------------------------------------- plumbing


def now() -> datetime:
    """The app's clock: ``CLOCK`` in the Flask config (as the web pages), else the wall clock."""
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else utcnow()  # type: ignore[no-any-return]


def registry() -> WorkflowRegistry:
    return current_app.extensions["rectiflow.registry"]  # type: ignore[no-any-return]


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


@bp.before_request
def _authenticate():  # type: ignore[no-untyped-def]
    query = [part for pair in request.args.items(multi=True) for part in pair]
    if bad_text(query) or bad_text(request.view_args or {}):
        return error_response(
            400, "bad_request", "the URL holds characters that cannot be stored (NUL or invalid)"
        )
    if request.is_json and request.content_length:
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
    session = get_session()
    try:
        # The time of use it may record is committed with the view's own commit, or by
        # _commit_reads for reads: no extra transaction per request.
        g.api_actor = api_tokens.authenticate(session, token.strip(), now=now())
    except NotPermitted as exc:
        session.rollback()
        response = error_response(401, "unauthorized", exc.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="rectiflow", error="invalid_token"'
        return response
    return None


@bp.after_request
def _commit_reads(response):  # type: ignore[no-untyped-def]
    """Reads end here: commit what authentication recorded (the token's time of use)."""
    session = g.get("db_session")
    if session is not None and response.status_code < 400 and session.in_transaction():
        session.commit()
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
    session = g.get("db_session")
    if session is not None:
        session.rollback()
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


def _is_race(exc: DBAPIError) -> bool:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in SQLSTATE_RACES:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "unique constraint failed" in text or "busy" in text


@contextmanager
def one_transaction(session: Session, number: str | None = None) -> Iterator[None]:
    """Run the block and commit; a database-level race (serialization failure, deadlock,
    lock timeout, duplicate key) becomes a 409 Conflict, never a 500."""
    try:
        yield
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        if _is_race(exc):
            raise Conflict(
                (f"{number} " if number else "the record ")
                + "was changed by someone else at the same moment; reload and try again",
                ticket=number,
            ) from exc
        raise


def can_see(who: Actor, unit_id: int | None) -> bool:
    if who.role == CITIZEN:
        return False
    if who.role in UNIT_BOUND_ROLES:
        return who.unit_id is not None and unit_id == who.unit_id
    return True


def require_visible(who: Actor, row: Any) -> None:
    if who.role == CITIZEN:
        raise NotPermitted(
            "citizens follow their opinions with the receipt on the public pages; reading "
            "tickets needs the role clerk, officer, unit_leader, supervisor, inspector or admin",
            ticket=row.number,
        )
    if not can_see(who, row.unit_id):
        raise NotPermitted(
            f"{row.number} belongs to unit {row.unit_code or '(none yet)'}; {who.username} "
            f"({who.role}) sees only their own unit's tickets — an officer or unit leader of "
            f"{row.unit_code or 'that unit'}, or a clerk, supervisor, inspector or admin may",
            ticket=row.number,
            details={"unit": row.unit_code},
        )


def require_role(who: Actor, roles: frozenset[str], what: str) -> None:
    if who.role not in roles:
        raise NotPermitted(
            f"{what} needs the role {' or '.join(sorted(roles - {SYSTEM}))}; "
            f"{who.username} is {who.role}",
            details={"roles": sorted(roles - {SYSTEM})},
        )


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
        "citizen": None
        if who.role == CITIZEN
        else {"name": row.citizen_name, "contact": row.citizen_contact},
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
            for spec in allowed_triggers(None, row, who, registry())  # type: ignore[arg-type]
        ],
    }


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


# ---------------------------------------------------------------- tickets


@bp.route("/tickets")
class Tickets(MethodView):
    @bp.arguments(schemas.TicketListArgsSchema, location="query", unknown=ma.RAISE)
    @bp.response(200, schemas.TicketPageSchema)
    @documented(400, 401, 403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List tickets

        Filters combine with AND. Officers and unit leaders see their own unit's tickets only.
        """
        who = actor()
        if who.role == CITIZEN:
            require_visible(who, type("T", (), {"number": None, "unit_id": None})())
        scope = who.unit_id if who.role in UNIT_BOUND_ROLES else None
        if who.role in UNIT_BOUND_ROLES and who.unit_id is None:
            raise NotPermitted(
                f"{who.username} ({who.role}) belongs to no unit, so sees no tickets"
            )
        at = now()
        rows, total = queries.list_tickets(get_session(), now=at, unit_scope=scope, **args)
        return {
            "items": [ticket_dict(r, who, at) for r in rows],
            "total": total,
            "page": args["page"],
            "per_page": args["per_page"],
        }

    @bp.arguments(schemas.TicketCreateSchema)
    @bp.response(201, schemas.TicketCreatedSchema)
    @documented(400, 401, 403, 404, 409)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Record an opinion as a ticket

        Roles: clerk, supervisor, admin, citizen. The response carries the citizen's receipt
        secret once.
        """
        who = actor()
        require_role(who, CREATE_ROLES, "recording an opinion")
        session = get_session()
        citizen = body.get("citizen") or {}
        at = now()
        with one_transaction(session):
            created = create_ticket(
                session,
                campaign=body["campaign"],
                text=body["text"],
                kind=body.get("kind"),
                citizen_name=citizen.get("name"),
                citizen_contact=citizen.get("contact"),
                area=body.get("area"),
                address=body.get("address"),
                received_at=body.get("received_at"),
                source="api",
                actor=who,
                now=at,
                registry=registry(),
                audit_key=current_app.extensions.get("rectiflow.audit_key"),
            )
            row = queries.ticket_row(session, created.number)
        out = ticket_dict(row, who, at)
        out["receipt"] = created.secret
        return out


@bp.route("/tickets/<number>")
class TicketItem(MethodView):
    @bp.response(200, schemas.TicketSchema)
    @documented(401, 403, 404)
    def get(self, number: str) -> dict[str, Any]:
        """A ticket, with the triggers the caller may fire now"""
        who = actor()
        row = queries.ticket_row(get_session(), number)
        require_visible(who, row)
        return ticket_dict(row, who, now())


@bp.route("/tickets/<number>/transitions")
class TicketTransitions(MethodView):
    @bp.arguments(schemas.TransitionSchema)
    @bp.response(200, schemas.TicketSchema)
    @documented(400, 401, 403, 404, 409)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Fire a trigger on a ticket

        `expected_version` is the version you read; if the ticket moved on meanwhile the answer
        is 409 and nothing changes.
        """
        who = actor()
        session = get_session()
        at = now()
        with one_transaction(session, number):
            fire(
                session,
                number,
                body["trigger"],
                actor=who,
                data=body.get("data") or {},
                expected_version=body["expected_version"],
                reason=body.get("reason"),
                now=at,
                registry=registry(),
                audit_key=current_app.extensions.get("rectiflow.audit_key"),
            )
            row = queries.ticket_row(session, number)  # read inside the same transaction
        return ticket_dict(row, who, at)


@bp.route("/tickets/<number>/history")
class TicketHistory(MethodView):
    @bp.response(200, schemas.HistorySchema)
    @documented(401, 403, 404)
    def get(self, number: str) -> dict[str, Any]:
        """The ticket's transition-log rows, oldest first"""
        who = actor()
        session = get_session()
        row = queries.ticket_row(session, number)
        require_visible(who, row)
        detail = read_model.ticket_detail(session, number=number, with_history=True)
        return {"ticket": number, "items": [log_dict(e) for e in detail.history]}


# ---------------------------------------------------------------- extensions


def _extension_dict(view: Any) -> dict[str, Any]:
    return dataclasses.asdict(view)  # type: ignore[no-any-return]


@bp.route("/tickets/<number>/extensions")
class TicketExtensions(MethodView):
    @bp.arguments(schemas.ExtensionAskSchema)
    @bp.response(201, schemas.ExtensionSchema)
    @documented(400, 401, 403, 404, 409)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Ask for a later due time, with a reason

        Roles: the ticket's officer or unit leader (own unit), or a supervisor; before the
        current due time passes. A supervisor decides it.
        """
        from engine import extensions

        who = actor()
        session = get_session()
        with one_transaction(session, number):
            ext_id = extensions.request_extension(
                session,
                number,
                actor=who,
                due_at=body["due_at"],
                reason=body["reason"],
                now=now(),
                audit_key=current_app.extensions.get("rectiflow.audit_key"),
            )
        return _extension_dict(extensions.get_extension(session, ext_id))


@bp.route("/extensions/<int(max=2147483647):extension_id>/decision")
class ExtensionDecision(MethodView):
    @bp.arguments(schemas.ExtensionDecisionSchema)
    @bp.response(200, schemas.ExtensionSchema)
    @documented(400, 401, 403, 404, 409)
    def post(self, body: dict[str, Any], extension_id: int) -> dict[str, Any]:
        """Approve or refuse an extension request

        Role: supervisor. Approval moves the ticket's due time and re-arms its timers; a
        refusal needs a note.
        """
        from engine import extensions

        session = get_session()
        with one_transaction(session):
            view = extensions.decide_extension(
                session,
                extension_id,
                actor=actor(),
                approve=body["approve"],
                note=body.get("note"),
                now=now(),
                registry=registry(),
                audit_key=current_app.extensions.get("rectiflow.audit_key"),
            )
        return _extension_dict(view)


# ---------------------------------------------------------------- audit


@bp.route("/audit")
class Audit(MethodView):
    @bp.arguments(schemas.AuditArgsSchema, location="query", unknown=ma.RAISE)
    @bp.response(200, schemas.AuditPageSchema)
    @documented(400, 401, 403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search the transition log, newest first

        Roles: inspector, supervisor, admin. Page on with `before_id=next_before_id`.
        """
        require_role(actor(), AUDIT_ROLES, "searching the transition log")
        limit = args.pop("limit")
        entries = read_model.search_log(get_session(), limit=limit + 1, **args)
        more = len(entries) > limit
        entries = entries[:limit]
        return {
            "items": [log_dict(e) for e in entries],
            "next_before_id": entries[-1].id if more and entries else None,
        }


@bp.route("/audit/verify")
class AuditVerify(MethodView):
    @bp.arguments(schemas.VerifyArgsSchema, location="query", unknown=ma.RAISE)
    @bp.response(200, schemas.VerifySchema)
    @documented(400, 401, 403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Verify the hash chains of the transition log

        Roles: inspector, supervisor, admin. `ok` is false when any row was edited, deleted,
        reordered or inserted; `problems` says where.
        """
        require_role(actor(), AUDIT_ROLES, "verifying the transition log")
        problems = audit_log.verify(
            get_session(),
            ticket=args.get("ticket"),
            key=current_app.extensions.get("rectiflow.audit_key"),
        )
        return {"ok": not problems, "problems": [p.to_dict() for p in problems]}


# ---------------------------------------------------------------- campaigns, workflows


def _campaign_dict(c: Campaign) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "timezone": c.timezone,
        "starts_on": c.starts_on,
        "ends_on": c.ends_on,
        "rectification_deadline": c.rectification_deadline,
        "workflow": f"{c.workflow_name}/v{c.workflow_version}",
        "categories": [
            {"code": k.code, "name": k.name, "outside_duties": k.outside_duties}
            for k in c.categories
        ],
    }


@bp.route("/campaigns")
class Campaigns(MethodView):
    @bp.response(200, schemas.CampaignSchema(many=True))
    @documented(401)
    def get(self) -> list[dict[str, Any]]:
        """Campaigns, newest first, with their categories"""
        from sqlalchemy import select

        session = get_session()
        rows = session.scalars(
            select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.id.desc())
        )
        return [_campaign_dict(c) for c in rows]


@bp.route("/campaigns/<code>/report")
class CampaignReport(MethodView):
    @bp.arguments(schemas.ReportArgsSchema, location="query", unknown=ma.RAISE)
    @bp.response(200, description="The campaign report (see the report section of README.md)")
    @documented(400, 401, 403, 404)
    def get(self, args: dict[str, Any], code: str) -> Any:
        """A campaign's report, computed from the data"""
        from engine import report

        who = actor()
        if who.role == CITIZEN:
            require_role(who, frozenset({CLERK, SUPERVISOR, INSPECTOR, ADMIN}), "the report")
        result = report.campaign_report(
            get_session(), code, args.get("as_of"), now=now(), registry=registry()
        )
        return jsonify(json.loads(json.dumps(result, default=_json_default)))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@bp.route("/workflows")
class Workflows(MethodView):
    @bp.response(200, schemas.WorkflowSummarySchema(many=True))
    @documented(401)
    def get(self) -> list[dict[str, Any]]:
        """Workflow definitions (every version)"""
        return [{"name": w.name, "version": w.version, "title": w.title} for w in registry().all()]


@bp.route("/workflows/<name>/<int(max=2147483647):version>")
class WorkflowItem(MethodView):
    @bp.response(200, schemas.WorkflowSchema)
    @documented(401, 404)
    def get(self, name: str, version: int) -> dict[str, Any]:
        """One workflow definition: states, triggers, fields, escalation ladder"""
        try:
            return registry().get(name, version).to_dict()
        except NotFound:
            raise
        except (KeyError, ValueError, OverflowError) as exc:
            raise NotFound(f"no workflow {name!r} version {version}") from exc
