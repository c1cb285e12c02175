"""Persisted, audited transitions per second on SQLite, next to the bare SQL floor.

rectiflow's path: ``engine.tickets.fire`` — load the ticket, check role, unit,
data and guard, move the state on the compiled machine, run the deadline hook,
hash-chain the log row, UPDATE the ticket with its version check, INSERT the
log row — one transaction (one commit) per transition.

The floor, in the same run on the same database settings: the same UPDATE +
INSERT written with plain SQLAlchemy Core, one transaction per transition.

The two sides interleave in blocks of a few tickets (floor block, rectiflow
block, floor block...) so both see the same machine noise — on a shared
machine the fsync time alone varies several-fold from minute to minute — and
each round reports the ratio of the summed times.

    python -m bench.transitions [--tickets 1000] [--rounds 3] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from bench.engine_context import as_uow
from engine import db
from engine.models import Ticket, TransitionLog
from engine.organisation import load_campaign_file, load_organisation_file
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)
STEPS = [
    ("categorize", "clerk", {"category": "team_building", "kind": "criticism"}),
    ("assign", "supervisor", {"unit": "political", "officer": "political.officer"}),
    ("rectify", "political.officer", {"measures": "Talked to the team; new duty roster."}),
    (
        "feed_back",
        "political.officer",
        {"method": "visit", "text": "Visited and explained.", "date": "2005-02-28"},
    ),
]


def build(path: Path, tickets: int, synchronous: str):  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{path}", sqlite_synchronous=synchronous)
    db.upgrade(engine)
    with Session(engine) as s:
        load_organisation_file(as_uow(s), PROJECT_ROOT / "config" / "organisation.toml")
        load_campaign_file(as_uow(s), PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml")
        clerk = get_actor(s, "clerk")
        numbers = [
            create_ticket(
                as_uow(s),
                campaign=CAMPAIGN,
                text=f"Opinion {i}",
                actor=clerk,
                now=NOW,
                area="Luohe",
            ).number
            for i in range(tickets * 2)
        ]
        s.commit()
    return engine, numbers


def rectiflow_block(session: Session, actors: dict, numbers: list[str]) -> float:  # type: ignore[type-arg]
    """Drive each ticket through the four steps, one transaction (commit) per transition."""
    start = time.perf_counter()
    for step, (trigger, user, data) in enumerate(STEPS):
        for number in numbers:
            fire(
                as_uow(session),
                number,
                trigger,
                actor=actors[user],
                data=data,
                expected_version=step + 1,
                now=NOW + timedelta(minutes=step),
            )
            session.commit()
    return time.perf_counter() - start


def floor_block(engine, ids: list[int]) -> float:  # type: ignore[no-untyped-def]
    """The same writes with bare Core: UPDATE with version check + INSERT, one transaction each."""
    tickets, log = Ticket.__table__, TransitionLog.__table__
    states = ["received", "categorized", "assigned", "rectified", "fed_back"]
    start = time.perf_counter()
    for step, (trigger, user, _data) in enumerate(STEPS):
        for tid in ids:
            with engine.begin() as conn:
                result = conn.execute(
                    update(tickets)
                    .where(tickets.c.id == tid, tickets.c.version == step + 1)
                    .values(
                        state=states[step + 1],
                        version=step + 2,
                        last_hash="f" * 64,
                        updated_at=NOW + timedelta(minutes=step),
                    )
                )
                assert result.rowcount == 1
                conn.execute(
                    insert(log).values(
                        ticket_id=tid,
                        seq=step + 2,
                        trigger=trigger,
                        from_state=states[step],
                        to_state=states[step + 1],
                        actor=user,
                        role="x",
                        at=NOW + timedelta(minutes=step),
                        reason=None,
                        data="{}",
                        workflow_version=1,
                        prev_hash="e" * 64,
                        hash="f" * 64,
                    )
                )
    return time.perf_counter() - start


def run_round(engine, numbers: list[str], block: int) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    """Half the tickets for each side, interleaved block by block; (transitions per side, floor s, ours s)."""
    half = len(numbers) // 2
    floor_numbers, ours_numbers = numbers[:half], numbers[half:]
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(Ticket.number, Ticket.id).where(Ticket.number.in_(floor_numbers))
            ).all()
        )
        conn.rollback()
    floor_s = ours_s = 0.0
    with Session(engine) as session:
        actors = {user: get_actor(session, user) for _, user, _ in STEPS}
        session.commit()
        for i in range(0, half, block):
            floor_s += floor_block(engine, [ids[n] for n in floor_numbers[i : i + block]])
            ours_s += rectiflow_block(session, actors, ours_numbers[i : i + block])
    return half * len(STEPS), floor_s, ours_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tickets", type=int, default=1000, help="tickets per round and side (4 transitions each)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    parser.add_argument("--block", type=int, default=10, help="tickets per interleaved block")
    args = parser.parse_args()
    ratios: list[float] = []
    floor_rates: list[float] = []
    ours_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            engine, numbers = build(
                Path(tmp) / f"round{round_no}.db", args.tickets, args.synchronous
            )
            n, floor_s, ours_s = run_round(engine, numbers, args.block)
            floor_rates.append(n / floor_s)
            ours_rates.append(n / ours_s)
            ratios.append(floor_s / ours_s)
            print(
                f"round {round_no + 1}: floor {floor_rates[-1]:,.0f}/s  rectiflow {ours_rates[-1]:,.0f}/s  "
                f"ratio {ratios[-1]:.2f}"
            )
            engine.dispose()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, synchronous={args.synchronous}, "
        f"{args.tickets * 4} transitions per side per round, blocks of {args.block} tickets"
    )
    print(f"floor (Core UPDATE+INSERT): median {statistics.median(floor_rates):,.0f}/s")
    print(f"rectiflow fire():            median {statistics.median(ours_rates):,.0f}/s")
    print(
        f"ratio rectiflow/floor: median {statistics.median(ratios):.2f} (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
