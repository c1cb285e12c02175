"""Two languages, Chinese first: Flask-Babel, the locale of each request, the language switch.

The locale is, in order: the signed-in user's stored preference, the ``locale``
cookie the switch sets, the browser's ``Accept-Language`` (zh-CN, zh, en...),
the organisation's ``default_locale`` (``zh_CN`` for the sample bureau). The
catalogues are ``web/translations/<locale>/LC_MESSAGES/messages.po``; the
compiled ``.mo`` files are committed beside them (README, "Translations").

Definitions (workflow states, triggers, fields and their choices; units,
categories, campaigns, roles) carry their own titles in both languages; the
helpers here pick the reader's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from babel import Locale, support
from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    has_request_context,
    redirect,
    request,
    url_for,
)
from flask_babel import Babel, Domain, get_locale
from flask_babel import gettext as _

from engine.errors import ValidationError
from engine.settings import project_path
from engine.titles import LANGUAGES, pick

bp = Blueprint("i18n", __name__)
babel = Babel()
COOKIE = "locale"
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}
# The <html lang> value of each locale (BCP 47).
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def default_locale() -> str:
    return str(current_app.config["RECTIFLOW"].get("default_locale") or "zh_CN")


def select_locale() -> str:
    """The request's locale: user preference, cookie, Accept-Language, organisation default."""
    from web.context import current_user

    try:
        user = current_user()
    except Exception:  # noqa: BLE001 - an error page must still render when the database fails
        user = None
    if user is not None and user.locale in LANGUAGES:
        return user.locale
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(LANGUAGES)
    return best or default_locale()


def locale_code() -> str:
    """The current locale as a catalogue name (``zh_CN``, ``en``); Babel itself calls zh_CN
    ``zh_Hans_CN``."""
    locale = get_locale()
    if locale is None:
        return default_locale()
    for code in LANGUAGES:
        parsed = Locale.parse(code)
        if (parsed.language, parsed.territory) == (locale.language, locale.territory):
            return code
    for code in LANGUAGES:
        if code.split("_")[0] == locale.language:
            return code
    return default_locale()


class CatalogueDomain(Domain):
    """Flask-Babel's domain, loading the catalogue named as ``LANGUAGES`` names it: Babel
    spells zh_CN ``zh_Hans_CN``, which gettext would not find under ``zh_CN/``."""

    def get_translations(self) -> support.Translations | support.NullTranslations:
        if not has_request_context():
            return support.NullTranslations()
        code = locale_code()
        cache = self.get_translations_cache(None)
        key = (code, self.domain[0])
        if key not in cache:
            translations = support.Translations()
            for dirname in self.translation_directories:
                translations.merge(support.Translations.load(dirname, [code], self.domain[0]))
            cache[key] = translations
        return cache[key]  # type: ignore[no-any-return]


def title(titles: Mapping[str, str] | None, fallback: str = "") -> str:
    """A ``{zh_CN, en}`` title in the reader's language."""
    return pick(titles, locale_code(), fallback)


def local_datetime(value: datetime | None, tz: str) -> str:
    """A UTC time in the campaign's timezone, written the way the reader's language writes it
    (2005年3月1日 09:05; Mar 1, 2005, 09:05)."""
    from web.messages import reader

    return reader().when(value, tz)


def local_date(value: date | datetime | None, tz: str | None = None) -> str:
    from web.messages import reader

    return reader().day(value, tz)


class Names:
    """Titles of units, categories, campaigns and roles for this request, read once.

    Pages hold codes (``luohe-station``, ``public_security_management``); what the
    reader sees is the name in their language.
    """

    def __init__(self) -> None:
        from engine.read.reference import display_names
        from web.database import get_session

        found = display_names(get_session())
        self.units = found.units
        self.categories = found.categories
        self.campaigns = found.campaigns

    def unit(self, code: str | None) -> str:
        return title(self.units.get(code or ""), code or "—") if code else "—"

    def category(self, code: str | None) -> str:
        return title(self.categories.get(code or ""), code or "—") if code else "—"

    def campaign(self, code: str | None) -> str:
        return title(self.campaigns.get(code or ""), code or "—") if code else "—"


