"""Who acts: a user (or the engine itself), with the role and unit the policy asks about."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import User
from engine.policy import SYSTEM_ROLE


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (or the system), with the role and unit the checks use."""

    username: str
    role: str
    unit_id: int | None = None
    id: int | None = None


SYSTEM_ACTOR = Actor(username="system", role=SYSTEM_ROLE)

_ACTIVE_USER = select(User.id, User.username, User.role, User.unit_id, User.active).where(
    User.username == bindparam("username")
)


def get_actor(session: Session, username: str) -> Actor:
    """The active user ``username`` as an Actor; ``NotFound`` if there is none."""
    row = session.execute(_ACTIVE_USER, {"username": username}).first()
    if row is None or not row.active:
        raise NotFound(f"no active user {username!r}")
    return Actor(username=row.username, role=row.role, unit_id=row.unit_id, id=row.id)
