"""The opinion form shared by the public page and the clerk's intake."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from engine.tickets import TEXT_MAX
from engine.workflow import Workflow
from web.choices import SelectField, options
from web.i18n import locale_code


class OpinionForm(FlaskForm):
    text = TextAreaField(
        _l("Your opinion, criticism, suggestion or request"),
        validators=[
            DataRequired(_l("Write what you want to tell us.")),
            Length(max=TEXT_MAX, message=_l("At most %(count)s characters.", count=TEXT_MAX)),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"maxlength": TEXT_MAX, "rows": 8},
    )
    # Choices are the programme's workflow's (fit_to_workflow).
    kind = SelectField(
        _l("Kind"), choices=options((), blank=_l("— not sure —")), validators=[Optional()]
    )
    priority = SelectField(_l("Priority"), choices=options((), blank="—"), validators=[Optional()])
    area = StringField(
        _l("Town or area"), validators=[Optional(), Length(max=100)], render_kw={"maxlength": 100}
    )
    address = StringField(
        _l("Address or place"),
        validators=[Optional(), Length(max=300)],
        render_kw={"maxlength": 300},
    )
    citizen_name = StringField(
        _l("Your name (optional)"),
        validators=[Optional(), Length(max=200)],
        render_kw={"maxlength": 200, "autocomplete": "name"},
    )
    citizen_contact = StringField(
        _l("Phone or e-mail for the feedback (optional)"),
        validators=[Optional(), Length(max=200)],
        render_kw={"maxlength": 200},
    )


def choice_title(workflow: Workflow, field: str, code: str) -> str:
    """A kind's or priority's title in the reader's language, from the workflow's field of that
    name (the code itself when the workflow gives it no title)."""
    spec = workflow.fields.get(field)
    return str(spec.choice_title(code, locale_code())) if spec and code in spec.choices else code


def fit_to_workflow(form: OpinionForm, workflow: Workflow) -> None:
    """The kinds and priorities the programme's workflow declares, as the form's choices."""
    form.kind.choices = options(
        ((k, choice_title(workflow, "kind", k)) for k in workflow.kinds), blank=_l("— not sure —")
    )
    if workflow.priorities:
        form.priority.choices = options(
            ((p, choice_title(workflow, "priority", p)) for p in workflow.priorities), blank=None
        )
        if not form.priority.data and workflow.default_priority:
            form.priority.data = workflow.default_priority
    else:
        del form.priority


def opinion_kwargs(form: OpinionForm) -> dict[str, str | None]:
    def clean(value: str | None) -> str | None:
        return (value or "").strip() or None

    return {
        "text": form.text.data or "",
        "kind": clean(form.kind.data),
        "priority": clean(form.priority.data) if "priority" in form else None,
        "area": clean(form.area.data),
        "address": clean(form.address.data),
        "citizen_name": clean(form.citizen_name.data),
        "citizen_contact": clean(form.citizen_contact.data),
    }


def apply_errors(form: FlaskForm, fields: dict[str, str], message: str) -> None:
    """Put an engine ValidationError's per-field messages on the form's fields."""
    from web.messages import translate

    for name, text in fields.items():
        if name in form._fields:
            form[name].errors = [*form[name].errors, translate(text)]
        else:
            form.form_errors.append(f"{name}: {translate(text)}")
    if not fields:
        form.form_errors.append(translate(message))
