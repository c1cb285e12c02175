"""Load test: gunicorn + several `rectiflow worker` processes + many clients on one PostgreSQL.

    python -m bench.loadtest --tickets 20000 --clients 16 --duration 60

What it does, all on 127.0.0.1 and bounded in time and count:

1. builds a fresh PostgreSQL database (``rectiflow_load`` by default) with
   ``bench.generate`` (or uses ``--url`` as it is with ``--no-generate``);
2. starts gunicorn serving ``web:create_app()`` with ``--web-workers`` processes,
   and ``--workers`` ``rectiflow worker`` processes sweeping every second on the
   system clock, so they fire the (long overdue) timers of the generated
   province while the clients work;
3. measures ``GET /healthz`` with all clients for ``--baseline`` seconds (the
   trivial endpoint of the same app: what the machine gives any request now);
4. lets ``--clients`` threads, each with its own supervisor API token, fire
   transitions on a small set of ``--hot`` tickets for ``--duration`` seconds
   (or ``--max-requests``): escalate to government, feed back, reopen, reassign,
   each POST carrying the ``expected_version`` the client last saw, so clients
   and workers collide all the time;
5. measures ``/healthz`` again, stops every process it started, then checks:
   no 5xx and no transport error; every refusal a 409; every 200 is exactly one
   log row written by the API's user with the version the response reported
   (nothing lost, nothing applied twice); every ticket's version equals its log
   length; ``audit verify`` finds nothing.

Prints throughput and latency (median, p95) of both endpoints and exits 1 if a
check fails. ``run_clients`` and ``check_consistency`` are reused by the fast
integration test (tests/integration/test_concurrent_transitions.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from engine import audit, db
from engine.models import Ticket, TransitionLog, Unit, User
from engine.settings import PROJECT_ROOT

HOT_STATES = ("assigned", "escalated", "fed_back")
FEEDBACK_TEXT = "We called back and explained what the county government decided."


# --- clients -----------------------------------------------------------------------------------


@dataclass
class ClientStats:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # (ticket number, version the 200 response reported)
    applied: list[tuple[str, int]] = field(default_factory=list)
    conflict_codes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = raw[:200]
    return response.status, data


def choose_transition(
    ticket: dict[str, Any], officers: dict[str, list[str]], rng: random.Random
) -> tuple[str, dict[str, Any]]:
    """A trigger a supervisor may fire from the ticket's state, with valid data."""
    state = ticket["state"]
    today = datetime.now(UTC).date().isoformat()
    if state == "assigned":
        choices = officers.get(ticket.get("unit") or "", [])
        others = [o for o in choices if o != ticket.get("assignee")]
        if others and rng.random() < 0.4:
            return "reassign", {
                "unit": ticket["unit"],
                "officer": rng.choice(others),
                "reason": "Load test: handed to a colleague",
            }
        return "escalate_to_government", {
            "receiving_body": "County People's Government",
            "reason": "Load test: outside the bureau's duties",
        }
    if state == "escalated":
        return "feed_back", {"method": "phone", "text": FEEDBACK_TEXT, "date": today}
    if state == "fed_back":
        return "reopen", {"reason": "Load test: the citizen was not satisfied"}
    raise ValueError(f"no supervisor transition planned from {state!r}")


