from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from engine.errors import Conflict, EngineError, ValidationError
from engine.escalation import escalate_ticket
from engine.exemplary import is_exemplary, mark_exemplary
from engine.extensions import request_extension
from engine.read import pages as queries
from engine.redeadline import set_deadline
from engine.routing import suggest_unit
from engine.tickets import allowed_triggers, fire, load_ticket_row, why_not
from engine.workflow import TriggerSpec
from web import params
from web.context import CurrentUser, login_required, now, require_user
from web.database import get_ctx, get_session, get_uow
from web.i18n import locale_code, names, state_title
from web.messages import engine_message, field_errors
from web.tickets import bp
from web.tickets.diagram import workflow_svg
from web.tickets.forms import ActionForm, ChoiceSource, build_form, form_data


def _reason(required: Any, field: Any = TextAreaField) -> Any:
    """A required reason of at most 2000 characters; ``required`` says what to write."""
    return field(
        _l("Reason"),
        validators=[
            InputRequired(required),
            Length(max=2000, message=_l("At most 2000 characters.")),
        ],
        render_kw={"maxlength": 2000},
    )


class ExtensionForm(FlaskForm):
    expected_version = HiddenField()
    due_on = DateField(
        _l("New due date (end of that day)"),
        validators=[InputRequired(_l("Give the new due date."))],
    )
    reason = _reason(_l("Say why the work cannot be done in time."))


class DeadlineForm(FlaskForm):
    expected_version = HiddenField()
    due_on = DateField(
        _l("New deadline (end of that day)"),
        validators=[InputRequired(_l("Give the new due date."))],
    )
    reason = _reason(_l("Say why this deadline is the right one."))


class EscalateForm(FlaskForm):
    expected_version = HiddenField()
    reason = _reason(_l("Say why the ticket is escalated."), StringField)
    level = IntegerField(
        _l("To level (blank: one up)"), validators=[Optional(), NumberRange(min=1, max=9)]
    )


class ExemplaryForm(FlaskForm):
    expected_version = HiddenField()
    reason = StringField(
        _l("What makes it an example (for the situation report)"),
        validators=[Length(max=2000, message=_l("At most 2000 characters."))],
        render_kw={"maxlength": 2000},
    )
    unmark = HiddenField()


def check_can_view(user: CurrentUser, detail: queries.TicketDetail) -> None:
    """The policy's ``ticket.view`` on this ticket (its unit scope), or ``NotPermitted``."""
    get_ctx().policy.require(user.actor, "ticket.view", detail, number=detail.number)


def _choices(user: CurrentUser, campaign_id: int) -> ChoiceSource:
    db = get_session()
    units = queries.unit_choices(db)
    if get_ctx().policy.unit_bound(user.actor, "ticket.fire"):
        units = [u for u in units if u.value == user.unit_code]
        officers = queries.officer_choices(db, unit_id=user.unit_id)
    else:
        officers = queries.officer_choices(db)
    return ChoiceSource(
        units=units,
        officers=officers,
        categories=queries.category_choices(db, campaign_id=campaign_id),
    )


def _defaults(detail: queries.TicketDetail) -> dict[str, Any]:
    today = now().astimezone(ZoneInfo(detail.campaign_timezone)).date()
    return {
        "unit": detail.unit_code or "",
        "officer": detail.assignee or "",
        "category": detail.category or "",
        "kind": detail.kind or "",
        "date": today,
    }


def _suggestions(detail: queries.TicketDetail, campaign_id: int) -> list[tuple[str, str]]:
    """Category → the unit the routing rules suggest for this ticket's area."""
    conn = get_session().connection()
    out = []
    for c in queries.category_choices(get_session(), campaign_id=campaign_id):
        s = suggest_unit(conn, campaign_id=campaign_id, category=c.value, area=detail.area)
        label = names().category(c.value)
        out.append((label, names().unit(s.unit_code) if s else _("no rule: choose by hand")))
    return out


