"""Time is injected: engine functions take ``now``; these clocks produce it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (``2005-03-18T09:00+08:00``, ``2005-03-18``) to UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        from engine.errors import ValidationError

        raise ValidationError(
            f"{text!r} is not an ISO-8601 time; write it like 2005-03-18T09:00:00+08:00"
        ) from exc
    return ensure_utc(value)


class SystemClock:
    """The wall clock."""

    def __call__(self) -> datetime:
        return utcnow()


class FixedClock:
    """A clock that stands still until moved; for tests, drills and replays."""

    def __init__(self, now: datetime) -> None:
        self.now = ensure_utc(now)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now = self.now + delta
        return self.now

    def set(self, now: datetime) -> None:
        self.now = ensure_utc(now)
