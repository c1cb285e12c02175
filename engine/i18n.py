"""The reader's language outside a web request: the CLI's output, e-mails, the engine's sentences.

The catalogue is the web's (``web/translations``, compiled ``.mo`` files; the directory
is the ``translations_dir`` setting), read here with Babel alone so that the engine,
the CLI and the mailer translate without Flask. A ``Reader`` is one locale: its
``gettext`` (extracted by ``pybabel`` like the web's ``_``), titles of states,
triggers, roles and units in that locale, and dates and times written the way the
language writes them in a campaign's timezone. Pages build one from Flask-Babel's
catalogue for the request (``web.messages``), so both adapters share one table of
engine sentences (``engine.messages``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, support
from babel.dates import format_skeleton
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.errors import ValidationError
from engine.settings import project_path
from engine.titles import DEFAULT_LANGUAGE, LANGUAGES, pick

DEFAULT_TRANSLATIONS_DIR = "web/translations"

Titles = Mapping[str, Mapping[str, str]]


def check_locale(locale: str) -> str:
    """``locale`` when it is one of ``LANGUAGES``; else a ``ValidationError`` naming them."""
    if locale not in LANGUAGES:
        raise ValidationError(
            f"there is no language {locale!r}; choose one of {', '.join(LANGUAGES)}",
            fields={"locale": f"one of {', '.join(LANGUAGES)}"},
        )
    return locale


def default_locale(settings: Mapping[str, Any]) -> str:
    """The organisation's language (``default_locale`` in the settings; zh_CN by default)."""
    found = str(settings.get("default_locale") or DEFAULT_LANGUAGE)
    return found if found in LANGUAGES else DEFAULT_LANGUAGE


@lru_cache(maxsize=8)
def catalogue(directory: str, locale: str) -> support.NullTranslations:
    """The compiled catalogue of ``locale`` under ``directory`` (read once per process)."""
    return support.Translations.load(directory, [locale], "messages")


def translations_dir(settings: Mapping[str, Any]) -> str:
    return str(project_path(settings.get("translations_dir", DEFAULT_TRANSLATIONS_DIR)))


