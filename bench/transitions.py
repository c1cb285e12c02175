"""Persisted, audited transitions per second on SQLite, next to the prebuilt Core floor and a peer.

    python -m bench.run transitions            # FULL and NORMAL, results to bench/results/
    python -m bench.transitions [--tickets 500] [--rounds 3] [--synchronous FULL]

Three sides drive the same four steps (categorize, assign, rectify, feed back)
on tickets created beforehand, one transaction (one commit) per step:

* rectiflow: ``engine.tickets.fire`` in a new session per transition, as a
  request has — load the ticket, check role, unit, data and guard, move the
  state on the compiled machine, the deadline hook, hash-chain the log row,
  UPDATE the ticket with its version check, INSERT the log row.
* floor: the same UPDATE (with its version check) + INSERT of the log row
  through SQLAlchemy Core with both statements built once, one
  ``engine.begin()`` per transition, same database file settings: the fastest
  honest version of the same writes.
* peer: SpiffWorkflow 3's stateless pattern (``bench.spiff_peer.SpiffSide``):
  load the instance's serialised row, deserialise, complete the ready task,
  serialise and write it back, one transaction per step.

The sides interleave in blocks of ``--block`` tickets (ABBA order), several
rounds on fresh databases; each round reports the rate of each side and the
ratio rectiflow / floor, and the summary their medians and spread.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bench.common import interleave, result, spread, timed
from bench.engine_context import as_uow, context_for
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
STATES = ["received", "categorized", "assigned", "rectified", "fed_back"]
SPIFF_NAMES = ["categorize", "assign", "rectify", "feed_back"]

tickets_t, log_t = Ticket.__table__, TransitionLog.__table__
# The floor's two statements, built once.
FLOOR_UPDATE = (
    update(tickets_t)
    .where(tickets_t.c.id == bindparam("tid"), tickets_t.c.version == bindparam("expected"))
    .values(
        state=bindparam("state"),
        version=bindparam("new_version"),
        last_hash=bindparam("h"),
        updated_at=bindparam("at"),
    )
)
FLOOR_INSERT = insert(log_t)


def build(path: Path, tickets: int, synchronous: str) -> tuple[Engine, list[str]]:
    return build_url(f"sqlite:///{path}", tickets, synchronous)


def build_url(url: str, tickets: int, synchronous: str = "FULL") -> tuple[Engine, list[str]]:
    """A fresh schema at ``url`` with the organisation, the campaign and ``tickets * 2``
    received tickets; the engine and the ticket numbers."""
    engine = db.make_engine(url, sqlite_synchronous=synchronous)
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


def rectiflow_block(engine: Engine, actors: dict[str, Any], numbers: list[str]) -> int:
    """Each ticket through the four steps; a new session and one commit per transition."""
    for step, (trigger, user, data) in enumerate(STEPS):
        for number in numbers:
            with context_for(engine).unit_of_work() as uow:
                fire(
                    uow,
                    number,
                    trigger,
                    actor=actors[user],
                    data=data,
                    expected_version=step + 1,
                    now=NOW + timedelta(minutes=step),
                )
    return len(numbers) * len(STEPS)


def floor_block(engine: Engine, ids: list[int]) -> int:
    """The same writes with prebuilt Core statements: UPDATE (version check) + INSERT."""
    for step, (trigger, user, _data) in enumerate(STEPS):
        at = NOW + timedelta(minutes=step)
        for tid in ids:
            with engine.begin() as conn:
                changed = conn.execute(
                    FLOOR_UPDATE,
                    {
                        "tid": tid,
                        "expected": step + 1,
                        "state": STATES[step + 1],
                        "new_version": step + 2,
                        "h": "f" * 64,
                        "at": at,
                    },
                )
                assert changed.rowcount == 1
                conn.execute(
                    FLOOR_INSERT,
                    {
                        "ticket_id": tid,
                        "seq": step + 2,
                        "trigger": trigger,
                        "from_state": STATES[step],
                        "to_state": STATES[step + 1],
                        "actor": user,
                        "role": "x",
                        "at": at,
                        "reason": None,
                        "data": "{}",
                        "workflow_version": 1,
                        "prev_hash": "e" * 64,
                        "hash": "f" * 64,
                    },
                )
    return len(ids) * len(STEPS)


def spiff_block(spiff: Any, instances: list[int]) -> int:
    for step, (_trigger, user, data) in enumerate(STEPS):
        for instance in instances:
            spiff.step(instance, SPIFF_NAMES[step], user, data, NOW + timedelta(minutes=step))
    return len(instances) * len(STEPS)


def run_round(
    workdir: Path, round_no: int, tickets: int, block: int, synchronous: str, peer: bool
) -> dict[str, Any]:
    engine, numbers = build(workdir / f"round{round_no}.db", tickets, synchronous)
    floor_numbers, ours_numbers = numbers[:tickets], numbers[tickets:]
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(Ticket.number, Ticket.id).where(Ticket.number.in_(floor_numbers))
            ).all()
        )
        conn.rollback()
    with Session(engine) as session:
        actors = {user: get_actor(session, user) for _, user, _ in STEPS}
    floor_ids = [ids[n] for n in floor_numbers]
    sides = {
        "floor": lambda i: timed(
            lambda: floor_block(engine, floor_ids[i * block : (i + 1) * block])
        ),
        "rectiflow": lambda i: timed(
            lambda: rectiflow_block(engine, actors, ours_numbers[i * block : (i + 1) * block])
        ),
    }
    if peer:
        from bench.spiff_peer import SpiffSide

        spiff = SpiffSide(workdir / f"spiff{round_no}.db", synchronous)
        instances = [spiff.create(NOW) for _ in range(tickets)]
        sides["spiff"] = lambda i: timed(
            lambda: spiff_block(spiff, instances[i * block : (i + 1) * block])
        )
    done = interleave(sides, (tickets + block - 1) // block)
    engine.dispose()
    rates = {name: n / seconds for name, (n, seconds) in done.items()}
    out: dict[str, Any] = {f"{name}_per_s": round(rate, 1) for name, rate in rates.items()}
    out["ratio"] = round(rates["rectiflow"] / rates["floor"], 3)
    if peer:
        out["ratio_to_spiff"] = round(rates["rectiflow"] / rates["spiff"], 3)
    out["transitions_per_side"] = done["rectiflow"][0]
    return out


def measure(
    *, tickets: int, rounds: int, block: int, synchronous: str, peer: bool = True
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        per_round = [
            run_round(Path(tmp), r, tickets, block, synchronous, peer) for r in range(rounds)
        ]
    summary: dict[str, Any] = {
        "ratio": spread([r["ratio"] for r in per_round]),
        "floor_per_s": spread([r["floor_per_s"] for r in per_round]),
        "rectiflow_per_s": spread([r["rectiflow_per_s"] for r in per_round]),
        "target_ratio": 0.7,
    }
    if peer:
        summary["spiff_per_s"] = spread([r["spiff_per_s"] for r in per_round])
        summary["ratio_to_spiff"] = spread([r["ratio_to_spiff"] for r in per_round])
    summary["met"] = summary["ratio"]["median"] >= summary["target_ratio"]
    return result(
        f"transitions-{synchronous.lower()}",
        command=(
            f"python -m bench.transitions --tickets {tickets} --rounds {rounds} "
            f"--block {block} --synchronous {synchronous}"
        ),
        params={
            "tickets_per_side": tickets,
            "rounds": rounds,
            "block": block,
            "synchronous": synchronous,
            "peer": "SpiffWorkflow" if peer else None,
        },
        rounds=per_round,
        summary=summary,
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """For ``bench.run``: FULL and NORMAL."""
    tickets, rounds = (100, 2) if quick else (500, 3)
    return [
        measure(tickets=tickets, rounds=rounds, block=10, synchronous=mode)
        for mode in ("FULL", "NORMAL")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=500, help="tickets per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=10, help="tickets per interleaved block")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--no-peer", action="store_true", help="leave SpiffWorkflow out")
    args = parser.parse_args()
    out = measure(
        tickets=args.tickets,
        rounds=args.rounds,
        block=args.block,
        synchronous=args.synchronous,
        peer=not args.no_peer,
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
