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
  through SQLAlchemy Core with both statements built once, one connection per
  block with one transaction (``conn.begin()``) per transition (rectiflow's units
  of work hand their connection on too: ``engine.connections``), same database
  file settings: the fastest honest version of the same writes. "The same" is taken from rectiflow itself:
  before each round one ticket goes through the four steps with ``fire()`` and,
  per step, the columns its UPDATE changed (with their values) and its log row
  (data, head, hashes) are what the floor writes for each of its tickets — so
  the floor maintains the same indexes and writes rows of the same size. What it
  leaves out is rectiflow's own work: reading the ticket, the checks, the hash
  chain, the timers and the notices.
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
from dataclasses import dataclass
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
FLOOR_INSERT = insert(log_t)
# The floor as it stood before 2026-11-30 evening, kept as a reference side: the same two
# statements, but writing only state, version, hash and time, and a log row with no data
# and no head (fewer index entries to move, smaller rows than rectiflow writes).
MINIMAL_UPDATE = (
    update(tickets_t)
    .where(tickets_t.c.id == bindparam("tid"), tickets_t.c.version == bindparam("expected"))
    .values(
        state=bindparam("state"),
        version=bindparam("new_version"),
        last_hash=bindparam("h"),
        updated_at=bindparam("at"),
    )
)


@dataclass(frozen=True)
class StepWrites:
    """What one step's transition writes, as rectiflow wrote it: the UPDATE's columns and
    values (built once) and the log row (its ``ticket_id`` replaced per ticket)."""

    update: Any
    values: dict[str, Any]
    log_row: dict[str, Any]


def capture_writes(engine: Engine, actors: dict[str, Any], number: str) -> list[StepWrites]:
    """Fire the four steps on ticket ``number`` and read back, per step, the ticket columns
    that changed and the log row written: the floor's writes."""
    columns = [c for c in tickets_t.c if c.name != "id"]
    out: list[StepWrites] = []
    with engine.connect() as conn:
        before = conn.execute(select(*columns).where(tickets_t.c.number == number)).one()
        conn.rollback()
    for step in range(len(STEPS)):
        fire_step(engine, actors, number, step)
        with engine.connect() as conn:
            after = conn.execute(select(*columns).where(tickets_t.c.number == number)).one()
            tid = conn.execute(select(tickets_t.c.id).where(tickets_t.c.number == number)).scalar()
            log_row = dict(
                conn.execute(
                    select(*[c for c in log_t.c if c.name != "id"]).where(
                        log_t.c.ticket_id == tid, log_t.c.seq == step + 2
                    )
                )
                .one()
                ._mapping
            )
            conn.rollback()
        changed = {
            c.name: getattr(after, c.name)
            for c in columns
            if getattr(after, c.name) != getattr(before, c.name)
        }
        statement = (
            update(tickets_t)
            .where(tickets_t.c.id == bindparam("tid"), tickets_t.c.version == bindparam("expected"))
            .values({name: bindparam(f"v_{name}") for name in changed})
        )
        values = {f"v_{name}": value for name, value in changed.items()}
        out.append(StepWrites(statement, values, log_row))
        before = after
    return out


def build(path: Path, tickets: int, synchronous: str, extra: int = 0) -> tuple[Engine, list[str]]:
    return build_url(f"sqlite:///{path}", tickets, synchronous, extra)


def build_url(
    url: str, tickets: int, synchronous: str = "FULL", extra: int = 0
) -> tuple[Engine, list[str]]:
    """A fresh schema at ``url`` with the organisation, the campaign and ``tickets * 2 +
    extra`` received tickets; the engine and the ticket numbers."""
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
            for i in range(tickets * 2 + extra)
        ]
        s.commit()
    return engine, numbers


def fire_step(engine: Engine, actors: dict[str, Any], number: str, step: int) -> None:
    """Step ``step`` of STEPS on ticket ``number`` through ``fire()``, in a new unit of work."""
    trigger, user, data = STEPS[step]
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


def rectiflow_block(engine: Engine, actors: dict[str, Any], numbers: list[str]) -> int:
    """Each ticket through the four steps; a new session and one commit per transition."""
    for step in range(len(STEPS)):
        for number in numbers:
            fire_step(engine, actors, number, step)
    return len(numbers) * len(STEPS)


def floor_block(engine: Engine, writes: list[StepWrites], ids: list[int]) -> int:
    """The same writes with prebuilt Core statements: UPDATE (version check) + INSERT."""
    with engine.connect() as conn:  # one connection, one transaction per transition
        for step, step_writes in enumerate(writes):
            values, log_row = step_writes.values, step_writes.log_row
            for tid in ids:
                with conn.begin():
                    changed = conn.execute(
                        step_writes.update, {"tid": tid, "expected": step + 1, **values}
                    )
                    assert changed.rowcount == 1
                    conn.execute(FLOOR_INSERT, {**log_row, "ticket_id": tid})
    return len(ids) * len(writes)


def minimal_block(engine: Engine, ids: list[int]) -> int:
    """The reference side: the two statements with the fewest columns (see MINIMAL_UPDATE)."""
    with engine.connect() as conn:  # as the floor: one connection, a transaction each
        for step, (trigger, user, _data) in enumerate(STEPS):
            at = NOW + timedelta(minutes=step)
            for tid in ids:
                with conn.begin():
                    changed = conn.execute(
                        MINIMAL_UPDATE,
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
    engine, numbers = build(
        workdir / f"round{round_no}.db", tickets, synchronous, extra=tickets + 1
    )
    floor_numbers, ours_numbers = numbers[:tickets], numbers[tickets : 2 * tickets]
    minimal_numbers = numbers[2 * tickets : 3 * tickets]
    with engine.connect() as conn:
        ids = dict(conn.execute(select(Ticket.number, Ticket.id)).all())
        conn.rollback()
    with Session(engine) as session:
        actors = {user: get_actor(session, user) for _, user, _ in STEPS}
    writes = capture_writes(engine, actors, numbers[-1])
    floor_ids = [ids[n] for n in floor_numbers]
    minimal_ids = [ids[n] for n in minimal_numbers]
    sides = {
        "floor": lambda i: timed(
            lambda: floor_block(engine, writes, floor_ids[i * block : (i + 1) * block])
        ),
        "rectiflow": lambda i: timed(
            lambda: rectiflow_block(engine, actors, ours_numbers[i * block : (i + 1) * block])
        ),
        "minimal": lambda i: timed(
            lambda: minimal_block(engine, minimal_ids[i * block : (i + 1) * block])
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
    out["ratio_to_minimal"] = round(rates["rectiflow"] / rates["minimal"], 3)
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
        "minimal_per_s": spread([r["minimal_per_s"] for r in per_round]),
        "ratio_to_minimal": spread([r["ratio_to_minimal"] for r in per_round]),
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
