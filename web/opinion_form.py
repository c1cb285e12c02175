"""The opinion form shared by the public page and the clerk's intake."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from engine.tickets import KINDS, TEXT_MAX
from web.choices import SelectField, options

KIND_CHOICES = options(((k, k) for k in KINDS), blank="— not sure —")


class OpinionForm(FlaskForm):
    text = TextAreaField(
        "Your opinion, criticism, suggestion or request",
        validators=[
            DataRequired("Write what you want to tell us."),
            Length(max=TEXT_MAX, message=f"At most {TEXT_MAX} characters."),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"maxlength": TEXT_MAX, "rows": 8},
    )
    kind = SelectField("Kind", choices=KIND_CHOICES, validators=[Optional()])
    area = StringField(
        "Town or area", validators=[Optional(), Length(max=100)], render_kw={"maxlength": 100}
    )
    address = StringField(
        "Address or place", validators=[Optional(), Length(max=300)], render_kw={"maxlength": 300}
    )
    citizen_name = StringField(
        "Your name (optional)",
        validators=[Optional(), Length(max=200)],
        render_kw={"maxlength": 200, "autocomplete": "name"},
    )
    citizen_contact = StringField(
        "Phone or e-mail for the feedback (optional)",
        validators=[Optional(), Length(max=200)],
        render_kw={"maxlength": 200},
    )


def opinion_kwargs(form: OpinionForm) -> dict[str, str | None]:
    def clean(value: str | None) -> str | None:
        return (value or "").strip() or None

    return {
        "text": form.text.data or "",
        "kind": clean(form.kind.data),
        "area": clean(form.area.data),
        "address": clean(form.address.data),
        "citizen_name": clean(form.citizen_name.data),
        "citizen_contact": clean(form.citizen_contact.data),
    }


def apply_errors(form: FlaskForm, fields: dict[str, str], message: str) -> None:
    """Put an engine ValidationError's per-field messages on the form's fields."""
    for name, text in fields.items():
        if name in form._fields:
            form[name].errors = [*form[name].errors, text]
        else:
            form.form_errors.append(f"{name}: {text}")
    if not fields:
        form.form_errors.append(message)
