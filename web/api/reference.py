"""/api/v1 reference and oversight: the audit log and its verification, campaigns and
their report, workflow definitions."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView

from engine import audit as audit_log
from engine.errors import NotFound
from engine.models import Campaign
from engine.read import pages as read_model
from engine.read import reference
from web.api import schemas
from web.api.common import (
    actor,
    bp,
    documented,
    log_dict,
    now,
    require,
)
from web.database import get_ctx, get_read_session, get_read_uow, get_session, get_uow

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
        require(actor(), "log.view")
        limit = args.pop("limit")
        entries = read_model.search_log(get_read_session(), limit=limit + 1, **args)
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
        require(actor(), "log.verify")
        uow = get_uow()
        problems = audit_log.verify(uow.session, ticket=args.get("ticket"), key=uow.audit_key)
        return {"ok": not problems, "problems": [p.to_dict() for p in problems]}


# ---------------------------------------------------------------- campaigns, workflows


def _campaign_dict(c: Campaign) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "timezone": c.timezone,
        "starts_on": c.starts_on,
        "kind": "continuous" if c.continuous else "campaign",
        "ends_on": None if c.continuous else c.ends_on,
        "rectification_deadline": None if c.continuous else c.rectification_deadline,
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
        return [_campaign_dict(c) for c in reference.campaigns(get_session())]


@bp.route("/campaigns/<code>/report")
class CampaignReport(MethodView):
    @bp.arguments(schemas.ReportArgsSchema, location="query", unknown=ma.RAISE)
    @bp.response(200, description="The campaign report (see the report section of README.md)")
    @documented(400, 401, 403, 404)
    def get(self, args: dict[str, Any], code: str) -> Any:
        """A campaign's report, computed from the data"""
        from engine import report

        require(actor(), "report.view")
        result = report.campaign_report(get_read_uow(), code, args.get("as_of"), now=now())
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
        return [
            {"name": w.name, "version": w.version, "title": w.title}
            for w in get_ctx().registry.all()
        ]


@bp.route("/workflows/<name>/<int(max=2147483647):version>")
class WorkflowItem(MethodView):
    @bp.response(200, schemas.WorkflowSchema)
    @documented(401, 404)
    def get(self, name: str, version: int) -> dict[str, Any]:
        """One workflow definition: states, triggers, fields, escalation ladder"""
        try:
            return get_ctx().registry.get(name, version).to_dict()
        except NotFound:
            raise
        except (KeyError, ValueError, OverflowError) as exc:
            raise NotFound(f"no workflow {name!r} version {version}") from exc