def render_ticket(
    number: str,
    *,
    posted: dict[str, FlaskForm] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The ticket page; ``posted`` replaces the blank form of a trigger with the one just sent."""
    user = require_user()
    db = get_session()
    detail = queries.ticket_detail(db, number=number)
    check_can_view(user, detail)
    campaign_id, _tz = queries.campaign_of(db, number=number)
    uow = get_uow()
    workflow = uow.registry.get(detail.workflow_name, detail.workflow_version)
    row = load_ticket_row(uow.conn, number)
    allowed: list[TriggerSpec] = allowed_triggers(uow, row, user.actor)
    # No step of the workflow is this user's: the engine's reason, in the reader's language.
    refusal = None if allowed else why_not(uow, row, user.actor)
    posted = posted or {}
    forms: list[tuple[TriggerSpec, FlaskForm]] = []
    if allowed:
        source = _choices(user, campaign_id)
        defaults = _defaults(detail)
        for spec in allowed:
            form = posted.get(spec.name) or build_form(
                workflow.fields, spec, source, version=detail.version, defaults=defaults
            )
            forms.append((spec, form))
    open_ticket = detail.closed_at is None
    ext_form = esc_form = None
    policy = uow.policy
    if open_ticket and detail.due_at is not None and policy.can(user.actor, "extension.ask", row):
        ext_form = posted.get("extension") or ExtensionForm(
            formdata=None, prefix="extension", data={"expected_version": str(detail.version)}
        )
    dl_form = None
    overdue = detail.due_at is not None and detail.due_at <= now()
    if open_ticket and overdue and policy.can(user.actor, "ticket.deadline", row):
        dl_form = posted.get("deadline") or DeadlineForm(
            formdata=None, prefix="deadline", data={"expected_version": str(detail.version)}
        )
    if open_ticket and policy.can(user.actor, "ticket.escalate", row):
        esc_form = posted.get("escalate") or EscalateForm(
            formdata=None, prefix="escalate", data={"expected_version": str(detail.version)}
        )
    exemplary = is_exemplary(uow.session, row.id)
    ex_form = None
    if not open_ticket and policy.can(user.actor, "ticket.mark_exemplary", row):
        ex_form = posted.get("exemplary") or ExemplaryForm(
            formdata=None, prefix="exemplary", data={"expected_version": str(detail.version)}
        )
    suggestions = (
        _suggestions(detail, campaign_id) if any("route" in s.effects for s in allowed) else []
    )
    state = workflow.states.get(detail.state)
    return render_template(
        "tickets/detail.html",
        t=detail,
        tz=detail.campaign_timezone,
        state_title=state.title_in(locale_code()) if state else detail.state,
        workflow=workflow,
        now=now(),
        forms=forms,
        why_not=engine_message(refusal) if refusal else None,
        fields=workflow.fields,
        ext_form=ext_form,
        esc_form=esc_form,
        dl_form=dl_form,
        ex_form=ex_form,
        exemplary=exemplary,
        suggestions=suggestions,
        diagram=workflow_svg(
            workflow,
            detail.state,
            locale_code(),
            _("Workflow; current state: %(state)s", state=state_title(detail.state, workflow)),
        ),
    ), status


@bp.get("/tickets/find")
@login_required()
def find() -> Any:
    """Jump to a ticket by its number (the box in the header)."""
    number = (request.args.get("number") or "").strip()[:40]
    if number and queries.ticket_exists(get_session(), number=number):
        return redirect(url_for("tickets.detail", number=number))
    flash(
        _("No ticket numbered %(number)s.", number=number)
        if number
        else _("Enter a ticket number."),
        "error",
    )
    return redirect(request.referrer or url_for("tickets.workflow_page"))


@bp.get("/tickets/<number>")
@login_required()
def detail(number: str) -> Any:
    return render_ticket(number)


def _moved(error: Conflict, number: str) -> tuple[str, int]:
    detail = queries.ticket_detail(get_session(), number=number, with_history=False)
    flash(
        _(
            "%(number)s moved on while you had the page open: it is now “%(state)s” "
            "(version %(version)s). Your change was not applied. Here is its current state; "
            "act again if it is still needed.",
            number=number,
            state=state_title(detail.state),
            version=detail.version,
        ),
        "error",
    )
    return render_ticket(number, status=409)


def _check_version(number: str, form: FlaskForm) -> None:
    """Raise ``Conflict`` when the form was drawn from an older version of the ticket (the
    check runs in the transaction that then writes, so nothing slips in between on SQLite)."""
    seen = (form.expected_version.data or "").strip()  # type: ignore[attr-defined]
    if not seen.isdigit():
        return
    row = load_ticket_row(get_session().connection(), number)
    if int(seen) != row.version:
        raise Conflict(
            f"{number} changed since you read it (version {row.version}, you had {seen})",
            ticket=number,
            state=row.state,
        )


def _apply_errors(form: FlaskForm, error: ValidationError) -> None:
    for name, message in field_errors(error).items():
        if name in form._fields:
            form[name].errors = [*form[name].errors, message]  # type: ignore[index]
        else:
            form.form_errors.append(f"{name}: {message}")
    if not error.fields:
        form.form_errors.append(engine_message(error))


@bp.post("/tickets/<number>/fire/<trigger>")
@login_required()
def fire_trigger(number: str, trigger: str) -> Any:
    user = require_user()
    db = get_session()
    detail = queries.ticket_detail(db, number=number, with_history=False)
    check_can_view(user, detail)
    workflow = get_ctx().registry.get(detail.workflow_name, detail.workflow_version)
    spec = workflow.transition_for(trigger, detail.state)
    if spec is None:
        # Stale page (the state moved) or a forged trigger: fire() explains, nothing changes.
        seen = request.form.get(f"{trigger}-expected_version", "")
        try:
            fire(
                get_uow(),
                number,
                trigger,
                actor=user.actor,
                data={},
                expected_version=int(seen) if seen.isdigit() else None,
                now=now(),
            )
        except Conflict as exc:
            return _moved(exc, number)
        except EngineError as exc:
            flash(engine_message(exc), "error")
            return render_ticket(number, status=409 if "not allowed" in str(exc) else 400)
    assert spec is not None
    campaign_id, _tz = queries.campaign_of(db, number=number)
    form: ActionForm = build_form(
        workflow.fields,
        spec,
        _choices(user, campaign_id),
        version=detail.version,
        defaults={},
        formdata=request.form,
    )
    if not form.validate():
        return render_ticket(number, posted={spec.name: form}, status=422)
    try:
        expected = int(form.expected_version.data or "")
    except ValueError:
        expected = None
    try:
        fired = fire(
            get_uow(),
            number,
            trigger,
            actor=user.actor,
            data=form_data(form, spec),
            expected_version=expected,
            now=now(),
        )
        get_uow().commit()
    except Conflict as exc:
        db.rollback()
        return _moved(exc, number)
    except ValidationError as exc:
        db.rollback()
        _apply_errors(form, exc)
        return render_ticket(number, posted={spec.name: form}, status=422)
    flash(
        _(
            "%(number)s: “%(trigger)s” done — now “%(state)s”.",
            number=number,
            trigger=spec.title_in(locale_code()),
            state=workflow.state_title(fired.to_state, locale_code()),
        ),
        "success",
    )
    return redirect(url_for("tickets.detail", number=number))


@bp.post("/tickets/<number>/extension")
@login_required("extension.ask")
def ask_extension(number: str) -> Any:
    user = require_user()
    db = get_session()
    detail = queries.ticket_detail(db, number=number, with_history=False)
    check_can_view(user, detail)
    form = ExtensionForm(prefix="extension")
    if not form.validate_on_submit():
        return render_ticket(number, posted={"extension": form}, status=422)
    tz = ZoneInfo(detail.campaign_timezone)
    assert form.due_on.data is not None
    try:
        _check_version(number, form)
    except Conflict as exc:
        return _moved(exc, number)
    # "by that date" = the end of that day in the campaign's timezone.
    due = datetime.combine(form.due_on.data, time(23, 59), tzinfo=tz)
    try:
        ext_id = request_extension(
            get_uow(),
            number,
            actor=user.actor,
            due_at=due,
            reason=form.reason.data or "",
            now=now(),
        )
        get_uow().commit()
    except ValidationError as exc:
        db.rollback()
        fields = field_errors(exc)
        if "due_at" in fields:
            form.due_on.errors = [*form.due_on.errors, fields["due_at"]]
        if "reason" in fields:
            form.reason.errors = [*form.reason.errors, fields["reason"]]
        if not set(fields) & {"due_at", "reason"}:
            form.form_errors.append(engine_message(exc))
        return render_ticket(number, posted={"extension": form}, status=422)
    flash(
        _(
            "Extension #%(id)s asked for %(number)s; a supervisor will decide it.",
            id=ext_id,
            number=number,
        ),
        "success",
    )
    return redirect(url_for("tickets.detail", number=number))


@bp.post("/tickets/<number>/deadline")
@login_required("ticket.deadline")
def set_new_deadline(number: str) -> Any:
    """A supervisor's new, defined deadline on an overdue ticket (engine.redeadline)."""
    user = require_user()
    db = get_session()
    detail = queries.ticket_detail(db, number=number, with_history=False)
    check_can_view(user, detail)
    form = DeadlineForm(prefix="deadline")
    if not form.validate_on_submit():
        return render_ticket(number, posted={"deadline": form}, status=422)
    assert form.due_on.data is not None
    try:
        _check_version(number, form)
    except Conflict as exc:
        return _moved(exc, number)
    tz = ZoneInfo(detail.campaign_timezone)
    due = datetime.combine(form.due_on.data, time(23, 59), tzinfo=tz)
    try:
        set_deadline(get_uow(), number, actor=user.actor, due_at=due, reason=form.reason.data or "")
        get_uow().commit()
    except ValidationError as exc:
        db.rollback()
        fields = field_errors(exc)
        if "due_at" in fields:
            form.due_on.errors = [*form.due_on.errors, fields["due_at"]]
        if "reason" in fields:
            form.reason.errors = [*form.reason.errors, fields["reason"]]
        if not set(fields) & {"due_at", "reason"}:
            form.form_errors.append(engine_message(exc))
        return render_ticket(number, posted={"deadline": form}, status=422)
    flash(
        _("%(number)s has a new deadline; the ladder starts again from it.", number=number),
        "success",
    )
    return redirect(url_for("tickets.detail", number=number))


@bp.post("/tickets/<number>/escalate")
@login_required("ticket.escalate")
def escalate(number: str) -> Any:
    user = require_user()
    db = get_session()
    form = EscalateForm(prefix="escalate")
    if not form.validate_on_submit():
        return render_ticket(number, posted={"escalate": form}, status=422)
    try:
        _check_version(number, form)
    except Conflict as exc:
        return _moved(exc, number)
    try:
        level = escalate_ticket(
            get_uow(),
            number,
            actor=user.actor,
            reason=form.reason.data or "",
            level=form.level.data,
            now=now(),
        )
        get_uow().commit()
    except ValidationError as exc:
        db.rollback()
        for name, message in field_errors(exc).items():
            if name in form._fields:
                form[name].errors = [*form[name].errors, message]
        if not exc.fields:
            form.form_errors.append(engine_message(exc))
        return render_ticket(number, posted={"escalate": form}, status=422)
    flash(_("%(number)s escalated to level %(level)s.", number=number, level=level), "success")
    return redirect(url_for("tickets.detail", number=number))


@bp.post("/tickets/<number>/exemplary")
@login_required("ticket.mark_exemplary")
def exemplary(number: str) -> Any:
    """A supervisor marks a fed-back ticket as exemplary (or takes the mark back)."""
    user = require_user()
    uow = get_uow()
    form = ExemplaryForm(prefix="exemplary")
    if not form.validate_on_submit():
        return render_ticket(number, posted={"exemplary": form}, status=422)
    try:
        _check_version(number, form)
    except Conflict as exc:
        return _moved(exc, number)
    marking = not form.unmark.data
    try:
        mark_exemplary(
            uow,
            number,
            actor=user.actor,
            reason=form.reason.data or "",
            exemplary=marking,
            now=now(),
        )
        uow.commit()
    except ValidationError as exc:
        uow.rollback()
        _apply_errors(form, exc)
        return render_ticket(number, posted={"exemplary": form}, status=422)
    except Conflict as exc:
        uow.rollback()
        form.form_errors.append(engine_message(exc))
        return render_ticket(number, posted={"exemplary": form}, status=422)
    flash(
        _("%(number)s marked as exemplary.", number=number)
        if marking
        else _("%(number)s: exemplary mark taken back.", number=number),
        "success",
    )
    return redirect(url_for("tickets.detail", number=number))


@bp.get("/tickets/<number>/diagram.svg")
@login_required()
def diagram(number: str) -> Any:
    user = require_user()
    detail = queries.ticket_detail(get_session(), number=number, with_history=False)
    check_can_view(user, detail)
    workflow = get_ctx().registry.get(detail.workflow_name, detail.workflow_version)
    svg = workflow_svg(workflow, detail.state, locale_code())
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/workflow")
@bp.get("/workflow/<name>")
@login_required()
def workflow_page(name: str = "consultation") -> Any:
    reg = get_ctx().registry
    version = params.integer("version", minimum=1)
    workflow = reg.get(name, version)
    return render_template(
        "tickets/workflow.html",
        workflow=workflow,
        diagram=workflow_svg(workflow, None, locale_code(), workflow.title_in(locale_code())),
        all_workflows=reg.all(),
    )
