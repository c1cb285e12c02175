"""Near-duplicate grouping (Chinese too) and acting on a group in one audited batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import verify
from engine.duplicates import act_on_group, find_duplicates, group_texts, normalise, similarity
from engine.errors import InvalidTransition
from engine.models import Ticket, TransitionLog
from engine.tickets import create_ticket, fire

CAMPAIGN = "consultation-2005"


def test_normalise_ignores_punctuation_width_and_case() -> None:
    assert normalise("派出所出警太慢！ 晚上打110没人管。") == normalise(
        "派出所出警太慢,晚上打１１０没人管"
    )
    assert similarity("Theft near the MARKET!", "theft near the market") == 1.0


def test_group_texts_chinese_and_english() -> None:
    texts = {
        1: "派出所出警太慢，晚上打110没人管",
        2: "派出所出警太慢，晚上打110电话没人管！",
        3: "网吧门口经常有人赌博",
        4: "Theft of electric bikes near the market is frequent.",
        5: "Theft of electric bikes near the market is frequent!!",
        6: "The road to the village needs repairing.",
        7: "网吧门口经常有人聚众赌博",
    }
    groups = group_texts(texts, threshold=0.8)
    assert sorted(groups) == [[1, 2], [3, 7], [4, 5]]


def _make(uow, actor, now, texts: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    clerk = actor("clerk")
    return [
        create_ticket(uow, campaign=CAMPAIGN, text=t, kind="criticism", actor=clerk, now=now).number
        for t in texts
    ]


def test_categorize_a_group_in_one_batch(session: Session, uow, actor, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _make(
        uow,
        actor,
        now,
        [
            "网吧门口经常有人赌博",
            "网吧门口经常有人赌博！",
            "Street lights are out on the river road",
        ],
    )
    groups = find_duplicates(session, CAMPAIGN)
    assert [g.numbers for g in groups] == [numbers[:2]]
    fired = act_on_group(
        uow,
        groups[0].group,
        "categorize",
        actor=actor("clerk"),
        now=now + timedelta(hours=1),
        data={"category": "public_security_management", "kind": "criticism"},
    )
    session.commit()
    assert [f.to_state for f in fired] == ["categorized", "categorized"]
    states = dict(session.execute(select(Ticket.number, Ticket.state)).all())
    assert states[numbers[2]] == "received"
    logs = session.scalars(
        select(TransitionLog.reason).where(TransitionLog.trigger == "categorize")
    ).all()
    assert len(logs) == 2 and all("duplicate group" in (r or "") for r in logs)
    assert verify(session) == []


def test_a_refusal_in_the_batch_moves_nothing(session: Session, uow, actor, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _make(uow, actor, now, ["赌博 赌博 网吧", "赌博赌博网吧。"])
    groups = find_duplicates(session, CAMPAIGN)
    session.commit()
    # One of them is already categorized, so categorizing the group must refuse as a whole.
    fire(
        uow,
        numbers[1],
        "categorize",
        actor=actor("clerk"),
        data={"category": "public_security_management", "kind": "criticism"},
        now=now,
    )
    session.commit()
    before = session.scalar(select(func.count()).select_from(TransitionLog))
    with pytest.raises(InvalidTransition):
        act_on_group(
            uow,
            groups[0].group,
            "categorize",
            actor=actor("clerk"),
            now=now,
            data={"category": "traffic_management", "kind": "criticism"},
        )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TransitionLog)) == before
    assert session.scalar(select(Ticket.state).where(Ticket.number == numbers[0])) == "received"
