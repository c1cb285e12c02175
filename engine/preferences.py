"""A user's own settings: the language of their pages and notices."""

from __future__ import annotations

from sqlalchemy import update

from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.models import User
from engine.titles import LANGUAGES


def set_locale(uow: UnitOfWork, user_id: int, locale: str) -> None:
    """Store ``locale`` (one of ``LANGUAGES``) as the user's language; the caller commits.

    An unknown locale is a ``ValidationError`` naming the ones there are; nothing is written.
    """
    if locale not in LANGUAGES:
        raise ValidationError(
            f"there is no language {locale!r}; choose one of {', '.join(LANGUAGES)}",
            fields={"locale": f"one of {', '.join(LANGUAGES)}"},
        )
    result = uow.session.execute(
        update(User).where(User.id == user_id).values(locale=locale).returning(User.id)
    )
    if result.first() is None:
        raise NotFound(f"no user #{user_id}")
