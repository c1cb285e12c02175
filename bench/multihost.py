"""A province on several hosts, on one machine: load across two application hosts, one cut.

    python -m bench.multihost --tickets 20000 --clients 12 --before 20 --during 30 --after 20

Builds the topology of ``bench.topology`` (network namespaces for two application
hosts, the database host and the clients; a PostgreSQL primary and a hot standby
fed by streaming replication), fills the primary with ``bench.generate`` (its
pending timers are long overdue on the system clock, so the workers have a backlog
to fire), then:

1. on application host 1, a sweep claims and fires a batch of due timers in a
   transaction that it does not commit (``hold``: a worker caught mid-sweep);
2. starts gunicorn and ``rectiflow worker`` on each application host, both
   pointed at the primary (reports and log searches at the standby);
3. ``--clients`` threads on the client host fire transitions through either
   application host (each POST carries ``expected_version`` and a request id in its
   reason), ``--before`` seconds with both hosts up;
4. cuts host 1's link (``ip link set eth0 down``) for ``--during`` seconds: its
   answers are lost, so the clients retry the same POST on host 2 (applied once,
   or a 409 with the ticket's current state), and host 2's worker must fire the
   timers host 1 held once the primary drops host 1's sessions;
5. brings host 1 back for ``--after`` seconds: its held sweep is refused on
   commit, its processes serve and sweep again;
6. reads: the report and the log search read the standby, a reader's own write
   is seen (standby once replayed, else the primary), and with the standby's
   replay paused the reads go to the primary with the reason in the header;
7. stops everything and checks: every request id applied at most once and every
   200 exactly once; every ticket's version equals its log length; the touched
   tickets' logs verify; no timer fired twice; every timer due has fired; host 1
   answered nothing while cut, and the primary committed nothing host 1 applied
   between the link going down and its coming back (``track_commit_timestamp``).

A transition counts in the phase it was both sent and answered in (the phase moves
once the link change has taken effect); one in flight across the cut or the rejoin
(an answer lost and retried, packets held until the link came back) is counted
apart, under ``in_flight``. Prints the figures (transitions per second in each
phase, latency, how long the surviving worker took to fire the cut host's held
timers) and exits 1 if a check fails, 2 (one line) if the topology cannot be built
here.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bench.topology import (
    ADDRESSES,
    STANDBY_PORT,
    Province,
    TopologyError,
    enter_netns,
    wait_for,
)
from engine.settings import PROJECT_ROOT

APP_HOSTS = ("app1", "app2")
HTTP_PORT = 8000
API_USER = "supervisor"
REQUEST_ID = re.compile(r"\[(c\d+-\d+|r\d+)\]")
READ_HEADER = "X-Rectiflow-Read-Source"
FIRST_TIMEOUT = 5.0  # a POST that takes longer is taken as lost (its host may be cut off)
RETRY_TIMEOUT = 60.0


# --- the held sweep (runs on application host 1) -----------------------------------------------


def hold(url: str, limit: int) -> int:
    """Claim and fire ``limit`` due timers without committing; wait for ``commit`` on stdin.

    Prints one JSON line with the timers and tickets held, keeps the transaction busy
    (``SELECT 1`` twice a second) until its connection is lost or stdin says
    ``commit``, then tries to commit and prints ``committed`` or ``refused: ...``.
    """
    from engine import db
    from engine.context import build_context
    from engine.timers import fire_due_timers

    engine = db.make_engine(url)
    session = Session(engine)
    result = fire_due_timers(
        build_context(engine=engine).bind(session), now=datetime.now(UTC), limit=limit
    )
    print(
        json.dumps(
            {
                "timers": [f.timer_id for f in result.firings],
                "tickets": sorted({f.ticket for f in result.firings}),
            }
        ),
        flush=True,
    )
    lost = ""
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.5)
        if ready:
            sys.stdin.readline()
            break
        if not lost:
            try:
                session.execute(text("SELECT 1"))
            except Exception as exc:  # noqa: BLE001 - the point: the link is gone
                lost = str(exc).strip().splitlines()[0]
                print(f"lost: {lost}", flush=True)
    try:
        session.commit()
        print("committed", flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"refused: {str(exc).strip().splitlines()[0]}", flush=True)
    return 0


# --- clients -----------------------------------------------------------------------------------


@dataclass
class Lost:
    """A POST whose answer did not come back, and what its retry on another host got."""

    request_id: str
    number: str
    expected_version: int
    first_host: str
    retry_host: str = ""
    retry_status: int = 0
    retry_details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stats:
    # (phase, host, status) → count; the phase is where the POST was sent *and* answered
    # (``Hosts.attribute``), a request in flight across a link change has one of its own.
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    # request id, number, version, the host that answered 200
    applied: list[tuple[str, str, int, str]] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    lost: list[Lost] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        self.statuses.update(other.statuses)
        for phase, values in other.latencies.items():
            self.latencies.setdefault(phase, []).extend(values)
        self.applied += other.applied
        self.sent |= other.sent
        self.lost += other.lost
        self.unexpected += other.unexpected
        self.errors += other.errors


STEADY_PHASES = ("both", "cut", "rejoined")


class Hosts:
    """Which application hosts the clients use; one that lost an answer is avoided a while.

    Also the phase of the run. The driver moves it ``both`` → ``cutting`` → (link down)
    ``cut`` → ``restoring`` → (link up) ``rejoined``, stamping the wall-clock time each
    began in ``marks``; ``cut`` runs from the moment the link *is* down to the moment it
    starts coming back, so host 1 cannot have seen or answered anything inside it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.avoid_until: dict[str, float] = {}
        self.phase = "both"
        self.marks: dict[str, float] = {"both": time.time()}
        self.stop = False
        self.live: Counter[tuple[str, str, int]] = Counter()  # (phase, host, status) so far

    def enter(self, phase: str) -> None:
        self.marks[phase] = time.time()
        self.phase = phase

    @staticmethod
    def attribute(sent_in: str, answered_in: str) -> str:
        """The phase a transition counts in: the one it was both sent and answered in.

        A POST sent before a link change and answered after it (its answer lost and
        retried, or its packets held until the link came back) was in flight across
        the change and counts as ``<sent>-><answered>`` (``in_flight`` in the figures),
        in neither phase.
        """
        if sent_in == answered_in and sent_in in STEADY_PHASES:
            return sent_in
        return f"{sent_in}->{answered_in}"

    def record(self, phase: str, host: str, status: int) -> None:
        with self.lock:
            self.live[(phase, host, status)] += 1

    def applied(self, phase: str, host: str | None = None) -> int:
        with self.lock:
            return sum(
                n
                for (ph, h, s), n in self.live.items()
                if ph == phase and s == 200 and (host is None or h == host)
            )

    def pick(self, rng: random.Random, *, not_this: str | None = None) -> str:
        now = time.monotonic()
        with self.lock:
            up = [h for h in APP_HOSTS if self.avoid_until.get(h, 0) <= now and h != not_this]
        if not up:
            up = [h for h in APP_HOSTS if h != not_this] or list(APP_HOSTS)
        return rng.choice(up)

    def avoid(self, host: str, seconds: float = 3.0) -> None:
        with self.lock:
            self.avoid_until[host] = time.monotonic() + seconds