@dataclass
class Reader:
    """One reader's language: the catalogue's sentences and the definitions' titles in it.

    ``registry`` and ``policy`` give states', triggers' and roles' titles; ``display`` (read
    on first use) the names of units, categories and campaigns (``.units``, ``.categories``,
    ``.campaigns``: code -> titles). Any of them may be missing: the code is shown.
    """

    locale: str
    translations: support.NullTranslations = field(default_factory=support.NullTranslations)
    registry: Any = None
    policy: Any = None
    display: Callable[[], Any] | None = None
    workflow_name: str = "consultation"
    _names: Any = field(default=None, repr=False)

    def gettext(self, message: str, /, **params: Any) -> str:
        """``message`` from the catalogue, its ``%(name)s`` placeholders filled."""
        found = self.translations.ugettext(message)
        return found % params if params else found

    _ = gettext

    def _workflows(self) -> list[Any]:
        if self.registry is None:
            return []
        found = list(self.registry.all())
        # The default workflow's titles first (consultation), newest version first.
        return sorted(found, key=lambda wf: (wf.name != self.workflow_name, -wf.version))

    def state(self, code: str | None, workflow: Any = None) -> str:
        """A state's title; the given workflow first, else the first workflow that has it."""
        if not code:
            return "—"
        for wf in [workflow] if workflow is not None else self._workflows():
            if code in wf.states:
                return str(wf.state_title(code, self.locale))
        return code

    def trigger(self, code: str | None, workflow: Any = None, source: str | None = None) -> str:
        """A trigger's title; from ``source`` when given (see ``Workflow.trigger_title``)."""
        if not code:
            return "—"
        for wf in [workflow] if workflow is not None else self._workflows():
            if any(t.name == code for t in wf.triggers):
                return str(wf.trigger_title(code, self.locale, source))
        return code

    def role(self, code: str | None) -> str:
        if not code:
            return "—"
        if self.policy is None:
            return code.replace("_", " ")
        return str(self.policy.title(code, self.locale)) or code.replace("_", " ")

    def _titles(self, kind: str) -> Titles:
        if self._names is None and self.display is not None:
            self._names = self.display()
        return getattr(self._names, kind, None) or {}

    def unit(self, code: str | None) -> str:
        return pick(self._titles("units").get(code or ""), self.locale, code or "—")

    def category(self, code: str | None) -> str:
        return pick(self._titles("categories").get(code or ""), self.locale, code or "—")

    def campaign(self, code: str | None) -> str:
        return pick(self._titles("campaigns").get(code or ""), self.locale, code or "—")

    def kind(self, code: str | None, workflow: Any = None) -> str:
        """A ticket kind's title (the ``kind`` field's choice)."""
        return self.choice("kind", code, workflow)

    def choice(self, field_name: str, code: str | None, workflow: Any = None) -> str:
        """A choice field's value by its title (a priority, a rating, a kind)."""
        if not code:
            return "—"
        for wf in [workflow] if workflow is not None else self._workflows():
            spec = wf.fields.get(field_name)
            if spec is not None and code in spec.choices:
                return str(spec.choice_title(code, self.locale))
        return code

    def title(self, titles: Mapping[str, str] | None, fallback: str = "") -> str:
        """A definition's ``{zh_CN, en}`` title in this language."""
        return pick(titles, self.locale, fallback)

    def when(self, value: datetime | None, tz: str) -> str:
        """A UTC time in the timezone ``tz``, as the language writes it (2005年3月1日 09:05;
        Mar 1, 2005, 09:05)."""
        if value is None:
            return "—"
        locale = Locale.parse(self.locale)
        moment = value.astimezone(ZoneInfo(tz))
        day = format_skeleton("yMMMd", moment, locale=locale)
        clock = format_skeleton("Hm", moment, locale=locale)
        return str(locale.datetime_formats["medium"]).replace("{1}", day).replace("{0}", clock)

    def month_day(self, value: datetime, tz: str) -> str:
        """A day without its year, as the language writes it (March 18; 3月18日)."""
        moment = value.astimezone(ZoneInfo(tz))
        return str(format_skeleton("MMMMd", moment, locale=Locale.parse(self.locale)))

    def day(self, value: date | datetime | None, tz: str | None = None) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime) and tz:
            value = value.astimezone(ZoneInfo(tz))
        return str(format_skeleton("yMMMd", value, locale=Locale.parse(self.locale)))


def reader_for(
    settings: Mapping[str, Any],
    locale: str,
    *,
    registry: Any = None,
    policy: Any = None,
    session: Session | None = None,
) -> Reader:
    """A ``Reader`` in ``locale`` on the installation's catalogue; the names of units,
    categories and campaigns read from ``session`` when one is given (on first use)."""

    def names() -> Any:
        from engine.read.reference import display_names

        assert session is not None
        return display_names(session)

    return Reader(
        locale=check_locale(locale),
        translations=catalogue(translations_dir(settings), locale),
        registry=registry,
        policy=policy,
        display=names if session is not None else None,
    )


@dataclass
class Readers:
    """A ``Reader`` per locale, for messages to many people (e-mails): each recipient's
    stored language, else the organisation's (``default_locale``)."""

    settings: Mapping[str, Any]
    registry: Any = None
    policy: Any = None
    engine: Engine | None = None
    _made: dict[str, Reader] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, ctx: Any) -> Readers:
        """The readers of an engine context (its settings, workflows, policy, database)."""
        return cls(ctx.settings, ctx.registry, ctx.policy, ctx.engine)

    def __call__(self, locale: str | None) -> Reader:
        chosen = locale if locale in LANGUAGES else default_locale(self.settings)
        if chosen not in self._made:
            found = reader_for(self.settings, chosen, registry=self.registry, policy=self.policy)
            if self.engine is not None:
                found.display = self._names
            self._made[chosen] = found
        return self._made[chosen]

    def _names(self) -> Any:
        from engine.db import read_snapshot
        from engine.read.reference import display_names

        assert self.engine is not None
        # A read snapshot: it never waits for (or takes) SQLite's write lock.
        with read_snapshot(self.engine) as conn:
            return display_names(Session(bind=conn))


def user_locale(session: Session, username: str) -> str | None:
    """The stored language preference of ``username`` (None: none stored, or no such user)."""
    from sqlalchemy import select

    from engine.models import User

    found = session.scalar(select(User.locale).where(User.username == username))
    return found if found in LANGUAGES else None
