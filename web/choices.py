"""Select options as WTForms ``SelectChoice`` objects (tuples are deprecated in WTForms 3.3)."""

from __future__ import annotations

from collections.abc import Iterable

from wtforms.fields.choices import SelectChoice

from engine.queries import Choice

BLANK = "— choose —"


def options(pairs: Iterable[tuple[str, str]], blank: str | None = BLANK) -> list[SelectChoice]:
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(value, label) for value, label in pairs]


def from_choices(items: Iterable[Choice], blank: str | None = BLANK) -> list[SelectChoice]:
    """Engine choices → options, in ``<optgroup>``s when the choices carry a group."""
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(c.value, c.label, optgroup=c.group) for c in items]
