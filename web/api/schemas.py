"""Request and response schemas of the JSON API (marshmallow); the OpenAPI document is built
from them, so what the document says is what the code checks and returns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from engine.tickets import TEXT_MAX
from web.params import FIRST_DAY, LAST_DAY, MAX_INT

OUT_OF_RANGE = f"must lie between {FIRST_DAY} and {LAST_DAY}"


class UTCDateTime(fields.AwareDateTime):
    """An ISO 8601 time with an offset (UTC when none is given), turned into UTC; refused
    outside the dates ``web.params`` bounds every time parameter to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            value = parsed.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError(OUT_OF_RANGE) from None
        if not FIRST_DAY <= value.date() <= LAST_DAY:
            raise ma.ValidationError(OUT_OF_RANGE)
        return value


class BoundedDate(fields.Date):
    """A YYYY-MM-DD date inside the range ``web.params`` allows."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> date:
        parsed: date = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= parsed <= LAST_DAY:
            raise ma.ValidationError(OUT_OF_RANGE)
        return parsed


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class ErrorBodySchema(ma.Schema):
    code = fields.String(
        required=True, metadata={"description": "machine-readable, e.g. conflict, invalid_data"}
    )
    message = fields.String(
        required=True, metadata={"description": "what was wrong and what would be right"}
    )
    details = fields.Dict(
        required=True,
        metadata={"description": "e.g. fields: {name: problem}, allowed, current_version"},
    )


class ErrorSchema(ma.Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


def _text(limit: int, **kw: object) -> fields.String:
    return fields.String(validate=validate.Length(max=limit), **kw)  # type: ignore[arg-type]


class CitizenSchema(Strict):
    name = _text(200, allow_none=True)
    contact = _text(200, allow_none=True, metadata={"description": "phone or e-mail"})


class TicketCreateSchema(Strict):
    campaign = _text(64, required=True, metadata={"description": "campaign code"})
    text = fields.String(
        required=True,
        validate=validate.Length(min=1, max=TEXT_MAX),
        metadata={"description": "what the person said"},
    )
    # The kinds and priorities are the campaign's workflow's; the engine checks them.
    kind = _text(32, allow_none=True, metadata={"description": "one of the workflow's kinds"})
    priority = _text(
        32, allow_none=True, metadata={"description": "one of the workflow's priorities"}
    )
    citizen = fields.Nested(CitizenSchema, allow_none=True)
    area = _text(100, allow_none=True, metadata={"description": "town or area, for routing"})
    address = _text(300, allow_none=True)
    received_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "when the opinion was received (default: now)"},
    )

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def _workflow_choices(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        """The kind and priority against the campaign's workflow, reported with the other
        fields' errors (the engine checks them again when it records the ticket)."""
        from engine.errors import NotFound
        from engine.read import reference
        from web.database import get_ctx, get_session

        if not isinstance(original, dict) or not isinstance(original.get("campaign"), str):
            return
        found = reference.campaign_workflow(get_session(), original["campaign"])
        if found is None:
            return
        try:
            workflow = get_ctx().workflow(*found)
        except NotFound:
            return
        errors: dict[str, list[str]] = {}
        for name, allowed in (("kind", workflow.kinds), ("priority", workflow.priorities)):
            value = original.get(name)
            if isinstance(value, str) and value not in allowed:
                errors[name] = [f"must be one of {', '.join(allowed) or 'none (not used)'}"]
        if errors:
            raise ma.ValidationError(errors)


class AllowedTriggerSchema(ma.Schema):
    name = fields.String(required=True)
    dest = fields.String(required=True)
    requires = fields.List(fields.String(), required=True)
    optional = fields.List(fields.String(), required=True)


class TicketSchema(ma.Schema):
    number = fields.String(required=True)
    campaign = fields.String(required=True)
    state = fields.String(required=True)
    version = fields.Integer(required=True)
    workflow = fields.String(required=True, metadata={"description": "name/vN"})
    kind = fields.String(allow_none=True, required=True)
    category = fields.String(allow_none=True, required=True)
    text = fields.String(required=True)
    citizen = fields.Nested(CitizenSchema, allow_none=True, required=True)
    area = fields.String(allow_none=True, required=True)
    address = fields.String(allow_none=True, required=True)
    unit = fields.String(allow_none=True, required=True, metadata={"description": "unit code"})
    assignee = fields.String(allow_none=True, required=True, metadata={"description": "username"})
    due_at = fields.DateTime(allow_none=True, required=True)
    due_rule = fields.String(allow_none=True, required=True)
    overdue = fields.Boolean(required=True)
    escalation_level = fields.Integer(required=True)
    received_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(allow_none=True, required=True)
    satisfied = fields.Boolean(allow_none=True, required=True)
    source = fields.String(required=True)
    allowed_triggers = fields.List(
        fields.Nested(AllowedTriggerSchema),
        metadata={"description": "what the caller may fire now (role and unit)"},
    )


