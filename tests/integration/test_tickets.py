"""Tickets through the consultation workflow: every trigger, every refusal, on SQLite and PostgreSQL.

Each test persists, commits and reloads in a new session, so what is checked is what the database holds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from engine import audit
from engine.errors import Conflict, InvalidTransition, NotFound, NotPermitted, ValidationError
from engine.models import FeedbackRecord, GovernmentEscalation, Ticket, TransitionLog
from engine.tickets import create_ticket, fire, get_actor, hash_secret
from tests.conftest import as_uow

CAMPAIGN = "consultation-2005"


def new_ticket(uow, now, **kw) -> str:  # type: ignore[no-untyped-def]
    uow = as_uow(uow)
    session = uow.session
    created = create_ticket(
        uow,
        campaign=CAMPAIGN,
        text=kw.pop("text", "Gambling every night behind the tea house."),
        actor=get_actor(session, "clerk"),
        now=now,
        area=kw.pop("area", "Luohe"),
        **kw,
    )
    session.commit()
    return created.number


def reload(engine, number: str) -> Ticket:  # type: ignore[no-untyped-def]
    with Session(engine) as fresh:
        query = select(Ticket).where(Ticket.number == number)
        return fresh.scalars(
            query.options(joinedload(Ticket.unit), joinedload(Ticket.assignee))
        ).one()


def log_rows(engine, number: str) -> list[TransitionLog]:  # type: ignore[no-untyped-def]
    with Session(engine) as fresh:
        tid = fresh.scalar(select(Ticket.id).where(Ticket.number == number))
        return list(
            fresh.scalars(
                select(TransitionLog)
                .where(TransitionLog.ticket_id == tid)
                .order_by(TransitionLog.seq)
            )
        )


def snapshot(engine) -> tuple:  # type: ignore[no-untyped-def]
    """Everything a refusal must leave untouched."""
    with Session(engine) as fresh:
        tickets = fresh.execute(
            select(
                Ticket.number,
                Ticket.state,
                Ticket.version,
                Ticket.unit_id,
                Ticket.assignee_id,
                Ticket.category,
                Ticket.last_hash,
            ).order_by(Ticket.id)
        ).all()
        logs = fresh.scalar(select(func.count()).select_from(TransitionLog))
        feedback = fresh.scalar(select(func.count()).select_from(FeedbackRecord))
        escalations = fresh.scalar(select(func.count()).select_from(GovernmentEscalation))
    return tickets, logs, feedback, escalations


def do(uow, number: str, trigger: str, user: str, now, data=None, version=None):  # type: ignore[no-untyped-def]
    uow = as_uow(uow)
    session = uow.session
    result = fire(
        uow,
        number,
        trigger,
        actor=get_actor(session, user),
        data=data or {},
        expected_version=version,
        now=now,
    )
    session.commit()
    return result


def test_create_numbers_tickets_and_logs_the_first_row(session: Session, uow, engine, now) -> None:  # type: ignore[no-untyped-def]
    created = create_ticket(
        uow,
        campaign=CAMPAIGN,
        text="  Thefts of bikes at the market.  ",
        actor=get_actor(session, "clerk"),
        now=now,
        kind="criticism",
        area="Liubao",
        citizen_name="Xu",
        citizen_contact="138000",
    )
    second = create_ticket(
        uow, campaign=CAMPAIGN, text="More patrols", actor=get_actor(session, "clerk"), now=now
    )
    session.commit()
    assert (created.number, second.number) == ("2005-0001", "2005-0002")
    t = reload(engine, created.number)
    assert (t.state, t.version, t.workflow_name, t.workflow_version) == (
        "received",
        1,
        "consultation",
        1,
    )
    assert t.text == "Thefts of bikes at the market."
    assert t.secret_hash == hash_secret(created.secret) and created.secret not in (
        t.secret_hash or ""
    )
    rows = log_rows(engine, created.number)
    assert [(r.seq, r.trigger, r.from_state, r.to_state, r.actor) for r in rows] == [
        (1, "create", None, "received", "clerk")
    ]
    assert rows[0].at == now


def test_full_path_through_every_main_trigger(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    r = do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "public_security_management", "kind": "criticism"},
        1,
    )
    assert (r.from_state, r.to_state, r.version) == ("received", "categorized", 2)
    t = reload(engine, number)
    assert (
        t.category == "public_security_management" and t.unit.code == "luohe-station"
    )  # routed by town
    do(
        uow,
        number,
        "assign",
        "luohe.leader",
        now,
        {"unit": "luohe-station", "officer": "luohe.officer"},
        2,
    )
    assert reload(engine, number).assignee.username == "luohe.officer"
    do(
        uow,
        number,
        "rectify",
        "luohe.officer",
        now + timedelta(days=1),
        {"measures": "Raided; owner warned."},
        3,
    )
    do(
        uow,
        number,
        "feed_back",
        "luohe.officer",
        now + timedelta(days=2),
        {"method": "visit", "text": "We closed the gambling room.", "date": "2005-03-02"},
        4,
    )
    t = reload(engine, number)
    assert (t.state, t.version) == ("fed_back", 5)
    assert t.closed_at == now + timedelta(days=2) and t.rectified_at == now + timedelta(days=1)
    with Session(engine) as fresh:
        fb = fresh.scalars(select(FeedbackRecord)).one()
        assert (fb.method, fb.text, fb.given_on.isoformat()) == (
            "visit",
            "We closed the gambling room.",
            "2005-03-02",
        )
    do(
        uow,
        number,
        "reopen",
        "supervisor",
        now + timedelta(days=3),
        {"reason": "The citizen says it reopened."},
        5,
    )
    t = reload(engine, number)
    assert (t.state, t.closed_at, t.assignee.username) == ("assigned", None, "luohe.officer")
    do(
        uow,
        number,
        "reassign",
        "supervisor",
        now + timedelta(days=3),
        {"unit": "security-brigade", "officer": "security.officer", "reason": "Needs the brigade"},
        6,
    )
    t = reload(engine, number)
    assert (t.unit.code, t.assignee.username, t.version) == (
        "security-brigade",
        "security.officer",
        7,
    )
    rows = log_rows(engine, number)
    assert [r.trigger for r in rows] == [
        "create",
        "categorize",
        "assign",
        "rectify",
        "feed_back",
        "reopen",
        "reassign",
    ]
    assert rows[5].reason == "The citizen says it reopened."
    assert rows[2].data == audit.canonical_json(
        {"officer": "luohe.officer", "unit": "luohe-station"}
    )
    with Session(engine) as fresh:
        assert audit.verify(fresh) == []


def test_praise_is_fed_back_straight_from_categorized(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now, text="Thank you for the quick help.", kind="praise")
    do(uow, number, "categorize", "clerk", now, {"category": "team_building", "kind": "praise"})
    do(
        uow,
        number,
        "feed_back",
        "clerk",
        now,
        {"method": "letter", "text": "Thank-you letter sent.", "date": "2005-02-28"},
    )
    assert reload(engine, number).state == "fed_back"


def test_unfounded_criticism_is_explained_without_assignment(
    uow, session: Session, engine, now
) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "law_enforcement", "kind": "criticism"},
    )
    before = snapshot(engine)
    with pytest.raises(ValidationError, match="only praise, or an opinion marked unfounded"):
        do(
            uow,
            number,
            "feed_back",
            "clerk",
            now,
            {"method": "visit", "text": "x", "date": "2005-02-28"},
        )
    session.rollback()
    assert snapshot(engine) == before
    do(
        uow,
        number,
        "feed_back",
        "clerk",
        now,
        {
            "method": "visit",
            "text": "Explained the law.",
            "date": "2005-02-28",
            "unfounded": "true",
        },
    )
    assert reload(engine, number).state == "fed_back"


def test_escalate_to_government_and_feed_back(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now, text="The village road needs repairing.")
    do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "outside_duties", "kind": "request"},
    )
    assert reload(engine, number).unit.code == "office"
    do(
        uow,
        number,
        "escalate_to_government",
        "supervisor",
        now,
        {
            "receiving_body": "County Government Office",
            "reason": "Roads are outside our duties",
            "reference": "GOV-12",
        },
    )
    do(
        uow,
        number,
        "feed_back",
        "supervisor",
        now,
        {"method": "phone", "text": "Passed to the county.", "date": "2005-02-28"},
    )
    with Session(engine) as fresh:
        esc = fresh.scalars(select(GovernmentEscalation)).one()
        assert (esc.receiving_body, esc.reference) == ("County Government Office", "GOV-12")
    assert reload(engine, number).state == "fed_back"


def _categorized(uow, now) -> str:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "public_security_management", "kind": "criticism"},
    )
    return number


def test_trigger_not_allowed_from_the_state(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    before = snapshot(engine)
    with pytest.raises(InvalidTransition) as err:
        do(uow, number, "rectify", "supervisor", now, {"measures": "x"})
    assert (
        "not allowed from state 'received'" in err.value.message
        and "categorize" in err.value.message
    )
    with pytest.raises(InvalidTransition, match="not a trigger of this workflow"):
        do(uow, number, "teleport", "supervisor", now)
    session.rollback()
    assert snapshot(engine) == before


def test_role_not_allowed(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _categorized(uow, now)
    before = snapshot(engine)
    with pytest.raises(NotPermitted) as err:
        do(
            uow,
            number,
            "assign",
            "clerk",
            now,
            {"unit": "luohe-station", "officer": "luohe.officer"},
        )
    assert (
        "needs the role supervisor or unit_leader" in err.value.message
        and "clerk is clerk" in err.value.message
    )
    with pytest.raises(NotPermitted):
        do(
            uow,
            number,
            "assign",
            "inspector",
            now,
            {"unit": "luohe-station", "officer": "luohe.officer"},
        )
    session.rollback()
    assert snapshot(engine) == before


def test_officer_or_leader_of_another_unit_is_refused(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = _categorized(uow, now)  # routed to luohe-station
    with pytest.raises(NotPermitted, match="belongs to another unit"):
        do(
            uow,
            number,
            "assign",
            "liubao.leader",
            now,
            {"unit": "liubao-station", "officer": "liubao.officer"},
        )
    session.rollback()
    with pytest.raises(NotPermitted, match="only inside their own unit"):
        do(
            uow,
            number,
            "assign",
            "luohe.leader",
            now,
            {"unit": "liubao-station", "officer": "liubao.officer"},
        )
    session.rollback()
    do(
        uow,
        number,
        "assign",
        "supervisor",
        now,
        {"unit": "luohe-station", "officer": "luohe.officer"},
    )
    before = snapshot(engine)
    with pytest.raises(NotPermitted, match="belongs to another unit"):
        do(uow, number, "rectify", "liubao.officer", now, {"measures": "Not mine"})
    session.rollback()
    assert snapshot(engine) == before


def test_missing_and_malformed_data_names_every_field(uow, session: Session, engine, now) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    before = snapshot(engine)
    with pytest.raises(ValidationError) as err:
        do(
            uow,
            number,
            "categorize",
            "clerk",
            now,
            {"category": "weather", "kind": "rant", "colour": "red"},
        )
    fields = err.value.fields
    assert set(fields) == {"category", "kind", "colour"}
    assert (
        "team_building" in fields["category"]
        and "praise" in fields["kind"]
        and "unknown field" in fields["colour"]
    )
    with pytest.raises(ValidationError) as err:
        do(uow, number, "categorize", "clerk", now, {"category": "  "})
    assert set(err.value.fields) == {"category", "kind"} and "required" in err.value.fields["kind"]
    session.rollback()
    do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "team_building", "kind": "criticism"},
    )
    with pytest.raises(ValidationError) as err:
        do(uow, number, "assign", "supervisor", now, {"unit": "mars", "officer": "nobody"})
    assert (
        "no unit with code 'mars'" in err.value.fields["unit"]
        and "no active user" in err.value.fields["officer"]
    )
    with pytest.raises(ValidationError, match="not an officer of unit"):
        do(
            uow,
            number,
            "assign",
            "supervisor",
            now,
            {"unit": "political", "officer": "luohe.officer"},
        )
    with pytest.raises(ValidationError, match="is a clerk, not a officer"):
        do(uow, number, "assign", "supervisor", now, {"unit": "office", "officer": "clerk"})
    session.rollback()
    do(
        uow,
        number,
        "assign",
        "supervisor",
        now,
        {"unit": "political", "officer": "political.officer"},
    )
    do(uow, number, "rectify", "political.officer", now, {"measures": "Talked to the team."})
    before = snapshot(engine)
    with pytest.raises(ValidationError) as err:
        do(
            uow,
            number,
            "feed_back",
            "political.officer",
            now,
            {"method": "pigeon", "text": "x" * 5000, "date": "18/03/2005"},
        )
    assert set(err.value.fields) == {"method", "text", "date"}
    assert "YYYY-MM-DD" in err.value.fields["date"] and "too long" in err.value.fields["text"]
    session.rollback()
    assert snapshot(engine) == before


def test_stale_version_is_a_conflict_and_changes_nothing(
    uow, session: Session, engine, now
) -> None:  # type: ignore[no-untyped-def]
    number = new_ticket(uow, now)
    do(
        uow,
        number,
        "categorize",
        "clerk",
        now,
        {"category": "team_building", "kind": "criticism"},
        1,
    )
    before = snapshot(engine)
    with pytest.raises(Conflict) as err:
        do(
            uow,
            number,
            "assign",
            "supervisor",
            now,
            {"unit": "political", "officer": "political.officer"},
            1,
        )
    assert "version 2" in err.value.message and "you had version 1" in err.value.message
    assert err.value.details["current_version"] == 2
    session.rollback()
    assert snapshot(engine) == before


def test_concurrent_writers_one_wins_one_conflicts(engine, now) -> None:  # type: ignore[no-untyped-def]
    """Two sessions read version 2, both fire; the second UPDATE finds the version moved."""
    with Session(engine) as s:
        number = new_ticket(s, now)
        do(
            s,
            number,
            "categorize",
            "clerk",
            now,
            {"category": "team_building", "kind": "criticism"},
        )
    first, second = Session(engine), Session(engine)
    try:
        fire(
            as_uow(first),
            number,
            "assign",
            actor=get_actor(first, "supervisor"),
            data={"unit": "political", "officer": "political.officer"},
            expected_version=2,
            now=now,
        )
        first.commit()
        with pytest.raises(Conflict):
            fire(
                as_uow(second),
                number,
                "assign",
                actor=get_actor(second, "supervisor"),
                data={"unit": "political", "officer": "political.officer"},
                expected_version=2,
                now=now,
            )
        second.rollback()
    finally:
        first.close()
        second.close()
    assert [r.trigger for r in log_rows(engine, number)] == ["create", "categorize", "assign"]


def test_a_change_written_on_a_stale_read_writes_nothing(engine, now) -> None:  # type: ignore[no-untyped-def]
    """The ticket's UPDATE checks the version it read; when another writer committed in
    between, neither the ticket nor the log changes (on PostgreSQL the UPDATE and the log's
    INSERT are one statement) and the refusal says where the ticket is now."""
    from datetime import timedelta

    from engine.ledger import load_ticket_row, write_change

    with Session(engine) as s:
        number = new_ticket(s, now)
    stale, other = Session(engine), Session(engine)
    try:
        uow = as_uow(stale)
        row = load_ticket_row(uow.conn, number, view=True)  # version 1, read first
        stale.rollback()
        do(
            other,
            number,
            "categorize",
            "clerk",
            now,
            {"category": "team_building", "kind": "criticism"},
        )
        with pytest.raises(Conflict) as err:
            write_change(
                as_uow(stale).conn,
                row,
                trigger="categorize",
                dest="categorized",
                actor=get_actor(stale, "clerk"),
                logged={"category": "team_building", "kind": "criticism"},
                reason=None,
                values={"category": "team_building", "kind": "criticism"},
                now=now + timedelta(minutes=1),
                workflow_version=1,
                audit_key=None,
            )
        stale.rollback()
    finally:
        stale.close()
        other.close()
    assert "state 'categorized'" in err.value.message
    assert err.value.details == {"current_version": 2}
    assert [r.trigger for r in log_rows(engine, number)] == ["create", "categorize"]


def test_unknown_ticket_user_and_campaign(session: Session, uow, engine, now) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(engine)
    with pytest.raises(NotFound, match="no ticket '2005-9999'"):
        fire(uow, "2005-9999", "categorize", actor=get_actor(session, "clerk"), now=now)
    with pytest.raises(NotFound, match="no active user 'ghost'"):
        get_actor(session, "ghost")
    with pytest.raises(NotFound, match="no campaign 'nope'.*consultation-2005"):
        create_ticket(uow, campaign="nope", text="x", actor=get_actor(session, "clerk"), now=now)
    session.rollback()
    assert snapshot(engine) == before


def test_bad_opinions_are_refused_whole(session: Session, uow, engine, now) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(engine)
    clerk = get_actor(session, "clerk")
    with pytest.raises(ValidationError) as err:
        create_ticket(
            uow,
            campaign=CAMPAIGN,
            text="   ",
            kind="shout",
            actor=clerk,
            now=now,
            received_at=now + timedelta(days=2),
            lat=123.0,
        )
    assert set(err.value.fields) == {"text", "kind", "received_at", "lat"}
    with pytest.raises(ValidationError, match="too long"):
        create_ticket(uow, campaign=CAMPAIGN, text="x" * 10_001, actor=clerk, now=now)
    session.rollback()
    assert snapshot(engine) == before


def test_the_ticket_update_names_only_the_columns_that_change(
    sqlite_template, tmp_path, now
) -> None:  # type: ignore[no-untyped-def]
    """SQLite moves the index entries of every column an UPDATE sets, changed or not; so a
    transition's UPDATE leaves out a column whose value stays (escalation level 0 → 0),
    and the ticket and its log's head come out the same."""
    import shutil
    from datetime import timedelta

    from engine import db

    path = tmp_path / "r.db"
    shutil.copyfile(sqlite_template, path)
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as s:
            number = new_ticket(s, now)
        with Session(engine) as s:
            uow = as_uow(s)
            statements: list[str] = []
            uow.conn.connection.dbapi_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
            do(
                uow,
                number,
                "categorize",
                "clerk",
                now + timedelta(minutes=1),
                {"category": "team_building", "kind": "criticism"},
            )
            uow.conn.connection.dbapi_connection.set_trace_callback(None)  # type: ignore[union-attr]
        updates = [q for q in statements if q.lstrip().upper().startswith("UPDATE TICKETS")]
        assert len(updates) == 1
        assert "category" in updates[0] and "state" in updates[0]
        assert "escalation_level" not in updates[0]
        ticket = reload(engine, number)
        assert ticket.escalation_level == 0 and ticket.category == "team_building"
        with Session(engine) as s:
            assert audit.verify(s, ticket=number) == []
    finally:
        engine.dispose()


def test_changed_values_keeps_what_differs_in_value_or_type_and_what_was_not_read() -> None:
    from types import SimpleNamespace

    from engine.ledger import changed_values

    row = SimpleNamespace(escalation_level=0, category="a", due_at=None, satisfied=1)
    values = {
        "escalation_level": 0,  # the same: left out
        "category": "b",  # changed
        "due_at": None,  # the same: left out
        "satisfied": True,  # equal but another type: kept, the head would differ
        "due_rule": "x",  # not read with the row: kept
    }
    assert changed_values(row, values) == {"category": "b", "satisfied": True, "due_rule": "x"}