def _call(
    host: str,
    method: str,
    path: str,
    token: str,
    *,
    body: Any = None,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    conn = http.client.HTTPConnection(ADDRESSES[host], HTTP_PORT, timeout=timeout)
    try:
        sent = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        sent.update(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body)
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw[:200]
        return response.status, data, dict(response.getheaders())
    finally:
        conn.close()


def _tagged(trigger: str, payload: dict[str, Any], request_id: str) -> dict[str, Any]:
    key = "text" if trigger == "feed_back" else "reason"
    return {**payload, key: f"{payload[key]} [{request_id}]"}


def client_loop(
    index: int,
    namespace: str,
    token: str,
    numbers: list[str],
    officers: dict[str, list[str]],
    hosts: Hosts,
    out: Stats,
    out_lock: threading.Lock,
) -> None:
    """One client on the client host: read a ticket, fire a transition, retry a lost answer."""
    from bench.loadtest import choose_transition

    enter_netns(namespace)
    rng = random.Random(1000 + index)
    stats = Stats()
    counter = 0
    prefix = "/api/v1/tickets/"
    while not hosts.stop:
        number = rng.choice(numbers)
        host = hosts.pick(rng)
        try:
            status, ticket, _ = _call(host, "GET", prefix + number, token, timeout=FIRST_TIMEOUT)
        except (OSError, http.client.HTTPException):
            hosts.avoid(host)
            continue
        if status != 200:
            stats.unexpected.append(f"GET {number} on {host}: {status} {ticket}")
            continue
        counter += 1
        request_id = f"c{index}-{counter}"
        trigger, payload = choose_transition(ticket, officers, rng)
        body = {
            "trigger": trigger,
            "expected_version": ticket["version"],
            "data": _tagged(trigger, payload, request_id),
        }
        stats.sent.add(request_id)
        path = prefix + number + "/transitions"
        sent_in = hosts.phase
        started = time.perf_counter()
        try:
            status, data, _ = _call(host, "POST", path, token, body=body, timeout=FIRST_TIMEOUT)
        except (OSError, http.client.HTTPException):
            # The answer is lost; the transition may or may not have been applied.
            hosts.avoid(host)
            lost = Lost(request_id, number, ticket["version"], host)
            retry_host = hosts.pick(rng, not_this=host)
            try:
                status, data, _ = _call(
                    retry_host, "POST", path, token, body=body, timeout=RETRY_TIMEOUT
                )
            except (OSError, http.client.HTTPException) as exc:
                stats.errors.append(f"retry of {request_id} on {retry_host}: {exc}")
                stats.lost.append(lost)
                continue
            lost.retry_host = retry_host
            lost.retry_status = status
            lost.retry_details = (
                ((data or {}).get("error") or {}).get("details", {}) if status == 409 else {}
            )
            stats.lost.append(lost)
            host = retry_host
        phase = hosts.attribute(sent_in, hosts.phase)
        stats.latencies.setdefault(phase, []).append(time.perf_counter() - started)
        stats.statuses[(phase, host, status)] += 1
        hosts.record(phase, host, status)
        if status == 200:
            stats.applied.append((request_id, number, int(data["version"]), host))
        elif status != 409:
            stats.unexpected.append(f"POST {number} {trigger} on {host}: {status} {data}")
    with out_lock:
        out.merge(stats)


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Options:
    tickets: int = 2000
    clients: int = 6
    hot: int = 40
    before: float = 6.0
    during: float = 10.0
    after: float = 6.0
    web_workers: int = 2
    threads: int = 4
    hold_timers: int = 20
    max_lag: float = 2.0
    sweep_seconds: float = 0.5
    fsync: bool = True
    # Test mode: a phase ends once this many transitions were applied in it (and, cut, once
    # the held timers fired; rejoined, once host 1 answered), not after its seconds.
    min_applied: int = 0


@dataclass
class Result:
    problems: list[str]
    figures: dict[str, Any]


def _env(p: Province, opts: Options) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
        RECTIFLOW_DATABASE_URL=p.url(),
        RECTIFLOW_READ_DATABASE_URL=p.url(port=STANDBY_PORT),
        RECTIFLOW_READ_MAX_LAG_SECONDS=str(opts.max_lag),
        RECTIFLOW_READ_CHECK_SECONDS="0.5",
        RECTIFLOW_SECRET_KEY="province-test-secret",
        RECTIFLOW_WORKER_SWEEP_BATCH="50",
    )


