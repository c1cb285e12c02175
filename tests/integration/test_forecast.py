"""The burn-down per unit and its forecast at the current pace, on a made-up campaign whose
outcome is known: the traffic brigade feeds back two items a day and will finish; the Luohe
station feeds back one a day and will have four of its items left on March 18."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from engine.forecast import unit_forecast
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow, load_phases
from tests.integration.deadline_support import local

CAMPAIGN = "consultation-2005"


def _items(session: Session, count: int, category: str, area: str) -> list[str]:
    clerk, boss = get_actor(session, "clerk"), get_actor(session, "supervisor")
    numbers = []
    for i in range(count):
        at = local(2005, 3, 9, 9) + timedelta(minutes=i)
        number = create_ticket(
            as_uow(session), campaign=CAMPAIGN, text=f"item {i}", area=area, actor=clerk, now=at
        ).number
        fire(
            as_uow(session),
            number,
            "categorize",
            actor=clerk,
            data={"category": category, "kind": "criticism"},
            now=at + timedelta(hours=1),
        )
        unit = "traffic-brigade" if category == "traffic_management" else "luohe-station"
        officer = "traffic.officer" if unit == "traffic-brigade" else "luohe.officer"
        fire(
            as_uow(session),
            number,
            "assign",
            actor=boss,
            data={"unit": unit, "officer": officer},
            now=at + timedelta(hours=2),
        )
        numbers.append(number)
    return numbers


def _feed_back(session: Session, number: str, officer: str, at: datetime) -> None:
    actor = get_actor(session, officer)
    fire(as_uow(session), number, "rectify", actor=actor, data={"measures": "done"}, now=at)
    fire(
        as_uow(session),
        number,
        "feed_back",
        actor=actor,
        data={"method": "visit", "text": "answered", "date": "2005-03-12"},
        now=at + timedelta(hours=1),
    )


@pytest.fixture
def campaign(session: Session) -> dict[str, list[str]]:
    traffic = _items(session, 10, "traffic_management", "Xiaji")
    luohe = _items(session, 10, "public_security_management", "Luohe")
    for day_index, day in enumerate((12, 13, 14)):
        for number in traffic[2 * day_index : 2 * day_index + 2]:
            _feed_back(session, number, "traffic.officer", local(2005, 3, day, 10))
        _feed_back(session, luohe[day_index], "luohe.officer", local(2005, 3, day, 10))
    session.commit()
    return {"traffic": traffic, "luohe": luohe}


def test_the_forecast_finds_the_unit_that_will_miss_march_18(
    session: Session, campaign: dict[str, list[str]]
) -> None:
    forecast = unit_forecast(as_uow(session), CAMPAIGN, as_of="2005-03-14")
    assert forecast.target_label == "before March 18"
    assert forecast.phase is None  # the test seed's campaign declares no phases
    assert forecast.days_left == 3.0  # March 15, 16, 17
    units = {u.unit: u for u in forecast.units}
    traffic, luohe = units["traffic-brigade"], units["luohe-station"]
    assert (traffic.total, traffic.open, traffic.pace_per_day) == (10, 4, 2.0)
    assert traffic.left_at_target == 0 and not traffic.will_miss
    assert traffic.finish_on == "2005-03-16"
    assert (luohe.total, luohe.open, luohe.pace_per_day) == (10, 7, 1.0)
    assert luohe.left_at_target == 4 and luohe.will_miss
    assert luohe.finish_on == "2005-03-21"
    assert [(u.unit, u.left_at_target) for u in forecast.missing] == [("luohe-station", 4)]
    # The burn-down: items open at the end of each day since the first was recorded.
    assert luohe.burn_down == [
        ("2005-03-09", 10),
        ("2005-03-10", 10),
        ("2005-03-11", 10),
        ("2005-03-12", 9),
        ("2005-03-13", 8),
        ("2005-03-14", 7),
    ]
    assert traffic.burn_down[-1] == ("2005-03-14", 4)
    data = forecast.as_dict()
    assert data["missing"] == [{"unit": "luohe-station", "by": 4}]


def test_a_unit_with_no_pace_never_finishes_and_a_past_forecast_sees_only_its_day(
    session: Session, campaign: dict[str, list[str]]
) -> None:
    forecast = unit_forecast(as_uow(session), CAMPAIGN, as_of="2005-03-11")
    units = {u.unit: u for u in forecast.units}
    # Nothing fed back yet: no pace, all ten items left on March 18, no finishing day.
    assert units["luohe-station"].pace_per_day == 0
    assert units["luohe-station"].left_at_target == 10
    assert units["luohe-station"].finish_on is None
    assert {u.unit for u in forecast.missing} == {"luohe-station", "traffic-brigade"}
    # After March 18 the target is the campaign's end.
    load_phases(session)
    later = unit_forecast(as_uow(session), CAMPAIGN, as_of="2005-03-20", window_days=7)
    assert later.target_label == "by the end of March 31"
    assert later.phase is not None and later.phase["code"] == "implementation"
