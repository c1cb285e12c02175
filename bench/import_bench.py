"""Import of a large CSV: rows per second and peak memory, next to its floor in the same run.

    python -m bench.import_bench --rows 100000
    python -m bench.import_bench --rows 100000 --url postgresql://postgres@127.0.0.1/rectiflow_importbench

rectiflow's path is ``engine.importing.import_file``: detect the encoding, check
every row (first pass), then create each ticket through ``create_ticket`` (its
hash-chained ``create`` log row, theme tags and the deadlines hook) in
transactions of ``--batch`` rows, skipping keys already imported. The floor
is the same file parsed with ``csv`` and bulk-inserted into ``tickets``
(``executemany``, same batches) with no checks, no log and no deadlines.
Each side runs in its own child process on a fresh database, so the peak
resident memory (``ru_maxrss``) is that side's own.
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
    started = time.perf_counter()
    result = import_file(
        context_for(engine),
        path,
        campaign=CAMPAIGN,
        username="clerk",
        now=NOW,
        batch_size=batch,
    )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {"rows": result.created, "seconds": elapsed}


def run_floor(url: str, path: Path, batch: int) -> dict[str, float]:
    from sqlalchemy import insert, select

    from engine import db
    from engine.models import Campaign, Ticket

    engine = db.make_engine(url)
    started = time.perf_counter()
    table = Ticket.__table__
    with engine.connect() as conn:
        campaign_id = conn.execute(select(Campaign.id).where(Campaign.code == CAMPAIGN)).scalar()
        conn.commit()
    count = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        chunk: list[dict[str, object]] = []

        def flush() -> None:
            with engine.begin() as conn:
                conn.execute(insert(table), chunk)
            chunk.clear()

        for row in reader:
            count += 1
            chunk.append(
                {
                    "number": f"F-{count:07d}",
                    "campaign_id": campaign_id,
                    "kind": row[1],
                    "text": row[0],
                    "area": row[3],
                    "citizen_name": row[4],
                    "state": "received",
                    "version": 1,
                    "workflow_name": "consultation",
                    "workflow_version": 1,
                    "received_at": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "source": "import",
                    "external_key": f"k{count}",
                    "last_hash": "0" * 64,
                }
            )
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {"rows": count, "seconds": elapsed}


def child(side: str, url: str, path: Path, batch: int) -> None:
    fresh_database(url)
    out = (run_rectiflow if side == "rectiflow" else run_floor)(url, path, batch)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--url", default=None, help="database URL (default: a temporary SQLite)")
    parser.add_argument("--child", choices=("rectiflow", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, Path(args.file), args.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/import-bench.db"
        path = Path(tmp) / "opinions.csv"
        make_csv(path, args.rows)
        size = path.stat().st_size / (1 << 20)
        print(
            f"{args.rows} rows, {size:.1f} MiB CSV, batches of {args.batch}, {url.split('://')[0]}"
        )
        results = {}
        for side in ("floor", "rectiflow"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.import_bench",
                    "--child",
                    side,
                    "--url",
                    url,
                    "--file",
                    str(path),
                    "--batch",
                    str(args.batch),
                ],
                check=True,
                capture_output=True,
                text=True,
                env=os.environ.copy(),
            )
            results[side] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[side]
            print(
                f"{side:>10}: {r['rows']:.0f} rows in {r['seconds']:.1f} s = "
                f"{r['rows'] / r['seconds']:,.0f} rows/s, peak RSS {r['peak_rss_mib']:.0f} MiB"
            )
        ratio = results["rectiflow"]["seconds"] / results["floor"]["seconds"]
        print(f"rectiflow / floor time: {ratio:.1f}x")


if __name__ == "__main__":
    main()
