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

from engine import audit
from engine.context import build_context
from engine.tickets import create_ticket, fire, get_actor

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
