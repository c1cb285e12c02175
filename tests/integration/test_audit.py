"""The transition log is append-only in the database, and verification finds any tampering."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import audit, ledger
from engine.context import build_context
from engine.errors import ValidationError
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow

CAMPAIGN = "consultation-2005"


def _history(engine: Engine, now) -> list[str]:  # type: ignore[no-untyped-def]
    """Three tickets with a few rows each."""
    numbers = []
    with build_context(engine=engine).unit_of_work() as uow:
        s = uow.session
        clerk = get_actor(s, "clerk")
        for i in range(3):
            n = create_ticket(
                uow, campaign=CAMPAIGN, text=f"Opinion {i}", actor=clerk, now=now, area="Luohe"
            ).number
            fire(
                uow,
                n,
                "categorize",
                actor=clerk,
                data={"category": "team_building", "kind": "criticism"},
                now=now + timedelta(minutes=1),
            )
            fire(
                uow,
                n,
                "assign",
                actor=get_actor(s, "supervisor"),
                data={"unit": "political", "officer": "political.officer"},
                now=now + timedelta(minutes=2),
            )
            numbers.append(n)
    return numbers


def _tamper(engine: Engine, *statements: str) -> None:
    """What an intruder with database access would do: lift the guard, change rows, put it back."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER transition_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER transition_log_no_delete")
            conn.exec_driver_sql("DROP TRIGGER transition_log_no_reuse")
        else:
            conn.exec_driver_sql("ALTER TABLE transition_log DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(text(statement))
        if engine.dialect.name != "sqlite":
            conn.exec_driver_sql("ALTER TABLE transition_log ENABLE TRIGGER USER")


def _verify(engine: Engine) -> list[audit.Problem]:
    with Session(engine) as s:
        return audit.verify(s)


def _ticket_id(engine: Engine, number: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM tickets WHERE number = :n"), {"n": number}
        ).scalar_one()


def test_intact_log_verifies(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    _history(engine, now)
    assert _verify(engine) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transition_log SET actor = 'someone' WHERE seq = 2",
        "DELETE FROM transition_log WHERE seq = 3",
    ],
)
def test_database_refuses_update_and_delete(engine: Engine, now, statement: str) -> None:  # type: ignore[no-untyped-def]
    _history(engine, now)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert _verify(engine) == []


def test_edited_row_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[1])
    _tamper(
        engine, f"UPDATE transition_log SET actor = 'ghost' WHERE ticket_id = {tid} AND seq = 2"
    )
    problems = _verify(engine)
    assert [(p.ticket, p.seq, p.kind) for p in problems] == [(numbers[1], 2, "edited")]


def test_edited_data_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    _tamper(
        engine,
        f"""UPDATE transition_log SET data = '{{"officer":"x","unit":"political"}}'
                        WHERE ticket_id = {tid} AND seq = 3""",
    )
    assert [(p.ticket, p.seq, p.kind) for p in _verify(engine)] == [(numbers[0], 3, "edited")]


def test_deleted_middle_row_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[2])
    _tamper(engine, f"DELETE FROM transition_log WHERE ticket_id = {tid} AND seq = 2")
    problems = _verify(engine)
    assert problems and problems[0].ticket == numbers[2] and problems[0].kind == "deleted"
    assert "seq 2" in problems[0].message


def test_deleted_last_row_is_found_from_the_ticket_head(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    _tamper(engine, f"DELETE FROM transition_log WHERE ticket_id = {tid} AND seq = 3")
    problems = _verify(engine)
    assert [(p.ticket, p.kind) for p in problems] == [(numbers[0], "deleted")]
    assert "version 3" in problems[0].message


def test_reordered_rows_are_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[1])
    # Swap the sequence numbers of rows 2 and 3 (through a free value, as the pair is unique).
    _tamper(
        engine,
        f"UPDATE transition_log SET seq = 99 WHERE ticket_id = {tid} AND seq = 2",
        f"UPDATE transition_log SET seq = 2 WHERE ticket_id = {tid} AND seq = 3",
        f"UPDATE transition_log SET seq = 3 WHERE ticket_id = {tid} AND seq = 99",
    )
    kinds = {p.kind for p in _verify(engine) if p.ticket == numbers[1]}
    assert "reordered" in kinds and "edited" in kinds