def run_clients(
    base_url: str,
    tokens: list[str],
    numbers: list[str],
    officers: dict[str, list[str]],
    *,
    duration: float,
    max_requests: int,
    seed: int = 7,
) -> ClientStats:
    """``len(tokens)`` threads firing transitions on ``numbers`` until time or count runs out."""
    deadline = time.perf_counter() + duration
    budget = [max_requests]
    lock = threading.Lock()
    merged = ClientStats()
    parts = urlsplit(base_url)

    def take() -> bool:
        with lock:
            if budget[0] <= 0 or time.perf_counter() >= deadline:
                return False
            budget[0] -= 1
            return True

    def client(index: int, token: str) -> None:
        rng = random.Random(seed * 1000 + index)
        stats = ClientStats()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        seen: dict[str, dict[str, Any]] = {}
        prefix = parts.path.rstrip("/") + "/api/v1/tickets/"
        while take():
            number = rng.choice(numbers)
            try:
                if number not in seen:
                    status, data = _request(conn, "GET", prefix + number, token)
                    if status != 200:
                        stats.statuses[status] += 1
                        stats.unexpected.append(f"GET {number}: {status} {data}")
                        continue
                    seen[number] = data
                ticket = seen[number]
                trigger, payload = choose_transition(ticket, officers, rng)
                body = {
                    "trigger": trigger,
                    "expected_version": ticket["version"],
                    "data": payload,
                }
                started = time.perf_counter()
                status, data = _request(conn, "POST", prefix + number + "/transitions", token, body)
                stats.latencies.append(time.perf_counter() - started)
                stats.statuses[status] += 1
                if status == 200:
                    stats.applied.append((number, int(data["version"])))
                    seen[number] = data
                elif status == 409:
                    stats.conflict_codes[str((data or {}).get("error", {}).get("code"))] += 1
                    seen.pop(number, None)
                else:
                    stats.unexpected.append(f"POST {number} {trigger}: {status} {data}")
                    seen.pop(number, None)
            except (OSError, http.client.HTTPException) as exc:
                stats.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                seen.pop(number, None)
        conn.close()
        with lock:
            merged.statuses.update(stats.statuses)
            merged.latencies.extend(stats.latencies)
            merged.errors.extend(stats.errors)
            merged.applied.extend(stats.applied)
            merged.conflict_codes.update(stats.conflict_codes)
            merged.unexpected.extend(stats.unexpected)

    threads = [
        threading.Thread(target=client, args=(i, t), daemon=True) for i, t in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    return merged


def run_trivial(base_url: str, clients: int, duration: float) -> ClientStats:
    """``clients`` threads calling ``GET /healthz`` for ``duration`` seconds."""
    deadline = time.perf_counter() + duration
    parts = urlsplit(base_url)
    merged = ClientStats()
    lock = threading.Lock()

    def client() -> None:
        stats = ClientStats()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status, _ = _request(conn, "GET", parts.path.rstrip("/") + "/healthz", None)
            except (OSError, http.client.HTTPException) as exc:
                stats.errors.append(str(exc))
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                continue
            stats.latencies.append(time.perf_counter() - started)
            stats.statuses[status] += 1
        conn.close()
        with lock:
            merged.statuses.update(stats.statuses)
            merged.latencies.extend(stats.latencies)
            merged.errors.extend(stats.errors)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 60)
    return merged


# --- setup and checks --------------------------------------------------------------------------


def pick_hot_tickets(session: Session, count: int, seed: int = 7) -> list[str]:
    """``count`` tickets a supervisor can keep cycling (assigned, escalated or fed back; with
    an assignee so that reopening is allowed)."""
    rows = session.execute(
        select(Ticket.number)
        .where(Ticket.state.in_(HOT_STATES), Ticket.assignee_id.is_not(None))
        .order_by(Ticket.id.desc())
        .limit(count * 20)
    ).scalars()
    numbers = list(rows)
    random.Random(seed).shuffle(numbers)
    return sorted(numbers[:count])


def officers_by_unit(session: Session) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for code, username in session.execute(
        select(Unit.code, User.username)
        .join(User, User.unit_id == Unit.id)
        .where(User.role == "officer", User.active.is_(True))
    ):
        out[code].append(username)
    return dict(out)


def make_tokens(session: Session, username: str, count: int) -> list[str]:
    from engine.tokens import create_token

    now = datetime.now(UTC)
    return [
        create_token(session, username, now=now, name=f"load test client {i}").token
        for i in range(count)
    ]


def max_log_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(TransitionLog.id), 0))) or 0)


@dataclass
class Consistency:
    problems: list[str]
    api_rows: int
    system_rows: int
    tickets_checked: int
    audit_problems: int