class TicketCreatedSchema(TicketSchema):
    receipt = fields.String(
        required=True,
        metadata={"description": "the citizen's receipt secret; returned once, stored hashed"},
    )


class TicketListArgsSchema(ma.Schema):
    campaign = _text(64, metadata={"description": "campaign code"})
    state = _text(64)
    category = _text(64)
    kind = _text(32)
    unit = _text(64, metadata={"description": "unit code"})
    assignee = _text(64, metadata={"description": "username"})
    overdue = fields.Boolean(
        metadata={"description": "true: only open tickets past their due time"}
    )
    q = _text(200, metadata={"description": "text search in the opinion (or an exact number)"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class TicketPageSchema(ma.Schema):
    items = fields.List(fields.Nested(TicketSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


class TransitionSchema(Strict):
    trigger = fields.String(required=True, validate=validate.Length(min=1, max=64))
    expected_version = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "the ticket version you read; a stale one gives 409"},
    )
    data = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        load_default=dict,
        metadata={"description": "the fields the trigger requires (see the workflow)"},
    )
    reason = fields.String(validate=validate.Length(max=2000), allow_none=True)


class LogEntrySchema(ma.Schema):
    ticket = fields.String(required=True)
    seq = fields.Integer(required=True)
    trigger = fields.String(required=True)
    from_state = fields.String(allow_none=True, required=True)
    to_state = fields.String(required=True)
    actor = fields.String(required=True)
    role = fields.String(required=True)
    at = fields.DateTime(required=True)
    reason = fields.String(allow_none=True, required=True)
    data = fields.Dict(required=True)
    hash = fields.String(required=True)
    id = fields.Integer(required=True)


class HistorySchema(ma.Schema):
    ticket = fields.String(required=True)
    items = fields.List(fields.Nested(LogEntrySchema), required=True)


class AuditArgsSchema(ma.Schema):
    ticket = _text(40)
    actor = _text(64, metadata={"description": "username"})
    trigger = _text(64)
    since = UTCDateTime()
    until = UTCDateTime(metadata={"description": "exclusive"})
    before_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "page on: the next_before_id of the previous page"},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class AuditPageSchema(ma.Schema):
    items = fields.List(fields.Nested(LogEntrySchema), required=True)
    next_before_id = fields.Integer(
        allow_none=True, required=True, metadata={"description": "null on the last page"}
    )


class VerifyArgsSchema(ma.Schema):
    ticket = _text(40, metadata={"description": "verify one ticket's chain only"})


class ProblemSchema(ma.Schema):
    ticket = fields.String(required=True)
    seq = fields.Integer(allow_none=True, required=True)
    log_id = fields.Integer(allow_none=True, required=True)
    kind = fields.String(required=True)
    message = fields.String(required=True)
    # A ticket column changed without a log row (kind "unlogged"): which, and both values.
    column = fields.String(allow_none=True)
    log_value = fields.Raw(allow_none=True)
    row_value = fields.Raw(allow_none=True)


class VerifySchema(ma.Schema):
    ok = fields.Boolean(required=True)
    problems = fields.List(fields.Nested(ProblemSchema), required=True)


class CategorySchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    outside_duties = fields.Boolean(required=True)


class CampaignSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True)
    kind = fields.String(
        required=True, metadata={"description": "campaign, or continuous (no end, no deadline)"}
    )
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True, allow_none=True)
    rectification_deadline = fields.DateTime(required=True, allow_none=True)
    workflow = fields.String(required=True, metadata={"description": "name/vN"})
    categories = fields.List(fields.Nested(CategorySchema), required=True)


class ReportArgsSchema(ma.Schema):
    as_of = BoundedDate(
        metadata={"description": "figures at the end of this day (campaign time); default now"}
    )


class WorkflowSummarySchema(ma.Schema):
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)


class WorkflowSchema(WorkflowSummarySchema):
    initial = fields.String(required=True)
    states = fields.List(fields.Dict(), required=True)
    triggers = fields.List(fields.Dict(), required=True)
    fields_ = fields.Dict(data_key="fields", attribute="fields", required=True)
    ladder = fields.Dict(required=True)


class ExtensionAskSchema(Strict):
    due_at = UTCDateTime(
        required=True,
        metadata={"description": "the new due time asked for (before the campaign ends)"},
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ExtensionDecisionSchema(Strict):
    approve = fields.Boolean(required=True)
    note = fields.String(
        validate=validate.Length(max=2000),
        allow_none=True,
        metadata={"description": "required when refusing"},
    )


class ExtensionSchema(ma.Schema):
    id = fields.Integer(required=True)
    ticket = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending, approved, refused"})
    requested_by = fields.String(required=True)
    requested_due_at = fields.DateTime(required=True)
    current_due_at = fields.DateTime(allow_none=True, required=True)
    reason = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    decided_by = fields.String(allow_none=True, required=True)
    decided_at = fields.DateTime(allow_none=True, required=True)
    decision_note = fields.String(allow_none=True, required=True)
