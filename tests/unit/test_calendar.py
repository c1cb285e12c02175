"""Working days on the CN calendar: holidays, make-up days, closures, bad files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.calendar import CalendarBook, WorkingCalendar, load_calendar_file, parse_calendars
from engine.errors import ConfigError

TZ = "Asia/Shanghai"


def local(y: int, m: int, d: int, h: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, h, tzinfo=ZoneInfo(TZ))


def test_weekends_and_public_holidays_are_not_working_days() -> None:
    cal = CalendarBook.from_file().get("CN")
    assert cal.is_working_day(date(2005, 2, 28))  # Monday
    assert not cal.is_working_day(date(2005, 3, 5))  # Saturday
    assert not cal.is_working_day(date(2005, 2, 9))  # Spring Festival
    assert not cal.is_working_day(date(2005, 5, 2))  # Labour Day week


def test_official_make_up_saturday_is_a_working_day() -> None:
    assert (
        CalendarBook.from_file().get("CN").is_working_day(date(2005, 2, 5))
    )  # Saturday, make-up day


def test_ten_working_days_from_a_monday_morning_end_at_midnight_after_the_tenth() -> None:
    cal = CalendarBook.from_file().get("CN")
    due = cal.add_working_days(local(2005, 2, 28, 10), 10, TZ)
    assert due == local(2005, 3, 15).astimezone(UTC)


def test_counting_from_midnight_includes_that_day() -> None:
    cal = CalendarBook.from_file().get("CN")
    assert cal.add_working_days(local(2005, 3, 15), 2, TZ) == local(2005, 3, 17).astimezone(UTC)
    assert cal.add_working_days(local(2005, 3, 15), 0, TZ) == local(2005, 3, 15).astimezone(UTC)


def test_counting_skips_the_spring_festival_and_uses_the_make_up_day() -> None:
    cal = CalendarBook.from_file().get("CN")
    # Fri Feb 4 10:00 → Sat 5 and Sun 6 (make-up days), Mon 7, Tue 8; 9–15 are off; 16 is day 5.
    due = cal.add_working_days(local(2005, 2, 4, 10), 5, TZ)
    assert due == local(2005, 2, 17).astimezone(UTC)


def test_configured_closures_and_make_up_days() -> None:
    cals = parse_calendars(
        {"CN": {"country": "CN", "closures": [date(2005, 3, 1)], "working_days": ["2005-03-05"]}}
    )
    cal = cals["CN"]
    assert not cal.is_working_day(date(2005, 3, 1))
    assert cal.is_working_day(date(2005, 3, 5))
    assert cal.holiday_name(date(2005, 3, 1)) == "local closure"
    # Mon Feb 28 10:00 + 2: Mar 1 closed → Mar 2, Mar 3.
    assert cal.add_working_days(local(2005, 2, 28, 10), 2, TZ) == local(2005, 3, 4).astimezone(UTC)


def test_default_file_loads() -> None:
    assert isinstance(load_calendar_file()["CN"], WorkingCalendar)


def test_malformed_toml_date_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_text('[CN]\ncountry = "CN"\nclosures = [2005-02-30]\n')
    with pytest.raises(ConfigError) as err:
        load_calendar_file(path)
    assert str(path) in err.value.message
    assert "line 3" in err.value.message


def test_malformed_string_date_names_file_and_item(tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_text('[CN]\nworking_days = [2005-02-05, "2005-13-01"]\n')
    with pytest.raises(ConfigError) as err:
        load_calendar_file(path)
    message = err.value.message
    assert str(path) in message and "working_days entry #2" in message and "2005-13-01" in message


def test_a_day_both_closed_and_working_is_refused() -> None:
    with pytest.raises(ConfigError, match="both a working day and a closure"):
        parse_calendars(
            {"CN": {"closures": [date(2005, 3, 5)], "working_days": [date(2005, 3, 5)]}}
        )


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ConfigError, match="holidays package"):
        parse_calendars({"XX": {"country": "XX"}})