def names() -> Names:
    if "rectiflow_names" not in g:
        g.rectiflow_names = Names()
    return g.rectiflow_names  # type: ignore[no-any-return]


def role_title(role: str | None) -> str:
    """A role's title from the policy (``config/policy.toml``), in the reader's language."""
    from web.database import get_ctx

    if not role:
        return "—"
    return str(get_ctx().policy.title(role, locale_code())) or role.replace("_", " ")


def workflow_of(name: str | None = None, version: int | None = None) -> Any:
    from web.database import get_ctx

    return get_ctx().registry.get(name or "consultation", version)


def state_title(state: str | None, workflow: Any = None) -> str:
    if not state:
        return "—"
    return str((workflow or workflow_of()).state_title(state, locale_code()))


def trigger_title(trigger: str | None, workflow: Any = None, source: str | None = None) -> str:
    """A trigger's title in the page's language; from the state ``source`` when the page knows
    it (a log row's from-state)."""
    if not trigger:
        return "—"
    wf = workflow or workflow_of()
    if any(t.name == trigger for t in wf.triggers):
        return str(wf.trigger_title(trigger, locale_code(), source))
    return event_title(trigger)


def event_title(kind: str) -> str:
    """Log rows that are not workflow triggers (the engine's own events)."""
    from engine.messages import event_title as title_in
    from web.messages import reader

    return title_in(reader(), kind)


def kind_title(kind: str | None, workflow: Any = None) -> str:
    if not kind:
        return "—"
    wf = workflow or workflow_of()
    spec = wf.fields.get("kind")
    return str(spec.choice_title(kind, locale_code())) if spec else kind


def field_title(name: str, workflow: Any = None) -> str:
    """The label of a field in a log row or a record: the workflow field's title, or one of
    the engine's own keys."""
    wf = workflow or workflow_of()
    spec = wf.fields.get(name) or wf.fields.get(name.replace(" ", "_"))
    if spec is not None:
        return str(spec.title_in(locale_code()))
    labels = {
        "text": _("Opinion"),
        "area": _("Town or area"),
        "address": _("Address or place"),
        "source": _("How it was received"),
        "received_at": _("Received"),
        "timer": _("Timer"),
        "level": _("Supervision level"),
        "from_level": _("From level"),
        "due_at": _("Due"),
        "extension": _("Extension"),
        "requested_due_at": _("Requested due time"),
        "requested due": _("Requested due time"),
        "service_code": _("Category asked"),
        "status": _("Status"),
        "note": _("Note"),
        "id": _("Number"),
        "satisfied": _("Citizen satisfied"),
        "reopen_request": _("Reopen request"),
        "routed_to": _("Routed to"),
    }
    return labels.get(name, name.replace("_", " "))


def source_title(source: str | None) -> str:
    """How a ticket was received (a channel), in the reader's language."""
    from engine.messages import source_title as title_in
    from web.messages import reader

    return title_in(reader(), source)


def record_title(kind: str) -> str:
    kinds = {
        "feedback": _("Feedback"),
        "government escalation": _("Escalation to government"),
        "extension": _("Extension"),
        "reopen request": _("Reopen request"),
    }
    return kinds.get(kind, kind)


