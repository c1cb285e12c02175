"""Page queries, the campaign report and an idle sweep at a million tickets: median, p95, plans.

    python -m bench.generate --url sqlite:///instance/bench-1m.db --tickets 1000000 --fresh
    python -m bench.queries --url sqlite:///instance/bench-1m.db \
        --url postgresql://postgres@127.0.0.1/rectiflow_bench --plans bench/plans.md

Each measurement is the engine function the page or the worker calls, in a new
session, as the web app does per request, at ``bench.generate.BENCH_NOW``:

* officer queue: ``queries.officer_queue`` (first page) of the officer with the
  most open tickets (the worst queue in the province);
* overdue board: ``queries.overdue_board`` (counts per unit and level + first page);
* ticket page: ``queries.ticket_detail`` with history, a different ticket each time;
* log search: ``queries.search_log`` by the busiest officer over one week;
* campaign report: ``report.campaign_report`` of the active (largest) campaign;
* idle sweep: ``timers.sweep`` at ``BENCH_NOW`` (every timer due by then has fired).

Targets: pages < 50 ms at p95, the report < 1 s. The floor printed next to them
is ``SELECT 1`` through the same session machinery. With ``--plans`` every SQL
statement each function issued is written with its ``EXPLAIN QUERY PLAN``
(SQLite) or ``EXPLAIN (ANALYZE, BUFFERS)`` (PostgreSQL).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from bench.engine_context import as_uow, context_for
from bench.generate import ACTIVE_CAMPAIGN, BENCH_NOW
from engine import db
from engine.models import Ticket, TransitionLog, User

PAGE_TARGET_MS = 50.0
REPORT_TARGET_MS = 1000.0


class Capture:
    """Records the SQL statements an engine issues while ``active``."""

    def __init__(self, engine: Engine) -> None:
        self.active = False
        self.statements: list[tuple[str, Any, float]] = []
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        # Only queries: BEGIN and the like have no plan.
        if self.active and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.append((statement, params, time.perf_counter() - self._started))


def pick_parameters(session: Session) -> dict[str, Any]:
    officer = session.execute(
        select(User.id, User.username, func.count().label("n"))
        .join(Ticket, Ticket.assignee_id == User.id)
        .where(Ticket.closed_at.is_(None))
        .group_by(User.id, User.username)
        .order_by(func.count().desc())
        .limit(1)
    ).one()
    open_counts = sorted(
        session.execute(
            select(func.count())
            .select_from(Ticket)
            .join(User, User.id == Ticket.assignee_id)
            .where(Ticket.closed_at.is_(None), User.role == "officer")
            .group_by(Ticket.assignee_id)
        ).scalars()
    )
    typical_n = open_counts[len(open_counts) // 2]
    typical = session.execute(
        select(Ticket.assignee_id, func.count().label("n"))
        .join(User, User.id == Ticket.assignee_id)
        .where(Ticket.closed_at.is_(None), User.role == "officer")
        .group_by(Ticket.assignee_id)
        .having(func.count() == typical_n)
        .limit(1)
    ).one()
    log_officer = session.execute(
        select(TransitionLog.actor, func.count().label("n"))
        .where(TransitionLog.role == "officer")
        .group_by(TransitionLog.actor)
        .order_by(func.count().desc())
        .limit(1)
    ).one()
    max_id = int(session.scalar(select(func.max(Ticket.id))) or 0)
    return {
        "officer_id": officer.id,
        "officer": officer.username,
        "officer_open": officer.n,
        "typical_officer_id": typical.assignee_id,
        "typical_open": typical.n,
        "log_actor": log_officer.actor,
        "log_actor_rows": log_officer.n,
        "max_ticket_id": max_id,
    }


def cases(
    params: dict[str, Any], engine: Engine
) -> dict[str, tuple[Callable[[Session], Any], float]]:
    from engine import report, timers
    from engine.read import pages as queries

    rng = random.Random(7)
    sessions = db.session_factory(engine)

    def ticket_number(session: Session) -> str:
        while True:
            number = session.scalar(
                select(Ticket.number).where(Ticket.id == rng.randint(1, params["max_ticket_id"]))
            )
            if number:
                return number

    numbers: list[str] = []

    def ticket_page(session: Session) -> Any:
        return queries.ticket_detail(session, number=numbers.pop())

    def prepare_numbers(n: int) -> None:
        with sessions() as s:
            numbers.extend(ticket_number(s) for _ in range(n))

    prepare_numbers(500)
    week_start = BENCH_NOW - timedelta(days=14)
    return {
        "floor: SELECT 1": (lambda s: s.execute(text("SELECT 1")).scalar(), PAGE_TARGET_MS),
        "officer queue, first page": (
            lambda s: queries.officer_queue(s, user_id=params["officer_id"], now=BENCH_NOW),
            PAGE_TARGET_MS,
        ),
        "officer queue, median officer": (
            lambda s: queries.officer_queue(s, user_id=params["typical_officer_id"], now=BENCH_NOW),
            PAGE_TARGET_MS,
        ),
        "overdue board, counts + first page": (
            lambda s: queries.overdue_board(s, now=BENCH_NOW),
            PAGE_TARGET_MS,
        ),
        "ticket page with history": (ticket_page, PAGE_TARGET_MS),
        "log search, actor + one week": (
            lambda s: queries.search_log(
                s,
                actor=params["log_actor"],
                since=week_start,
                until=week_start + timedelta(days=7),
            ),
            PAGE_TARGET_MS,
        ),
        "campaign report (active campaign)": (
            lambda s: report.campaign_report(as_uow(s), ACTIVE_CAMPAIGN, now=BENCH_NOW),
            REPORT_TARGET_MS,
        ),
        "sweep, nothing due": (
            lambda s: _idle_sweep(timers, sessions),
            PAGE_TARGET_MS,
        ),
    }


def _idle_sweep(timers: Any, sessions: Any) -> Any:
    result = timers.sweep(context_for(sessions.kw["bind"]), now=BENCH_NOW)
    if result.fired:
        raise RuntimeError(
            f"the sweep at {BENCH_NOW} fired {result.fired} timers: the database is not "
            "a fresh bench.generate one (measure an idle sweep on an untouched database)"
        )
    return result


def measure(
    engine: Engine, fn: Callable[[Session], Any], repeat: int, warmup: int = 2
) -> list[float]:
    sessions = db.session_factory(engine)
    times = []
    for i in range(warmup + repeat):
        with sessions() as session:
            started = time.perf_counter()
            fn(session)
            session.rollback()
            elapsed = time.perf_counter() - started
        if i >= warmup:
            times.append(elapsed * 1000)
    return times


def explain(engine: Engine, statements: list[tuple[str, Any, float]]) -> list[str]:
    out = []
    with engine.connect() as conn:
        for statement, params, seconds in statements:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
                plan = "\n".join(f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows)
            else:
                rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
                plan = "\n".join(r[0] for r in rows)
            out.append(
                f"{seconds * 1000:.1f} ms (execute, one run):\n"
                f"```sql\n{' '.join(statement.split())}\n```\n```\n{plan}\n```"
            )
        conn.rollback()
    return out


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth += 1
        parent = parents[parent]
    return depth


def run(
    url: str, repeat: int, plans: list[str] | None, only: str | None = None
) -> list[tuple[str, float, float, float]]:
    engine = db.make_engine(url)
    capture = Capture(engine)
    with Session(engine) as session:
        params = pick_parameters(session)
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        rows = session.scalar(select(func.count()).select_from(TransitionLog))
    version = engine.dialect.server_version_info
    label = f"{engine.dialect.name} {'.'.join(str(v) for v in version or ())}"
    print(
        f"\n{label}: {tickets:,} tickets, {rows:,} log rows; now = {BENCH_NOW.isoformat()}; "
        f"officer {params['officer']} ({params['officer_open']:,} open; median officer "
        f"{params['typical_open']:,}), log actor "
        f"{params['log_actor']} ({params['log_actor_rows']:,} rows)"
    )
    print(f"  {'query':<38}{'median ms':>10}{'p95 ms':>10}{'target':>9}")
    results = []
    for name, (fn, target) in cases(params, engine).items():
        if only and only not in name and not name.startswith("floor"):
            continue
        n = repeat if target <= PAGE_TARGET_MS else max(5, repeat // 4)
        times = sorted(measure(engine, fn, n))
        p95 = times[min(len(times) - 1, int(round(len(times) * 0.95)) - 1)]
        median = statistics.median(times)
        flag = "" if name.startswith("floor") else ("ok" if p95 < target else "SLOW")
        print(f"  {name:<38}{median:>10.2f}{p95:>10.2f}{flag:>9}")
        results.append((name, median, p95, target))
        if plans is not None and not name.startswith("floor"):
            capture.statements.clear()
            capture.active = True
            with Session(engine) as session:
                fn(session)
                session.rollback()
            capture.active = False
            plans.append(f"### {label}: {name}\n")
            plans.extend(explain(engine, capture.statements))
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.queries", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", action="append", required=True, help="repeat for each database")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--plans", help="write the EXPLAIN plans to this Markdown file")
    parser.add_argument("--only", help="measure only the cases whose name contains this")
    args = parser.parse_args(argv)
    plans: list[str] | None = [] if args.plans else None
    slow = 0
    for url in args.url:
        for name, _median, p95, target in run(url, args.repeat, plans, args.only):
            slow += int(not name.startswith("floor") and p95 >= target)
    if plans is not None:
        with open(args.plans, "w", encoding="utf-8") as handle:
            handle.write("# Query plans at the benchmark's scale (python -m bench.queries)\n\n")
            handle.write("\n\n".join(plans) + "\n")
        print(f"\nplans written to {args.plans}")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
