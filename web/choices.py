"""Select options as WTForms ``SelectChoice`` objects (tuples are deprecated in WTForms 3.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import wtforms
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import Select

from engine.read.pages import Choice

BLANK = "— choose —"


def options(pairs: Iterable[tuple[str, str]], blank: str | None = BLANK) -> list[SelectChoice]:
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(value, label) for value, label in pairs]


def from_choices(items: Iterable[Choice], blank: str | None = BLANK) -> list[SelectChoice]:
    """Engine choices → options, in ``<optgroup>``s when the choices carry a group."""
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(c.value, c.label, optgroup=c.group) for c in items]


class FastSelect(Select):
    """WTForms' select widget with a plain option renderer: a page with a few hundred
    officers to choose from renders several times faster (``html_params`` per option
    dominated the supervisor's board)."""

    @classmethod
    def render_option(cls, choice: Any, **kwargs: Any) -> Markup:
        if kwargs or choice.render_kw:
            return super().render_option(choice, **kwargs)
        selected = " selected" if choice.selected else ""
        label = choice.label if choice.label is not None else choice.value
        return Markup(f'<option value="{escape(choice.value)}"{selected}>{escape(label)}</option>')


class SelectField(wtforms.SelectField):
    """``wtforms.SelectField`` rendered with ``FastSelect``."""

    widget = FastSelect()
