"""Select options as WTForms ``SelectChoice`` objects (tuples are deprecated in WTForms 3.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import wtforms
from flask_babel import lazy_gettext
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import Select

from engine.read.pages import Choice

BLANK = lazy_gettext("— choose —")


def options(pairs: Iterable[tuple[str, Any]], blank: Any = BLANK) -> list[SelectChoice]:
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(value, label) for value, label in pairs]


def from_choices(
    items: Iterable[Choice], blank: Any = BLANK, kind: str | None = None
) -> list[SelectChoice]:
    """Engine choices → options, in ``<optgroup>``s when the choices carry a group.

    ``kind`` (``unit``, ``officer``, ``category``) shows units and categories by their
    name in the reader's language rather than the engine's English label.
    """
    from web.i18n import names

    out = [SelectChoice("", blank)] if blank is not None else []
    for c in items:
        label, group = c.label, c.group
        if kind == "unit":
            label = names().unit(c.value)
        elif kind == "category":
            label = names().category(c.value)
        elif kind == "officer" and group:
            group = names().unit(group)
        out.append(SelectChoice(c.value, label, optgroup=group))
    return out


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
