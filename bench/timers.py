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
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
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

    With ``ladder`` each ticket instead gets the whole pending ladder (warning a day
    before, breach, level 2 and 3 later), due times spread over ``n`` minutes after
    ``due_at``: the shape of a busy province with nothing due yet.
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
            if ladder:
                steps = (("warning", 0, -1), ("breach", 1, 0), ("ladder", 2, 2), ("ladder", 3, 7))
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
    """Every seeded timer fired, each ticket logged exactly one firing."""
    with Session(engine) as s:
        pending = s.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None)))
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
    }


def core_floor(engine: Engine, *, now: datetime, batch: int = BATCH) -> int:
    """The same writes as the sweep through bare Core, batched as tightly as Core allows.

    Per batch: the claim, one UPDATE of the timers, the tickets' UPDATEs and the
    log rows' INSERTs as two executemany calls, the notices as one; no checks,
    no hashing, no recipient lookups.
    """
    timers_t, tickets_t = Timer.__table__, Ticket.__table__
    log_t, notes_t = TransitionLog.__table__, Notification.__table__
    with Session(engine) as s:
        leader = s.scalar(select(User.id).where(User.username == "traffic.leader"))
        officer = s.scalar(select(User.id).where(User.username == "traffic.officer"))
    fired = 0
    pg = engine.dialect.name == "postgresql"
    bump = (
        update(tickets_t)
        .where(tickets_t.c.id == bindparam("tid"))
        .values(version=4, last_hash=bindparam("h"), escalation_level=1, updated_at=now)
    )
    while True:
        with engine.begin() as conn:
            query = (
                select(timers_t.c.id, timers_t.c.ticket_id)
                .where(
                    timers_t.c.fired_at.is_(None),
                    timers_t.c.cancelled_at.is_(None),
                    timers_t.c.due_at <= now,
                )
                .order_by(timers_t.c.due_at)
                .limit(batch)
            )
            if pg:
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(timers_t)
                    .where(timers_t.c.id.in_([r.id for r in rows]))
                    .values(fired_at=now)
                )
                conn.execute(bump, [{"tid": r.ticket_id, "h": "0" * 64} for r in rows])
                conn.execute(
                    insert(log_t),
                    [
                        {
                            "ticket_id": r.ticket_id,
                            "seq": 4,
                            "trigger": "overdue",
                            "from_state": "assigned",
                            "to_state": "assigned",
                            "actor": "system",
                            "role": "system",
                            "at": now,
                            "reason": None,
                            "data": "{}",
                            "workflow_version": 1,
                            "prev_hash": "0" * 64,
                            "hash": "0" * 64,
                        }
                        for r in rows
                    ],
                )
                conn.execute(
                    insert(notes_t),
                    [
                        {
                            "user_id": uid,
                            "kind": kind,
                            "ticket_id": r.ticket_id,
                            "subject": "overdue",
                            "body": "",
                            "created_at": now,
                        }
                        for r in rows
                        for uid, kind in ((officer, "reminder"), (leader, "chase"))
                    ],
                )
            fired += len(rows)
        if len(rows) < batch:
            return fired


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


def bench_fire(kind: str, n: int, batch: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-timers-"))
    backend = Backend(kind, workdir)
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

        url = backend.copy()
        engine = db.make_engine(url)
        started = time.perf_counter()
        result = timers.sweep(context_for(engine), now=SWEEP_AT, batch=batch)
        engine_s = time.perf_counter() - started
        engine_check = check_fired_once(engine, n)
        ordered = all(
            a.due_at <= b.due_at for a, b in zip(result.firings, result.firings[1:], strict=False)
        )
        engine.dispose()

        url = backend.copy()
        engine = db.make_engine(url)
        started = time.perf_counter()
        floor_n = core_floor(engine, now=SWEEP_AT, batch=batch)
        floor_s = time.perf_counter() - started
        floor_check = check_fired_once(engine, n)
        engine.dispose()
    finally:
        backend.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "backend": version,
        "timers": n,
        "engine_seconds": round(engine_s, 2),
        "engine_rate": round(len(result.firings) / engine_s),
        "engine_check": engine_check,
        "engine_in_due_order": ordered,
        "floor_seconds": round(floor_s, 2),
        "floor_rate": round(floor_n / floor_s),
        "floor_check": floor_check,
        "ratio": round((len(result.firings) / engine_s) / (floor_n / floor_s), 2),
    }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timers", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="what", required=True)
    fire = sub.add_parser("fire")
    fire.add_argument("--timers", type=int, default=100_000)
    fire.add_argument("--batch", type=int, default=BATCH)
    fire.add_argument("--backends", default="sqlite,postgresql")
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
    args = parser.parse_args(argv)
    if args.what == "fire":
        for kind in args.backends.split(","):
            print(f"{kind}: seeding {args.timers:,} due timers...", file=sys.stderr, flush=True)
            out = bench_fire(kind, args.timers, args.batch)
            for key, value in out.items():
                print(f"{key:>22}: {value}")
            print()
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
