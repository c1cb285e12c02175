"""API tokens: made once, shown once, stored only as a hash, revocable.

A token is a long random value; the database keeps its SHA-256
(``engine.security.hash_token``), so a leaked database does not leak tokens.
``authenticate`` turns the value a client presents into the ``Actor`` that
engine functions check roles and units against.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.actors import Actor
from engine.clock import ensure_utc
from engine.errors import NotFound, NotPermitted, ValidationError
from engine.models import ApiToken, User
from engine.readcache import ReadCache
from engine.security import hash_token

PREFIX = "rf_"
NAME_MAX = 100


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is the plain value, returned this once and never stored."""

    id: int
    username: str
    name: str
    token: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def create_token(session: Session, username: str, *, now: datetime, name: str = "") -> IssuedToken:
    """Make a new API token for the active user ``username``; the caller commits.

    The plain token is in the result only; the database keeps its hash.
    """
    now = ensure_utc(now)
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise ValidationError(
            f"the token name is too long ({len(name)} characters; at most {NAME_MAX})",
            fields={"name": f"at most {NAME_MAX} characters"},
        )
    user = session.execute(
        select(User.id, User.username, User.active).where(User.username == username)
    ).first()
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}; list users with `rectiflow users list`")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), created_at=now)
    session.add(row)
    session.flush()
    return IssuedToken(id=row.id, username=user.username, name=name, token=token)


def revoke_token(session: Session, token_id: int, *, now: datetime) -> TokenInfo:
    """Revoke token ``token_id`` from ``now`` on; revoking twice keeps the first time."""
    now = ensure_utc(now)
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no API token with id {token_id}; see `rectiflow tokens list`")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return _info(row, row.user.username)


def list_tokens(session: Session, username: str | None = None) -> list[TokenInfo]:
    """Every token (or one user's), newest first; never the token values."""
    query = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.id.desc())
    )
    if username is not None:
        query = query.where(User.username == username)
    return [_info(row, name) for row, name in session.execute(query)]


# A token's look-up, built once. With a read cache it is kept TOKEN_CACHE_SECONDS, so a
# revoked token (or a deactivated user) stops working within that time in every process.
_TOKEN_LOOKUP = (
    select(
        ApiToken.id,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.unit_id,
        User.active,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)
TOKEN_CACHE_SECONDS = 2.0


def authenticate(
    db: Session | Connection, token: str, *, now: datetime, cache: ReadCache | None = None
) -> Actor:
    """The Actor behind ``token``; ``NotPermitted`` when it is unknown, revoked or its user
    is inactive. Records the time of use (at most once a minute, to spare writes) through
    ``db`` (a session, or the unit of work's connection). With ``cache`` (the context's read
    cache) the look-up is kept ``TOKEN_CACHE_SECONDS``."""
    now = ensure_utc(now)
    value = (token or "").strip()
    if not value:
        raise NotPermitted("no API token given; send `Authorization: Bearer <token>`")
    digest = hash_token(value)

    def load() -> dict[str, Any] | None:
        row = db.execute(_TOKEN_LOOKUP, {"token_hash": digest}).first()
        return dict(row._mapping) if row is not None else None

    if cache is None:
        found = load()
    else:
        found = cache.get(("api_token", digest), load, ttl_seconds=TOKEN_CACHE_SECONDS)
    if found is None:
        raise NotPermitted("unknown API token; ask an admin for one (`rectiflow tokens create`)")
    if found["revoked_at"] is not None:
        raise NotPermitted("this API token was revoked; ask an admin for a new one")
    if not found["active"]:
        raise NotPermitted(f"the user {found['username']!r} of this API token is no longer active")
    last = found["last_used_at"]
    if last is None or (now - last).total_seconds() >= 60:
        # at most once a minute (on a session an ORM update: a loaded ApiToken sees it too)
        db.execute(update(ApiToken).where(ApiToken.id == found["id"]).values(last_used_at=now))
        found["last_used_at"] = now  # the cached copy too: the next minute writes nothing
    return Actor(
        username=found["username"],
        role=found["role"],
        unit_id=found["unit_id"],
        id=found["user_id"],
    )


def _info(row: ApiToken, username: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        username=username,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
