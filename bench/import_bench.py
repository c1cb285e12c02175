"""Import of a large CSV: rows per second and peak memory, next to its floor in the same run.

    python -m bench.import_bench --rows 100000
    python -m bench.import_bench --rows 100000 --url postgresql://postgres@127.0.0.1/rectiflow_importbench

rectiflow's path is ``engine.importing.import_file``: detect the encoding, check
every row once (the good rows spilled to a temporary file), then read them back
and create the tickets through the bulk path ``engine.bulk.create_tickets``
(what ``create_ticket`` writes: hash-chained ``create`` log rows, theme tags,
due times and timers) in transactions of ``--batch`` rows, skipping keys
already imported. The floor writes the same
rows (ticket, log row, tags, two timers) from the same file, parsed with
``csv``, through the driver's executemany with its ids assigned and values
rendered once, same batches and durability, and no checks, hashing or
calendar. Each side runs in its own child process on a fresh database, so the
peak resident memory (``ru_maxrss``) is that side's own; the order alternates
round by round. ``audit verify`` runs on rectiflow's database after round 1.
Each side also reports its own CPU seconds (``time.process_time``): on a shared
machine the wall-clock rates move with the load, the CPU each side spends much less.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.engine_context import as_uow, context_for

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 4, 1, tzinfo=UTC)
TEXTS = (
    "派出所出警太慢，晚上打110没人管",
    "网吧门口经常有人赌博",
    "Theft of electric bikes near the market is frequent.",
    "The 110 desk answers slowly; officers arrive late to calls at night.",
    "Three-wheeled cars block the crossing at the town centre.",
    "It is hard to see a police officer in the countryside.",
)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d %H:%M")


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2005, 2, 25, 9)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "kind", "received_at", "area", "name", "contact", "themes"])
        for i in range(rows):
            when = start + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            writer.writerow(
                [
                    f"{rng.choice(TEXTS)} (#{i})",
                    rng.choice(("praise", "criticism", "suggestion", "request", "批评", "建议")),
                    when.strftime(rng.choice(DATE_FORMATS)),
                    rng.choice(("Luohe", "Liubao", "Yanjiang", "Xiaji", "County town")),
                    f"Resident {i}",
                    f"0514-{rng.randint(1000000, 9999999)}",
                    rng.choice(("theft", "gambling", "slow_police_response", "", "theft,gambling")),
                ]
            )


def fresh_database(url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from engine import db
    from engine.organisation import load_campaign_file, load_organisation_file
    from engine.settings import PROJECT_ROOT

    parsed = make_url(db.normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
    else:
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    engine = db.make_engine(url)
    db.upgrade(engine)
    with Session(engine) as session:
        load_organisation_file(as_uow(session), PROJECT_ROOT / "config" / "organisation.toml")
        load_campaign_file(
            as_uow(session), PROJECT_ROOT / "config" / "campaigns" / f"{CAMPAIGN}.toml"
        )
        session.commit()
    engine.dispose()
    return url


def run_rectiflow(url: str, path: Path, batch: int) -> dict[str, float]:
    from engine import db
    from engine.importing import import_file

    engine = db.make_engine(url)
    started, cpu = time.perf_counter(), time.process_time()
    result = import_file(
        context_for(engine),
        path,
        campaign=CAMPAIGN,
        username="clerk",
        now=NOW,
        batch_size=batch,
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {"rows": result.created, "seconds": elapsed, "cpu_seconds": cpu}


def run_floor(url: str, path: Path, batch: int) -> dict[str, float]:
    """The same writes as the import, as fast as they go: for each row its ticket, its
    ``create`` log row, its theme tags and its two timers, inserted through the driver's
    executemany with ids assigned here and every repeated value rendered once; the same
    batches and durability. No checks, no hashing, no calendar: those are rectiflow's work."""
    from sqlalchemy import func, select

    from engine import audit, db
    from engine.ledger import LOG_COLUMNS
    from engine.models import Campaign, Ticket, TicketTheme, Timer, TransitionLog
    from engine.rawsql import BulkInsert

    engine = db.make_engine(url)
    started, cpu = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        campaign_id = conn.execute(select(Campaign.id).where(Campaign.code == CAMPAIGN)).scalar()
        next_id = (conn.execute(select(func.max(Ticket.id))).scalar() or 0) + 1
        conn.commit()
    ticket_cols = (
        "id",
        "number",
        "campaign_id",
        "kind",
        "text",
        "citizen_name",
        "citizen_contact",
        "area",
        "state",
        "version",
        "workflow_name",
        "workflow_version",
        "escalation_level",
        "received_at",
        "created_at",
        "updated_at",
        "source",
        "external_key",
        "secret_hash",
        "last_hash",
        "due_at",
        "due_rule",
        "contact_salt",
    )
    tickets = BulkInsert(Ticket.__table__, ticket_cols)
    logs = BulkInsert(TransitionLog.__table__, LOG_COLUMNS)
    themes = BulkInsert(TicketTheme.__table__, ("ticket_id", "tag", "campaign_id"))
    timers = BulkInsert(Timer.__table__, ("ticket_id", "kind", "level", "due_at", "created_at"))
    due = NOW + timedelta(days=2)
    head = audit.head_json(dict.fromkeys(audit.HEAD_COLUMNS))
    # what a new ticket arms (engine.deadlines.armed_times): the warning and the first step
    ladder = (
        ("warning", 0, due - timedelta(hours=24)),
        ("breach", 1, due),
    )
    count = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        chunk: list[list[str]] = []

        def flush() -> None:
            nonlocal next_id
            first = next_id
            next_id += len(chunk)
            ids = range(first, next_id)
            with engine.begin() as conn:
                tickets.execute_tuples(
                    conn,
                    [
                        (
                            tid,
                            f"F-{tid:07d}",
                            campaign_id,
                            "criticism",
                            row[0],
                            row[4],
                            row[5],
                            row[3],
                            "received",
                            1,
                            "consultation",
                            1,
                            0,
                            NOW,
                            NOW,
                            NOW,
                            "import",
                            f"k{tid}",
                            "0" * 64,
                            "0" * 64,
                            due,
                            "state received: 2 working days",
                            "0" * 32,
                        )
                        for tid, row in zip(ids, chunk, strict=True)
                    ],
                )
                logs.execute_tuples(
                    conn,
                    [
                        (
                            tid,
                            1,
                            "create",
                            None,
                            "received",
                            "clerk",
                            "clerk",
                            NOW,
                            None,
                            row[0],
                            1,
                            "0" * 64,
                            "0" * 64,
                            head,
                        )
                        for tid, row in zip(ids, chunk, strict=True)
                    ],
                )
                tags = [
                    (tid, tag, campaign_id)
                    for tid, row in zip(ids, chunk, strict=True)
                    for tag in sorted(set(filter(None, row[6].split(","))))
                ]
                if tags:
                    themes.execute_tuples(conn, tags)
                timers.execute_tuples(
                    conn, [(tid, k, lv, at, NOW) for tid in ids for k, lv, at in ladder]
                )
            chunk.clear()

        for row in reader:
            count += 1
            chunk.append(row)
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {"rows": count, "seconds": elapsed, "cpu_seconds": cpu}


