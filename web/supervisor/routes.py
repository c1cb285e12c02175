from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from engine.citizen import decide_reopen_request
from engine.errors import EngineError, NotPermitted, ValidationError
from engine.extensions import decide_extension, list_pending_extensions
from engine.read import pages as queries
from engine.read import reference
from engine.reassign import reassign_many
from engine.redeadline import FreshLimit
from web import params
from web.choices import SelectField, from_choices
from web.context import login_required, now, require_user
from web.database import get_session, get_uow
from web.messages import engine_message, translate
from web.supervisor import bp


class BulkReassignForm(FlaskForm):
    unit = SelectField(_l("New unit"), validators=[InputRequired(_l("Choose the unit."))])
    officer = SelectField(_l("New officer"), validators=[InputRequired(_l("Choose the officer."))])
    reason = StringField(
        _l("Reason"),
        validators=[InputRequired(_l("Give the reason for reassigning.")), Length(max=2000)],
        render_kw={"maxlength": 2000},
    )
    # A fresh time limit for the new unit (optional): working days from now, or a date.
    limit_days = StringField(
        _l("New time limit: working days from now (optional)"),
        validators=[Optional(), Length(max=10)],
        render_kw={"inputmode": "numeric", "maxlength": 10},
    )
    limit_until = StringField(
        _l("or until the end of (YYYY-MM-DD, optional)"),
        validators=[Optional(), Length(max=10)],
        render_kw={"type": "date", "maxlength": 10},
    )


class DecideForm(FlaskForm):
    decision = HiddenField(validators=[InputRequired()])
    note = TextAreaField(
        _l("Note (required when refusing)"),
        validators=[Optional(), Length(max=2000)],
        render_kw={"maxlength": 2000, "rows": 2},
    )


class ReopenForm(DecideForm):
    unit = SelectField(_l("Unit (blank: as before)"), validators=[Optional()])
    officer = SelectField(_l("Officer (blank: as before)"), validators=[Optional()])


def _fill_choices(form: Any) -> None:
    db = get_session()
    form.unit.choices = from_choices(queries.unit_choices(db), kind="unit")
    form.officer.choices = from_choices(queries.officer_choices(db), kind="officer")


@bp.get("/supervisor/board")
@login_required("board.view")
def board() -> Any:
    db = get_session()
    unit_code = request.args.get("unit") or None
    min_level = params.integer("level", maximum=params.MAX_LEVEL)
    offset = params.integer("offset", 0, maximum=params.MAX_OFFSET)
    units = queries.unit_choices(db)
    unit_id = None
    if unit_code:
        unit_id = reference.unit_id(db, unit_code)
        if unit_id is None:
            flash(_("No unit %(unit)s; showing all units.", unit=repr(unit_code)), "error")
            unit_code = None
    result = queries.overdue_board(
        db, now=now(), unit_id=unit_id, min_level=min_level, limit=100, offset=offset
    )
    levels = sorted({c.escalation_level for c in result.counts})
    table: dict[str, dict[int, int]] = {}
    for c in result.counts:
        table.setdefault(c.unit_code or "", {})[c.escalation_level] = c.count
    bulk = BulkReassignForm(formdata=None)
    _fill_choices(bulk)
    campaign = queries.active_campaign(db, now=now())
    forecast = phase = None
    if campaign is not None:
        from engine.forecast import unit_forecast
        from engine.report import current_phase

        forecast = unit_forecast(get_uow(), campaign.code, now=now())
        _phases, phase = current_phase(db, campaign.id, now(), campaign.timezone)
    return render_template(
        "supervisor/board.html",
        campaign=campaign,
        forecast=forecast,
        phase=phase,
        board=result,
        levels=levels,
        table=table,
        units=units,
        unit_code=unit_code,
        min_level=min_level,
        offset=offset,
        bulk=bulk,
    )


