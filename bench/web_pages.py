"""Whole HTML pages against the read-model query they are built on: what rendering adds.

    python -m bench.generate --url sqlite:///instance/bench-web.db --tickets 100000 --fresh
    python -m bench.web_pages --url sqlite:///instance/bench-web.db

For each page the peer is the engine query the page runs (``engine.read``),
in a new session as the app does per request; the page is the full request
through the Flask test client (signed in, session load, role check, the query,
Jinja rendering, the after-request headers). Both run in the same process and
the same run, interleaved; the ratio page / query is what the web layer costs.
Times are medians and p95 over ``--repeat`` requests, at ``bench.generate.BENCH_NOW``.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bench.generate import BENCH_NOW
from engine import db
from engine.clock import FixedClock
from engine.models import Ticket, User
from engine.read import pages as queries
from engine.web_sessions import start_session


def _time(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    from web import create_app

    app = create_app(
        {"database_url": args.url, "SECRET_KEY": "bench", "CLOCK": FixedClock(BENCH_NOW)}
    )
    sessions = db.session_factory(app.extensions["rectiflow.engine"])
    with sessions() as s:
        officer = s.execute(
            select(User.id, func.count().label("n"))
            .join(Ticket, Ticket.assignee_id == User.id)
            .where(Ticket.closed_at.is_(None))
            .group_by(User.id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        supervisor = s.scalar(select(User.id).where(User.username == "supervisor"))
        inspector = s.scalar(select(User.id).where(User.username == "inspector"))
        numbers = list(
            s.scalars(
                select(Ticket.number)
                .where(Ticket.assignee_id == officer.id)
                .order_by(Ticket.id)
                .limit(args.repeat)
            )
        )
        tickets = s.scalar(select(func.count()).select_from(Ticket))

    def client_for(user_id: int) -> Any:
        client = app.test_client()
        with app.extensions["rectiflow.ctx"].unit_of_work() as uow:
            sid = start_session(uow, user_id, now=BENCH_NOW)
        with client.session_transaction() as sess:
            sess["sid"] = sid
        return client

    officer_client = client_for(officer.id)
    supervisor_client = client_for(supervisor)
    inspector_client = client_for(inspector)
    since = BENCH_NOW - timedelta(days=14)

    def query(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with sessions() as s:
                return fn(s)

        return run

    def page(client: Any, path: str | Callable[[], str]) -> Callable[[], Any]:
        def run() -> Any:
            r = client.get(path() if callable(path) else path)
            assert r.status_code == 200, r.status_code
            return r

        return run

    cycle = iter(numbers * 4)
    cycle2 = iter(numbers * 4)
    day = since.strftime("%Y-%m-%d")
    cases = {
        "officer queue": (
            query(lambda s: queries.officer_queue(s, user_id=officer.id, now=BENCH_NOW)),
            page(officer_client, "/my/queue"),
        ),
        "overdue board": (
            query(lambda s: queries.overdue_board(s, now=BENCH_NOW, limit=100)),
            page(supervisor_client, "/supervisor/board"),
        ),
        "ticket page": (
            query(lambda s: queries.ticket_detail(s, number=next(cycle))),
            page(officer_client, lambda: f"/tickets/{next(cycle2)}"),
        ),
        "log search (one week)": (
            query(
                lambda s: queries.search_log(
                    s, since=since, until=since + timedelta(days=7), limit=100
                )
            ),
            page(inspector_client, f"/inspector/log?since={day}"),
        ),
    }
    print(f"# web pages vs their queries: {tickets:,} tickets, {args.url.split(':')[0]}")
    print(
        f"# Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{args.repeat} requests each, officer with {officer.n} open tickets"
    )
    print("| page | query median / p95 ms | page median / p95 ms | page / query (median) |")
    print("| --- | --- | --- | --- |")
    for name, (q, p) in cases.items():
        q(), p()  # warm up
        qs: list[float] = []
        ps: list[float] = []
        for _ in range(args.repeat // 10):  # interleave so drift hits both alike
            qs += _time(q, 10)
            ps += _time(p, 10)
        qm, pm = statistics.median(qs), statistics.median(ps)
        print(
            f"| {name} | {qm:.1f} / {_p95(qs):.1f} | {pm:.1f} / {_p95(ps):.1f} | {pm / qm:.1f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
