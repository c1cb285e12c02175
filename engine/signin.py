"""Signing staff in: password check with a slowdown after repeated failures.

Failures are rows in ``sign_in_failures``, so the slowdown holds across every
web process sharing the database, not per process. After ``FREE_ATTEMPTS``
failures within ``WINDOW`` for one username, each further attempt must wait
``2 ** (failures - FREE_ATTEMPTS)`` seconds after the last failure (at most
``MAX_DELAY``). A success clears the username's failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from engine.actors import Actor
from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.models import SignInFailure, User
from engine.security import check_password

FREE_ATTEMPTS = 5
WINDOW = timedelta(minutes=15)
MAX_DELAY = timedelta(minutes=5)

# Compared against when the username is unknown, so both paths cost one scrypt.
_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


@dataclass(frozen=True)
class SignInResult:
    """``actor`` on success; otherwise ``message`` says why and ``retry_after`` how long to wait."""

    actor: Actor | None
    message: str = ""
    retry_after: int = 0


def wait_needed(session: Session, *, username: str, now: datetime) -> timedelta:
    """How long ``username`` must still wait before the next attempt (zero when free)."""
    now = ensure_utc(now)
    count, last = session.execute(
        select(func.count(), func.max(SignInFailure.at)).where(
            SignInFailure.username == username, SignInFailure.at >= now - WINDOW
        )
    ).one()
    if count < FREE_ATTEMPTS or last is None:
        return timedelta(0)
    if last.tzinfo is None:  # func.max on SQLite returns the stored text unparsed by the type
        last = ensure_utc(last)
    delay = min(timedelta(seconds=2 ** (count - FREE_ATTEMPTS + 1)), MAX_DELAY)
    return max(timedelta(0), last + delay - now)


def sign_in(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    now: datetime,
    remote_addr: str | None = None,
) -> SignInResult:
    """Check ``username``/``password`` for a staff account; record a failure or clear them.

    The message never says whether the username exists. The caller commits
    either way, so failures are kept.
    """
    now = ensure_utc(now)
    session = uow.session
    username = username.strip()[:64]
    wait = wait_needed(session, username=username, now=now)
    if wait > timedelta(0):
        seconds = int(wait.total_seconds()) + 1
        return SignInResult(
            None,
            f"Too many failed sign-ins for this account. Wait {seconds} seconds and try again.",
            seconds,
        )
    row = session.execute(
        select(User.id, User.username, User.role, User.unit_id, User.password_hash).where(
            User.username == username, User.active.is_(True)
        )
    ).first()
    ok = check_password(row.password_hash if row else _DUMMY_HASH, password)
    if row is None or not ok or not uow.policy.can(_as_actor(row), "web.signin"):
        session.execute(
            insert(SignInFailure).values(
                username=username, remote_addr=(remote_addr or "")[:64] or None, at=now
            )
        )
        return SignInResult(None, "Wrong username or password.")
    session.execute(delete(SignInFailure).where(SignInFailure.username == username))
    return SignInResult(_as_actor(row))


def _as_actor(row: Any) -> Actor:
    return Actor(username=row.username, role=row.role, unit_id=row.unit_id, id=row.id)
