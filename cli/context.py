"""What every command shares: settings, the database, the clock, the reader's language.

The language of what a person reads (``--lang``, else ``RECTIFLOW_LANG``, else the
stored preference of the ``--as`` user, else the organisation's ``default_locale``)
is settled on first use: ``_("...")`` here translates through the web's catalogue
(``engine.i18n``), and ``fail`` shows engine refusals through the table the pages use
(``engine.messages``). Machine-readable output (``--json``, CSV) keeps its keys.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock, SystemClock, parse_instant
from engine.context import EngineContext, UnitOfWork, build_context
from engine.errors import EngineError
from engine.i18n import Reader, Readers, default_locale, reader_for, user_locale
from engine.settings import load_settings
from engine.titles import LANGUAGES


@dataclass
class AppContext:
    overrides: dict[str, Any] = field(default_factory=dict)
    now_text: str | None = None
    # --lang or RECTIFLOW_LANG, checked by the root group; None: the user's or the default.
    lang: str | None = None

    @cached_property
    def settings(self) -> dict[str, Any]:
        return load_settings(self.overrides)

    @cached_property
    def clock(self) -> Any:
        if self.now_text:
            return FixedClock(parse_instant(self.now_text))
        return SystemClock()

    def now(self) -> datetime:
        return self.clock()

    @cached_property
    def ctx(self) -> EngineContext:
        """The engine context every command hands to the services (built on first use)."""
        # The clock is looked up on each call: a command may set --now after the context exists.
        return build_context(self.settings, clock=lambda: self.clock())

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.ctx.sessions

    @cached_property
    def reader(self) -> Reader:
        """The reader's language, settled on first use (after ``--as`` is parsed)."""
        locale = self.lang or self._as_user_locale() or default_locale(self.settings)
        if not self._database_usable():
            return reader_for(self.settings, locale)
        # Titles from the workflows and the policy; names read from a snapshot, since the
        # command may hold SQLite's write lock in its own transaction.
        return Readers.of(self.ctx)(locale)

    def _database_usable(self) -> bool:
        try:
            self.ctx  # noqa: B018
        except EngineError:
            return False
        return True

    def _as_user_locale(self) -> str | None:
        current = click.get_current_context(silent=True)
        username = current.params.get("username") if current is not None else None
        if not username or not self._database_usable():
            return None
        from engine.db import read_snapshot

        try:
            with read_snapshot(self.ctx.engine) as conn:
                return user_locale(Session(bind=conn), str(username))
        except Exception:  # noqa: BLE001 - no schema yet: the default language
            return None

    def close(self) -> None:
        """Close the database pool once the command is done (if a command opened one)."""
        if "ctx" in self.__dict__:
            self.ctx.dispose()

    def unit_of_work(self) -> contextlib.AbstractContextManager[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back on any error."""
        return self.ctx.unit_of_work()


pass_app = click.make_pass_decorator(AppContext)


def act_as(uow: UnitOfWork, username: str | None, permission: str, ticket: Any = None) -> None:
    """``--as USER``: the policy's answer for that user, as the web and the API would give it.

    Without ``--as`` a command acts as the operator of the installation (a shell on the server),
    as ``init`` and ``demo`` do."""
    if username is None:
        return
    from engine.actors import get_actor

    actor = get_actor(uow.session, username)
    uow.policy.require(actor, permission, ticket, number=getattr(ticket, "number", "") or "")


def current_app() -> AppContext | None:
    current = click.get_current_context(silent=True)
    return current.find_object(AppContext) if current is not None else None


def reader() -> Reader:
    """The running command's reader (the organisation's default outside a command)."""
    app = current_app()
    return app.reader if app is not None else Reader(locale=LANGUAGES[0])


def _(message: str, /, **params: Any) -> str:
    """``message`` in the reader's language (extracted by ``pybabel`` like the web's)."""
    return reader().gettext(message, **params)


def when(value: datetime | None, timezone: str) -> str:
    """A UTC time in ``timezone`` (a campaign's), as the reader's language writes it."""
    return reader().when(value, timezone)


def fail(error: EngineError) -> None:
    """Print an engine refusal in the reader's language and exit 2 (1 is kept for 'audit
    found problems')."""
    from engine.messages import engine_message, field_errors

    r = reader()
    click.echo(_("error: %(message)s", message=engine_message(error, r)), err=True)
    fields = error.details.get("fields")
    if fields:
        translated = field_errors(error, r) if hasattr(error, "fields") else fields
        for name, problem in fields.items():
            click.echo(f"  {name}: {translated.get(name, problem)}", err=True)
    raise SystemExit(2)


def check_lang(app: AppContext, value: str | None, source: str) -> str | None:
    """``--lang`` or ``RECTIFLOW_LANG`` checked: an unknown locale is one line (in the
    organisation's language) and exit 2."""
    if not value:
        return None
    if value not in LANGUAGES:
        r = reader_for(app.settings, default_locale(app.settings))
        message = r.gettext(
            "error: %(source)s: there is no language %(locale)s; choose one of: %(choices)s",
            source=source,
            locale=repr(value),
            choices=", ".join(LANGUAGES),
        )
        click.echo(message, err=True)
        raise SystemExit(2)
    return value


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("transitions", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