def check_consistency(
    engine: Engine,
    stats: ClientStats,
    *,
    since_log_id: int,
    api_user: str,
    audit_key: bytes | None = None,
    verify_all: bool = True,
) -> Consistency:
    """Nothing lost, nothing applied twice, versions = log lengths, the log verifies."""
    problems: list[str] = []
    with Session(engine) as session:
        rows = session.execute(
            select(Ticket.number, TransitionLog.seq, TransitionLog.actor)
            .join(Ticket, Ticket.id == TransitionLog.ticket_id)
            .where(TransitionLog.id > since_log_id)
        ).all()
        written = Counter((r.number, r.seq) for r in rows if r.actor == api_user)
        system_rows = sum(1 for r in rows if r.actor != api_user)
        reported = Counter(stats.applied)
        for key, n in reported.items():
            if n > 1:
                problems.append(f"{key[0]} version {key[1]} was reported applied {n} times")
            if written.get(key, 0) == 0:
                problems.append(f"{key[0]} version {key[1]} answered 200 but has no log row: lost")
        for key, n in written.items():
            if key not in reported:
                problems.append(
                    f"{key[0]} seq {key[1]} was written by {api_user} but no client got a 200"
                )
            if n > 1:
                problems.append(f"{key[0]} seq {key[1]} written {n} times")
        mismatched = session.execute(
            text(
                "SELECT t.number, t.version, COALESCE(l.n, 0) AS n FROM tickets t "
                "LEFT JOIN (SELECT ticket_id, count(*) AS n FROM transition_log GROUP BY ticket_id) l "
                "ON l.ticket_id = t.id WHERE t.version <> COALESCE(l.n, 0) LIMIT 20"
            )
        ).all()
        for m in mismatched:
            problems.append(f"{m.number}: version {m.version} but {m.n} log rows")
        tickets_checked = int(session.scalar(select(func.count()).select_from(Ticket)) or 0)
        if verify_all:
            found = audit.verify(session, key=audit_key)
        else:
            found = []
            for number in sorted({n for n, _ in stats.applied}):
                found.extend(audit.verify(session, ticket=number, key=audit_key))
        problems.extend(f"audit: {p.message}" for p in found[:20])
    bad_status = {s: n for s, n in stats.statuses.items() if s not in (200, 409)}
    if bad_status:
        problems.append(f"unexpected statuses {bad_status}: {stats.unexpected[:5]}")
    if stats.errors:
        problems.append(f"{len(stats.errors)} transport errors: {stats.errors[:3]}")
    return Consistency(problems, sum(written.values()), system_rows, tickets_checked, len(found))


def summarise(stats: ClientStats, seconds: float) -> dict[str, float]:
    lat = sorted(stats.latencies)
    if not lat:
        return {"requests": 0, "per_s": 0.0, "median_ms": 0.0, "p95_ms": 0.0}
    return {
        "requests": len(lat),
        "per_s": len(lat) / seconds,
        "median_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000,
    }


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base_url: str, timeout: float = 60) -> None:
    parts = urlsplit(base_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            status, _ = _request(conn, "GET", "/healthz", None)
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on {base_url} within {timeout} s")


def start_processes(
    url: str,
    port: int,
    web_workers: int,
    threads: int,
    workers: int,
    log_dir: str,
    sweep_batch: int,
) -> list[subprocess.Popen[bytes]]:
    env = dict(
        os.environ,
        RECTIFLOW_DATABASE_URL=url,
        RECTIFLOW_WORKER_SWEEP_BATCH=str(sweep_batch),
        PYTHONUNBUFFERED="1",
    )
    procs: list[subprocess.Popen[bytes]] = []
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(web_workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--timeout",
        "60",
        "web:create_app()",
    ]
    with open(os.path.join(log_dir, "gunicorn.log"), "wb") as out:
        procs.append(subprocess.Popen(gunicorn, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out))
    for i in range(workers):
        cmd = [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "worker",
            "--sweep-seconds",
            "1",
        ]
        with open(os.path.join(log_dir, f"worker-{i}.log"), "wb") as out:
            procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out))
    return procs


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# --- the command -------------------------------------------------------------------------------


