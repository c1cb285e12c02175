"""Timers at scale: 100,000 due at one instant, and a sweep over 1,000,000 open tickets.

    python -m bench.timers fire --timers 100000            # SQLite and PostgreSQL
    python -m bench.timers idle --url sqlite:////tmp/deadlines-1m.db
    python -m bench.timers idle --url postgresql://postgres@127.0.0.1/deadlines_1m

``fire``: N open tickets, each with a breach timer due at the campaign deadline
(the instant the cap makes many tickets fall due together). ``engine.timers.sweep``
fires them all in batches of 500; then a fresh copy gets the same writes through
bare SQLAlchemy Core (claim the batch, mark the timer fired, bump the ticket's
version/hash/level, insert the log row and two notices, commit per batch): the
floor. Both runs check none was missed and none fired twice; the ratio is printed.

``idle``: a database made by ``python -m bench.generate`` (1M tickets, pending
timers, nothing due at its BENCH_NOW): the cost of one sweep that finds nothing,
and the query plan showing it is an index lookup on ix_timers_pending_due.

``memory``: for each backlog size, a fresh database with that many timers due and
``rectiflow sweep`` (the worker's own sweep: batches, after-commit delivery, counts)
run in a child process; its peak resident set, read from the kernel when it exits,
must not grow with the backlog.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from bench.engine_context import as_uow, context_for
from engine import db, timers
from engine.models import Campaign, Notification, Ticket, Timer, TransitionLog, Unit, User
from engine.organisation import load_campaign_file, load_organisation_file
from engine.settings import PROJECT_ROOT

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CAMPAIGN = "consultation-2005"
DUE = datetime(2005, 3, 17, 16, 0, tzinfo=UTC)  # 2005-03-18 00:00 Shanghai, the campaign cap
SWEEP_AT = datetime(2005, 3, 18, 1, 0, tzinfo=UTC)
CREATED = datetime(2005, 3, 8, 6, 0, tzinfo=UTC)
BATCH = 500
# The log rows each seeded ticket already has (seq, trigger, from, to): it is assigned.
HISTORY = (
    (1, "create", None, "received"),
    (2, "categorize", "received", "categorized"),
    (3, "assign", "categorized", "assigned"),
)


def seed_organisation(engine: Engine) -> None:
    db.upgrade(engine)
    with Session(engine) as session:
        load_organisation_file(as_uow(session), PROJECT_ROOT / "config" / "organisation.toml")
        load_campaign_file(
            as_uow(session), PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml"
        )
        session.commit()


def seed_due_timers(
    engine: Engine,
    n: int,
    *,
    due_at: datetime = DUE,
    unit: str = "traffic-brigade",
    officer: str = "traffic.officer",
    chunk: int = 5000,
    ladder: bool = False,
) -> None:
    """Bulk-insert ``n`` assigned tickets, each with one breach timer due at ``due_at``.

    With ``ladder`` each ticket instead gets the timers a transition arms (warning a day
    before and the breach; each later step is armed when the one below fires), due times
    spread over ``n`` minutes after ``due_at``: the shape of a busy province with nothing
    due yet.
    """
    with Session(engine) as session:
        camp = session.execute(
            select(Campaign.id, Campaign.ticket_seq).where(Campaign.code == CAMPAIGN)
        ).one()
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
        officer_id = session.scalar(select(User.id).where(User.username == officer))
        start_seq = camp.ticket_seq
        first_id = (session.scalar(select(func.max(Ticket.id))) or 0) + 1
        for base in range(0, n, chunk):
            size = min(chunk, n - base)
            tickets = []
            for i in range(base, base + size):
                number = f"B{start_seq + i + 1:07d}"
                tickets.append(
                    {
                        "id": first_id + i,
                        "number": number,
                        "campaign_id": camp.id,
                        "kind": "criticism",
                        "category": "traffic_management",
                        "text": "bench",
                        "unit_id": unit_id,
                        "assignee_id": officer_id,
                        "state": "assigned",
                        "version": 3,
                        "workflow_name": "consultation",
                        "workflow_version": 1,
                        "escalation_level": 0,
                        "due_at": due_at,
                        "due_rule": "campaign deadline 2005-03-18",
                        "received_at": CREATED,
                        "created_at": CREATED,
                        "updated_at": CREATED,
                        "source": "bench",
                        "last_hash": hashlib.sha256(number.encode()).hexdigest(),
                    }
                )
            session.execute(insert(Ticket), tickets)
            # Their history so far (created, categorized, assigned), as an installation has
            # it when its timers fall due: the log the sweep appends to is not empty, and
            # PostgreSQL plans the log's insert checks on a log of this size.
            session.execute(
                insert(TransitionLog),
                [
                    {
                        "ticket_id": t["id"],
                        "seq": seq,
                        "trigger": trigger,
                        "from_state": source,
                        "to_state": dest,
                        "actor": "bench",
                        "role": "clerk",
                        "at": CREATED,
                        "data": "{}",
                        "workflow_version": 1,
                        "prev_hash": f"{seq - 1:064d}",
                        "hash": t["last_hash"] if seq == 3 else f"{seq:064d}",
                        "head": None,
                    }
                    for t in tickets
                    for seq, trigger, source, dest in HISTORY
                ],
            )
            if ladder:
                steps = (("warning", 0, -1), ("breach", 1, 0))
                timer_rows = [
                    {
                        "ticket_id": t["id"],
                        "kind": kind,
                        "level": level,
                        "due_at": due_at + timedelta(minutes=base + k, days=days),
                        "created_at": CREATED,
                    }
                    for k, t in enumerate(tickets)
                    for kind, level, days in steps
                ]
            else:
                timer_rows = [
                    {
                        "ticket_id": t["id"],
                        "kind": "breach",
                        "level": 1,
                        "due_at": due_at,
                        "created_at": CREATED,
                    }
                    for t in tickets
                ]
            session.execute(insert(Timer), timer_rows)
        if engine.dialect.name == "postgresql":
            session.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT max(id) FROM tickets))"
                )
            )
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def check_fired_once(engine: Engine, n: int) -> dict[str, int]:
    """Every seeded timer fired, each ticket logged exactly one firing and got its ladder's
    next step armed (pending: still due at the sweep's time; armed: level 2 not yet due)."""
    with Session(engine) as s:
        pending = s.scalar(
            select(func.count())
            .select_from(Timer)
            .where(Timer.fired_at.is_(None), Timer.due_at <= SWEEP_AT)
        )
        armed = s.scalar(
            select(func.count())
            .select_from(Timer)
            .where(Timer.fired_at.is_(None), Timer.level == 2, Timer.created_at == CREATED)
        )
        fired = s.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))
        logged = s.scalar(
            select(func.count())
            .select_from(TransitionLog)
            .where(TransitionLog.trigger == "overdue")
        )
        twice = s.scalar(
            select(func.count()).select_from(
                select(TransitionLog.ticket_id)
                .where(TransitionLog.trigger == "overdue")
                .group_by(TransitionLog.ticket_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    return {
        "pending": pending or 0,
        "fired": fired or 0,
        "logged": logged or 0,
        "twice": twice or 0,
        "armed": armed or 0,
    }


def core_floor(engine: Engine, *, now: datetime, batch: int = BATCH) -> int:
    """The same writes as the sweep, as fast as they go: the fastest honest floor.

    Per batch of ``batch`` (one transaction): the claim (``FOR UPDATE SKIP LOCKED``
    on PostgreSQL) and the timers' ``UPDATE`` with statements built once, then the
    tickets' UPDATEs, the log rows and the notices through the driver's executemany
    (pipelined by psycopg) with every repeated value rendered once. No checks, no
    hashing, no recipient look-ups, no ticket read: those are the engine's work. Like the
    sweep, it arms each ticket's next ladder step (level 2, its due time worked out once
    with ``engine.deadlines``), in one multi-row insert per batch.
    """
    from engine import audit
    from engine.ledger import LOG_COLUMNS
    from engine.rawsql import BulkInsert, BulkUpdate

    timers_t, tickets_t = Timer.__table__, Ticket.__table__
    with Session(engine) as s:
        leader = s.scalar(select(User.id).where(User.username == "traffic.leader"))
        officer = s.scalar(select(User.id).where(User.username == "traffic.officer"))
    pg = engine.dialect.name == "postgresql"
    claim = (
        select(timers_t.c.id, timers_t.c.ticket_id)
        .where(
            timers_t.c.fired_at.is_(None),
            timers_t.c.cancelled_at.is_(None),
            timers_t.c.due_at <= bindparam("now"),
        )
        .order_by(timers_t.c.due_at)
        .limit(batch)
    )
    if pg:
        claim = claim.with_for_update(skip_locked=True)
    mark = (
        update(timers_t)
        .where(timers_t.c.id.in_(bindparam("ids", expanding=True)))
        .values(fired_at=bindparam("now"))
    )
    bump = BulkUpdate(
        tickets_t,
        {"version": "v", "last_hash": "h", "escalation_level": "lv", "updated_at": "at"},
        {"id": "tid"},
    )
    log_rows = BulkInsert(TransitionLog.__table__, LOG_COLUMNS)
    next_timers = BulkInsert(timers_t, ("ticket_id", "kind", "level", "due_at", "created_at"))
    level_2_at = _level_2_at(engine, DUE)
    notices = BulkInsert(
        Notification.__table__, ("user_id", "kind", "ticket_id", "subject", "body", "created_at")
    )
    head = audit.head_json(
        {"unit_id": 1, "assignee_id": officer, "escalation_level": 1, "category": "x", "kind": "y"}
    )
    fired = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(claim, {"now": now}).all()
            if rows:
                conn.execute(mark, {"ids": [r.id for r in rows], "now": now})
                bump.execute(
                    conn,
                    [{"tid": r.ticket_id, "v": 4, "h": "0" * 64, "lv": 1, "at": now} for r in rows],
                )
                log_rows.execute_tuples(
                    conn,
                    [
                        (
                            r.ticket_id,
                            4,
                            "overdue",
                            "assigned",
                            "assigned",
                            "system",
                            "system",
                            now,
                            None,
                            "{}",
                            1,
                            "0" * 64,
                            "0" * 64,
                            head,
                        )
                        for r in rows
                    ],
                )
                notices.execute_tuples(
                    conn,
                    [
                        (uid, kind, r.ticket_id, "overdue", "", now)
                        for r in rows
                        for uid, kind in ((officer, "reminder"), (leader, "chase"))
                    ],
                )
                next_timers.execute_few(
                    conn, [(r.ticket_id, "ladder", 2, level_2_at, CREATED) for r in rows]
                )
            fired += len(rows)
        if len(rows) < batch:
            return fired


def _level_2_at(engine: Engine, due: datetime) -> datetime:
    """When the consultation ladder's level 2 falls due for ``due``, on the campaign's clock."""
    from engine import deadlines

    with context_for(engine).unit_of_work() as uow:
        camp_id = uow.session.scalar(select(Campaign.id).where(Campaign.code == CAMPAIGN))
        assert camp_id is not None
        ladder = uow.registry.get("consultation", 1).ladder
        step = deadlines.next_step(ladder, 1)
        assert step is not None
        return deadlines.step_time(step, due, deadlines.campaign_clock(uow, camp_id))[2]


class Backend:
    """A seeded template and fresh copies of it, on SQLite (file copy) or PostgreSQL (TEMPLATE)."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.names: list[str] = []
        if kind == "sqlite":
            self.template = workdir / "template.db"
            self.template_url = f"sqlite:///{self.template}"
        else:
            self.template_name = f"bench_timers_tpl_{uuid.uuid4().hex[:8]}"
            self.admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.template_name}"'))
            self.names.append(self.template_name)
            self.template_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.template_name}"

    def copy(self) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"copy-{uuid.uuid4().hex[:6]}.db"
            shutil.copyfile(self.template, path)
            return f"sqlite:///{path}"
        name = f"bench_timers_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"'))
        self.names.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    def drop(self) -> None:
        if self.kind == "postgresql":
            with self.admin.connect() as conn:
                for name in reversed(self.names):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.admin.dispose()


def sqlite_version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("select sqlite_version()").scalar())


class DueOrder:
    """An ``after_commit`` that checks the firings come in due-time order, keeping one time."""

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.ok = True

    def __call__(self, part: timers.SweepResult) -> None:
        for f in part.firings:
            if self.last is not None and f.due_at < self.last:
                self.ok = False
            self.last = f.due_at


def bench_fire(kind: str, n: int, batch: int, rounds: int = 1) -> dict[str, Any]:
    """``rounds`` rounds on fresh copies of one seeded template; the order of the two sides
    alternates round by round (engine first, then floor first, ...)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-timers-"))
    backend = Backend(kind, workdir)
    per_round: list[dict[str, Any]] = []
    try:
        template = db.make_engine(backend.template_url)
        seed_organisation(template)
        seed_due_timers(template, n)
        if kind == "sqlite":
            # disposing the last connection checkpoints the WAL into the file we copy
            version = f"SQLite {sqlite_version(template)}, WAL, synchronous=FULL"
        else:
            with template.connect() as conn:
                version = str(conn.exec_driver_sql("show server_version").scalar()).split()[0]
                version = f"PostgreSQL {version}"
        template.dispose()
        for r in range(rounds):
            got: dict[str, Any] = {}
            for side in ("engine", "floor") if r % 2 == 0 else ("floor", "engine"):
                engine = db.make_engine(backend.copy())
                if side == "engine":
                    order = DueOrder()
                    started, cpu = time.perf_counter(), time.process_time()
                    totals = timers.sweep(
                        context_for(engine), now=SWEEP_AT, batch=batch, after_commit=order
                    )
                    seconds = time.perf_counter() - started
                    got["engine"] = {
                        "rate": totals.fired / seconds,
                        "seconds": seconds,
                        "cpu_s": time.process_time() - cpu,
                        "check": check_fired_once(engine, n),
                        "in_due_order": order.ok,
                        "transactions": totals.transactions,
                        "longest_transaction_s": round(totals.longest_transaction_seconds, 3),
                    }
                else:
                    started, cpu = time.perf_counter(), time.process_time()
                    fired = core_floor(engine, now=SWEEP_AT, batch=batch)
                    seconds = time.perf_counter() - started
                    got["floor"] = {
                        "rate": fired / seconds,
                        "seconds": seconds,
                        "cpu_s": time.process_time() - cpu,
                        "check": check_fired_once(engine, n),
                    }
                engine.dispose()
            per_round.append(
                {
                    "engine_per_s": round(got["engine"]["rate"]),
                    "floor_per_s": round(got["floor"]["rate"]),
                    "ratio": round(got["engine"]["rate"] / got["floor"]["rate"], 3),
                    # This process's CPU seconds per side (SQLite's work included, PostgreSQL
                    # server's not): on a shared machine, steadier than the wall-clock rates.
                    "engine_cpu_s": round(got["engine"]["cpu_s"], 2),
                    "floor_cpu_s": round(got["floor"]["cpu_s"], 2),
                    "engine_check": got["engine"]["check"],
                    "floor_check": got["floor"]["check"],
                    "in_due_order": got["engine"]["in_due_order"],
                    "engine_transactions": got["engine"]["transactions"],
                    "engine_longest_transaction_s": got["engine"]["longest_transaction_s"],
                }
            )
    finally:
        backend.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"backend": version, "timers": n, "rounds": per_round}


def measure(kind: str, n: int, batch: int, rounds: int) -> dict[str, Any]:
    from bench.common import require_postgres, result, spread

    if kind == "postgresql":
        require_postgres()
    out = bench_fire(kind, n, batch, rounds)
    per_round = out["rounds"]
    exact = all(
        r["engine_check"] == {"pending": 0, "fired": n, "logged": n, "twice": 0, "armed": n}
        and r["in_due_order"]
        for r in per_round
    )
    summary = {
        "backend": out["backend"],
        "ratio": spread([r["ratio"] for r in per_round]),
        "engine_per_s": spread([r["engine_per_s"] for r in per_round]),
        "floor_per_s": spread([r["floor_per_s"] for r in per_round]),
        # floor CPU / rectiflow CPU in this process: what the ratio would be if CPU were all
        "cpu_ratio": spread([r["floor_cpu_s"] / r["engine_cpu_s"] for r in per_round]),
        "exactly_once_in_due_order": exact,
        "longest_transaction_s": max(r["engine_longest_transaction_s"] for r in per_round),
        "target_ratio": 0.6,
    }
    summary["met"] = summary["ratio"]["median"] >= 0.6 and exact
    return result(
        f"timers-{kind}",
        command=f"python -m bench.timers fire --timers {n} --backends {kind} --rounds {rounds}",
        params={"timers": n, "batch": batch, "rounds": rounds, "backend": kind},
        rounds=per_round,
        summary=summary,
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """For ``bench.run``: 100,000 due at once on SQLite and PostgreSQL (10,000 with --quick)."""
    n, rounds = (10_000, 2) if quick else (100_000, 3)
    return [measure(kind, n, BATCH, rounds) for kind in ("sqlite", "postgresql")]


def bench_idle(url: str, now: datetime, repeats: int) -> dict[str, Any]:
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    with Session(engine) as s:
        counts = {
            "tickets": s.scalar(select(func.count()).select_from(Ticket)),
            "open_tickets": s.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.closed_at.is_(None))
            ),
            "pending_timers": s.scalar(
                select(func.count())
                .select_from(Timer)
                .where(Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
            ),
        }
    # The statement engine.timers._claim emits (SQLite drops FOR UPDATE SKIP LOCKED).
    claim_sql = (
        "SELECT id, ticket_id, kind, level, due_at FROM timers "
        "WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= {p} "
        f"ORDER BY due_at LIMIT {BATCH}"
    )
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            naive = (
                now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            )
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + claim_sql.format(p="?"), (naive,))
            plan = [str(row[-1]) for row in rows]
        else:
            rows = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) "
                + claim_sql.format(p="%s")
                + " FOR UPDATE SKIP LOCKED",
                (now,),
            )
            plan = [str(row[0]) for row in rows]
    with sessions() as s:
        if timers.due_count(s, now=now):
            raise SystemExit(f"timers are due at {now.isoformat()}: this is not an idle database")
        s.rollback()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with sessions() as s:
            got = timers.fire_due_timers(as_uow(s), now=now, limit=BATCH)
            s.commit()
        times.append(time.perf_counter() - started)
        assert not got.firings, "the idle benchmark must find nothing due"
    engine.dispose()
    return {
        **counts,
        "sweep_ms_median": round(statistics.median(times) * 1000, 3),
        "sweep_ms_p95": round(sorted(times)[int(0.95 * len(times)) - 1] * 1000, 3),
        "plan": plan,
    }


