"""Working days on a holiday calendar, in a campaign's timezone.

Public holidays (and the official make-up working days) come from the
``holidays`` package; ``config/calendar-cn.toml`` adds local closures and
extra make-up working days. A deadline of "N working days" from an instant ends
at local midnight after the Nth working day that starts after the instant, the
same convention as the campaign's "before March 18" (2005-03-18T00:00 local).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from engine.errors import ConfigError

DEFAULT_CALENDAR_FILE = Path(__file__).resolve().parent.parent / "config" / "calendar-cn.toml"
_MAX_SCAN_DAYS = 3660  # ten years without a working day means a broken calendar


@dataclass(frozen=True)
class WorkingCalendar:
    """Which local dates are working days: weekdays minus holidays and closures, plus make-up days."""

    name: str
    country: str
    extra_working_days: frozenset[date] = field(default_factory=frozenset)
    closures: frozenset[date] = field(default_factory=frozenset)

    def _official(self, year: int) -> Any:
        return _country_holidays(self.country, year)

    def is_working_day(self, day: date) -> bool:
        if day in self.closures:
            return False
        if day in self.extra_working_days:
            return True
        official = self._official(day.year)
        if day in official:
            return False
        if day in getattr(official, "weekend_workdays", ()):
            return True
        return day.weekday() < 5

    def holiday_name(self, day: date) -> str | None:
        if day in self.closures:
            return "local closure"
        return self._official(day.year).get(day)

    def next_working_day(self, day: date) -> date:
        """The first working day on or after ``day``."""
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ConfigError(f"calendar {self.name}: no working day within ten years of {day}")

    def add_working_days(self, start: datetime, days: int, tz: str | ZoneInfo) -> datetime:
        """The UTC instant ``days`` working days after ``start`` in ``tz``.

        Counting begins with the first local day that starts at or after
        ``start`` (today does not count once it has begun) and ends at local
        midnight after the last counted day. ``days == 0`` returns ``start``.
        """
        if days < 0:
            raise ValueError("days must be >= 0")
        start = start.astimezone(UTC)
        if days == 0:
            return start
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        local = start.astimezone(zone)
        day = local.date()
        if local.time() != time(0):
            day += timedelta(days=1)
        return _working_days_from(self, day, days, zone)

    def working_days_between(self, first: date, last: date) -> int:
        """How many working days lie in ``first``..``last`` inclusive."""
        n = 0
        day = first
        while day <= last:
            n += self.is_working_day(day)
            day += timedelta(days=1)
        return n


@lru_cache(maxsize=4096)
def _working_days_from(calendar: WorkingCalendar, day: date, days: int, zone: ZoneInfo) -> datetime:
    """Local midnight after the ``days``-th working day counted from ``day``, in UTC.

    Depends on the local date only, so every deadline started on one day (and each
    ladder step after it) is counted once per process (a calendar is immutable).
    """
    counted = 0
    for _ in range(_MAX_SCAN_DAYS):
        if calendar.is_working_day(day):
            counted += 1
            if counted == days:
                end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                return end.astimezone(UTC)
        day += timedelta(days=1)
    raise ConfigError(f"calendar {calendar.name}: no working day within ten years of {day}")


@lru_cache(maxsize=64)
def _country_holidays(country: str, year: int) -> Any:
    return holidays_lib.country_holidays(country, years=year)


def _dates(value: Any, source: str, item: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise ConfigError(
            f"{source}: {item}: must be a list of dates like [2005-03-08]",
            details={"file": source, "item": item},
        )
    out = set()
    for i, entry in enumerate(value, start=1):
        if isinstance(entry, datetime) or not isinstance(entry, date):
            if isinstance(entry, str):
                try:
                    out.add(date.fromisoformat(entry))
                    continue
                except ValueError:
                    pass
            raise ConfigError(
                f"{source}: {item} entry #{i}: {entry!r} is not a date; write it like 2005-03-08",
                details={"file": source, "item": f"{item}[{i}]"},
            )
        out.add(entry)
    return frozenset(out)


def parse_calendars(data: dict[str, Any], source: str = "<memory>") -> dict[str, WorkingCalendar]:
    """Every calendar table of a calendar file (``[CN]``...), validated."""
    calendars: dict[str, WorkingCalendar] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{source}: {name}: must be a table [{name}]", details={"file": source}
            )
        country = table.get("country", name)
        if not isinstance(country, str):
            raise ConfigError(f"{source}: [{name}] country: must be a country code like CN")
        try:
            holidays_lib.country_holidays(country, years=2005)
        except NotImplementedError:
            raise ConfigError(
                f"{source}: [{name}] country: {country!r} is not a country the holidays package knows"
            ) from None
        working = _dates(table.get("working_days", []), source, f"[{name}] working_days")
        closures = _dates(table.get("closures", []), source, f"[{name}] closures")
        both = working & closures
        if both:
            raise ConfigError(
                f"{source}: [{name}]: {min(both)} is both a working day and a closure; keep one"
            )
        calendars[name] = WorkingCalendar(
            name=name, country=country, extra_working_days=working, closures=closures
        )
    return calendars


def load_calendar_file(path: Path | str = DEFAULT_CALENDAR_FILE) -> dict[str, WorkingCalendar]:
    """Read and validate a calendar file; a malformed date names the file, line and item."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such calendar file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line N, column M)"
        raise ConfigError(f"{path}: not a valid calendar file: {exc}") from exc
    return parse_calendars(data, str(path))


class CalendarBook:
    """The working calendars one process knows: those of a calendar file, by name.

    A campaign names its calendar (``calendar = "CN"``); a name the file does not
    define is taken as a country code of the holidays package. Built once per
    process by the engine context; no module keeps a current calendar.
    """

    def __init__(self, calendars: dict[str, WorkingCalendar], source: str = "<memory>") -> None:
        self._calendars = dict(calendars)
        self.source = source

    @classmethod
    def from_file(cls, path: Path | str = DEFAULT_CALENDAR_FILE) -> CalendarBook:
        return cls(load_calendar_file(path), str(path))

    def get(self, name: str) -> WorkingCalendar:
        """The calendar ``name``; ``ConfigError`` when neither the file nor a country has it."""
        found = self._calendars.get(name)
        if found is not None:
            return found
        try:
            holidays_lib.country_holidays(name, years=2005)
        except NotImplementedError:
            raise ConfigError(
                f"no calendar {name!r} in {self.source} and it is not a country code "
                "the holidays package knows"
            ) from None
        calendar = WorkingCalendar(name=name, country=name)
        self._calendars[name] = calendar
        return calendar

    def names(self) -> list[str]:
        return sorted(self._calendars)
