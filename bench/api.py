"""API transitions under gunicorn, next to a trivial endpoint of the same app (issue 15 item 3).

    python -m bench.run api                     # SQLite and PostgreSQL, results to bench/results/
    python -m bench.api [--database sqlite] [--clients 4] [--rounds 3]

For each database, one gunicorn (``--web-workers`` gthread workers × ``--threads``) serves
``web:create_app()`` on loopback, on a fresh database with the sample organisation and
campaign; rate-limit counters go to Redis when one answers (the setting a deployment of
several processes uses; else the database). ``--clients`` threads, each with its own
keep-alive connection and its own API tokens, drive two sides in interleaved blocks:

* transitions: ``POST /api/v1/tickets/{number}/transitions`` — each client takes its own
  tickets through the four steps (categorize, assign, rectify, feed back) with the
  ``expected_version`` it last saw, so nothing conflicts; every answer must be 200 with the
  next version (token check, JSON validation, ``fire()``, one commit, the answer);
* trivial: ``GET /healthz`` of the same app, same clients and connections: what the
  machine gives any request of this app now.

Each round reports both rates and the ratio transitions / trivial; the summary their
medians and spread. Target: ≥ 0.3. On Linux each side's CPU time in gunicorn's processes
per request is reported too (``server_cpu_ms``): a transition's ratio far below the ratio of
CPU times means it waits (the disk's fsync at commit, round trips, the write lock), not works.
Each round also says how many workers served it (``busy_workers``).

One worker by default (``bench.run`` too): the clients' keep-alive connections stay with the
worker that accepted them, and with two workers gunicorn gave all four to one of them in some
runs and split them in others. A round served by two is another measurement: ``/healthz``
then runs on two interpreters while the transitions' other work (the client threads, the
PostgreSQL backend, SQLite's one write lock) already had the second core, so on two cores
its ratio read 0.17-0.21 where the same commit read 0.23-0.30 with one busy. The ratio here
compares the cost of the two requests in one interpreter; ``--web-workers 2`` still runs the
other layout.

``--rate-limits`` picks where the counters go: ``redis`` (when one answers; else the
database), or ``database`` (the default of ``config/default.toml``, table ``rate_limits``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.common import PG_ADMIN, interleave, require_postgres, result, spread
from bench.loadtest import free_port, start_processes, stop_processes, wait_until_up
from bench.transitions import STEPS, build_url
from engine.settings import load_settings
from engine.tokens import create_token

REDIS_URL = os.environ.get("RECTIFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PG_DATABASE = "rectiflow_bench_api"


def redis_answers(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means "no Redis here"
        return False


def _post(conn: http.client.HTTPConnection, path: str, token: str, body: Any) -> tuple[int, Any]:
    conn.request(
        "POST",
        path,
        body=json.dumps(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` and its children (Linux
    ``/proc``); None where there is no ``/proc``."""
    by_process = cpu_by_process(pid)
    return None if by_process is None else sum(by_process.values())


