"""The engine's refusals and notices in the request's language.

The table of the engine's sentences lives in ``engine.messages`` (the CLI and the
mailer use it too); here each request gets its ``Reader``: Flask-Babel's catalogue
for the request's locale, the workflows' and the policy's titles, the units' names.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask_babel import get_translations
from flask_babel import gettext as _

from engine import messages
from engine.errors import EngineError, ValidationError
from engine.i18n import Reader


def reader() -> Reader:
    """The request's reader (built once per request)."""
    if "rectiflow_reader" not in g:
        from web.database import get_ctx
        from web.i18n import locale_code, names

        ctx = get_ctx()
        g.rectiflow_reader = Reader(
            locale=locale_code(),
            translations=get_translations(),
            registry=ctx.registry,
            policy=ctx.policy,
            display=names,
        )
    return g.rectiflow_reader  # type: ignore[no-any-return]


def translate(text: str) -> str:
    """``text`` from the engine in the reader's language, when the table knows it."""
    return messages.translate(text, reader())


def engine_message(error: EngineError) -> str:
    """An engine refusal's message in the reader's language."""
    return messages.engine_message(error, reader())


def field_errors(error: ValidationError) -> dict[str, str]:
    """A ``ValidationError``'s per-field messages in the reader's language."""
    return messages.field_errors(error, reader())


def notice_text(notice: Any) -> dict[str, str]:
    """A notice's subject and body in the reader's language (digest bodies stay as written)."""
    return messages.notice_text(notice, reader())


def problem_kind(kind: str) -> str:
    """What the log's verification found, in the reader's language."""
    return messages.problem_kind(reader(), kind)


def notice_kind(kind: str) -> str:
    kinds = {
        "warning": _("Warning"),
        "reminder": _("Reminder"),
        "chase": _("Chase notice"),
        "board": _("Supervision board"),
        "leadership": _("Bureau leadership"),
        "extension": _("Extension"),
        "escalation": _("Escalation"),
        "digest": _("Daily digest"),
        "assignment": _("Assigned to you"),
        "returned": _("Returned to you"),
        "reopen": _("Reopened"),
    }
    return kinds.get(kind, kind)
