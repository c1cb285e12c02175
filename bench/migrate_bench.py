"""Migrating open tickets to a new workflow version, next to its floor.

    python -m bench.migrate_bench --url sqlite:////tmp/migrate-bench.db --tickets 100000

Builds a database with ``--tickets`` open consultation v1 tickets (a quarter each received,
categorized, assigned with a running clock and a pending breach timer, rectified; each with a
valid hash-chained first log row) in one campaign and ``--floor-tickets`` more in another, then

* the **dry run** (``plan_migration``) of the first campaign's tickets to consultation v2 by a
  plan (``rectified`` becomes ``verified``, ``assigned`` gets 5 working days instead of 10, so
  every assigned ticket's due time and timers are recalculated);
* the **migration** (``apply_migration``): each ticket in its own transaction with its
  ``migrate`` log row, its timers re-armed where retimed;
* the **floor** (``Floor``): the same per-ticket writes with nothing read or decided, every
  statement prebuilt, one transaction each, interleaved with the migration: after each of
  ``--blocks`` blocks of migrated tickets (from ``after_each``, between two commits) a block of
  floor tickets runs, and its time is taken out of the migration's;

and prints tickets per second for each, the ratio to the floor (overall, and the median and
range per block), whether the dry run equals what was done, and ``audit verify`` on a random
sample of 200 migrated tickets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
from engine.deadlines import cancel_pending, timers_t
from engine.ledger import LOG_COLUMNS, log_row, log_t, tickets_t
from engine.models import Campaign, Timer
from engine.organisation import load_campaign_file, load_organisation_file, upsert_campaign
from engine.rawsql import BulkInsert, PreparedWrite
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
                head=audit.head_json(
                    {
                        "unit_id": None,
                        "assignee_id": None,
                        "escalation_level": 0,
                        "category": None,
                        "kind": "criticism",
                    }
                ),
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


_FLOOR_UPDATE = PreparedWrite(
    update(tickets_t)
    .where(tickets_t.c.id == bindparam("w_id"), tickets_t.c.version == bindparam("w_version"))
    .values(
        workflow_version=bindparam("v_workflow_version"),
        due_at=bindparam("v_due_at"),
        due_rule=bindparam("v_due_rule"),
        state=bindparam("v_state"),
        version=bindparam("v_version"),
        last_hash=bindparam("v_last_hash"),
        updated_at=bindparam("v_updated_at"),
    )
)
_FLOOR_LOG = PreparedWrite(insert(log_t).values({c: bindparam(c) for c in LOG_COLUMNS}))
_FLOOR_TIMERS = BulkInsert(timers_t, ("ticket_id", "kind", "level", "due_at", "created_at"))


class Floor:
    """The fastest honest version of a migration's per-ticket writes, on the floor campaign's
    tickets: per ticket one transaction (same connection settings, so the same durability)
    with the ticket's UPDATE (version check), its hash-chained log row, and for a ticket
    whose clock changes (the assigned quarter) its pending timers cancelled and the warning
    and the ladder's first step inserted (what ``deadlines.arm_timers`` arms); every statement prebuilt and run through the driver,
    nothing decided and nothing read per ticket."""

    def __init__(self, ctx: Any, campaign: str) -> None:
        with ctx.unit_of_work() as uow:
            self.rows = uow.conn.execute(
                select(
                    tickets_t.c.id,
                    tickets_t.c.number,
                    tickets_t.c.state,
                    tickets_t.c.version,
                    tickets_t.c.last_hash,
                    *(tickets_t.c[c] for c in audit.HEAD_COLUMNS),
                )
                .join(Campaign, Campaign.id == tickets_t.c.campaign_id)
                .where(Campaign.code == campaign)
                .order_by(tickets_t.c.id)
            ).all()
        self.conn = ctx.engine.connect()
        self.key = ctx.audit_key
        self.done = 0

    def run(self, count: int) -> tuple[int, float]:
        """Write the next ``count`` floor tickets; (how many, seconds)."""
        rows = self.rows[self.done : self.done + count]
        new_due = NOW + timedelta(days=7)
        started = time.perf_counter()
        for r in rows:
            retimed = r.state == "assigned"
            with self.conn.begin():
                log = log_row(
                    ticket_id=r.id,
                    number=r.number,
                    seq=r.version + 1,
                    trigger="migrate",
                    from_state=r.state,
                    to_state=r.state,
                    actor=SYSTEM_ACTOR,
                    at=NOW,
                    reason=None,
                    data_json='{"from_version":1,"plan":"floor","to_version":2}',
                    workflow_version=2,
                    prev_hash=r.last_hash,
                    head=audit.head_json(r._mapping),
                    audit_key=self.key,
                )
                _FLOOR_UPDATE.execute(
                    self.conn,
                    {
                        "w_id": r.id,
                        "w_version": r.version,
                        "v_workflow_version": 2,
                        "v_due_at": new_due if retimed else None,
                        "v_due_rule": "floor" if retimed else None,
                        "v_state": r.state,
                        "v_version": r.version + 1,
                        "v_last_hash": log["hash"],
                        "v_updated_at": NOW,
                    },
                )
                _FLOOR_LOG.execute(self.conn, log)
                if retimed:
                    cancel_pending(self.conn, r.id, NOW)  # the engine's prebuilt statement
                    _FLOOR_TIMERS.execute_tuples(
                        self.conn,
                        [
                            (r.id, "warning", 0, new_due - timedelta(hours=24), NOW),
                            (r.id, "breach", 1, new_due, NOW),
                        ],
                    )
        self.done += len(rows)
        return len(rows), time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def _context(engine: Any, workflows: Path | None = None) -> Any:
    overrides = {"workflows_dir": str(workflows)} if workflows is not None else None
    return build_context(engine=engine, clock=FixedClock(NOW), overrides=overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="sqlite:////tmp/rectiflow-migrate-bench.db")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--floor-tickets", type=int, default=10_000)
    parser.add_argument("--blocks", type=int, default=20, help="interleaved blocks")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous setting")
    args = parser.parse_args()

    if args.url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(args.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rectiflow-migrate-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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
        # The campaigns are loaded while only version 1 exists (they run on it).
        with _context(engine).unit_of_work() as uow:
            load_organisation_file(uow, PROJECT_ROOT / "config" / "organisation.toml")
            camp = load_campaign_file(
                uow, PROJECT_ROOT / "config" / "campaigns" / "consultation-2005.toml"
            )
            upsert_campaign(
                uow,
                {
                    "code": "floor",
                    "name": {"zh_CN": "基准底线", "en": "Benchmark floor"},
                    "timezone": camp.timezone,
                    "starts_on": camp.starts_on,
                    "ends_on": camp.ends_on,
                    "rectification_deadline": camp.rectification_deadline,
                    "number_prefix": "F",
                    "workflow": "consultation",
                    "workflow_version": 1,
                },
            )
        ctx = _context(engine, wf)
        t0 = time.perf_counter()
        _fill(ctx, "consultation-2005", args.tickets, 1)
        _fill(ctx, "floor", args.floor_tickets, 1)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        print(
            f"built {args.tickets} + {args.floor_tickets} open tickets in "
            f"{time.perf_counter() - t0:.1f}s on {engine.dialect.name}"
            + (f" (synchronous={args.synchronous})" if engine.dialect.name == "sqlite" else "")
        )

        plan = load_plan(ctx.registry, plan_path)
        only = "campaign=consultation-2005"
        t0 = time.perf_counter()
        dry = plan_migration(ctx, plan, only=only)
        s_dry = time.perf_counter() - t0
        print(
            f"dry run: {dry.moving} would move, {len(dry.retimed)} timers recalculated, "
            f"{len(dry.refused)} refused, in {s_dry:.2f}s = {dry.moving / s_dry:.0f}/s"
        )

        # Interleaved: after every block of migrated tickets (after its commit) a block of
        # floor tickets runs; its time is taken out of the migration's.
        floor = Floor(ctx, "floor")
        block = max(1, args.tickets // args.blocks)
        floor_block = max(1, args.floor_tickets // args.blocks)
        blocks: list[tuple[float, float]] = []  # (migration /s, floor /s) per block
        mark = {"t": 0.0, "floor_s": 0.0, "floor_n": 0, "n": 0}

        def between(_decision: Any) -> None:
            mark["n"] += 1
            if mark["n"] % block:
                return
            migrated_s = time.perf_counter() - mark["t"]
            n, seconds = floor.run(floor_block)
            mark["floor_s"] += seconds
            mark["floor_n"] += n
            if n:
                blocks.append((block / migrated_s, n / seconds))
            mark["t"] = time.perf_counter()

        t0 = mark["t"] = time.perf_counter()
        done = apply_migration(ctx, plan, only=only, after_each=between)
        s_done = time.perf_counter() - t0 - mark["floor_s"]
        floor.close()
        rate = done.migrated / s_done
        floor_rate = mark["floor_n"] / mark["floor_s"]
        ratios = sorted(m / f for m, f in blocks)
        print(
            f"floor (prebuilt UPDATE + chained log INSERT + timer rewrite for a quarter, one "
            f"transaction each, interleaved in {len(blocks)} blocks): {mark['floor_n']} in "
            f"{mark['floor_s']:.1f}s = {floor_rate:.0f}/s"
        )
        print(
            f"migration: {done.migrated} migrated ({len(done.retimed)} retimed, "
            f"{len(done.refused)} refused) in {s_done:.1f}s = {rate:.0f}/s; ratio to the floor "
            f"{rate / floor_rate:.2f} (per block: median {statistics.median(ratios):.2f}, "
            f"min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
            if ratios
            else f"migration: {done.migrated} in {s_done:.1f}s = {rate:.0f}/s"
        )
        with ctx.sessions() as s:
            moved = s.scalar(
                select(func.count()).select_from(log_t).where(log_t.c.trigger == "migrate")
            )
            sample = s.scalars(
                select(tickets_t.c.number)
                .join(Campaign, Campaign.id == tickets_t.c.campaign_id)
                .where(tickets_t.c.workflow_version == 2, Campaign.code != "floor")
                .order_by(func.random())
                .limit(200)
            ).all()
            problems = [p for n in sample for p in audit.verify(s, ticket=n, key=ctx.audit_key)]
        same = (
            dict(done.moves) == dict(dry.moves)
            and [(d.number, d.new_due) for d in done.retimed]
            == [(d.number, d.new_due) for d in dry.retimed]
            and [d.number for d in done.refused] == [d.number for d in dry.refused]
        )
        print(
            f"dry run equals the migration: {same}; migrate log rows: {moved} (floor "
            f"{mark['floor_n']} + migrated {done.migrated}); audit verify on a random sample "
            f"of {len(sample)}: {'intact' if not problems else problems[:3]}"
        )
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