def cpu_by_process(pid: int) -> dict[int, float] | None:
    """CPU seconds used so far by process ``pid`` and by each of its children (gunicorn's
    workers), by process id; None where there is no ``/proc``."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p: str) -> list[str] | None:
        try:
            return (proc / p / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            return None  # gone meanwhile

    out: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        f = fields(entry.name)
        if f is not None and (entry.name == str(pid) or f[1] == str(pid)):
            out[int(entry.name)] = (int(f[11]) + int(f[12])) / tick
    return out


def busy_workers(before: dict[int, float], after: dict[int, float], server: int) -> int:
    """How many of gunicorn's workers did at least a tenth of the work between two readings
    of ``cpu_by_process``. The clients' keep-alive connections stay with the worker that
    accepted them, and gunicorn often gives all of them to one worker: a round served by one
    worker (one interpreter, one SQLite connection pool) and one served by two are different
    measurements, so each round says which it was."""
    used = {p: after[p] - before.get(p, 0.0) for p in after if p != server}
    total = sum(used.values())
    return sum(1 for v in used.values() if total > 0 and v >= total / 10)


def _in_threads(work: list[Any]) -> float:
    """Run each callable in ``work`` in its own thread at once; the seconds until all ended.
    The first error any raised is raised here."""
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


class Clients:
    """``n`` clients, each with a keep-alive connection and a token per user of the steps."""

    def __init__(self, port: int, n: int, tokens: list[dict[str, str]]) -> None:
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(n)]
        self.tokens = tokens

    def transitions(self, tickets: list[list[str]]) -> tuple[int, float]:
        """Client ``i`` takes ``tickets[i]`` through the four steps; every answer a 200."""

        def client(i: int) -> None:
            conn, tokens = self.conns[i], self.tokens[i]
            for number in tickets[i]:
                for step, (trigger, user, data) in enumerate(STEPS):
                    status, body = _post(
                        conn,
                        f"/api/v1/tickets/{number}/transitions",
                        tokens[user],
                        {"trigger": trigger, "expected_version": step + 1, "data": data},
                    )
                    if status != 200 or body.get("version") != step + 2:
                        raise RuntimeError(f"{number} {trigger}: {status} {body}")

        seconds = _in_threads([lambda i=i: client(i) for i in range(len(self.conns))])
        return sum(len(t) for t in tickets) * len(STEPS), seconds

    def trivial(self, per_client: int) -> tuple[int, float]:
        def client(i: int) -> None:
            for _ in range(per_client):
                status = _get(self.conns[i], "/healthz")
                if status != 200:
                    raise RuntimeError(f"/healthz answered {status}")

        seconds = _in_threads([lambda i=i: client(i) for i in range(len(self.conns))])
        return per_client * len(self.conns), seconds

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _database_url(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'api.db'}"
    require_postgres()
    url = make_url(PG_ADMIN).set(database=PG_DATABASE)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def _drop_database(kind: str) -> None:
    if kind != "postgresql":
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
    admin.dispose()


def measure(
    *,
    database: str,
    clients: int,
    tickets_per_block: int,
    trivial_per_block: int,
    blocks: int,
    rounds: int,
    web_workers: int,
    threads: int,
    rate_limits: str = "redis",
) -> dict[str, Any]:
    per_round = tickets_per_block * clients * blocks
    redis = rate_limits == "redis" and redis_answers(REDIS_URL)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = _database_url(database, workdir)
        # Each round's tickets, then one per client to warm up with (not counted).
        engine, numbers = build_url(url, (per_round * rounds + 1) // 2, extra=clients)
        now = datetime.now(UTC)
        with Session(engine) as s:
            tokens = [
                {user: create_token(s, user, now=now).token for _, user, _ in STEPS}
                for _ in range(clients)
            ]
            s.commit()
        engine.dispose()
        env_before = {k: os.environ.get(k) for k in ("RECTIFLOW_RATE_LIMIT_URL",)}
        os.environ["RECTIFLOW_RATE_LIMIT_URL"] = REDIS_URL if redis else ""
        port = free_port()
        procs = start_processes(url, port, web_workers, threads, 0, tmp, 1000)
        try:
            wait_until_up(f"http://127.0.0.1:{port}")
            driver = Clients(port, clients, tokens)
            driver.trivial(20)  # warm every worker and connection
            # and the transitions' first uses: each token's first time of use, the caches
            warm = numbers[per_round * rounds : per_round * rounds + clients]
            driver.transitions([[number] for number in warm])
            server = procs[0].pid
            out_rounds = []
            for r in range(rounds):
                mine = numbers[r * per_round : (r + 1) * per_round]

                def block_tickets(i: int, mine: list[str] = mine) -> list[list[str]]:
                    start = i * tickets_per_block * clients
                    return [
                        mine[start + c * tickets_per_block : start + (c + 1) * tickets_per_block]
                        for c in range(clients)
                    ]

                cpu = {"transitions": 0.0, "trivial": 0.0}
                at_start = cpu_by_process(server)

                def counted(side: str, block: Any, cpu: dict[str, float] = cpu) -> Any:
                    def run_block(i: int) -> tuple[int, float]:
                        before = cpu_seconds(server)
                        done = block(i)
                        after = cpu_seconds(server)
                        if before is not None and after is not None:
                            cpu[side] += after - before
                        return done  # type: ignore[no-any-return]

                    return run_block

                done = interleave(
                    {
                        "transitions": counted(
                            "transitions", lambda i: driver.transitions(block_tickets(i))
                        ),
                        "trivial": counted("trivial", lambda i: driver.trivial(trivial_per_block)),
                    },
                    blocks,
                )
                rates = {name: n / seconds for name, (n, seconds) in done.items()}
                at_end = cpu_by_process(server)
                out_rounds.append(
                    {
                        "busy_workers": busy_workers(at_start, at_end, server)
                        if at_start is not None and at_end is not None
                        else None,
                        "transitions_per_s": round(rates["transitions"], 1),
                        "trivial_per_s": round(rates["trivial"], 1),
                        "ratio": round(rates["transitions"] / rates["trivial"], 3),
                        "transitions": done["transitions"][0],
                        "trivial_requests": done["trivial"][0],
                        "server_cpu_ms": {
                            side: round(cpu[side] * 1000 / done[side][0], 3) for side in cpu
                        },
                    }
                )
            driver.close()
        finally:
            stop_processes(procs)
            for key, value in env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _drop_database(database)
    summary = {
        "ratio": spread([r["ratio"] for r in out_rounds]),
        "transitions_per_s": spread([r["transitions_per_s"] for r in out_rounds]),
        "trivial_per_s": spread([r["trivial_per_s"] for r in out_rounds]),
        "server_cpu_ms": {
            side: spread([r["server_cpu_ms"][side] for r in out_rounds])
            for side in ("transitions", "trivial")
        },
        "busy_workers": [r["busy_workers"] for r in out_rounds],
        "target_ratio": 0.3,
        "backend": database,
    }
    summary["met"] = summary["ratio"]["median"] >= summary["target_ratio"]
    return result(
        f"api-{database}",
        command=(
            f"python -m bench.api --database {database} --clients {clients} "
            f"--tickets-per-block {tickets_per_block} --trivial-per-block {trivial_per_block} "
            f"--blocks {blocks} --rounds {rounds} --web-workers {web_workers} --threads {threads}"
            f" --rate-limits {rate_limits}"
        ),
        params={
            "clients": clients,
            "tickets_per_block": tickets_per_block,
            "trivial_per_block": trivial_per_block,
            "blocks": blocks,
            "rounds": rounds,
            "web_workers": web_workers,
            "threads": threads,
            "rate_limit_storage": "redis" if redis else "database",
            # what the served app reads (config/default.toml, then RECTIFLOW_* variables)
            "sqlite_synchronous": load_settings()["sqlite_synchronous"]
            if database == "sqlite"
            else None,
        },
        rounds=out_rounds,
        summary=summary,
    )


# Eight blocks a round, five rounds: a block is a fraction of a second here, and with four
# blocks and three rounds one slow second of a shared machine moved the median by 0.05
# (0.26-0.34 at one commit on 2026-12-01); the medians of five rounds of eight read
# 0.28-0.33 in six runs on both databases.
BLOCKS, ROUNDS = 8, 5


def run(quick: bool) -> list[dict[str, Any]]:
    """For ``bench.run``: SQLite and PostgreSQL."""
    blocks, rounds = (2, 2) if quick else (BLOCKS, ROUNDS)
    return [
        measure(
            database=kind,
            clients=4,
            tickets_per_block=5,
            trivial_per_block=100,
            blocks=blocks,
            rounds=rounds,
            web_workers=1,
            threads=4,
        )
        for kind in ("sqlite", "postgresql")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--tickets-per-block", type=int, default=5, help="per client")
    parser.add_argument("--trivial-per-block", type=int, default=100, help="per client")
    parser.add_argument("--blocks", type=int, default=BLOCKS, help="interleaved blocks per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--rate-limits",
        default="redis",
        choices=["redis", "database"],
        help="where the counters go (redis: when one answers, else the database)",
    )
    args = parser.parse_args()
    out = measure(
        database=args.database,
        clients=args.clients,
        tickets_per_block=args.tickets_per_block,
        trivial_per_block=args.trivial_per_block,
        blocks=args.blocks,
        rounds=args.rounds,
        web_workers=args.web_workers,
        threads=args.threads,
        rate_limits=args.rate_limits,
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