def child(side: str, url: str, path: Path, batch: int, verify: bool) -> None:
    fresh_database(url)
    out = (run_rectiflow if side == "rectiflow" else run_floor)(url, path, batch)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if verify:
        from engine import audit, db

        engine = db.make_engine(url)
        with db.session_factory(engine)() as session:
            out["verify_problems"] = len(audit.verify(session))
        engine.dispose()
    print(json.dumps(out))


def _side(side: str, url: str, path: Path, batch: int, verify: bool) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.import_bench", "--child", side, "--url", url]
    args += ["--file", str(path), "--batch", str(batch)] + (["--verify"] if verify else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=os.environ.copy())
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def measure(*, rows: int, rounds: int, batch: int, url: str | None = None) -> dict[str, Any]:
    """Both sides on the same file, each in its own process on a fresh database, the
    order alternating round by round (floor first, then rectiflow first, ...)."""
    from bench.common import result, spread

    per_round: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        target = url or f"sqlite:///{tmp}/import-bench.db"
        path = Path(tmp) / "opinions.csv"
        make_csv(path, rows)
        size_mib = path.stat().st_size / (1 << 20)
        for r in range(rounds):
            order = ("floor", "rectiflow") if r % 2 == 0 else ("rectiflow", "floor")
            got = {
                side: _side(side, target, path, batch, verify=(side == "rectiflow" and r == 0))
                for side in order
            }
            floor, ours = got["floor"], got["rectiflow"]
            per_round.append(
                {
                    "floor_rows_per_s": round(floor["rows"] / floor["seconds"]),
                    "rectiflow_rows_per_s": round(ours["rows"] / ours["seconds"]),
                    "ratio": round(floor["seconds"] / ours["seconds"], 3),
                    "rectiflow_seconds": round(ours["seconds"], 1),
                    "cpu_seconds": {
                        "floor": round(floor["cpu_seconds"], 2),
                        "rectiflow": round(ours["cpu_seconds"], 2),
                    },
                    "cpu_ratio": round(floor["cpu_seconds"] / ours["cpu_seconds"], 3),
                    "peak_rss_mib": {
                        "floor": round(floor["peak_rss_mib"], 1),
                        "rectiflow": round(ours["peak_rss_mib"], 1),
                    },
                    **(
                        {"verify_problems": ours["verify_problems"]}
                        if "verify_problems" in ours
                        else {}
                    ),
                }
            )
    rates = [r["rectiflow_rows_per_s"] for r in per_round]
    summary = {
        "rectiflow_rows_per_s": spread(rates),
        "floor_rows_per_s": spread([r["floor_rows_per_s"] for r in per_round]),
        "ratio": spread([r["ratio"] for r in per_round]),
        "cpu_ratio": spread([r["cpu_ratio"] for r in per_round]),
        "peak_rss_mib_rectiflow": max(r["peak_rss_mib"]["rectiflow"] for r in per_round),
        "peak_rss_mib_floor": max(r["peak_rss_mib"]["floor"] for r in per_round),
        "csv_mib": round(size_mib, 1),
        "verified": per_round[0].get("verify_problems") == 0,
        "target_rows_per_s": 5000,
    }
    summary["met"] = summary["rectiflow_rows_per_s"]["median"] >= 5000
    backend = (url or "sqlite").split(":")[0]
    return result(
        f"import-{backend.split('+')[0]}",
        command=f"python -m bench.import_bench --rows {rows} --rounds {rounds} --batch {batch}",
        params={"rows": rows, "rounds": rounds, "batch": batch, "backend": backend},
        rounds=per_round,
        summary=summary,
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """For ``bench.run``: 100,000 rows on SQLite (10,000 with --quick)."""
    return [measure(rows=10_000 if quick else 100_000, rounds=2 if quick else 3, batch=2000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--url", default=None, help="database URL (default: a temporary SQLite)")
    parser.add_argument("--child", choices=("rectiflow", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, Path(args.file), args.batch, args.verify)
        return
    out = measure(rows=args.rows, rounds=args.rounds, batch=args.batch, url=args.url)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