def test_inserted_row_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    # A forged row appended after the end, with a made-up hash.
    _tamper(
        engine,
        f"""INSERT INTO transition_log (ticket_id, seq, trigger, from_state, to_state, actor, role,
        at, reason, data, workflow_version, prev_hash, hash)
        VALUES ({tid}, 4, 'rectify', 'assigned', 'rectified', 'political.officer', 'officer',
        '2005-03-01 00:00:00', NULL, '{{}}', 1, 'x', 'y')""",
    )
    problems = _verify(engine)
    assert any(p.ticket == numbers[0] and p.kind == "inserted" for p in problems)


def test_forged_but_consistent_row_is_found_through_the_link(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    """A row whose own hash is right but which does not follow from the row before it."""
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    at = now + timedelta(minutes=2)
    forged = audit.row_hash(
        prev_hash="0" * 64,
        ticket_number=numbers[0],
        seq=3,
        trigger="assign",
        from_state="categorized",
        to_state="assigned",
        actor="intruder",
        role="supervisor",
        at=at,
        reason=None,
        data="{}",
        workflow_version=1,
    )
    _tamper(
        engine,
        f"UPDATE transition_log SET actor = 'intruder', data = '{{}}', prev_hash = '{'0' * 64}', "
        f"hash = '{forged}' WHERE ticket_id = {tid} AND seq = 3",
    )
    kinds = [p.kind for p in _verify(engine) if p.ticket == numbers[0]]
    assert "inserted" in kinds or "head" in kinds


def test_hmac_key_is_needed_to_verify(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    ctx = build_context(engine=engine)
    ctx.audit_key = b"secret"
    with ctx.unit_of_work() as uow:
        s = uow.session
        n = create_ticket(
            uow, campaign=CAMPAIGN, text="x", actor=get_actor(s, "clerk"), now=now
        ).number
        uow.commit()
        assert audit.verify(s, key=b"secret") == []
        assert [p.kind for p in audit.verify(s, ticket=n)] == ["edited"]


def test_export_csv_and_jsonl(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    with Session(engine) as s:
        out = io.StringIO()
        assert audit.export(audit.iter_log(s), out, "csv") == 9
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert rows[0]["ticket"] == numbers[0] and rows[0]["trigger"] == "create"
        out = io.StringIO()
        assert audit.export(audit.iter_log(s, ticket=numbers[1]), out, "jsonl") == 3
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["seq"] for line in lines] == [1, 2, 3]


def test_safe_cell_defuses_formulas() -> None:
    assert audit.safe_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert audit.safe_cell("@SUM(1)") == "'@SUM(1)"
    assert audit.safe_cell("plain") == "plain"


def test_ticket_deleted_with_its_whole_log_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[1])
    _tamper(
        engine,
        f"DELETE FROM timers WHERE ticket_id = {tid}",
        f"DELETE FROM notifications WHERE ticket_id = {tid}",  # its assignment notice
        f"DELETE FROM transition_log WHERE ticket_id = {tid}",
        f"DELETE FROM tickets WHERE id = {tid}",
    )
    problems = _verify(engine)
    assert [(p.ticket, p.kind) for p in problems] == [(numbers[1], "deleted")]
    assert "missing from the database" in problems[0].message


def test_ticket_with_a_number_never_issued_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    _tamper(engine, f"UPDATE tickets SET number = '2005-9999' WHERE number = '{numbers[2]}'")
    kinds = {(p.ticket, p.kind) for p in _verify(engine)}
    assert ("2005-9999", "inserted") in kinds and (numbers[2], "deleted") in kinds


# --- The ticket row is proven by its log -------------------------------------------------


def _column_value(engine: Engine, column: str, number: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column} FROM tickets WHERE number = :n"), {"n": number}
        ).scalar_one()


