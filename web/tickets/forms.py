"""Action forms built from the workflow's field definitions, one per allowed trigger.

Nothing here is written per trigger: each ``FieldSpec`` type maps to a WTForms
field (text → text box, choice → select, date → date input, unit/user/category
→ select from the database, bool → checkbox) with its title as label, required
when the trigger requires it, and the length limit of the definition. The
engine checks the same data again; the form only gives early, per-field errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    Field,
    HiddenField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional

from engine.read.pages import Choice
from engine.workflow import FieldSpec, TriggerSpec
from web.choices import SelectField, from_choices, options

LONG_TEXT = 300


@dataclass
class ChoiceSource:
    """What the select fields offer: units, officers (grouped by unit), categories."""

    units: list[Choice]
    officers: list[Choice]
    categories: list[Choice]


class ActionForm(FlaskForm):
    expected_version = HiddenField()


def _field(spec: FieldSpec, required: bool, source: ChoiceSource) -> Field:
    from web.i18n import locale_code

    locale = locale_code()
    label = spec.title_in(locale)
    checks: list[Any] = [
        InputRequired(_("%(field)s is required.", field=label)) if required else Optional()
    ]
    if spec.type == "text":
        checks.append(
            Length(
                max=spec.max_length,
                message=_("At most %(count)s characters.", count=spec.max_length),
            )
        )
        cls = TextAreaField if spec.max_length > LONG_TEXT else StringField
        return cls(label, validators=checks, render_kw={"maxlength": spec.max_length})
    if spec.type == "choice":
        return SelectField(
            label,
            choices=options((c, spec.choice_title(c, locale)) for c in spec.choices),
            validators=checks,
        )
    if spec.type == "date":
        return DateField(label, validators=checks, default=None)
    if spec.type == "bool":
        return BooleanField(label, validators=[Optional()])
    items = {"unit": source.units, "user": source.officers, "category": source.categories}[
        spec.type
    ]
    kind = {"unit": "unit", "user": "officer", "category": "category"}[spec.type]
    return SelectField(label, choices=from_choices(items, kind=kind), validators=checks)


def form_class(fields: dict[str, FieldSpec], spec: TriggerSpec, source: ChoiceSource) -> type:
    """A FlaskForm subclass for ``spec``: its required and optional fields plus the version."""
    attrs: dict[str, Any] = {}
    for name in spec.requires:
        attrs[name] = _field(fields[name], True, source)
    for name in spec.optional:
        attrs[name] = _field(fields[name], False, source)
    return type(f"{spec.name.title().replace('_', '')}Form", (ActionForm,), attrs)


def build_form(
    fields: dict[str, FieldSpec],
    spec: TriggerSpec,
    source: ChoiceSource,
    *,
    version: int,
    defaults: dict[str, Any],
    formdata: Any = None,
) -> ActionForm:
    """An instance of the trigger's form, prefixed with the trigger name (unique ids on a page)."""
    cls = form_class(fields, spec, source)
    form: ActionForm = cls(
        formdata=formdata,
        prefix=spec.name,
        data={**defaults, "expected_version": str(version)} if formdata is None else None,
    )
    return form


def form_data(form: ActionForm, spec: TriggerSpec) -> dict[str, Any]:
    """The trigger's data from a validated form: dates as ISO text, blanks left out."""
    out: dict[str, Any] = {}
    for name in (*spec.requires, *spec.optional):
        value = form[name].data
        if isinstance(value, date):
            value = value.isoformat()
        if value is None or value == "" or value is False:
            continue
        out[name] = value.strip() if isinstance(value, str) else value
    return out


def today_default(today: date) -> dict[str, Any]:
    return {"date": today}
