"""The campaign report over a large database, next to the bare scan it cannot beat.

    python -m bench.generate --url sqlite:///instance/bench-1m.db --tickets 1000000 \
        --campaigns 1 --active-share 1.0 --fresh
    python -m bench.report_bench --url sqlite:///instance/bench-1m.db --rounds 3

rectiflow's path is ``engine.report.campaign_report`` (now; as of a date
computed from the transition log and the timers; and as of a date read from
its daily snapshot, ``engine.snapshots``, which the run takes first: of every day that
is over, or with ``--snapshots day`` of the as-of day only). Two floors,
in the same run on the same database: the index-only count by state
(``SELECT state, count(*) ... GROUP BY state``, what a dashboard counter
costs) and one scan of the ticket rows reading the columns a report needs
(``count(rectified_at)``, ``count(due_at)`` grouped by state and category),
which is the least any per-category report with deadlines must read. Rounds
alternate floors and reports; the median of each is shown with the ratios, and the
as-of report from the snapshot must equal the one from the log. ``--log-rounds``
sets how often the (slow) as-of report from the log runs; 0 skips it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.engine_context import as_uow
from engine import db
from engine.models import Campaign, Ticket, Timer, TransitionLog
from engine.report import campaign_report
from engine.snapshots import take_snapshots

BENCH_NOW = datetime(2005, 3, 14, 2, 0, tzinfo=UTC)


def table_scan(session: Session, campaign_id: int) -> int:
    rows = session.execute(
        select(
            Ticket.state,
            Ticket.category,
            func.count(),
            func.count(Ticket.rectified_at),
            func.count(Ticket.due_at),
        )
        .where(Ticket.campaign_id == campaign_id)
        .group_by(Ticket.state, Ticket.category)
    ).all()
    return sum(r[2] for r in rows)


def floor(session: Session, campaign_id: int) -> int:
    rows = session.execute(
        select(Ticket.state, func.count())
        .where(Ticket.campaign_id == campaign_id)
        .group_by(Ticket.state)
    ).all()
    return sum(n for _, n in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--campaign", default="consultation-2005")
    parser.add_argument("--as-of", default="2005-03-10")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--log-rounds",
        type=int,
        default=None,
        help="rounds of the as-of report from the log (default: --rounds; 0 skips it)",
    )
    parser.add_argument(
        "--snapshots",
        choices=("all", "day"),
        default="all",
        help="take the snapshots of every day that is over (the nightly run's work) or of "
        "the as-of day only",
    )
    parser.add_argument(
        "--instant",
        default=None,
        help="also time the report as of this ISO instant (from the log: an instant has no "
        "snapshot), --log-rounds times",
    )
    args = parser.parse_args()
    log_rounds = args.rounds if args.log_rounds is None else args.log_rounds
    engine = db.make_engine(args.url)
    timings: dict[str, list[float]] = {
        "floor": [],
        "table scan": [],
        "report": [],
        "report as of (log)": [],
        "report as of (snapshot)": [],
        "report as of instant (log)": [],
    }
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with Session(engine) as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.code == args.campaign))
        total_all = session.scalar(select(func.count()).select_from(Ticket))
        log_rows = session.scalar(select(func.count()).select_from(TransitionLog))
        timer_rows = session.scalar(select(func.count()).select_from(Timer))
        print(
            f"{engine.dialect.name}: {total_all:,} tickets, {log_rows:,} log rows, "
            f"{timer_rows:,} timers in the database"
        )
        days = None if args.snapshots == "all" else [date.fromisoformat(args.as_of)]
        started = time.perf_counter()
        kept = take_snapshots(as_uow(session), args.campaign, now=BENCH_NOW, days=days)
        session.commit()
        took = time.perf_counter() - started
        print(
            f"snapshots ({args.snapshots}): {len(kept)} days computed in {took:.1f} s"
            + (f" ({took / len(kept):.1f} s a day)" if kept else "")
        )
        earlier: dict[str, object] | None = None
        for round_ in range(max(args.rounds, log_rounds)):
            if round_ < args.rounds:
                started = time.perf_counter()
                n = floor(session, campaign_id)
                timings["floor"].append(time.perf_counter() - started)
                session.rollback()
                started = time.perf_counter()
                table_scan(session, campaign_id)
                timings["table scan"].append(time.perf_counter() - started)
                session.rollback()
                started = time.perf_counter()
                report = campaign_report(as_uow(session), args.campaign, now=BENCH_NOW)
                timings["report"].append(time.perf_counter() - started)
                session.rollback()
                started = time.perf_counter()
                kept_report = campaign_report(as_uow(session), args.campaign, as_of=args.as_of)
                timings["report as of (snapshot)"].append(time.perf_counter() - started)
                session.rollback()
                assert "snapshot_computed_at" in kept_report, "no snapshot for the as-of day"
            if round_ < log_rounds:
                started = time.perf_counter()
                earlier = campaign_report(
                    as_uow(session), args.campaign, as_of=args.as_of, use_snapshot=False
                )
                timings["report as of (log)"].append(time.perf_counter() - started)
                session.rollback()
                if args.instant:
                    started = time.perf_counter()
                    campaign_report(as_uow(session), args.campaign, as_of=args.instant)
                    timings["report as of instant (log)"].append(time.perf_counter() - started)
                    session.rollback()
    assert report["total"] == n
    kept_report.pop("snapshot_computed_at")
    if earlier is not None:
        assert kept_report == earlier, "the snapshot and the log disagree"
    print(
        f"campaign {args.campaign}: {n:,} tickets; as of {args.as_of}: {kept_report['total']:,} "
        f"tickets, {kept_report['fed_back']:,} fed back"
    )
    base = statistics.median(timings["floor"])
    scan = statistics.median(timings["table scan"])
    for name, values in timings.items():
        if not values:
            continue
        median = statistics.median(values)
        print(
            f"{name:>24}: median {median:.2f} s over {len(values)} rounds "
            f"({median / base:.1f}x index count, {median / scan:.1f}x table scan); "
            f"all: {', '.join(f'{v:.2f}' for v in values)}"
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    engine.dispose()


if __name__ == "__main__":
    main()