def log_values(
    data: str | Mapping[str, Any] | None, trigger: str | None = None, tz: str = "Asia/Shanghai"
) -> list[tuple[str, str]]:
    """A log row's data (canonical JSON) as (label, value) pairs for reading: each key by its
    field's title, each value by its choice's or unit's title, instants in the campaign's time.
    A recorded opinion's ``text`` is the opinion (the workflow's ``text`` is the feedback)."""
    import json

    if not data:
        return []
    if isinstance(data, str):
        try:
            parsed = json.loads(data)
        except ValueError:
            return [(_("Data"), data)]
    else:
        parsed = dict(data)
    if not isinstance(parsed, dict):
        return [(_("Data"), str(parsed))]
    out = []
    for key, value in parsed.items():
        label = field_title(key)
        if trigger == "create" and key == "text":
            label = _("Opinion")
        if isinstance(value, str) and _INSTANT.fullmatch(value):
            shown = local_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")), tz)
        elif key == "source":
            shown = source_title(str(value))
        elif key == "service_code":
            shown = names().category(str(value))
        elif isinstance(value, (dict, list)):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = value_title(key, value)
        out.append((label, shown))
    return out


_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def value_title(name: str, value: Any, workflow: Any = None) -> str:
    """A field's value for reading: a choice's title, a unit's or category's name, yes/no."""
    wf = workflow or workflow_of()
    spec = wf.fields.get(name)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if name == "status":
        statuses = {
            "pending": _("pending"),
            "approved": _("approved"),
            "refused": _("refused"),
            "reopened": _("reopened"),
        }
        return statuses.get(str(value), str(value))
    if spec is not None:
        if spec.type == "choice":
            return str(spec.choice_title(str(value), locale_code()))
        if spec.type == "unit":
            return names().unit(str(value))
        if spec.type == "category":
            return names().category(str(value))
    if name in ("unit", "routed_to"):
        return names().unit(str(value))
    if name == "category":
        return names().category(str(value))
    if name == "kind":
        return kind_title(str(value), wf)
    return str(value)


def report_item(section: str, item: str) -> str:
    """A campaign report's row label: a name in the reader's language, never a code."""
    from engine.messages import report_item as item_in
    from web.messages import reader

    return item_in(reader(), section, item)


@bp.post("/locale")
def switch() -> Any:
    """The language switch on every page: a cookie for everyone, the stored preference for a
    signed-in user. An unknown locale is refused with a clear error; nothing is stored."""
    from web.context import current_user

    chosen = (request.form.get("locale") or "").strip()
    if chosen not in LANGUAGES:
        raise ValidationError(
            _(
                "There is no language %(locale)s; choose one of: %(choices)s.",
                locale=chosen[:20] or "—",
                choices=", ".join(f"{LANGUAGE_NAMES[c]} ({c})" for c in LANGUAGES),
            ),
            details={"fields": {"locale": "unknown"}},
        )
    user = current_user()
    if user is not None:
        from engine.preferences import set_locale
        from web.database import get_uow

        uow = get_uow()
        set_locale(uow, user.id, chosen)
        uow.commit()
    target = request.form.get("next") or ""
    if not (target.startswith("/") and not target.startswith("//") and "\\" not in target):
        target = url_for("public.index")
    response = redirect(target)
    response.set_cookie(COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def init_app(app: Flask) -> None:
    from web.messages import notice_kind, notice_text, problem_kind, translate

    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(project_path("web/translations")))
    babel.init_app(
        app,
        default_locale=str(app.config["RECTIFLOW"].get("default_locale") or "zh_CN"),
        locale_selector=select_locale,
    )
    babel.domain_instance = CatalogueDomain(domain="messages")
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        locale_code=locale_code,
        html_lang=lambda: HTML_LANG.get(locale_code(), "zh-CN"),
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        title_of=title,
        names=names,
        role_title=role_title,
        state_title=state_title,
        trigger_title=trigger_title,
        kind_title=kind_title,
        field_title=field_title,
        value_title=value_title,
        report_item=report_item,
        state_title_of=state_title,
        source_title=source_title,
        record_title=record_title,
        log_values=log_values,
        notice_text=notice_text,
        notice_kind=notice_kind,
        problem_kind=problem_kind,
        translate=translate,
    )
    app.jinja_env.filters["localdate"] = local_date