@bp.post("/supervisor/bulk-reassign")
@login_required("board.reassign")
def bulk_reassign() -> Any:
    """Each selected ticket gets its own change and log row (engine.reassign): one refusal does
    not stop the others, and each result is reported."""
    user = require_user()
    form = BulkReassignForm()
    _fill_choices(form)
    if not form.validate():
        for name, errors in form.errors.items():
            for e in errors:
                flash(f"{form[name].label.text}: {e}", "error")
        return redirect(url_for("supervisor.board"))
    uow = get_uow()
    try:
        limit = FreshLimit.parse(form.limit_days.data, form.limit_until.data)
        result = reassign_many(
            uow,
            request.form.getlist("numbers"),
            actor=user.actor,
            unit=form.unit.data,
            officer=form.officer.data,
            reason=form.reason.data,
            limit=limit,
        )
    except (ValidationError, NotPermitted) as exc:
        uow.rollback()
        flash(engine_message(exc), "error")
        return redirect(url_for("supervisor.board"))
    uow.commit()
    if result.done:
        flash(
            _(
                "Reassigned %(count)s: %(numbers)s.",
                count=len(result.done),
                numbers=", ".join(result.done),
            ),
            "success",
        )
    for number, why in result.refused:
        flash(_("Not reassigned — %(why)s", why=f"{number}: {translate(why)}"), "error")
    return redirect(url_for("supervisor.board"))


@bp.get("/supervisor/extensions")
@login_required("extension.decide")
def extensions() -> Any:
    items = list_pending_extensions(get_session())
    return render_template(
        "supervisor/extensions.html", items=items, form=DecideForm(formdata=None)
    )


@bp.post("/supervisor/extensions/<int:ext_id>")
@login_required("extension.decide")
def decide_ext(ext_id: int) -> Any:
    user = require_user()
    get_session()
    form = DecideForm()
    if not form.validate() or form.decision.data not in ("approve", "refuse"):
        flash(_("Choose approve or refuse."), "error")
        return redirect(url_for("supervisor.extensions"))
    try:
        view = decide_extension(
            get_uow(),
            ext_id,
            actor=user.actor,
            approve=form.decision.data == "approve",
            note=form.note.data,
            now=now(),
        )
        get_uow().commit()
    except NotPermitted:
        raise
    except EngineError as exc:  # invalid data, already decided, the ticket moved: say so
        get_uow().rollback()
        flash(engine_message(exc), "error")
        return redirect(url_for("supervisor.extensions"))
    decided = _("approved") if view.status == "approved" else _("refused")
    flash(
        _(
            "Extension #%(id)s on %(ticket)s: %(status)s.",
            id=ext_id,
            ticket=view.ticket,
            status=decided,
        ),
        "success",
    )
    return redirect(url_for("supervisor.extensions"))


@bp.get("/supervisor/reopen-requests")
@login_required("reopen.decide")
def reopen_requests() -> Any:
    form = ReopenForm(formdata=None)
    _fill_choices(form)
    items = queries.pending_reopen_requests(get_session())
    return render_template("supervisor/reopen.html", items=items, form=form)


@bp.post("/supervisor/reopen-requests/<int:req_id>")
@login_required("reopen.decide")
def decide_reopen(req_id: int) -> Any:
    user = require_user()
    get_session()
    form = ReopenForm()
    _fill_choices(form)
    if not form.validate() or form.decision.data not in ("reopen", "refuse"):
        flash(_("Choose reopen or refuse."), "error")
        return redirect(url_for("supervisor.reopen_requests"))
    try:
        status = decide_reopen_request(
            get_uow(),
            req_id,
            actor=user.actor,
            reopen=form.decision.data == "reopen",
            note=form.note.data,
            unit=form.unit.data or None,
            officer=form.officer.data or None,
            now=now(),
        )
        get_uow().commit()
    except NotPermitted:
        raise
    except EngineError as exc:  # invalid data, already decided, the ticket moved: say so
        get_uow().rollback()
        flash(engine_message(exc), "error")
        return redirect(url_for("supervisor.reopen_requests"))
    outcome = {"reopened": _("reopened"), "refused": _("refused")}.get(status, status)
    flash(_("Reopen request #%(id)s: %(status)s.", id=req_id, status=outcome), "success")
    return redirect(url_for("supervisor.reopen_requests"))