@pytest.mark.parametrize(
    ("column", "sql_value", "row_value"),
    [
        ("state", "'rectified'", "rectified"),
        ("unit_id", "NULL", None),
        ("assignee_id", "(SELECT id FROM users WHERE username = 'clerk')", "clerk"),
        ("escalation_level", "3", 3),
        ("category", "'traffic_management'", "traffic_management"),
    ],
)
def test_ticket_changed_without_a_log_row_is_found_and_named(  # type: ignore[no-untyped-def]
    engine: Engine, now, column: str, sql_value: str, row_value
) -> None:
    numbers = _history(engine, now)
    log_value = _column_value(engine, column, numbers[1])
    # No guard to lift: the intruder changes the ticket row only, as `UPDATE tickets` would.
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE tickets SET {column} = {sql_value} WHERE number = :n"), {"n": numbers[1]}
        )
    problems = _verify(engine)
    assert [(p.ticket, p.kind, p.column) for p in problems] == [(numbers[1], "unlogged", column)]
    found = problems[0]
    assert found.log_value == log_value and found.seq == 3
    if column == "assignee_id":
        assert found.row_value == _column_value(engine, "assignee_id", numbers[1])
    else:
        assert found.row_value == row_value
    assert "changed without a log row" in found.message


def test_every_write_records_the_head_it_leaves(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    with engine.connect() as conn:
        heads = conn.execute(
            text(
                "SELECT l.seq, l.head FROM transition_log l JOIN tickets t ON t.id = l.ticket_id "
                "WHERE t.number = :n ORDER BY l.seq"
            ),
            {"n": numbers[0]},
        ).all()
        unit, officer = conn.execute(
            text(
                "SELECT (SELECT id FROM units WHERE code = 'political'), "
                "(SELECT id FROM users WHERE username = 'political.officer')"
            )
        ).one()
    assert json.loads(heads[0].head) == {
        "assignee_id": None,
        "category": None,
        "escalation_level": 0,
        "kind": None,
        "unit_id": None,
    }
    assert json.loads(heads[2].head)["unit_id"] == unit
    assert json.loads(heads[2].head)["assignee_id"] == officer
    assert json.loads(heads[2].head)["category"] == "team_building"


def test_a_forged_head_breaks_the_row_hash(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    """Changing the ticket and its last row's head together is an edit of the log."""
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[2])
    with engine.connect() as conn:
        head = json.loads(
            conn.execute(
                text(f"SELECT head FROM transition_log WHERE ticket_id = {tid} AND seq = 3")
            ).scalar_one()
        )
    head["escalation_level"] = 0
    head["unit_id"] = None
    _tamper(
        engine,
        f"UPDATE tickets SET unit_id = NULL WHERE id = {tid}",
        # (colons escaped: text() would read ":0" as a bind parameter)
        f"UPDATE transition_log SET head = '{audit.head_json(head).replace(':', chr(92) + ':')}' "
        f"WHERE ticket_id = {tid} AND seq = 3",
    )
    assert [(p.ticket, p.seq, p.kind) for p in _verify(engine)] == [(numbers[2], 3, "edited")]


def _log_values(engine: Engine, tid: int, seq: int) -> str:
    """An INSERT's column list and values copying log row (tid, seq) with its own id."""
    return (
        "(id, ticket_id, seq, trigger, from_state, to_state, actor, role, at, reason, data, "
        "workflow_version, prev_hash, hash, head) "
        "SELECT id, ticket_id, seq, trigger, from_state, to_state, 'intruder', role, at, reason, "
        f"data, workflow_version, prev_hash, hash, head FROM transition_log "
        f"WHERE ticket_id = {tid} AND seq = {seq}"
    )


def test_the_guard_refuses_replace_and_reused_ids(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    if engine.dialect.name == "sqlite":
        # REPLACE deletes the old row without firing the DELETE trigger; the INSERT guard holds.
        replace = f"INSERT OR REPLACE INTO transition_log {_log_values(engine, tid, 2)}"
    else:
        replace = (
            f"INSERT INTO transition_log {_log_values(engine, tid, 2)} "
            "ON CONFLICT (id) DO UPDATE SET actor = 'intruder'"
        )
    reuse_pair = (
        "INSERT INTO transition_log (ticket_id, seq, trigger, from_state, to_state, actor, role, "
        "at, reason, data, workflow_version, prev_hash, hash) SELECT ticket_id, seq, trigger, "
        "from_state, to_state, 'intruder', role, at, reason, data, workflow_version, prev_hash, "
        f"hash FROM transition_log WHERE ticket_id = {tid} AND seq = 3"
    )
    reuse_id = f"INSERT INTO transition_log {_log_values(engine, tid, 1)}".replace(
        "SELECT id, ticket_id, seq,", "SELECT id, ticket_id, seq + 10,"
    )
    for statement in (replace, reuse_pair, reuse_id):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert _verify(engine) == []


def test_replace_with_the_guard_lifted_is_found(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    tid = _ticket_id(engine, numbers[0])
    if engine.dialect.name == "sqlite":
        statement = f"INSERT OR REPLACE INTO transition_log {_log_values(engine, tid, 2)}"
    else:
        statement = (
            f"INSERT INTO transition_log {_log_values(engine, tid, 2)} "
            "ON CONFLICT (id) DO UPDATE SET actor = EXCLUDED.actor"
        )
    _tamper(engine, statement)
    assert [(p.ticket, p.seq, p.kind) for p in _verify(engine)] == [(numbers[0], 2, "edited")]


def test_a_change_dated_before_the_last_log_row_is_refused(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    with Session(engine) as s:
        with pytest.raises(ValidationError, match="only move forward") as refused:
            fire(
                as_uow(s),
                numbers[0],
                "rectify",
                actor=get_actor(s, "political.officer"),
                data={"measures": "patrols added"},
                now=now + timedelta(minutes=1),  # the assign row is at +2 minutes
            )
        assert refused.value.ticket == numbers[0]
        s.rollback()
    assert _verify(engine) == []


def test_a_backdated_row_in_the_data_is_found(  # type: ignore[no-untyped-def]
    engine: Engine, now, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correctly chained row dated before its predecessor (an old writer, a set-back clock)."""
    numbers = _history(engine, now)
    monkeypatch.setattr(ledger, "check_time_moves_forward", lambda ticket, at: None)
    with Session(engine) as s:
        fire(
            as_uow(s),
            numbers[1],
            "rectify",
            actor=get_actor(s, "political.officer"),
            data={"measures": "patrols added"},
            now=now - timedelta(days=1),
        )
        s.commit()
    problems = _verify(engine)
    assert [(p.ticket, p.seq, p.kind) for p in problems] == [(numbers[1], 4, "backdated")]


def test_feedback_dated_in_the_future_is_refused(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    numbers = _history(engine, now)
    with Session(engine) as s:
        officer = get_actor(s, "political.officer")
        fire(
            as_uow(s),
            numbers[0],
            "rectify",
            actor=officer,
            data={"measures": "x"},
            now=now + timedelta(hours=1),
        )
        # 2005-02-28 10:00 in Shanghai: the 28th is today, the 1st of March is not yet.
        with pytest.raises(ValidationError) as refused:
            fire(
                as_uow(s),
                numbers[0],
                "feed_back",
                actor=officer,
                data={"method": "letter", "text": "done", "date": "2005-03-01"},
                now=now + timedelta(hours=2),
            )
        assert "in the future" in refused.value.details["fields"]["date"]
        fire(
            as_uow(s),
            numbers[0],
            "feed_back",
            actor=officer,
            data={"method": "letter", "text": "done", "date": "2005-02-28"},
            now=now + timedelta(hours=2),
        )
        s.commit()


def test_the_sweep_defers_a_ticket_dated_after_its_clock(engine: Engine, now) -> None:  # type: ignore[no-untyped-def]
    """Another host's clock ran ahead: the sweep leaves that ticket for later instead of failing."""
    from engine import timers
    from engine.models import Ticket

    numbers = _history(engine, now)
    with Session(engine) as s:
        row = s.query(Ticket).filter_by(number=numbers[0]).one()
        at = row.due_at + timedelta(days=1)
        row.updated_at = at + timedelta(days=30)  # a write stamped by a clock far ahead
        s.commit()
    sessions = build_context(engine=engine)

    def version() -> int:
        with Session(engine) as s:
            return s.query(Ticket).filter_by(number=numbers[0]).one().version

    before = version()
    held = timers.sweep(sessions, now=at)
    assert held.deferred >= 1
    assert version() == before  # nothing fired on it
    timers.sweep(sessions, now=at + timedelta(days=31))
    assert version() > before  # its timers fired once its clock was reached
    assert _verify(engine) == []
