"""The bulk create path writes exactly what create_ticket writes, one by one (issue 15, item 4)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from engine import db
from engine.audit import verify
from engine.bulk import BatchRejected, NewTicket, create_tickets
from engine.context import build_context
from engine.models import Campaign, Ticket, TicketTheme, Timer, TransitionLog
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import as_uow

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)
KEY = b"bulk-test-audit-key"

OPINIONS = [
    NewTicket(
        text=f"  Opinion {i}: the 110 desk answers slowly  ",
        kind=("criticism", None, "praise", "suggestion")[i % 4],
        citizen_name=f"Resident {i}" if i % 3 else None,
        citizen_contact=" 0514-1234567 " if i % 2 else None,
        area=("Luohe", "Liubao", None)[i % 3],
        address="1 Market St" if i % 5 == 0 else None,
        lat=32.1 if i % 4 == 0 else None,
        long=119.4 if i % 4 == 0 else None,
        received_at=NOW - timedelta(days=i % 3, hours=i) if i % 2 else None,
        source="import",
        external_key=f"key-{i}",
        themes=(("Theft", "gambling ", "theft"), (), ("slow_police_response",))[i % 3],
    )
    for i in range(12)
]


def _rows(engine: Engine) -> dict[str, Any]:
    """Everything both paths write, keyed by ticket number (ids and secrets differ by design)."""
    with engine.connect() as conn:
        numbers = dict(conn.execute(select(Ticket.id, Ticket.number)).all())
        skip = {"id", "secret_hash"}
        tickets = {
            row.number: {k: v for k, v in row._mapping.items() if k not in skip}
            for row in conn.execute(select(Ticket.__table__))
        }
        logs = sorted(
            (
                numbers[r.ticket_id],
                *(v for k, v in r._mapping.items() if k not in ("id", "ticket_id")),
            )
            for r in conn.execute(select(TransitionLog.__table__))
        )
        themes = sorted(
            (numbers[r.ticket_id], r.tag, r.campaign_id)
            for r in conn.execute(select(TicketTheme.__table__))
        )
        timers = sorted(
            (numbers[r.ticket_id], r.kind, r.level, r.due_at, r.created_at, r.fired_at)
            for r in conn.execute(select(Timer.__table__))
        )
        seq = conn.execute(select(Campaign.ticket_seq).where(Campaign.code == CAMPAIGN)).scalar()
    return {"tickets": tickets, "logs": logs, "themes": themes, "timers": timers, "seq": seq}


@pytest.fixture
def twin(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A second fresh database next to ``db_url`` (SQLite: a copy; PostgreSQL: a new one)."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "twin.db"
        shutil.copyfile(db_url.split("///", 1)[1], path)
        yield f"sqlite:///{path}"
    else:
        from tests.conftest import fresh_pg_database

        name = db_url.rsplit("/", 1)[1]
        # the db_url database is fresh and untouched yet: copy it as a template
        url, drop = fresh_pg_database(name)
        yield url
        drop()  # type: ignore[operator]


def test_bulk_writes_exactly_what_create_ticket_writes(
    db_url: str, twin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The contact salt is random by design; both paths draw the same sequence here (the bulk
    # path draws a batch's salts at once, the rows with contact data take them in order), so
    # the commitments and the hashes that cover them can be compared.
    import itertools

    from engine import personal_data

    def same_salts() -> Any:
        counter = itertools.count()
        return lambda n: [f"{next(counter):032x}" for _ in range(n)]

    monkeypatch.setattr(personal_data, "new_salts", same_salts())
    one_by_one, bulk = db.make_engine(db_url), db.make_engine(twin)
    # both with an audit key (HMAC chain), as a production installation has
    ctx_one = replace(build_context(engine=one_by_one), audit_key=KEY)
    ctx_bulk = replace(build_context(engine=bulk), audit_key=KEY)
    try:
        with ctx_one.unit_of_work() as uow:
            clerk = get_actor(uow.session, "clerk")
            singles = [
                create_ticket(
                    uow,
                    campaign=CAMPAIGN,
                    actor=clerk,
                    now=NOW,
                    **{k: getattr(o, k) for k in NewTicket.__dataclass_fields__},
                )
                for o in OPINIONS
            ]
        monkeypatch.setattr(personal_data, "new_salts", same_salts())
        with ctx_bulk.unit_of_work() as uow:
            created = create_tickets(
                uow,
                campaign=CAMPAIGN,
                tickets=OPINIONS,
                actor=get_actor(uow.session, "clerk"),
                now=NOW,
            )
        assert [c.number for c in created] == [c.number for c in singles]
        expected, got = _rows(one_by_one), _rows(bulk)
        assert got["tickets"] == expected["tickets"]
        assert got["logs"] == expected["logs"]
        assert got["themes"] == expected["themes"]
        assert got["timers"] == expected["timers"] and expected["timers"]
        assert got["seq"] == expected["seq"] == len(OPINIONS)
        with Session(bulk) as s:
            assert verify(s, key=KEY) == []
            # the receipt secrets are the citizens' to keep: each matches its stored hash
            from engine.tickets import hash_secret

            stored = dict(s.execute(select(Ticket.number, Ticket.secret_hash)).all())
            assert all(stored[c.number] == hash_secret(c.secret) for c in created)
            # and the tickets live on: the next transition chains onto the bulk-written head
            fire(
                ctx_bulk.bind(s),
                created[0].number,
                "categorize",
                actor=get_actor(s, "clerk"),
                data={"category": "team_building", "kind": "criticism"},
                expected_version=1,
                now=NOW + timedelta(hours=1),
            )
            s.commit()
            assert verify(s, key=KEY) == []
    finally:
        one_by_one.dispose()
        bulk.dispose()


def test_bulk_refuses_the_whole_batch_and_lists_every_bad_opinion(engine: Engine) -> None:
    bad = [
        NewTicket(text="fine"),
        NewTicket(text="   "),
        NewTicket(text="fine too", kind="rumour"),
        NewTicket(text="from the future", received_at=NOW + timedelta(days=2)),
    ]
    with Session(engine) as s:
        with pytest.raises(BatchRejected) as caught:
            create_tickets(
                as_uow(s), campaign=CAMPAIGN, tickets=bad, actor=get_actor(s, "clerk"), now=NOW
            )
        s.rollback()
        assert sorted(caught.value.rejected) == [1, 2, 3]
        assert set(caught.value.rejected[2]) == {"kind"}
        assert "3 of 4 opinions" in str(caught.value)
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
        assert s.scalar(select(Campaign.ticket_seq).where(Campaign.code == CAMPAIGN)) == 0
        assert s.scalar(text("select count(*) from timers")) == 0


def test_bulk_refuses_a_campaign_whose_intake_has_closed(engine: Engine) -> None:
    """As create_ticket does: once intake has closed nothing is recorded, the counter untouched."""
    from sqlalchemy import update

    from engine.errors import NotPermitted

    with Session(engine) as s:
        s.execute(
            update(Campaign)
            .where(Campaign.code == CAMPAIGN)
            .values(intake_closed_at=NOW - timedelta(hours=1))
        )
        s.commit()
        with pytest.raises(NotPermitted, match="intake of campaign"):
            create_tickets(
                as_uow(s),
                campaign=CAMPAIGN,
                tickets=[NewTicket(text="late opinion")],
                actor=get_actor(s, "clerk"),
                now=NOW,
            )
        s.rollback()
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
        assert s.scalar(select(Campaign.ticket_seq).where(Campaign.code == CAMPAIGN)) == 0
        # still open a moment before the close: the same batch goes in
        created = create_tickets(
            as_uow(s),
            campaign=CAMPAIGN,
            tickets=[NewTicket(text="on time")],
            actor=get_actor(s, "clerk"),
            now=NOW - timedelta(hours=2),
        )
        assert len(created) == 1
