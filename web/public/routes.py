from __future__ import annotations

from typing import Any

from flask import flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from engine.citizen import PUBLIC_ACTOR, answer_feedback, receipt_status
from engine.errors import Conflict, InvalidTransition, NotFound, ValidationError
from engine.read import pages as queries
from engine.tickets import create_ticket
from web.choices import options
from web.context import now
from web.database import get_ctx, get_session, get_uow
from web.messages import engine_message
from web.opinion_form import OpinionForm, apply_errors, fit_to_workflow, opinion_kwargs
from web.public import bp


class ReceiptForm(FlaskForm):
    number = StringField(
        _l("Receipt number"),
        validators=[InputRequired(_l("Enter the receipt number.")), Length(max=40)],
        render_kw={"autocomplete": "off", "maxlength": 40, "placeholder": "2005-0001"},
    )
    secret = StringField(
        _l("Secret"),
        validators=[InputRequired(_l("Enter the secret from your receipt.")), Length(max=64)],
        render_kw={
            "autocomplete": "off",
            "maxlength": 64,
            "autocapitalize": "characters",
            "spellcheck": "false",
            "placeholder": "K7QXM-3PA9R-TWZ4H",
        },
    )


class AnswerForm(FlaskForm):
    number = HiddenField()
    secret = HiddenField()
    satisfied = RadioField(
        _l("Did the feedback satisfy you?"),
        choices=options(
            [("yes", _l("Yes, satisfied")), ("no", _l("No, not satisfied"))], blank=None
        ),
        validators=[InputRequired(_l("Choose yes or no."))],
    )
    reason = TextAreaField(
        _l("If not: what is still wrong?"),
        validators=[Optional(), Length(max=2000, message=_l("At most 2000 characters."))],
        render_kw={"maxlength": 2000},
    )


@bp.get("/")
def index() -> Any:
    return render_template("public/index.html")


@bp.route("/submit", methods=["GET", "POST"])
def submit() -> Any:
    form = OpinionForm()
    db = get_session()
    campaign = queries.active_campaign(db, now=now(), code=request.args.get("campaign"))
    if campaign is None:
        return render_template("public/closed.html"), 503
    fit_to_workflow(form, get_ctx().workflow(campaign.workflow_name, campaign.workflow_version))
    if form.validate_on_submit():
        try:
            created = create_ticket(
                get_uow(),
                campaign=campaign.code,
                actor=PUBLIC_ACTOR,
                now=now(),
                source="web",
                **opinion_kwargs(form),  # type: ignore[arg-type]
            )
            get_uow().commit()
        except ValidationError as exc:
            db.rollback()
            apply_errors(form, exc.fields, exc.message)
        else:
            return render_template("public/receipt.html", created=created, campaign=campaign)
    status = 422 if form.errors else 200
    return render_template("public/submit.html", form=form, campaign=campaign), status


def _show_status(number: str, secret: str, answer: AnswerForm | None = None) -> Any:
    get_session()
    status = receipt_status(get_uow(), number=number, secret=secret)
    if answer is None:
        answer = AnswerForm(formdata=None, data={"number": number, "secret": secret})
    return render_template("public/status.html", s=status, answer=answer)


@bp.route("/status", methods=["GET", "POST"])
def status() -> Any:
    form = ReceiptForm()
    if form.validate_on_submit():
        try:
            return _show_status(form.number.data or "", form.secret.data or "")
        except NotFound as exc:
            form.form_errors.append(engine_message(exc))
            return render_template("public/check.html", form=form), 404
    return render_template("public/check.html", form=form), 422 if form.errors else 200


@bp.post("/status/answer")
def answer() -> Any:
    form = AnswerForm()
    number, secret = form.number.data or "", form.secret.data or ""
    db = get_session()
    if not form.validate_on_submit():
        return _show_status(number, secret, form), 422
    try:
        request_id = answer_feedback(
            get_uow(),
            number=number,
            secret=secret,
            satisfied=form.satisfied.data == "yes",
            reason=form.reason.data,
            now=now(),
        )
        get_uow().commit()
    except ValidationError as exc:
        db.rollback()
        apply_errors(form, exc.fields, exc.message)
        return _show_status(number, secret, form), 422
    except (Conflict, InvalidTransition) as exc:
        db.rollback()
        form.form_errors.append(engine_message(exc))
        return _show_status(number, secret, form), 409
    flash(
        _(
            "Thank you: a supervisor will look at your opinion again (request #%(id)s).",
            id=request_id,
        )
        if request_id
        else _("Thank you for telling us."),
        "success",
    )
    return _show_status(number, secret)
