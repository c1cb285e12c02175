"""/api/v1 tickets: create, list, read, fire a trigger, history; extensions."""

from __future__ import annotations

import dataclasses
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from engine.read import api as queries
from engine.tickets import create_ticket, fire
from web.api import schemas
from web.api.common import (
    actor,
    bp,
    documented,
    log_dict,
    now,
    one_transaction,
    require,
    require_visible,
    ticket_dict,
    ticket_response,
)
from web.database import get_ctx, get_session, get_uow

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
        scope = get_ctx().policy.ticket_filter(who, "ticket.view")
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
        require(who, "ticket.create")
        session = get_session()
        citizen = body.get("citizen") or {}
        at = now()
        with one_transaction():
            created = create_ticket(
                get_uow(),
                campaign=body["campaign"],
                text=body["text"],
                kind=body.get("kind"),
                priority=body.get("priority"),
                citizen_name=citizen.get("name"),
                citizen_contact=citizen.get("contact"),
                area=body.get("area"),
                address=body.get("address"),
                received_at=body.get("received_at"),
                source="api",
                actor=who,
                now=at,
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
    def post(self, body: dict[str, Any], number: str) -> Response:
        """Fire a trigger on a ticket

        `expected_version` is the version you read; if the ticket moved on meanwhile the answer
        is 409 and nothing changes.
        """
        who = actor()
        at = now()
        with one_transaction(number):
            fired = fire(
                get_uow(),
                number,
                body["trigger"],
                actor=who,
                data=body.get("data") or {},
                expected_version=body["expected_version"],
                reason=body.get("reason"),
                now=at,
                view=True,
            )
            # the answer from what fire() read and wrote, not a second read of the ticket
            row = queries.ticket_after(get_uow(), fired)
        return ticket_response(row, who, at)


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
        entries = queries.history(session, ticket_id=row.id, number=number)
        return {"ticket": number, "items": [log_dict(e) for e in entries]}


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
        with one_transaction(number):
            ext_id = extensions.request_extension(
                get_uow(),
                number,
                actor=who,
                due_at=body["due_at"],
                reason=body["reason"],
                now=now(),
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

        with one_transaction():
            view = extensions.decide_extension(
                get_uow(),
                extension_id,
                actor=actor(),
                approve=body["approve"],
                note=body.get("note"),
                now=now(),
            )
        return _extension_dict(view)