def _print_row(label: str, s: dict[str, float]) -> None:
    print(
        f"  {label:<26}{s['requests']:>8.0f} req  {s['per_s']:8.1f} req/s  "
        f"median {s['median_ms']:7.2f} ms  p95 {s['p95_ms']:7.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadtest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--url", default="postgresql://postgres@127.0.0.1:5432/rectiflow_load", help="PostgreSQL"
    )
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets to generate")
    parser.add_argument("--no-generate", action="store_true", help="use --url as it is")
    parser.add_argument("--keep", action="store_true", help="keep a generated database")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--workers", type=int, default=2, help="`rectiflow worker` processes")
    parser.add_argument(
        "--sweep-batch",
        type=int,
        default=50,
        help="timers per sweep transaction; a batch holds its tickets' row locks until commit",
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--hot", type=int, default=50, help="tickets the clients fight over")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of transitions")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of /healthz, twice")
    parser.add_argument("--verify", choices=("all", "touched"), default="all")
    args = parser.parse_args(argv)
    url = db.normalise_url(args.url)
    if not url.startswith("postgresql"):
        parser.error("the load test runs on PostgreSQL (several processes share the database)")
    import tempfile

    from bench.generate import generate, prepare_database
    from bench.reach import unreachable
    from engine.settings import audit_key, load_settings

    problem = unreachable(url, server_only=not args.no_generate)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    key = audit_key(load_settings())
    if args.no_generate:
        engine = db.make_engine(url)
    else:
        engine = prepare_database(url, fresh=True)
        generate(engine, tickets=args.tickets, key=key, progress=False)
    api_user = "supervisor"
    with Session(engine) as session:
        numbers = pick_hot_tickets(session, args.hot)
        officers = officers_by_unit(session)
        tokens = make_tokens(session, api_user, args.clients)
        session.commit()
        since = max_log_id(session)
    log_dir = tempfile.mkdtemp(prefix="rectiflow-load-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs = start_processes(
        url, port, args.web_workers, args.threads, args.workers, log_dir, args.sweep_batch
    )
    try:
        wait_until_up(base)
        before = run_trivial(base, args.clients, args.baseline)
        started = time.perf_counter()
        stats = run_clients(
            base,
            tokens,
            numbers,
            officers,
            duration=args.duration,
            max_requests=args.max_requests,
        )
        elapsed = time.perf_counter() - started
        after = run_trivial(base, args.clients, args.baseline)
    finally:
        stop_processes(procs)
    result = check_consistency(
        engine,
        stats,
        since_log_id=since,
        api_user=api_user,
        audit_key=key,
        verify_all=args.verify == "all",
    )
    print(
        f"load test: {args.clients} clients on {len(numbers)} hot tickets for {elapsed:.1f} s; "
        f"gunicorn {args.web_workers} workers x {args.threads} threads; "
        f"{args.workers} rectiflow workers (sweep batch {args.sweep_batch}); PostgreSQL {engine.dialect.server_version_info}"
    )
    _print_row("GET /healthz (before)", summarise(before, args.baseline))
    _print_row("POST transitions", summarise(stats, elapsed))
    _print_row("GET /healthz (after)", summarise(after, args.baseline))
    applied = len(stats.applied)
    print(
        f"  statuses {dict(sorted(stats.statuses.items()))}; 409 codes {dict(stats.conflict_codes)}"
    )
    print(
        f"  applied {applied} transitions ({applied / elapsed:.1f}/s); log rows by the API "
        f"{result.api_rows}, by the workers {result.system_rows}; "
        f"{result.tickets_checked:,} tickets checked, audit problems {result.audit_problems}"
    )
    print(f"  logs: {log_dir}")
    if not args.no_generate and not args.keep:
        engine.dispose()
        _drop(url)
    if result.problems:
        print("FAILED:")
        for p in result.problems[:40]:
            print(f"  {p}")
        return 1
    print("OK: nothing lost, nothing applied twice, no 5xx, every conflict a 409, log intact")
    return 0


def _drop(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
