"""What every command shares: settings, the database, the clock."""

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
from engine.settings import load_settings


@dataclass
class AppContext:
    overrides: dict[str, Any] = field(default_factory=dict)
    now_text: str | None = None

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


def fail(error: EngineError) -> None:
    """Print an engine refusal plainly and exit 2 (1 is kept for 'audit found problems')."""
    click.echo(f"error: {error.message}", err=True)
    fields = error.details.get("fields")
    if fields:
        for name, problem in fields.items():
            click.echo(f"  {name}: {problem}", err=True)
    raise SystemExit(2)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("transitions", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
