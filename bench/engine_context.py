"""The engine context for benchmarks: built once per engine, as every adapter builds one."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.context import EngineContext, UnitOfWork, build_context


@lru_cache(maxsize=16)
def context_for(engine: Engine) -> EngineContext:
    return build_context(engine=engine)


def as_uow(session: Session) -> UnitOfWork:
    """A unit of work on ``session``, on the context of its engine."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return context_for(engine).bind(session)
