"""Transitions through the JSON API, next to the engine's own ``fire()`` on the same database.

The API path: ``POST /api/v1/tickets/{number}/transitions`` through the Flask app in-process
(WSGI test client, no sockets): Bearer-token lookup, JSON parsing and marshmallow validation,
the unit check, ``fire()``, one commit, re-reading the ticket and serializing it with its
allowed triggers. The peer, in the same run on the same SQLite file and settings:
``engine.tickets.fire`` called directly with one commit per transition (bench.transitions
compares that one with the bare SQL floor). Rounds alternate; the best and median of each are
reported with the ratio, which is the API layer's cost.

    python -m bench.api [--tickets 300] [--rounds 3] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import logging
import platform
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bench.engine_context import as_uow
from bench.transitions import NOW, STEPS, build
from engine.clock import FixedClock
from engine.tickets import fire, get_actor
from engine.tokens import create_token
from web import create_app


def run_api(url: str, engine, numbers: list[str], synchronous: str) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    app = create_app(
        {"database_url": url, "secret_key": "bench", "sqlite_synchronous": synchronous}
    )
    clock = FixedClock(NOW)
    app.config["CLOCK"] = clock
    with Session(engine) as s:
        tokens = {user: create_token(s, user, now=NOW).token for _, user, _ in STEPS}
        s.commit()
    client = app.test_client()
    count = 0
    start = time.perf_counter()
    for step, (trigger, user, data) in enumerate(STEPS):
        clock.set(NOW + timedelta(minutes=step))
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        for number in numbers:
            response = client.post(
                f"/api/v1/tickets/{number}/transitions",
                json={"trigger": trigger, "expected_version": step + 1, "data": data},
                headers=headers,
            )
            if response.status_code != 200:
                raise SystemExit(f"{number} {trigger}: {response.status_code} {response.json}")
            count += 1
    elapsed = time.perf_counter() - start
    app.extensions["rectiflow.engine"].dispose()
    return count, elapsed


def run_engine(engine, numbers: list[str]) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        actors = {user: get_actor(s, user) for _, user, _ in STEPS}
        s.commit()
        count = 0
        start = time.perf_counter()
        for step, (trigger, user, data) in enumerate(STEPS):
            for number in numbers:
                fire(
                    as_uow(s),
                    number,
                    trigger,
                    actor=actors[user],
                    data=data,
                    expected_version=step + 1,
                    now=NOW + timedelta(minutes=step),
                )
                s.commit()
                count += 1
        return count, time.perf_counter() - start


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300, help="tickets per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    engine_rates: list[float] = []
    api_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            path = Path(tmp) / f"round{round_no}.db"
            engine, numbers = build(path, args.tickets, args.synchronous)
            half = len(numbers) // 2
            n, secs = run_engine(engine, numbers[:half])
            engine_rates.append(n / secs)
            n, secs = run_api(f"sqlite:///{path}", engine, numbers[half:], args.synchronous)
            api_rates.append(n / secs)
            print(
                f"round {round_no + 1}: engine fire() {engine_rates[-1]:,.0f}/s  "
                f"API {api_rates[-1]:,.0f}/s  ratio {api_rates[-1] / engine_rates[-1]:.2f}"
            )
            engine.dispose()
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, synchronous={args.synchronous}, "
        f"{args.tickets * 4} transitions per side per round"
    )
    print(
        f"engine fire():    best {max(engine_rates):,.0f}/s, median {statistics.median(engine_rates):,.0f}/s"
    )
    print(
        f"API transitions:  best {max(api_rates):,.0f}/s, median {statistics.median(api_rates):,.0f}/s"
    )
    print(
        f"ratio (best/best): {max(api_rates) / max(engine_rates):.2f}   ratio (median/median): "
        f"{statistics.median(api_rates) / statistics.median(engine_rates):.2f}"
    )


if __name__ == "__main__":
    main()
