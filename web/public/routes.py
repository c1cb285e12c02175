from __future__ import annotations

from typing import Any

from flask import flash, render_template
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from engine.citizen import PUBLIC_ACTOR, answer_feedback, receipt_status
from engine.errors import Conflict, InvalidTransition, NotFound, ValidationError
from engine.read import pages as queries
from engine.tickets import create_ticket
from web.choices import options
from web.context import now
from web.database import get_session, get_uow
from web.opinion_form import OpinionForm, apply_errors, opinion_kwargs
from web.public import bp


class ReceiptForm(FlaskForm):
    number = StringField(
        "Receipt number",
        validators=[InputRequired("Enter the receipt number."), Length(max=40)],
        render_kw={"autocomplete": "off", "maxlength": 40, "placeholder": "2005-0001"},
    )
    secret = StringField(
        "Secret",
        validators=[InputRequired("Enter the secret from your receipt."), Length(max=64)],
        render_kw={"autocomplete": "off", "maxlength": 64},
    )


class AnswerForm(FlaskForm):
    number = HiddenField()
    secret = HiddenField()
    satisfied = RadioField(
        "Did the feedback satisfy you?",
        choices=options([("yes", "Yes, satisfied"), ("no", "No, not satisfied")], blank=None),
        validators=[InputRequired("Choose yes or no.")],
    )
    reason = TextAreaField(
        "If not: what is still wrong?",
        validators=[Optional(), Length(max=2000, message="At most 2000 characters.")],
        render_kw={"maxlength": 2000},
    )


@bp.get("/")
def index() -> Any:
    return render_template("public/index.html")


@bp.route("/submit", methods=["GET", "POST"])
def submit() -> Any:
    form = OpinionForm()
    db = get_session()
    campaign = queries.active_campaign(db, now=now())
    if campaign is None:
        return render_template("public/closed.html"), 503
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
            form.form_errors.append(exc.message)
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
        form.form_errors.append(exc.message)
        return _show_status(number, secret, form), 409
    flash(
        f"Thank you: a supervisor will look at your opinion again (request #{request_id})."
        if request_id
        else "Thank you for telling us.",
        "success",
    )
    return _show_status(number, secret)
