"""Campaign phases: declared in the campaign file, validated, stored, and governing clocks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import timers
from engine.errors import ConfigError
from engine.models import CampaignPhase
from engine.organisation import read_toml, upsert_campaign
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow, campaign_file, load_phases
from tests.integration.deadline_support import local, pending_timers, ticket


def _phases(session: Session) -> list[tuple[str, str, str, str]]:
    return [
        (p.code, p.starts_on.isoformat(), p.ends_on.isoformat(), p.governs)
        for p in session.scalars(select(CampaignPhase).order_by(CampaignPhase.position))
    ]


def test_the_campaign_file_declares_and_stores_the_report_phases(session: Session) -> None:
    assert _phases(session) == []  # the test seed has none
    load_phases(session)
    assert _phases(session) == [
        ("collection", "2005-02-25", "2005-03-07", ""),
        ("sorting", "2005-03-08", "2005-03-08", "received,categorized"),
        ("rectification", "2005-03-09", "2005-03-17", "assigned,rectified"),
        ("implementation", "2005-03-18", "2005-03-31", ""),
    ]
    load_phases(session)  # loading again replaces, never duplicates
    assert session.scalar(select(func.count()).select_from(CampaignPhase)) == 4


def test_an_opinion_collected_during_the_visits_is_not_late_before_sorting(
    session: Session,
) -> None:
    load_phases(session)
    clerk, boss = get_actor(session, "clerk"), get_actor(session, "supervisor")
    created = create_ticket(
        as_uow(session),
        campaign="consultation-2005",
        text="x",
        actor=clerk,
        now=local(2005, 2, 28, 10),
    )
    t = ticket(session, created.number)
    # Two working days counted from the sorting phase's first day (Tue Mar 8): end of Mar 9.
    assert t.due_at == local(2005, 3, 10)
    assert t.due_rule == "state received: 2 working days from phase sorting (2005-03-08)"
    # Nothing falls due during the visits: no breach, no ladder, not even the warning.
    assert timers.fire_due_timers(as_uow(session), now=local(2005, 3, 7, 23)).firings == []
    fire(
        as_uow(session),
        created.number,
        "categorize",
        actor=clerk,
        data={"category": "traffic_management", "kind": "criticism"},
        now=local(2005, 3, 8, 14),
    )
    fire(
        as_uow(session),
        created.number,
        "assign",
        actor=boss,
        data={"unit": "traffic-brigade", "officer": "traffic.officer"},
        now=local(2005, 3, 8, 16),
    )
    t = ticket(session, created.number)
    # Assigned at the meeting: the rectification phase starts the clock on Mar 9, and the
    # campaign deadline (before March 18) caps the ten working days.
    assert t.due_at == local(2005, 3, 18)
    assert t.due_rule == "campaign deadline 2005-03-18"
    assert [kind for kind, _, _ in pending_timers(session, created.number)] == [
        "warning",
        "breach",
    ]


def test_a_ticket_entering_a_state_after_its_phase_began_starts_at_entry(
    session: Session,
) -> None:
    load_phases(session)
    created = create_ticket(
        as_uow(session),
        campaign="consultation-2005",
        text="x",
        actor=get_actor(session, "clerk"),
        now=local(2005, 3, 10, 9),
    )
    t = ticket(session, created.number)
    # Thu Mar 10 has begun, so Fri 11 and Mon 14 count: due at the end of Mar 14.
    assert t.due_at == local(2005, 3, 15)
    assert t.due_rule == "state received: 2 working days"


def _with_phases(phases: list[dict[str, Any]]) -> dict[str, Any]:
    data = read_toml(campaign_file())
    data["phases"] = [{"name": {"zh_CN": "阶段", "en": "A phase"}, **p} for p in phases]
    return data


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        (
            [{"code": "sorting", "starts_on": "2005-03-08", "ends_on": "2005-03-01"}],
            "phase 'sorting': runs backwards (ends_on 2005-03-01 is before starts_on 2005-03-08)",
        ),
        (
            [
                {"code": "collection", "starts_on": "2005-02-25", "ends_on": "2005-03-08"},
                {"code": "sorting", "starts_on": "2005-03-08", "ends_on": "2005-03-08"},
            ],
            "phase 'sorting': starts on 2005-03-08, which overlaps phase 'collection' "
            "(2005-02-25 – 2005-03-08)",
        ),
        (
            [{"code": "late", "starts_on": "2005-03-20", "ends_on": "2005-04-02"}],
            "phase 'late': 2005-03-20 – 2005-04-02 lies outside the campaign",
        ),
        (
            [
                {
                    "code": "sorting",
                    "starts_on": "2005-03-08",
                    "ends_on": "2005-03-08",
                    "governs": ["sorted"],
                }
            ],
            "phase 'sorting': governs unknown state 'sorted'",
        ),
        (
            [{"code": "sorting", "starts_on": "March 8", "ends_on": "2005-03-08"}],
            "phase 'sorting': starts_on must be a date like 2005-02-25, got 'March 8'",
        ),
    ],
)
def test_bad_phases_are_refused_with_the_file_and_the_phase(
    session: Session, phases: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        upsert_campaign(as_uow(session), _with_phases(phases), source="campaign.toml")
    assert str(caught.value).startswith("campaign.toml: campaign 'consultation-2005': ")
    assert message in str(caught.value)
    assert _phases(session) == []  # nothing written