# ``rectiflow sweep`` with the high-water mark of its resident set written to stderr as it
# exits. Not ``ru_maxrss``: that counts the parent's pages the child had between fork and
# exec, and the parent has just seeded the backlog.
_REPORT_PEAK_RSS = """
import atexit, sys
def peak():
    with open("/proc/self/status", encoding="ascii") as status:
        sys.stderr.write("".join(line for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
from cli import main
main()
"""


def sweep_peak_rss(kind: str, n: int) -> dict[str, Any]:
    """``rectiflow sweep`` over ``n`` due timers in a child process: its peak RSS (KiB, the
    kernel's ``VmHWM`` as it exits), the seconds it took and what it fired."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-sweep-memory-"))
    backend = Backend(kind, workdir)
    try:
        template = db.make_engine(backend.template_url)
        seed_organisation(template)
        if n:
            seed_due_timers(template, n)
        template.dispose()
        url = backend.copy()
        env = dict(os.environ, RECTIFLOW_DATABASE_URL=url, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-c", _REPORT_PEAK_RSS, "sweep", "--now", SWEEP_AT.isoformat()]
        started = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"rectiflow sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
        peaks = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM")]
        engine = db.make_engine(url)
        check = check_fired_once(engine, n)
        engine.dispose()
    finally:
        backend.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"due": n, "peak_rss_kib": int(peaks[-1]), "seconds": seconds, "check": check}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timers", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="what", required=True)
    fire = sub.add_parser("fire")
    fire.add_argument("--timers", type=int, default=100_000)
    fire.add_argument("--batch", type=int, default=BATCH)
    fire.add_argument("--backends", default="sqlite,postgresql")
    fire.add_argument("--rounds", type=int, default=3)
    idle = sub.add_parser("idle")
    idle.add_argument("--url", help="an existing database (bench.generate); else --seed one")
    idle.add_argument(
        "--seed", type=int, default=0, help="make N open tickets with pending ladders"
    )
    idle.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    idle.add_argument(
        "--now", default="2005-03-14T02:00:00+00:00", help="bench.generate's BENCH_NOW"
    )
    idle.add_argument("--repeats", type=int, default=200)
    memory = sub.add_parser("memory")
    memory.add_argument("--timers", default="1000,10000,100000", help="backlog sizes")
    memory.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args(argv)
    if args.what == "memory":
        print(f"{'due at once':>12} {'fired':>8} {'peak RSS MiB':>13} {'seconds':>8}")
        for n in (int(x) for x in args.timers.split(",")):
            got = sweep_peak_rss(args.backend, n)
            if got["check"] != {"pending": 0, "fired": n, "logged": n, "twice": 0}:
                raise SystemExit(f"the sweep of {n:,} did not fire each once: {got['check']}")
            print(
                f"{n:>12,} {got['check']['fired']:>8,} {got['peak_rss_kib'] / 1024:>13.1f} "
                f"{got['seconds']:>8.1f}",
                flush=True,
            )
        return 0
    if args.what == "fire":
        for kind in args.backends.split(","):
            print(f"{kind}: seeding {args.timers:,} due timers...", file=sys.stderr, flush=True)
            out = measure(kind, args.timers, args.batch, args.rounds)
            print(json.dumps(out, indent=2, default=str))
    else:
        now = datetime.fromisoformat(args.now)
        backend = None
        url = args.url
        if url is None:
            backend = Backend(args.backend, Path(tempfile.mkdtemp(prefix="bench-idle-")))
            template = db.make_engine(backend.template_url, sqlite_synchronous="OFF")
            seed_organisation(template)
            started = time.perf_counter()
            seed_due_timers(template, args.seed, due_at=now + timedelta(days=2), ladder=True)
            print(
                f"seeded {args.seed:,} open tickets with ladders in "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            if args.backend == "sqlite":
                with template.connect() as conn:
                    conn.exec_driver_sql("COMMIT")
                    conn.exec_driver_sql("ANALYZE")
            template.dispose()
            url = backend.template_url
        try:
            out = bench_idle(url, now, args.repeats)
        finally:
            if backend is not None:
                backend.drop()
                shutil.rmtree(backend.workdir, ignore_errors=True)
        for key, value in out.items():
            if key == "plan":
                print("                  plan:")
                for line in value:
                    print(f"      {line}")
            else:
                print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