def _start_host(p: Province, host: str, opts: Options, env: dict[str, str]) -> None:
    gunicorn = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"0.0.0.0:{HTTP_PORT}",
        "--workers", str(opts.web_workers),
        "--threads", str(opts.threads),
        "--worker-class", "gthread",
        "--timeout", "60",
        "--graceful-timeout", "5",
        "web:create_app()",
    ]  # fmt: skip
    p.spawn(host, gunicorn, log=f"{host}-gunicorn.log", env=env, cwd=PROJECT_ROOT)
    worker = [
        sys.executable, "-c", "import cli; cli.main()",
        "worker", "--sweep-seconds", str(opts.sweep_seconds),
    ]  # fmt: skip
    p.spawn(host, worker, log=f"{host}-worker.log", env=env, cwd=PROJECT_ROOT)


def _healthy(p: Province, host: str) -> bool:
    def probe() -> bool:
        conn = http.client.HTTPConnection(ADDRESSES[host], HTTP_PORT, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    return p.in_host("client", probe)


def run(p: Province, opts: Options, *, say: Any = print) -> Result:
    """The whole scenario on a built (empty) Province; the checks' problems and the figures."""
    from bench.generate import generate
    from bench.loadtest import make_tokens, max_log_id, officers_by_unit, pick_hot_tickets
    from engine import db

    figures: dict[str, Any] = {"load_average_start": round(os.getloadavg()[0], 1)}
    problems: list[str] = []
    t0 = time.perf_counter()
    p.start_primary()
    engine = db.make_engine(p.local_url())
    db.upgrade(engine)
    generate(engine, tickets=opts.tickets, progress=False)
    p.start_standby()
    figures["setup_s"] = round(time.perf_counter() - t0, 1)
    say(f"  topology, {opts.tickets:,} tickets and the standby ready in {figures['setup_s']} s")
    env = _env(p, opts)
    run_started = datetime.now(UTC)

    # 1. host 1's worker caught mid-sweep: a batch claimed and fired, not committed.
    holder = p.spawn(
        "app1",
        [sys.executable, "-m", "bench.multihost", "hold", "--url", p.url(), "--limit",
         str(opts.hold_timers)],
        log="app1-hold.log", env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    held = json.loads(holder.stdout.readline() or b"{}")
    held_timers: list[int] = held.get("timers", [])
    if len(held_timers) != opts.hold_timers:
        problems.append(f"the held sweep claimed {len(held_timers)} timers, not {opts.hold_timers}")

    with Session(engine) as session:
        candidates = pick_hot_tickets(session, opts.hot * 2)
        numbers = [n for n in candidates if n not in set(held.get("tickets", []))][: opts.hot]
        officers = officers_by_unit(session)
        tokens = make_tokens(session, API_USER, opts.clients + 1)
        session.commit()
        since = max_log_id(session)

    for host in APP_HOSTS:
        _start_host(p, host, opts, env)
    for host in APP_HOSTS:
        wait_for(lambda h=host: _healthy(p, h), timeout=90, what=f"gunicorn on {host}")
    say(f"  both application hosts answer ({time.perf_counter() - t0:.1f} s)")

    hosts = Hosts()
    stats = Stats()
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(i, p.ns("client"), tokens[i], numbers, officers, hosts, stats, lock),
            daemon=True,
        )
        for i in range(opts.clients)
    ]
    for t in threads:
        t.start()
    phase_seconds: dict[str, float] = {}
    started = time.perf_counter()
    _phase(opts, opts.before, lambda: hosts.applied("both") >= opts.min_applied, "both hosts")
    phase_seconds["both"] = time.perf_counter() - started

    # 2. cut host 1: its sessions must be dropped and its held timers fired by host 2.
    with Session(engine) as session:
        fired_before = session.execute(
            text("SELECT count(*) FROM timers WHERE id = ANY(:ids) AND fired_at IS NOT NULL"),
            {"ids": held_timers},
        ).scalar_one()
    if fired_before:
        problems.append(f"{fired_before} held timers fired before the cut: they were not held")
    cut_at = time.perf_counter()
    hosts.enter("cutting")
    p.cut("app1")
    hosts.enter("cut")
    say("  host 1's link is down")

    def held_fired() -> bool:
        with Session(engine) as session:
            fired = session.execute(
                text("SELECT count(*) FROM timers WHERE id = ANY(:ids) AND fired_at IS NOT NULL"),
                {"ids": held_timers},
            ).scalar_one()
        return fired == len(held_timers)

    try:
        wait_for(held_fired, timeout=max(opts.during, 30), what="host 2 firing host 1's timers")
        figures["failover_s"] = round(time.perf_counter() - cut_at, 1)
        say(f"  host 2's worker fired host 1's {len(held_timers)} held timers "
            f"{figures['failover_s']} s after the cut")  # fmt: skip
    except TimeoutError as exc:
        problems.append(str(exc))
    _phase(
        opts,
        opts.during - (time.perf_counter() - cut_at),
        lambda: hosts.applied("cut") >= opts.min_applied,
        "host 1 cut",
    )
    phase_seconds["cut"] = time.perf_counter() - cut_at

    # 3. host 1 comes back; its held sweep must be refused.
    hosts.enter("restoring")
    p.restore("app1")
    hosts.enter("rejoined")
    back_at = time.perf_counter()
    holder.stdin.write(b"commit\n")
    holder.stdin.flush()
    holder_said = [line.decode().strip() for line in holder.stdout]
    holder.wait(timeout=30)
    figures["held_sweep"] = holder_said[-1] if holder_said else "(nothing)"
    if not holder_said or not holder_said[-1].startswith("refused"):
        problems.append(f"host 1's held sweep was not refused on rejoin: {holder_said}")
    _phase(
        opts,
        opts.after,
        lambda: hosts.applied("rejoined", "app1") >= max(opts.min_applied // 4, 1),
        "host 1 rejoined",
    )
    phase_seconds["rejoined"] = time.perf_counter() - back_at
    hosts.stop = True
    for t in threads:
        t.join(RETRY_TIMEOUT + 10)
    say("  load stopped; checking reads")

    # 4. reads: standby, read-your-writes, a paused standby.
    problems += check_reads(p, engine, tokens[-1], numbers, officers, opts, stats, env)

    # 5. drain: every timer due at the end must be fired by the workers.
    end = datetime.now(UTC)

    def drained() -> bool:
        with Session(engine) as session:
            return not session.execute(
                text(
                    "SELECT 1 FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL "
                    "AND due_at <= :end LIMIT 1"
                ),
                {"end": end},
            ).first()

    try:
        wait_for(drained, timeout=60, what="the workers firing every timer due")
    except TimeoutError as exc:
        problems.append(str(exc))
    for proc in list(p.processes):
        p.stop(proc)
    for host in APP_HOSTS:
        if "Traceback" in p.log_text(f"{host}-gunicorn.log") and host == "app2":
            problems.append(f"{host}'s gunicorn logged a traceback")

    problems += check_writes(engine, stats, since=since, run_started=run_started)
    cut_problems, figures["app1_commits"] = check_cut_host(
        engine, stats, since=since, marks=hosts.marks
    )
    problems += cut_problems
    problems += check_timers(engine, held_timers, since=since, run_started=run_started)
    served_after = sum(
        n for (ph, h, s), n in stats.statuses.items() if ph == "rejoined" and h == "app1"
    )
    if served_after == 0:
        problems.append("host 1 answered no transition after it came back")
    answered_while_cut = sum(
        n for (ph, h, _s), n in stats.statuses.items() if ph == "cut" and h == "app1"
    )
    if answered_while_cut:
        problems.append(
            f"host 1 answered {answered_while_cut} transitions sent and answered while its "
            "link was down"
        )
    figures.update(_figures(stats, phase_seconds))
    figures["served_by_app1_after_rejoin"] = served_after
    with Session(engine) as session:
        figures["timers_fired"] = session.execute(
            text("SELECT count(*) FROM transition_log WHERE id > :since AND actor = 'system'"),
            {"since": since},
        ).scalar_one()
    figures["load_average_end"] = round(os.getloadavg()[0], 1)
    engine.dispose()
    return Result(problems, figures)


def _phase(opts: Options, seconds: float, done: Any, what: str) -> None:
    """Bench: let the phase run ``seconds``. Test (``min_applied``): until ``done()``."""
    if opts.min_applied:
        wait_for(done, timeout=120, what=f"{opts.min_applied} transitions with {what}")
    elif seconds > 0:
        time.sleep(seconds)


def _figures(stats: Stats, seconds: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase, elapsed in seconds.items():
        lat = sorted(stats.latencies.get(phase, []))
        by_host = Counter()
        for (ph, host, status), n in stats.statuses.items():
            if ph == phase and status == 200:
                by_host[host] += n
        applied = sum(by_host.values())
        out[phase] = {
            "seconds": round(elapsed, 1),
            "requests": len(lat),
            "applied_per_s": round(applied / elapsed, 1) if elapsed else 0,
            "applied_by_host": dict(sorted(by_host.items())),
            "conflicts": sum(
                n for (ph, _h, s), n in stats.statuses.items() if ph == phase and s == 409
            ),
            "median_ms": round(statistics.median(lat) * 1000, 1) if lat else 0,
            "p95_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000, 1) if lat else 0,
        }
    in_flight: dict[str, dict[str, Any]] = {}
    for (ph, host, status), n in sorted(stats.statuses.items()):
        if ph in seconds:
            continue
        bucket = in_flight.setdefault(ph, {"requests": 0, "applied_by_host": {}, "conflicts": 0})
        bucket["requests"] += n
        if status == 200:
            bucket["applied_by_host"][host] = bucket["applied_by_host"].get(host, 0) + n
        elif status == 409:
            bucket["conflicts"] += n
    out["in_flight"] = in_flight
    out["lost_answers"] = len(stats.lost)
    out["lost_retried"] = dict(Counter(lost.retry_status for lost in stats.lost))
    return out


def check_writes(engine: Engine, stats: Stats, *, since: int, run_started: datetime) -> list[str]:
    """Each request applied at most once; each 200 exactly once at the version it reported;
    each lost answer's retry consistent; versions equal log lengths; touched logs verify."""
    from engine import audit

    problems: list[str] = []
    with Session(engine) as session:
        written = {
            request_id: [(number, seq) for number, seq, _ in places]
            for request_id, places in _written(session, since, problems).items()
        }
        for request_id, places in written.items():
            if len(places) > 1:
                problems.append(f"{request_id} applied {len(places)} times: {places}")
            if request_id not in stats.sent:
                problems.append(f"{request_id} written but never sent")
        for request_id, number, version, _host in stats.applied:
            if written.get(request_id) != [(number, version)]:
                problems.append(
                    f"{request_id} answered 200 at {number} v{version}, "
                    f"the log has {written.get(request_id)}"
                )
        for lost in stats.lost:
            places = written.get(lost.request_id, [])
            if lost.retry_status == 409:
                current = int(lost.retry_details.get("current_version", -1))
                state = lost.retry_details.get("state")
                if current < 0 or not state:
                    problems.append(f"{lost.request_id}: the retry's 409 lacks the current state")
                if places and current < places[0][1]:
                    problems.append(
                        f"{lost.request_id}: applied at v{places[0][1]} but the 409 said v{current}"
                    )
            elif lost.retry_status not in (200,):
                problems.append(f"{lost.request_id}: retry answered {lost.retry_status}")
        mismatched = session.execute(
            text(
                "SELECT t.number, t.version, COALESCE(l.n, 0) AS n FROM tickets t LEFT JOIN "
                "(SELECT ticket_id, count(*) AS n FROM transition_log GROUP BY ticket_id) l "
                "ON l.ticket_id = t.id WHERE t.version <> COALESCE(l.n, 0) LIMIT 20"
            )
        ).all()
        problems += [f"{m.number}: version {m.version} but {m.n} log rows" for m in mismatched]
        touched = sorted({number for places in written.values() for number, _ in places})
        for number in touched:
            problems += [
                f"audit {number}: {x.message}" for x in audit.verify(session, ticket=number)
            ]
    problems += [f"unexpected answer: {u}" for u in stats.unexpected[:10]]
    problems += [f"transport: {e}" for e in stats.errors[:10]]
    if not stats.applied:
        problems.append("no transition was applied at all")
    return problems


def _written(
    session: Session, since: int, problems: list[str]
) -> dict[str, list[tuple[str, int, datetime | None]]]:
    """The API's log rows since ``since`` by request id: (ticket, seq, when committed)."""
    rows = session.execute(
        text(
            "SELECT t.number, l.seq, l.reason, l.data, "
            "pg_xact_commit_timestamp(l.xmin) AS committed_at FROM transition_log l "
            "JOIN tickets t ON t.id = l.ticket_id WHERE l.id > :since AND l.actor = :user"
        ),
        {"since": since, "user": API_USER},
    ).all()
    written: dict[str, list[tuple[str, int, datetime | None]]] = {}
    for r in rows:
        found = REQUEST_ID.search(f"{r.reason or ''} {r.data or ''}")
        if not found:
            problems.append(f"{r.number} seq {r.seq}: an API row no client sent")
            continue
        written.setdefault(found.group(1), []).append((r.number, r.seq, r.committed_at))
    return written


def check_cut_host(
    engine: Engine, stats: Stats, *, since: int, marks: dict[str, float]
) -> tuple[list[str], dict[str, int]]:
    """Host 1 commits nothing while its link is down, judged by when the primary committed.

    What host 1 applied: each 200 it answered, and each request whose answer it lost
    whose retry on host 2 was refused with a 409 while the log holds it (host 2 did not
    write it, so host 1 did). Each must have been committed before the link was
    down (``cut``) or after it began coming back (``restoring``); the counts are figures.
    """
    problems: list[str] = []
    cut_from = datetime.fromtimestamp(marks["cut"], UTC)
    cut_until = datetime.fromtimestamp(marks["restoring"], UTC)
    by_host_1 = {rid for rid, _n, _v, host in stats.applied if host == "app1"}
    by_host_1 |= {
        lost.request_id
        for lost in stats.lost
        if lost.first_host == "app1" and lost.retry_status == 409
    }
    counts = {"before_cut": 0, "while_cut": 0, "after_restore": 0}
    with Session(engine) as session:
        written = _written(session, since, [])
    for request_id in sorted(by_host_1):
        for number, seq, committed_at in written.get(request_id, []):
            if committed_at is None:
                problems.append(f"{request_id}: no commit timestamp (track_commit_timestamp off?)")
            elif committed_at < cut_from:
                counts["before_cut"] += 1
            elif committed_at >= cut_until:
                counts["after_restore"] += 1
            else:
                counts["while_cut"] += 1
                problems.append(
                    f"host 1 applied {request_id} ({number} seq {seq}) at {committed_at:%H:%M:%S.%f}"
                    f", while its link was down ({cut_from:%H:%M:%S.%f}–{cut_until:%H:%M:%S.%f})"
                )
    return problems, counts


def check_timers(
    engine: Engine, held: list[int], *, since: int, run_started: datetime
) -> list[str]:
    """No timer fired twice; every fired timer has its one log row; each held one fired once,
    after the cut (by the surviving host: the cut one held them until then)."""
    problems: list[str] = []
    with Session(engine) as session:
        rows = session.execute(
            text("SELECT l.data FROM transition_log l WHERE l.id > :since AND l.actor = 'system'"),
            {"since": since},
        ).scalars()
        fired_in_log = Counter(json.loads(d).get("timer") for d in rows)
        fired_in_log.pop(None, None)
        twice = {t: n for t, n in fired_in_log.items() if n > 1}
        if twice:
            problems.append(f"timers fired more than once: {dict(list(twice.items())[:10])}")
        marked = set(
            session.execute(
                text("SELECT id FROM timers WHERE fired_at >= :started"),
                {"started": run_started},
            ).scalars()
        )  # fmt: skip
        if marked != set(fired_in_log):
            problems.append(
                f"{len(marked ^ set(fired_in_log))} timers marked fired without one log row "
                "or the other way round"
            )
        for timer_id in held:
            if fired_in_log.get(timer_id) != 1:
                problems.append(f"held timer {timer_id} has {fired_in_log.get(timer_id)} log rows")
    return problems


def check_reads(
    p: Province,
    engine: Engine,
    token: str,
    numbers: list[str],
    officers: dict[str, list[str]],
    opts: Options,
    stats: Stats,
    env: dict[str, str],
) -> list[str]:
    """Standby reads, read-your-writes, and the fallback when the standby lags."""
    from bench.generate import ACTIVE_CAMPAIGN
    from bench.loadtest import choose_transition

    problems: list[str] = []
    report = f"/api/v1/campaigns/{ACTIVE_CAMPAIGN}/report"
    standby = p.local_url(port=STANDBY_PORT)

    def get(path: str, position: str | None = None) -> tuple[int, Any, dict[str, str]]:
        headers = {"X-Rectiflow-Min-Position": position} if position else None
        return p.in_host(
            "client", lambda: _call("app2", "GET", path, token, timeout=30, headers=headers)
        )

    def write() -> tuple[str, int, str]:
        """A transition through host 2: (ticket, version written, write position)."""

        def go() -> tuple[str, int, str]:
            rng = random.Random(5)
            for number in numbers:
                _, ticket, _ = _call("app2", "GET", f"/api/v1/tickets/{number}", token, timeout=30)
                trigger, payload = choose_transition(ticket, officers, rng)
                request_id = f"r{len(stats.sent)}"
                stats.sent.add(request_id)
                body = {
                    "trigger": trigger,
                    "expected_version": ticket["version"],
                    "data": _tagged(trigger, payload, request_id),
                }
                status, data, headers = _call(
                    "app2", "POST", f"/api/v1/tickets/{number}/transitions", token,
                    body=body, timeout=30,
                )  # fmt: skip
                if status == 200:
                    stats.applied.append((request_id, number, int(data["version"]), "app2"))
                    return (
                        number,
                        int(data["version"]),
                        headers.get("X-Rectiflow-Write-Position", ""),
                    )
            raise AssertionError("no transition could be written for the read checks")

        return p.in_host("client", go)

    def seen(number: str, version: int, position: str) -> tuple[bool, str]:
        status, data, headers = get(f"/api/v1/audit?ticket={number}&limit=5", position)
        seqs = {item["seq"] for item in (data or {}).get("items", [])} if status == 200 else set()
        return version in seqs, headers.get(READ_HEADER, "")

    try:
        header = wait_for(
            lambda: (
                get(report)[2].get(READ_HEADER, "").startswith("standby")
                and get(report)[2][READ_HEADER]
            ),
            timeout=20,
            what="the report reading the standby",
        )
        del header
    except TimeoutError as exc:
        return [str(exc) + f" (last header: {get(report)[2].get(READ_HEADER)})"]
    cli = subprocess.run(
        ["ip", "netns", "exec", p.ns("app2"), sys.executable, "-c", "import cli; cli.main()",
         "--lang", "en", "report", "--campaign", ACTIVE_CAMPAIGN, "--format", "json"],
        capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    if cli.returncode != 0 or "read from the standby (lag " not in cli.stderr:
        problems.append(f"rectiflow report on host 2: {cli.returncode} {cli.stderr[-300:]!r}")
    number, version, position = write()
    if not position:
        problems.append("a write through the API did not return X-Rectiflow-Write-Position")
    ok, source = seen(number, version, position)
    if not ok:
        problems.append(f"the writer's own log row {number} v{version} was not seen ({source})")
    # The standby stops replaying: a reader's new write must come from the primary, and
    # once the lag passes the bound every lag-tolerant read goes there, saying why.
    from sqlalchemy import create_engine

    standby_admin = create_engine(standby, isolation_level="AUTOCOMMIT")
    with standby_admin.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        number, version, position = write()
        ok, source = seen(number, version, position)
        if not ok or not source.startswith("primary; reason="):
            problems.append(
                f"with replay paused, the writer's row {number} v{version}: seen={ok}, "
                f"read from {source!r} (expected the primary with a reason)"
            )
        try:
            wait_for(
                lambda: "standby lag" in get(report)[2].get(READ_HEADER, ""),
                timeout=opts.max_lag + 15,
                what="reads leaving a lagging standby",
            )
        except TimeoutError as exc:
            problems.append(str(exc))
    finally:
        with standby_admin.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
        standby_admin.dispose()
    try:
        wait_for(
            lambda: seen(number, version, position)[1].startswith("standby"),
            timeout=20,
            what="reads returning to the standby once it caught up",
        )
    except TimeoutError as exc:
        problems.append(str(exc))
    return problems


# --- the command -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multihost", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command")
    held = sub.add_parser("hold", help="(internal) a sweep that claims and does not commit")
    held.add_argument("--url", required=True)
    held.add_argument("--limit", type=int, default=20)
    defaults = Options()
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--hot", type=int, default=200, help="tickets the clients work on")
    parser.add_argument("--before", type=float, default=20.0, help="seconds with both hosts")
    parser.add_argument("--during", type=float, default=30.0, help="seconds with host 1 cut")
    parser.add_argument("--after", type=float, default=20.0, help="seconds after it rejoins")
    parser.add_argument("--web-workers", type=int, default=defaults.web_workers)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--hold-timers", type=int, default=defaults.hold_timers)
    parser.add_argument("--max-lag", type=float, default=defaults.max_lag)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.command == "hold":
        return hold(args.url, args.limit)
    opts = Options(
        tickets=args.tickets,
        clients=args.clients,
        hot=args.hot,
        before=args.before,
        during=args.during,
        after=args.after,
        web_workers=args.web_workers,
        threads=args.threads,
        hold_timers=args.hold_timers,
        max_lag=args.max_lag,
    )
    try:
        with Province(fsync=opts.fsync) as p:
            result = run(p, opts)
    except TopologyError as exc:
        print(f"error: cannot build the province here: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.figures, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"options": opts.__dict__, "figures": result.figures}, out, indent=2)
    if result.problems:
        print("FAILED:")
        for problem in result.problems[:40]:
            print(f"  {problem}")
        return 1
    print("OK: nothing lost, nothing applied twice, held timers fired once by the survivor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
