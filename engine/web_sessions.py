"""Signed-in sessions kept on the server, so that they can end.

A session is a row in ``web_sessions`` keyed by the SHA-256 of a random id that only the
browser's cookie holds (a database reader cannot take a session over). It ends when the
person signs out, when it has been idle or alive too long, when the user is deactivated or
their password changes (the row holds a digest of the password hash it was made with, so a
password changed by any path ends it), and an ended row never comes back: a copy of the
cookie made before sign-out is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import Unit, User, WebSession
from engine.security import hash_password

# Writing last_seen_at on every request would make every page view a write; a minute's
# precision on the idle expiry is enough.
TOUCH_EVERY = timedelta(minutes=1)
PASSWORD_MIN = 8


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: ``idle`` without a request, ``absolute`` from sign-in."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class ActiveSession:
    """A session that still holds, and whose user it is."""

    id_hash: str
    user_id: int
    created_at: datetime


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _credential(password_hash: str | None) -> str:
    return _digest(password_hash or "")


def start_session(
    uow: UnitOfWork, user_id: int, *, now: datetime, remote_addr: str | None = None
) -> str:
    """A new session for ``user_id``; returns the random id for the cookie (never stored)."""
    now = ensure_utc(now)
    password_hash = uow.session.execute(
        select(User.password_hash).where(User.id == user_id)
    ).scalar_one()
    token = secrets.token_urlsafe(32)
    uow.session.execute(
        insert(WebSession).values(
            id=_digest(token),
            user_id=user_id,
            credential=_credential(password_hash),
            remote_addr=(remote_addr or "")[:64] or None,
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


def resume_session(
    uow: UnitOfWork, token: str, *, now: datetime, policy: SessionPolicy
) -> ActiveSession | None:
    """The session the cookie's ``token`` names, if it still holds; otherwise it is ended
    (with the reason) and None is returned. Touches ``last_seen_at`` at most once a minute."""
    now = ensure_utc(now)
    if not token or len(token) > 200:
        return None
    id_hash = _digest(token)
    row = uow.session.execute(
        select(
            WebSession.user_id,
            WebSession.credential,
            WebSession.created_at,
            WebSession.last_seen_at,
            WebSession.ended_at,
            User.active,
            User.password_hash,
        )
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == id_hash)
    ).first()
    if row is None or row.ended_at is not None:
        return None
    reason = None
    if not row.active:
        reason = "deactivated"
    elif row.credential != _credential(row.password_hash):
        reason = "password_changed"
    elif now - row.created_at > policy.absolute:
        reason = "expired"
    elif now - row.last_seen_at > policy.idle:
        reason = "idle"
    if reason is not None:
        _end(uow, WebSession.id == id_hash, reason=reason, now=now)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        uow.session.execute(
            update(WebSession).where(WebSession.id == id_hash).values(last_seen_at=now)
        )
    return ActiveSession(id_hash=id_hash, user_id=row.user_id, created_at=row.created_at)


def end_session(uow: UnitOfWork, token: str, *, now: datetime, reason: str = "signed_out") -> bool:
    """End the session ``token`` names; True if it was still open."""
    return _end(uow, WebSession.id == _digest(token), reason=reason, now=now) > 0


def end_user_sessions(uow: UnitOfWork, user_id: int, *, now: datetime, reason: str) -> int:
    """End every open session of ``user_id``; how many were open."""
    return _end(uow, WebSession.user_id == user_id, reason=reason, now=now)


def _end(uow: UnitOfWork, condition: object, *, reason: str, now: datetime) -> int:
    result = uow.session.execute(
        update(WebSession)
        .where(condition, WebSession.ended_at.is_(None))  # type: ignore[arg-type]
        .values(ended_at=ensure_utc(now), ended_reason=reason[:32])
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _user_id(uow: UnitOfWork, username: str) -> int:
    user_id = uow.session.execute(select(User.id).where(User.username == username)).scalar()
    if user_id is None:
        raise NotFound(f"no user {username!r}")
    return int(user_id)


def change_password(uow: UnitOfWork, username: str, password: str, *, now: datetime) -> int:
    """Set ``username``'s password and end their sessions; how many sessions ended."""
    if len(password) < PASSWORD_MIN:
        raise ValidationError(
            f"the password must have at least {PASSWORD_MIN} characters",
            fields={"password": f"at least {PASSWORD_MIN} characters"},
        )
    user_id = _user_id(uow, username)
    uow.session.execute(
        update(User).where(User.id == user_id).values(password_hash=hash_password(password))
    )
    return end_user_sessions(uow, user_id, now=now, reason="password_changed")


def set_active(uow: UnitOfWork, username: str, active: bool, *, now: datetime) -> int:
    """Activate or deactivate ``username``; deactivating ends their sessions (returns how many)."""
    user_id = _user_id(uow, username)
    uow.session.execute(update(User).where(User.id == user_id).values(active=active))
    if active:
        return 0
    return end_user_sessions(uow, user_id, now=now, reason="deactivated")


@dataclass(frozen=True)
class Account:
    """A user as ``rectiflow users list`` shows it."""

    username: str
    role: str
    unit: str | None
    active: bool
    open_sessions: int


def list_accounts(uow: UnitOfWork) -> list[Account]:
    """Every user with their unit's code and how many web sessions they have open."""
    open_sessions = (
        select(func.count())
        .where(WebSession.user_id == User.id, WebSession.ended_at.is_(None))
        .scalar_subquery()
    )
    rows = uow.session.execute(
        select(User.username, User.role, Unit.code, User.active, open_sessions)
        .outerjoin(Unit, Unit.id == User.unit_id)
        .order_by(User.username)
    ).all()
    return [Account(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in rows]
