"""What every command shares: settings, the database, the clock."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import db
from engine.clock import FixedClock, SystemClock, parse_instant
from engine.errors import EngineError
from engine.settings import audit_key, database_url, load_settings, project_path
from engine.workflow import WorkflowRegistry, default_registry


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
    def engine(self) -> Engine:
        return db.make_engine(
            database_url(self.settings),
            sqlite_synchronous=self.settings.get("sqlite_synchronous", "FULL"),
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    @cached_property
    def registry(self) -> WorkflowRegistry:
        return default_registry(str(project_path(self.settings.get("workflows_dir", "workflows"))))

    @property
    def audit_key(self) -> bytes | None:
        return audit_key(self.settings)

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit when the block ends, roll back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


pass_app = click.make_pass_decorator(AppContext)


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
