"""Migrating open tickets to a new workflow version, next to the bare SQL floor.

    python -m bench.migrate_bench --url sqlite:////tmp/migrate-bench.db --tickets 100000

Builds a database with ``--tickets`` open consultation v1 tickets (received, categorized,
assigned with a running clock, rectified; each with a valid hash-chained first log row) in
one campaign and ``--floor-tickets`` more in another, then

* the **floor**: per floor ticket, one transaction with the same two statements a migration
  writes at the least (UPDATE the ticket with a version check, INSERT its log row), bare Core;
* the **dry run** (``plan_migration``) and the **migration** (``apply_migration``) of the
  first campaign's tickets to consultation v2 by a plan (``rectified`` becomes ``verified``,
  ``assigned`` gets 5 working days instead of 10, so every assigned ticket's due time and
  timers are recalculated): each ticket in its own transaction with its ``migrate`` log row;

and prints tickets per second for each and the ratio to the floor. ``audit verify`` is run
on a sample of the migrated tickets.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from engine import audit, db
from engine.actors import SYSTEM_ACTOR
from engine.clock import FixedClock
from engine.context import build_context
from engine.ledger import log_row, log_t, tickets_t
from engine.models import Campaign, Timer
from engine.organisation import load_campaign_file, load_organisation_file, upsert_campaign
from engine.settings import PROJECT_ROOT
from engine.versions import apply_migration, load_plan, plan_migration

NOW = datetime(2005, 3, 1, 2, 0, tzinfo=UTC)
STATES = ("received", "categorized", "assigned", "rectified")
PLAN = """workflow = "consultation"
from_version = 1
to_version = 2
stay = ["escalated"]
[states]
rectified = "verified"
"""


def v2_text() -> str:
    v1 = (PROJECT_ROOT / "workflows" / "consultation-v1.toml").read_text(encoding="utf-8")
    v2 = (
        v1.replace("version = 1", "version = 2")
        .replace("[states.rectified]", "[states.verified]")
        .replace('"rectified"', '"verified"')
        .replace(
            'en = "Assigned to an officer" }\ntime_limit = { working_days = 10 }',
            'en = "Assigned to an officer" }\ntime_limit = { working_days = 5 }',
        )
    )
    v2 = v2.replace(v2[v2.index("[states.escalated]") : v2.index("[states.fed_back]")], "")
    start = v2.index('[[triggers]]\nname = "escalate_to_government"')
    v2 = v2.replace(v2[start : v2.index('[[triggers]]\nname = "reopen"')], "")
    return v2.replace(
        'states = ["categorized", "assigned", "verified", "escalated"]',
        'states = ["categorized", "assigned", "verified"]',
    )


def _fill(ctx: Any, campaign: str, count: int, start: int) -> None:
    """``count`` open tickets in ``campaign`` with their genesis log row (bulk inserts)."""
    key = ctx.audit_key
    with ctx.unit_of_work() as uow:
        camp = uow.session.scalars(select(Campaign).where(Campaign.code == campaign)).one()
        conn = uow.conn
        due = NOW + timedelta(days=14)
        batch: list[dict[str, Any]] = []
        logs: list[dict[str, Any]] = []
        timers: list[dict[str, Any]] = []

        def flush() -> None:
            ids = conn.execute(insert(tickets_t).returning(tickets_t.c.id), batch).scalars().all()
            for tid, row in zip(ids, logs, strict=True):
                row["ticket_id"] = tid
            conn.execute(insert(log_t), logs)
            for tid, b in zip(ids, batch, strict=True):
                if b["state"] == "assigned":
                    timers.append(
                        {
                            "ticket_id": tid,
                            "kind": "breach",
                            "level": 1,
                            "due_at": due,
                            "created_at": NOW,
                        }
                    )
            if timers:
                conn.execute(insert(Timer.__table__), timers)
            batch.clear(), logs.clear(), timers.clear()

        for i in range(count):
            number = f"{camp.number_prefix}-{start + i:07d}"
            state = STATES[i % len(STATES)]
            first = log_row(
                ticket_id=None,
                number=number,
                seq=1,
                trigger="create",
                from_state=None,
                to_state=state,
                actor=SYSTEM_ACTOR,
                at=NOW,
                reason=None,
                data_json=audit.canonical_json({"text": "bench"}),
                workflow_version=1,
                prev_hash=audit.genesis_hash(number, key),
                audit_key=key,
            )
            batch.append(
                {
                    "number": number,
                    "campaign_id": camp.id,
                    "kind": "criticism",
                    "text": "bench",
                    "state": state,
                    "version": 1,
                    "workflow_name": "consultation",
                    "workflow_version": 1,
                    "escalation_level": 0,
                    "received_at": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "source": "bench",
                    "secret_hash": "x",
                    "last_hash": first["hash"],
                    "due_at": due if state == "assigned" else None,
                    "due_rule": "state assigned: 10 working days" if state == "assigned" else None,
                }
            )
            logs.append(first)
            if len(batch) >= 5000:
                flush()
        if batch:
            flush()
        conn.execute(
            update(Campaign).where(Campaign.id == camp.id).values(ticket_seq=start + count)
        )


_FLOOR_UPDATE = (
    update(tickets_t)
    .where(tickets_t.c.id == bindparam("w_id"), tickets_t.c.version == bindparam("w_version"))
    .values(workflow_version=2, version=bindparam("v_version"), updated_at=bindparam("v_at"))
)


def floor(ctx: Any, campaign: str) -> tuple[int, float]:
    """Bare Core: per ticket one transaction, UPDATE with the version check + INSERT log row."""
    with ctx.unit_of_work() as uow:
        rows = uow.conn.execute(
            select(tickets_t.c.id, tickets_t.c.number, tickets_t.c.state, tickets_t.c.last_hash)
            .join(Campaign, Campaign.id == tickets_t.c.campaign_id)
            .where(Campaign.code == campaign)
        ).all()
    started = time.perf_counter()
    for r in rows:
        with ctx.engine.begin() as conn:
            conn.execute(_FLOOR_UPDATE, {"w_id": r.id, "w_version": 1, "v_version": 2, "v_at": NOW})
            row = log_row(
                ticket_id=r.id,
                number=r.number,
                seq=2,
                trigger="migrate",
                from_state=r.state,
                to_state=r.state,
                actor=SYSTEM_ACTOR,
                at=NOW,
                reason=None,
                data_json="{}",
                workflow_version=2,
                prev_hash=r.last_hash,
                audit_key=None,
            )
            conn.execute(insert(log_t), row)
    return len(rows), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="sqlite:////tmp/rectiflow-migrate-bench.db")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--floor-tickets", type=int, default=5_000)
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous setting")
    args = parser.parse_args()

    if args.url.startswith("sqlite:///"):
        Path(args.url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rectiflow-migrate-"))
    try:
        wf = work / "workflows"
        wf.mkdir()
        for f in (PROJECT_ROOT / "workflows").glob("*.toml"):
            shutil.copy(f, wf)
        (wf / "consultation-v2.toml").write_text(v2_text(), encoding="utf-8")
        plan_path = work / "plan.toml"
        plan_path.write_text(PLAN, encoding="utf-8")
        engine = db.make_engine(args.url, sqlite_synchronous=args.synchronous)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        db.upgrade(engine)
        ctx = build_context(
            engine=engine, clock=FixedClock(NOW), overrides={"workflows_dir": str(wf)}
        )
        with ctx.unit_of_work() as uow:
            load_organisation_file(uow, PROJECT_ROOT / "config" / "organisation.toml")
            camp = load_campaign_file(
                uow, PROJECT_ROOT / "config" / "campaigns" / "consultation-2005.toml"
            )
            upsert_campaign(
                uow,
                {
                    "code": "floor",
                    "timezone": camp.timezone,
                    "starts_on": camp.starts_on,
                    "ends_on": camp.ends_on,
                    "rectification_deadline": camp.rectification_deadline,
                    "number_prefix": "F",
                    "workflow": "consultation",
                    "workflow_version": 1,
                },
            )
        t0 = time.perf_counter()
        _fill(ctx, "consultation-2005", args.tickets, 1)
        _fill(ctx, "floor", args.floor_tickets, 1)
        print(
            f"built {args.tickets} + {args.floor_tickets} open tickets in "
            f"{time.perf_counter() - t0:.1f}s on {engine.dialect.name}"
            + (f" (synchronous={args.synchronous})" if engine.dialect.name == "sqlite" else "")
        )

        n_floor, s_floor = floor(ctx, "floor")
        floor_rate = n_floor / s_floor
        print(
            f"floor (Core UPDATE+INSERT, one transaction each): {n_floor} in {s_floor:.1f}s = "
            f"{floor_rate:.0f}/s"
        )

        plan = load_plan(ctx.registry, plan_path)
        only = "campaign=consultation-2005"
        t0 = time.perf_counter()
        dry = plan_migration(ctx, plan, only=only)
        s_dry = time.perf_counter() - t0
        print(
            f"dry run: {dry.moving} would move, {len(dry.retimed)} timers recalculated, "
            f"{len(dry.refused)} refused, in {s_dry:.1f}s = {dry.moving / s_dry:.0f}/s"
        )
        t0 = time.perf_counter()
        done = apply_migration(ctx, plan, only=only)
        s_done = time.perf_counter() - t0
        rate = done.migrated / s_done
        print(
            f"migration: {done.migrated} migrated ({len(done.retimed)} retimed) in "
            f"{s_done:.1f}s = {rate:.0f}/s; ratio to the floor {rate / floor_rate:.2f}"
        )
        with ctx.sessions() as s:
            moved = s.scalar(
                select(func.count()).select_from(log_t).where(log_t.c.trigger == "migrate")
            )
            sample = s.scalars(
                select(tickets_t.c.number)
                .join(Campaign, Campaign.id == tickets_t.c.campaign_id)
                .where(tickets_t.c.workflow_version == 2, Campaign.code != "floor")
                .limit(200)
            ).all()
            problems = [p for n in sample for p in audit.verify(s, ticket=n, key=ctx.audit_key)]
        print(
            f"migrate log rows: {moved} (floor {n_floor} + migrated {done.migrated}); "
            f"audit verify on a sample of {len(sample)}: {'intact' if not problems else problems[:3]}"
        )
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
